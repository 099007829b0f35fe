"""The stock screens' forms: a change typed on a level, a stock count, a CSV import, and the Apply of a preview."""

from __future__ import annotations

import re

from django import forms
from django.core.exceptions import ValidationError

from inventory.models import Location

CHANGE_PATTERN = re.compile(r"^([+\-=])\s*(\d+)$")
# Typed on a Mac or pasted from a document, a minus is often the typographic one.
MINUS_SIGNS = str.maketrans({"−": "-", "–": "-"})
CHANGE_HELP = "+5 adds 5, -3 removes 3, =12 sets the level to 12."


def warehouses():
    """Locations staff count and change by hand: an external centre's stock is the channel's count."""
    return Location.objects.filter(kind=Location.Kind.WAREHOUSE).order_by("name")


class StockLevelChangeForm(forms.Form):
    location = forms.ModelChoiceField(queryset=warehouses(), empty_label=None)
    change = forms.CharField(max_length=20, help_text=CHANGE_HELP)
    note = forms.CharField(
        label="Reason", max_length=255,
        help_text="Kept with the change in the stock movements, e.g. “Found in returns”, “Damaged in transit”.",
    )

    def clean_change(self) -> tuple[str, int]:
        """('add', n), ('add', -n) or ('set', n)."""
        text = self.cleaned_data["change"].strip().translate(MINUS_SIGNS)
        match = CHANGE_PATTERN.match(text)
        if not match:
            if text.isdigit():
                raise ValidationError(f"Say whether to add, remove or set: +{text}, -{text} or ={text}.")
            raise ValidationError(f"Type a whole number after +, - or =. {CHANGE_HELP}")
        sign, number = match.group(1), int(match.group(2))
        if sign == "=":
            return "set", number
        if number == 0:
            raise ValidationError("Adding or removing 0 changes nothing.")
        return "add", number if sign == "+" else -number


class StockCountForm(forms.Form):
    location = forms.ModelChoiceField(queryset=warehouses(), empty_label=None)
    counted = forms.CharField(
        label="Counted",
        widget=forms.Textarea(attrs={"rows": 16, "cols": 60, "placeholder": "sku,counted\nMUG-1,12\nLAMP-2,0"}),
        help_text="One line per SKU counted: sku,counted (a comma, or a tab as pasted from a spreadsheet). "
        "SKUs you do not list keep their level.",
        strip=False,
    )


class StockImportForm(forms.Form):
    file = forms.FileField(
        label="CSV file",
        help_text="Columns sku, location, quantity with a header row. Each row sets the physical stock of one "
        "item at one location. Every bad row is reported with its line number and nothing of the file is "
        "applied; a good file is shown for you to check before it is applied.",
    )


class KitImportForm(forms.Form):
    file = forms.FileField(
        label="CSV file",
        help_text="Columns sku, component_sku, quantity with a header row: one row per component, quantity "
        "being how many of it each kit takes (a 3-pack: one row, quantity 3). Each kit in the file gets exactly "
        "the components the file lists for it. Every bad row is reported with its line number and nothing of the "
        "file is applied.",
    )


class StockPlanApplyForm(forms.Form):
    """The Apply button under a preview: the preview itself waits on the server under this token."""

    token = forms.CharField(widget=forms.HiddenInput, max_length=64)
