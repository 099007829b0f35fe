from datetime import UTC

from django import forms
from django.contrib.admin.widgets import AdminSplitDateTime
from django.utils import timezone

from channels.connectors import connector_class
from channels.endpoints import channel_endpoint_fields
from channels.models import CREDENTIAL_PREFIX, Channel, OrderStatusMapping
from channels.scheduling import channel_schedule_problems, channel_schedule_read
from inventory.models import Location
from orders.models import Order, PostalService


def credential_fields(kind: str) -> tuple[tuple[str, str], ...]:
    """The secrets a channel of this kind needs, (key, label) in the order the form asks for them."""
    return connector_class(kind).credential_fields if kind else ()


class UtcAdminSplitDateTime(AdminSplitDateTime):
    def decompress(self, value):
        with timezone.override(UTC):
            return super().decompress(value)


class UtcSplitDateTimeField(forms.SplitDateTimeField):
    """Shown and typed in UTC whatever the staff's time zone, as the seeds name Last Order Sync (its 0001-01-01
    00:00 UTC default is before year 1 in a zone behind UTC, and cannot be shown there)."""

    def compress(self, data_list):
        with timezone.override(UTC):
            return super().compress(data_list)


SCHEDULE_FIELDS = ["orders_every", "inventory_every", "listings_every"]


class ChannelForm(forms.ModelForm):
    """The channel's config form. Secrets are replace-only: they are never rendered back."""

    kind_for_form: str = ""
    # Set by the add page's Test button: the handle of the credentials that test rotated (EKM's are single-use).
    tested_credentials = forms.CharField(required=False, widget=forms.HiddenInput)
    # The channel's periodic tasks (channels.scheduling.SCHEDULE_UNITS), on a saved channel's page.
    orders_every = forms.IntegerField(
        label="Download orders every (seconds)", required=False, min_value=1,
        help_text="Never faster than the channel's quota allows. Orders also come down sooner after activity.",
    )
    inventory_every = forms.IntegerField(
        label="Push waiting stock every (minutes)", required=False, min_value=1,
        help_text="Stock changes are pushed as they happen; this sends anything still waiting.",
    )
    listings_every = forms.IntegerField(
        label="Download listings every (minutes)", required=False, min_value=1,
        help_text="Refreshes the channel's listings (Download listings does it now).",
    )

    class Meta:
        model = Channel
        fields = "__all__"  # noqa: DJ007 - the admin narrows the fields per kind from its fieldsets
        field_classes = {"last_order_sync": UtcSplitDateTimeField}
        widgets = {"last_order_sync": UtcAdminSplitDateTime}

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        stored = self.instance.credentials if self.instance.pk else {}
        for key, _label in credential_fields(self.kind_for_form):
            field = self.fields[CREDENTIAL_PREFIX + key]
            if stored.get(key):
                field.help_text = "Set. Leave empty to keep it; type a new value to replace it."
            else:
                field.help_text = "Not set yet."
        if "kind" in self.fields:
            self.fields["kind"].widget = forms.HiddenInput()
        # A saved channel's kind from the row: staff without the credentials permission get a form without one.
        kind = self.instance.kind if self.instance.pk else self.kind_for_form
        for name, help_text in (connector_class(kind).setting_help if kind else {}).items():
            if name in self.fields:
                self.fields[name].help_text = help_text
        if self.instance.pk:
            for key, every in channel_schedule_read(channel=self.instance).items():
                self.fields[f"{key}_every"].initial = every

    def clean(self):
        cleaned = super().clean()
        moved = self.endpoints_changed()
        if not self.instance.pk or moved:
            for key, label in credential_fields(self.kind_for_form):
                if not cleaned.get(CREDENTIAL_PREFIX + key):
                    self.add_error(CREDENTIAL_PREFIX + key, (
                        f"{label} is needed to connect the channel." if not self.instance.pk else
                        f"The {' and '.join(moved)} changed: enter {label} again. Secrets are sent to a new "
                        "address only when they are typed for it."
                    ))
        from_locations = cleaned.get("update_inventory_from_locations")
        if from_locations and not (self.instance.pk and self.instance.inventory_locations.exists()):
            self.add_error(
                "update_inventory_from_locations",
                "Tick the locations in Location Mapping first (saving there turns this on), or leave it off "
                "to send stock from all warehouses.",
            )
        if self.instance.pk:
            for key, problem in channel_schedule_problems(channel=self.instance, every=self.schedule()).items():
                self.add_error(f"{key}_every", problem)
        return cleaned

    def schedule(self) -> dict[str, int]:
        """The intervals this form changes, by task key."""
        return {name.removesuffix("_every"): self.cleaned_data[name] for name in SCHEDULE_FIELDS
                if name in self.changed_data and self.cleaned_data.get(name)}

    def endpoints_changed(self) -> list[str]:
        """The labels of the endpoint settings this form changes on a saved channel."""
        if not self.instance.pk or not self.kind_for_form:
            return []
        return [
            str(self.fields[name].label) for name in channel_endpoint_fields(kind=self.kind_for_form)
            if name in self.fields and name in self.changed_data
        ]

    def save(self, commit: bool = True) -> Channel:
        channel = super().save(commit=False)
        replaced = {
            key: self.cleaned_data[CREDENTIAL_PREFIX + key]
            for key, _ in credential_fields(self.kind_for_form)
            if self.cleaned_data.get(CREDENTIAL_PREFIX + key)
        }
        reasons = []
        if moved := self.endpoints_changed():
            reasons.append("Endpoints changed: " + ", ".join(moved))
        if replaced:
            channel.credentials = {**channel.credentials, **replaced}
            if "client_secret" in replaced:
                channel.client_secret_replaced_at = timezone.now()
            # History never holds the secrets, only which of them staff replaced.
            labels = dict(credential_fields(self.kind_for_form))
            reasons.append("Credentials replaced: " + ", ".join(labels[key] for key in replaced))
        if reasons:
            # History keeps a change reason of at most 100 characters.
            reason = "; ".join(reasons)
            channel._change_reason = reason if len(reason) <= 100 else reason[:99] + "…"
        if commit:
            channel.save()
            self.save_m2m()
        return channel


def channel_form_for(kind: str) -> type[ChannelForm]:
    """A form class declaring the password inputs for this kind's secrets."""
    declared = {
        CREDENTIAL_PREFIX + key: forms.CharField(
            label=label, required=False, strip=True, widget=forms.PasswordInput(render_value=False)
        )
        for key, label in credential_fields(kind)
    }
    return type(f"{kind.title()}ChannelForm", (ChannelForm,), {**declared, "kind_for_form": kind})


class LocationMappingForm(forms.Form):
    """A tick per warehouse; the ticks count only with “Update inventory from location” on."""

    update_inventory_from_locations = forms.BooleanField(
        label="Update inventory from location", required=False,
        help_text="On: the channel is sent the stock of the ticked locations only. Off: all warehouses together.",
    )
    locations = forms.ModelMultipleChoiceField(
        queryset=Location.objects.filter(kind=Location.Kind.WAREHOUSE).order_by("name"), required=False,
        widget=forms.CheckboxSelectMultiple, label="Locations",
        help_text="Available stock (physical less open orders) of the ticked locations is added up and sent. "
        "FBA stock is Amazon's and never counts.",
    )

    def __init__(self, *args, channel: Channel, channel_locations: list[tuple[str, str]] | None = None,
                 **kwargs) -> None:
        self.channel = channel
        kwargs.setdefault("initial", {
            "update_inventory_from_locations": channel.update_inventory_from_locations,
            "locations": list(channel.inventory_locations.values_list("pk", flat=True)),
            "channel_location_id": channel.channel_location_id,
        })
        super().__init__(*args, **kwargs)
        if channel_locations is not None:
            label = channel.connector_class.label
            choices = [("", f"{label}'s first active location for online orders"), *channel_locations]
            if channel.channel_location_id and channel.channel_location_id not in dict(channel_locations):
                choices.append((channel.channel_location_id, f"{channel.channel_location_id} (not in the shop now)"))
            self.fields["channel_location_id"] = forms.ChoiceField(
                label=f"{label} location", choices=choices, required=False,
                help_text=f"The {label} location the quantity is set at, listed from the shop.")
        if not channel.update_inventory_from_locations:
            # The page's script enables the ticks when the switch is turned on.
            self.fields["locations"].widget.attrs["disabled"] = True

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("update_inventory_from_locations") and not cleaned.get("locations"):
            self.add_error("locations", "Tick at least one location, or turn off “Update inventory from location”.")
        return cleaned

    def initial_summary(self) -> str:
        to = f", to {self.channel.connector_class.label} location {self.initial['channel_location_id']}" if (
            "channel_location_id" in self.fields and self.initial["channel_location_id"]) else ""
        if not self.initial["update_inventory_from_locations"]:
            return "from all warehouses" + to
        ticked = Location.objects.filter(pk__in=self.initial["locations"]).order_by("name")
        names = ticked.values_list("name", flat=True)
        return "from " + ", ".join(names) + to


class StatusMappingForm(forms.Form):
    """One choice per channel status: each seen on an order, and each the channel says it can give."""

    def __init__(self, *args, channel: Channel, offered: list[str], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        stored = dict(channel.status_mappings.values_list("channel_status", "hub_status"))
        seen = channel.orders.exclude(channel_status="").values_list("channel_status", flat=True).distinct()
        self.statuses = sorted({*stored, *seen, *offered})
        for index, status in enumerate(self.statuses):
            self.fields[f"status_{index}"] = forms.ChoiceField(
                label=status, choices=OrderStatusMapping.HUB_STATUS_CHOICES,
                initial=stored.get(status, OrderStatusMapping.UNMAPPED),
                help_text="" if status in stored else "not mapped yet",
            )

    def mapping(self) -> dict[str, str]:
        return {status: self.cleaned_data[f"status_{index}"] for index, status in enumerate(self.statuses)}


class ShippingMappingForm(forms.Form):
    """One postal service per shipping tag seen on the channel's orders, and a row to add a tag by hand."""

    new_tag = forms.CharField(
        label="Add a tag", max_length=255, required=False,
        help_text="The channel's shipping service exactly as it appears on its orders.",
    )

    def __init__(self, *args, channel: Channel, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        stored = dict(channel.shipping_mappings.values_list("tag", "postal_service_id"))
        seen = (
            Order.objects.filter(channel=channel).exclude(channel_shipping_tag="")
            .values_list("channel_shipping_tag", flat=True).distinct()
        )
        self.tags = sorted({*stored, *seen})
        # One query for the services, shared by every row.
        self.services = list(PostalService.objects.order_by("name").values_list("pk", "name"))
        choices = [("", "Unmapped"), *self.services]
        for index, tag in enumerate(self.tags):
            self.fields[f"tag_{index}"] = forms.TypedChoiceField(
                label=tag, choices=choices, required=False, coerce=int, empty_value=None,
                initial=stored.get(tag) or "",
            )
        self.fields["new_tag_service"] = forms.TypedChoiceField(
            label="Its postal service", choices=choices, required=False, coerce=int, empty_value=None
        )
        self.order_fields([*(f"tag_{i}" for i in range(len(self.tags))), "new_tag", "new_tag_service"])

    def clean_new_tag(self) -> str:
        tag = self.cleaned_data["new_tag"].strip()
        if tag and tag in self.tags:
            raise forms.ValidationError("This tag is already in the list above.")
        return tag

    def mapping(self) -> dict[str, int | None]:
        mapping = {tag: self.cleaned_data[f"tag_{index}"] for index, tag in enumerate(self.tags)}
        if self.cleaned_data.get("new_tag"):
            mapping[self.cleaned_data["new_tag"]] = self.cleaned_data.get("new_tag_service")
        return mapping

    def service_names(self) -> dict[int, str]:
        return dict(self.services)

