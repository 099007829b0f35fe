from django import forms

from orders.models import PostalService


class OrderProcessForm(forms.Form):
    """Asked once for the orders selected: how they went out."""

    postal_service = forms.ModelChoiceField(
        queryset=PostalService.objects.all(), required=False,
        help_text="Leave empty to keep each order's own postal service.",
    )
    tracking_number = forms.CharField(
        max_length=100, required=False,
        help_text="For a single order. With several orders selected, leave empty: each keeps its own.",
    )


class OrderCancelForm(forms.Form):
    reason = forms.CharField(max_length=255, initial="Cancelled by the seller")
