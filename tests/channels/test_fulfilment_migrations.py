"""The FBA columns moved from inventory and orders to the channels app, on a database that has data in them:
forward copies them into the channels' rows, backward puts them back, and forward again loses nothing."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

BEFORE = [("channels", "0008_endpoints_import_profile_secret_rotation"), ("inventory", "0005_location_kind_external")]
AFTER = [("channels", "0009_fulfilment_location")]


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


def location_columns() -> set[str]:
    with connection.cursor() as cursor:
        return {c.name for c in connection.introspection.get_table_description(cursor, "inventory_location")}


def location_channels() -> dict[str, int | None]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT name, channel_id FROM inventory_location ORDER BY name")
        return dict(cursor.fetchall())


@pytest.fixture
def at_previous_migration():
    latest = MigrationExecutor(connection).loader.graph.leaf_nodes()
    apps = migrate(BEFORE)
    yield apps
    migrate(latest)


def test_an_fba_locations_channel_moves_to_the_channels_side_and_back(at_previous_migration):
    apps = at_previous_migration
    assert "channel_id" in location_columns()
    channel = apps.get_model("channels", "Channel").objects.create(name="Amazon UK", kind="amazon", fba_enabled=True)
    location = apps.get_model("inventory", "Location")
    fba = location.objects.create(name="FBA – Amazon UK", kind="fba")
    location.objects.create(name="Main", kind="warehouse", is_default=True)
    with connection.cursor() as cursor:
        cursor.execute("UPDATE inventory_location SET channel_id = %s WHERE id = %s", [channel.pk, fba.pk])

    apps = migrate(AFTER)

    assert "channel_id" not in location_columns()
    links = apps.get_model("channels", "FulfilmentLocation").objects.values_list("location_id", "channel_id")
    assert list(links) == [(fba.pk, channel.pk)]

    migrate(BEFORE)

    assert location_channels() == {"FBA – Amazon UK": channel.pk, "Main": None}

    apps = migrate(AFTER)

    links = apps.get_model("channels", "FulfilmentLocation").objects.values_list("location_id", "channel_id")
    assert list(links) == [(fba.pk, channel.pk)]
