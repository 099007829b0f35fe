from django import forms

from channels.models import CREDENTIAL_FIELDS, Channel

CREDENTIAL_PREFIX = "credential_"


class ChannelForm(forms.ModelForm):
    """The channel's config form. Secrets are replace-only: they are never rendered back."""

    kind_for_form: str = ""

    class Meta:
        model = Channel
        fields = "__all__"  # noqa: DJ007 - the admin narrows the fields per kind from its fieldsets
        widgets = {"inventory_locations": forms.CheckboxSelectMultiple}

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        stored = self.instance.credentials if self.instance.pk else {}
        for key, _label in CREDENTIAL_FIELDS.get(self.kind_for_form, ()):
            field = self.fields[CREDENTIAL_PREFIX + key]
            if stored.get(key):
                field.help_text = "Set. Leave empty to keep it; type a new value to replace it."
            else:
                field.help_text = "Not set yet."
        if "kind" in self.fields:
            self.fields["kind"].widget = forms.HiddenInput()

    def clean(self):
        cleaned = super().clean()
        if not self.instance.pk:
            for key, label in CREDENTIAL_FIELDS.get(self.kind_for_form, ()):
                if not cleaned.get(CREDENTIAL_PREFIX + key):
                    self.add_error(CREDENTIAL_PREFIX + key, f"{label} is needed to connect the channel.")
        inventory_from_locations = cleaned.get("update_inventory_from_locations")
        if inventory_from_locations and "inventory_locations" in cleaned and not cleaned["inventory_locations"]:
            self.add_error(
                "inventory_locations",
                "Tick at least one location, or turn off “Update inventory from location”.",
            )
        return cleaned

    def save(self, commit: bool = True) -> Channel:
        channel = super().save(commit=False)
        replaced = {
            key: self.cleaned_data[CREDENTIAL_PREFIX + key]
            for key, _ in CREDENTIAL_FIELDS.get(self.kind_for_form, ())
            if self.cleaned_data.get(CREDENTIAL_PREFIX + key)
        }
        if replaced:
            channel.credentials = {**channel.credentials, **replaced}
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
        for key, label in CREDENTIAL_FIELDS.get(kind, ())
    }
    return type(f"{kind.title()}ChannelForm", (ChannelForm,), {**declared, "kind_for_form": kind})
