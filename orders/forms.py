from django import forms
from django.core.exceptions import ValidationError

from inventory.models import Location
from orders.channel_checks import ChannelNotice, cancellation_notice
from orders.models import Order, PostalService
from orders.services import TrackingLine, order_reallocation_problem, tracking_lines_check, tracking_lines_read

# A pasted or uploaded tracking file: a day's parcels fit many times over.
TRACKING_FILE_MAX_BYTES = 2 * 1024 * 1024


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


class OrderRetellForm(OrderProcessForm):
    """Retrying a despatch the channel refused: the tracking number or carrier it refused can be fixed here."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["tracking_number"].help_text = (
            "The corrected tracking number, for a single order. Leave empty to send the order's own."
        )


def _channel_note(notice: ChannelNotice) -> dict:
    """One line of the cancel form: whether this channel will be told, with what reason, or why not."""
    if notice.told:
        reason = (f"the one chosen below, from {notice.channel}'s list" if notice.reasons
                  else f"the text below, which {notice.channel} passes on")
        return {"told": True, "text": f"{notice.channel} will be told (reason: {reason}).", "url": ""}
    return {"told": False, "text": f"{notice.channel} will not be told: {notice.why_not}", "url": notice.settings_url}


class OrderCancelForm(forms.Form):
    """The reason is a choice of the channel's own reason codes, in the seller's words, when the channel is told
    and keeps a list (Amazon); free text otherwise. The form says which channels will be told and why not."""

    reason = forms.CharField(max_length=255, initial="Cancelled by the seller")

    def __init__(self, *args, orders, **kwargs):
        super().__init__(*args, **kwargs)
        self.notices = {order.pk: cancellation_notice(order=order) for order in orders}
        notes = []
        for notice in self.notices.values():
            if (note := _channel_note(notice)) not in notes:
                notes.append(note)
        self.channel_notes = notes
        lists = {tuple(n.reasons.items()) for n in self.notices.values() if n.told and n.reasons}
        self.reasons: dict[str, str] = dict(next(iter(lists))) if len(lists) == 1 else {}
        self.mixed_reason_lists = len(lists) > 1
        if self.reasons:
            channels = sorted({n.channel for n in self.notices.values() if n.told and n.reasons})
            self.fields["reason"] = forms.ChoiceField(
                choices=[("", "Choose the reason"), *self.reasons.items()],
                help_text=f"{' and '.join(channels)} is sent the reason's own code.",
            )

    def clean(self):
        if self.mixed_reason_lists:
            raise ValidationError("These orders' channels each have their own list of reasons: cancel the orders "
                                  "of one channel at a time.")
        return super().clean()

    def reason_for(self, order: Order) -> str:
        """The reason as this order's channel is sent it: the code from its list, or the seller's words."""
        reason = self.cleaned_data["reason"]
        if self.reasons and not self.notices[order.pk].reasons:
            return self.reasons[reason]
        return reason


class OrderReallocateForm(forms.Form):
    location = forms.ModelChoiceField(
        queryset=Location.objects.all(), label="Fulfil from",
        help_text="The selected orders' stock is held there from now on. An Amazon FBA location sends them to "
        "Amazon's multi-channel fulfilment, which ships them and sends back the tracking.",
    )


class TrackingLinesForm(forms.Form):
    """Many orders processed at once from `order number, tracking number[, carrier]` lines, pasted or uploaded.
    Every line is checked first; any bad line is reported with its number and nothing is processed."""

    lines = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 12, "cols": 80}), required=False, label="Paste lines",
        help_text="One order a line: order number, tracking number[, carrier], separated by commas, semicolons or "
        "tabs. The carrier is a postal service's name or carrier code; left out, the order keeps its own.",
    )
    file = forms.FileField(required=False, label="Or upload a file", help_text="A CSV or tab-separated text file.")
    # The checked lines, once the form is valid.
    tracking_lines: list[TrackingLine]

    def clean_file(self):
        upload = self.cleaned_data.get("file")
        if upload is None:
            return ""
        if upload.size > TRACKING_FILE_MAX_BYTES:
            raise ValidationError(f"The file is {upload.size // 1024} KB: upload at most "
                                  f"{TRACKING_FILE_MAX_BYTES // (1024 * 1024)} MB at a time.")
        try:
            return upload.read().decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise ValidationError(f"The file is not UTF-8 text (byte {exc.start}): save it as CSV UTF-8.") from exc

    def clean(self):
        data = super().clean()
        text = data.get("file") or data.get("lines", "")
        if data.get("file") and data.get("lines", "").strip():
            raise ValidationError("Paste lines or upload a file, not both.")
        if not text.strip():
            if not self.errors:
                raise ValidationError("Paste the lines, or upload a file of them.")
            return data
        rows, unreadable = tracking_lines_read(text=text)
        self.tracking_lines, refused = tracking_lines_check(rows=rows)
        if problems := sorted(unreadable + refused, key=lambda problem: problem[0]):
            raise ValidationError([message for _, message in problems])
        return data


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
