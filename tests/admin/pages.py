"""Helpers for tests that post admin pages as a browser would."""

from django.test import Client


def change_form_data(client: Client, url: str, **changes) -> dict:
    """The change page's form and inline forms as the browser would post them, with `changes` typed in."""
    context = client.get(url).context
    form = context["adminform"].form
    data = {name: form[name].value() for name in form.fields}
    for inline in context["inline_admin_formsets"]:
        formset = inline.formset
        data.update({f"{formset.prefix}-{key}": value for key, value in formset.management_form.initial.items()})
        for line in formset.forms:
            data.update({line.add_prefix(name): line[name].value() for name in line.fields})
    data.update(changes)
    return {key: "" if value is None else value for key, value in data.items()}
