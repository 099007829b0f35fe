"""What each staff group can and cannot reach in the admin (groups as the data migration created them)."""

import io

import pytest
from django.contrib.auth.models import Group, Permission
from django.core.management import call_command
from django.urls import reverse

from channels.models import Channel
from channels.permissions import ADMINS, CHANNEL_MANAGERS, WAREHOUSE_STAFF
from tests.channels.factories import ChannelFactory, ChannelListingFactory, OrderStatusMappingFactory
from tests.inventory.factories import StockItemFactory
from tests.orders.factories import OrderFactory
from tests.security.conftest import change_form_data

pytestmark = pytest.mark.django_db

SECRET = "sk-live-5f2b9c1e77aa40d1"


def status(client, url: str, method: str = "get", **data) -> int:
    return getattr(client, method)(url, data).status_code


def actions_offered(client, url: str) -> set[str]:
    response = client.get(url)
    form = response.context["action_form"] if response.context and "action_form" in response.context else None
    return {value for value, _ in form.fields["action"].choices if value} if form else set()


def test_the_migration_created_the_three_groups():
    assert set(Group.objects.values_list("name", flat=True)) >= {WAREHOUSE_STAFF, CHANNEL_MANAGERS, ADMINS}
    assert Group.objects.get(name=ADMINS).permissions.count() == Permission.objects.count()


def test_setup_groups_restores_a_removed_permission_and_can_run_twice():
    warehouse = Group.objects.get(name=WAREHOUSE_STAFF)
    warehouse.permissions.remove(Permission.objects.get(codename="change_order"))
    out = io.StringIO()

    call_command("setup_groups", stdout=out)
    call_command("setup_groups", stdout=out)

    assert warehouse.permissions.filter(codename="change_order").exists()
    assert Group.objects.filter(name=WAREHOUSE_STAFF).count() == 1
    assert "Warehouse staff:" in out.getvalue()


def test_warehouse_staff_work_stock_and_orders_but_not_channels(warehouse_client):
    item = StockItemFactory()
    order = OrderFactory()
    channel = ChannelFactory()

    assert status(warehouse_client, reverse("admin:inventory_stockitem_change", args=(item.pk,))) == 200
    assert status(warehouse_client, reverse("admin:inventory_stocklevel_import")) == 200
    assert status(warehouse_client, reverse("admin:orders_order_change", args=(order.pk,))) == 200
    orders = reverse("admin:orders_order_changelist")
    assert {"process_orders", "cancel_orders"} <= actions_offered(warehouse_client, orders)
    assert status(warehouse_client, reverse("admin:channels_channel_changelist")) == 403
    assert status(warehouse_client, reverse("admin:channels_channel_test", args=(channel.pk,)), "post") == 403
    assert status(warehouse_client, reverse("admin:channels_channel_reauthorise", args=(channel.pk,))) == 403
    assert status(warehouse_client, reverse("admin:channels_channellisting_changelist")) == 403


def test_channel_managers_configure_channels_but_never_reach_the_credentials(manager_client):
    channel = ChannelFactory(credentials={"client_id": "cid", "client_secret": SECRET, "refresh_token": "r"})
    mapping = OrderStatusMappingFactory(channel=channel)
    listing = ChannelListingFactory(channel=channel)
    url = reverse("admin:channels_channel_change", args=(channel.pk,))

    page = manager_client.get(url)

    assert page.status_code == 200
    assert "credential_client_secret" not in page.content.decode()
    assert status(manager_client, reverse("admin:channels_channel_reauthorise", args=(channel.pk,))) == 403
    assert status(manager_client, reverse("admin:channels_channel_reauthorise", args=(channel.pk,)), "post") == 403
    assert status(manager_client, reverse("admin:channels_channel_add") + "?kind=ekm") == 403
    assert status(manager_client, reverse("admin:channels_channel_test_unsaved") + "?kind=ekm", "post") == 403
    assert status(manager_client, reverse("admin:channels_orderstatusmapping_change", args=(mapping.pk,))) == 200
    assert status(manager_client, reverse("admin:channels_channellisting_change", args=(listing.pk,))) == 200
    assert status(manager_client, reverse("admin:channels_channel_status_mapping", args=(channel.pk,))) == 200
    # Orders are read-only for them: no process or cancel.
    orders = reverse("admin:orders_order_changelist")
    assert status(manager_client, orders) == 200
    assert not {"process_orders", "cancel_orders"} & actions_offered(manager_client, orders)
    assert status(manager_client, reverse("admin:inventory_stocklevel_import")) == 403


def test_a_channel_manager_cannot_replace_a_secret_by_posting_the_field(manager_client):
    channel = ChannelFactory(credentials={"client_id": "cid", "client_secret": SECRET, "refresh_token": "r"})
    url = reverse("admin:channels_channel_change", args=(channel.pk,))
    data = change_form_data(manager_client, url, name="Renamed", credential_client_secret="attacker-value")

    response = manager_client.post(url, data)

    assert response.status_code == 302, response.context["adminform"].form.errors
    channel = Channel.objects.get(pk=channel.pk)
    assert channel.name == "Renamed" and channel.credentials["client_secret"] == SECRET


def test_admins_reach_the_credentials_and_reauthorise(admins_client):
    channel = ChannelFactory(credentials={"client_id": "cid", "client_secret": SECRET, "refresh_token": "r"})

    page = admins_client.get(reverse("admin:channels_channel_change", args=(channel.pk,))).content.decode()

    assert 'name="credential_client_secret"' in page and SECRET not in page
    assert status(admins_client, reverse("admin:channels_channel_reauthorise", args=(channel.pk,))) == 200
    assert status(admins_client, reverse("admin:channels_channel_add") + "?kind=ekm") == 200
    assert status(admins_client, reverse("admin:inventory_stocklevel_import")) == 200


def test_staff_without_a_group_reach_nothing(groupless_client):
    channel = ChannelFactory()
    order = OrderFactory()

    assert status(groupless_client, reverse("admin:channels_channel_changelist")) == 403
    download = reverse("admin:channels_channel_download_listings", args=(channel.pk,))
    assert status(groupless_client, download, "post") == 403
    assert status(groupless_client, reverse("admin:channels_channel_dashboard")) == 403
    assert status(groupless_client, reverse("admin:orders_order_changelist")) == 403
    assert status(groupless_client, reverse("admin:orders_order_change", args=(order.pk,))) == 403
    assert status(groupless_client, reverse("admin:inventory_stocklevel_import")) == 403
