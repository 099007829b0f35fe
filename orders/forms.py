from django import forms

from inventory.models import Location
from orders.models import Order, PostalService
from orders.services import order_reallocation_problem


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


class OrderReallocateForm(forms.Form):
    location = forms.ModelChoiceField(
        queryset=Location.objects.all(), label="Fulfil from",
        help_text="The selected orders' stock is held there from now on. An Amazon FBA location sends them to "
        "Amazon's multi-channel fulfilment, which ships them and sends back the tracking.",
    )


class OrderChangeForm(forms.ModelForm):
    """The order page: a new fulfilment location is checked here and moved by `order_reallocate` on save."""

    class Meta:
        model = Order
        fields = ["fulfilment_location"]

    def clean_fulfilment_location(self):
        location = self.cleaned_data.get("fulfilment_location")
        if self.instance.pk and "fulfilment_location" in self.changed_data:
            saved = Order.objects.select_related("channel").get(pk=self.instance.pk)
            if problem := order_reallocation_problem(order=saved, location=location):
                raise forms.ValidationError(problem)
        return location
