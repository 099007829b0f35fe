"""Every changelist of the hub's apps runs the same number of queries for 5 rows as for 50: no per-row query."""

import pytest
from django.contrib import admin
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from channels.models import SyncRun
from inventory.models import StockMovement
from tests.channels.factories import (
    ChannelFactory,
    ChannelListingFactory,
    OrderStatusMappingFactory,
    ShippingMappingFactory,
    SyncRunFactory,
)
from tests.inventory.factories import LocationFactory, StockLevelFactory
from tests.orders.factories import OrderItemFactory, PostalServiceFactory

pytestmark = pytest.mark.django_db

HUB_APPS = {"channels", "inventory", "orders"}
CHANGELISTS = sorted(
    f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist"
    for model in admin.site._registry
    if model._meta.app_label in HUB_APPS
)


def add_rows(count: int, start: int) -> None:
    """`count` rows of every model on the hub's changelists, each with its related rows."""
    for n in range(start, start + count):
        location = LocationFactory(name=f"Location {n}")
        level = StockLevelFactory(location=location, quantity=5, in_open_orders=1)
        channel = ChannelFactory(name=f"Channel {n}")
        ChannelListingFactory(channel=channel, stock_item=level.stock_item, channel_quantity=3, last_pushed_quantity=2)
        OrderStatusMappingFactory(channel=channel)
        ShippingMappingFactory(channel=channel, postal_service=PostalServiceFactory(name=f"Service {n}"))
        SyncRunFactory(channel=channel, kind=SyncRun.Kind.ORDERS, status=SyncRun.Status.SUCCESS)
        SyncRunFactory(channel=channel, kind=SyncRun.Kind.INVENTORY, status=SyncRun.Status.PARTIAL)
        OrderItemFactory(order__channel=channel, stock_item=level.stock_item, order__fulfilment_location=location)
        StockMovement.objects.create(
            stock_item=level.stock_item, location=location, delta=5, quantity_after=5, reason="adjustment"
        )


def queries_for(client, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200, url
    return len(captured)


@pytest.mark.parametrize("name", CHANGELISTS)
def test_changelist_queries_do_not_grow_with_rows(admin_client, django_assert_max_num_queries, name):
    url = reverse(name)
    add_rows(5, start=0)
    with_five = queries_for(admin_client, url)

    add_rows(45, start=5)
    with django_assert_max_num_queries(with_five):
        assert admin_client.get(url).status_code == 200
