from datetime import datetime

import pytest
from django.contrib.auth.models import Group, User

from channels.permissions import ADMINS, CHANNEL_MANAGERS, WAREHOUSE_STAFF


def _staff_client(client, name: str, group: str | None):
    user = User.objects.create_user(name, password="pw-long-enough-1", is_staff=True)
    if group:
        user.groups.add(Group.objects.get(name=group))
    client.force_login(user)
    return client


@pytest.fixture
def warehouse_client(client, db):
    return _staff_client(client, "warehouse", WAREHOUSE_STAFF)


@pytest.fixture
def manager_client(client, db):
    return _staff_client(client, "manager", CHANNEL_MANAGERS)


@pytest.fixture
def admins_client(client, db):
    return _staff_client(client, "boss", ADMINS)


@pytest.fixture
def groupless_client(client, db):
    return _staff_client(client, "nobody", None)


def change_form_data(client, url: str, **changes) -> dict:
    """The POST data of an admin change form as it is shown, with these changes: what a save without edits sends."""
    form = client.get(url).context["adminform"].form
    data = {}
    for name in form.fields:
        value = form[name].value()
        if value is None or value is False:
            continue
        if isinstance(value, datetime):
            # isoformat keeps the four-digit year of a never-synced channel (0001-01-01).
            data[f"{name}_0"], data[f"{name}_1"] = value.date().isoformat(), value.time().isoformat("seconds")
        elif isinstance(value, list | tuple):
            data[name] = [getattr(v, "pk", v) for v in value]
        else:
            data[name] = value
    return data | changes
