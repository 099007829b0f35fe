"""The FBA columns moved from inventory and orders to the channels app, on a database that has data in them:
forward copies them into the channels' rows, backward puts them back, and forward again loses nothing."""

import pytest
from django.db import connection

from tests.migrations import at_migrations, migrate

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

BEFORE = [("channels", "0008_endpoints_import_profile_secret_rotation"), ("inventory", "0005_location_kind_external"),
          ("orders", "0007_fba_outbound_sending")]
AFTER = [("channels", "0010_fulfilment_order"), ("orders", "0008_fba_outbound_to_channels")]
FBA_COLUMNS = ("fba_outbound_status", "fba_fulfillment_order_id", "fba_outbound_error")


def columns(table: str) -> set[str]:
    with connection.cursor() as cursor:
        return {c.name for c in connection.introspection.get_table_description(cursor, table)}


def location_channels() -> dict[str, int | None]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT name, channel_id FROM inventory_location ORDER BY name")
        return dict(cursor.fetchall())


@pytest.fixture
def at_previous_migration():
    with at_migrations(BEFORE) as apps:
        yield apps


def test_fba_locations_and_orders_sent_to_amazon_move_to_the_channels_side_and_back(at_previous_migration):
    apps = at_previous_migration
    assert "channel_id" in columns("inventory_location")
    channel = apps.get_model("channels", "Channel").objects.create(name="Amazon UK", kind="amazon", fba_enabled=True)
    location = apps.get_model("inventory", "Location")
    fba = location.objects.create(name="FBA – Amazon UK", kind="fba")
    location.objects.create(name="Main", kind="warehouse", is_default=True)
    with connection.cursor() as cursor:
        cursor.execute("UPDATE inventory_location SET channel_id = %s WHERE id = %s", [channel.pk, fba.pk])
    order = apps.get_model("orders", "Order")
    placed = {"channel": channel, "received_at": "2026-11-30T10:00:00Z", "fulfilment_location": fba}
    refused = order.objects.create(channel_order_id="1", fba_outbound_status="refused", fba_outbound_error="1 short",
                                   fba_fulfillment_order_id="SL-1-261130", **placed)
    held = order.objects.create(channel_order_id="2", fba_outbound_status="received",
                                fba_fulfillment_order_id="SL-2-261130", **placed)
    order.objects.create(channel_order_id="3", **placed)
    before = sorted(order.objects.values_list("channel_order_id", *FBA_COLUMNS))

    apps = migrate(AFTER)

    assert "channel_id" not in columns("inventory_location")
    assert not set(FBA_COLUMNS) & columns("orders_order")
    links = apps.get_model("channels", "FulfilmentLocation").objects.values_list("location_id", "channel_id")
    assert list(links) == [(fba.pk, channel.pk)]
    sent = apps.get_model("channels", "FulfilmentOrder").objects.order_by("order_id")
    assert list(sent.values_list("order_id", "status", "fulfilment_order_id", "error")) == [
        (refused.pk, "refused", "SL-1-261130", "1 short"), (held.pk, "received", "SL-2-261130", "")]

    apps = migrate(BEFORE)

    assert location_channels() == {"FBA – Amazon UK": channel.pk, "Main": None}
    assert sorted(apps.get_model("orders", "Order").objects.values_list("channel_order_id", *FBA_COLUMNS)) == before

    apps = migrate(AFTER)

    links = apps.get_model("channels", "FulfilmentLocation").objects.values_list("location_id", "channel_id")
    assert list(links) == [(fba.pk, channel.pk)]
    assert apps.get_model("channels", "FulfilmentOrder").objects.count() == 2
