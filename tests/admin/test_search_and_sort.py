"""Searching and sorting the big lists: listings, stock levels, the ledger, orders and stock items."""

import re

import pytest
from django.urls import reverse

from inventory import search
from inventory.models import StockMovement
from tests.channels.factories import ChannelFactory, ChannelListingFactory
from tests.inventory.factories import LocationFactory, StockItemFactory, StockLevelFactory
from tests.orders.factories import OrderFactory

pytestmark = pytest.mark.django_db

LISTINGS = "admin:channels_channellisting_changelist"


def found(client, name: str, term: str) -> set:
    response = client.get(reverse(name), {"q": term})
    assert response.status_code == 200
    return set(response.context["cl"].result_list)


@pytest.fixture
def listings():
    channel = ChannelFactory()
    blue = StockItemFactory(sku="MUG-BLUE", title="Blue mug")
    return {
        # Listed under another SKU than the hub's: found by the stock item's SKU as well.
        "renamed": ChannelListingFactory(channel=channel, stock_item=blue, channel_sku="AMZ-77", title="Mug, blue"),
        "by_title": ChannelListingFactory(channel=channel, stock_item=None, channel_sku="X1", title="Red mug large"),
        "by_id": ChannelListingFactory(channel=channel, stock_item=None, channel_sku="X2", external_id="B00MUG"),
        "other": ChannelListingFactory(channel=channel, stock_item=StockItemFactory(sku="PLATE"), title="Plate"),
    }


def test_listings_are_found_by_channel_sku_title_listing_id_or_the_linked_items_sku(admin_client, listings):
    assert found(admin_client, LISTINGS, "amz-77") == {listings["renamed"]}
    assert found(admin_client, LISTINGS, "mug-blue") == {listings["renamed"]}
    assert found(admin_client, LISTINGS, "red mug") == {listings["by_title"]}
    assert found(admin_client, LISTINGS, "b00mug") == {listings["by_id"]}
    assert found(admin_client, LISTINGS, "mug") == {listings["renamed"], listings["by_title"], listings["by_id"]}
    assert found(admin_client, LISTINGS, '"mug large"') == {listings["by_title"]}
    assert found(admin_client, LISTINGS, "saucer") == set()


def test_a_term_matching_many_stock_items_still_finds_their_listings(admin_client, listings, monkeypatch):
    # Past the inlined-ids limit the search joins the stock item instead: same rows.
    monkeypatch.setattr(search, "STOCK_ITEM_MATCHES_INLINED", 0)
    assert found(admin_client, LISTINGS, "mug-blue") == {listings["renamed"]}
    assert found(admin_client, LISTINGS, "mug") == {listings["renamed"], listings["by_title"], listings["by_id"]}


def test_stock_levels_and_ledger_are_found_by_the_items_sku_or_title_or_the_reference(admin_client):
    warehouse = LocationFactory()
    mug = StockLevelFactory(stock_item=StockItemFactory(sku="MUG-1", title="Blue mug"), location=warehouse)
    StockLevelFactory(stock_item=StockItemFactory(sku="PLATE-1", title="Plate"), location=warehouse)
    sold = StockMovement.objects.create(stock_item=mug.stock_item, location=warehouse, delta=-1, quantity_after=4,
                                        reason="adjustment", reference="ORDER-991")
    counted = StockMovement.objects.create(stock_item=mug.stock_item, location=warehouse, delta=5, quantity_after=5,
                                           reason="adjustment", reference="count")

    assert found(admin_client, "admin:inventory_stocklevel_changelist", "blue mug") == {mug}
    assert found(admin_client, "admin:inventory_stocklevel_changelist", "mug-1") == {mug}
    assert found(admin_client, "admin:inventory_stockmovement_changelist", "order-991") == {sold}
    assert found(admin_client, "admin:inventory_stockmovement_changelist", "MUG-1") == {sold, counted}


def test_orders_are_found_by_number_buyer_postcode_or_tracking(admin_client):
    order = OrderFactory(channel_order_id="1001-ABC", buyer_name="Ann Lee", buyer_email="ann@example.com",
                         ship_postcode="SW1A 1AA", tracking_number="RM123GB")
    OrderFactory(channel_order_id="2002", buyer_name="Bob", buyer_email="bob@example.com")
    for term in ("1001", "ann lee", "ANN@EXAMPLE", "sw1a", "rm123"):
        assert found(admin_client, "admin:orders_order_changelist", term) == {order}, term


@pytest.mark.parametrize(("name", "sortable"), [
    (LISTINGS, {"channel_sku"}),
    ("admin:orders_order_changelist", {"channel_order_id", "status_on_both_sides", "received"}),
    ("admin:inventory_stockmovement_changelist", {"created_at"}),
    ("admin:inventory_stockitem_changelist", {"sku", "title", "barcode", "retail_price"}),
])
def test_big_lists_sort_only_by_indexed_columns(admin_client, listings, name, sortable):
    OrderFactory()
    StockMovement.objects.create(stock_item=listings["renamed"].stock_item, location=LocationFactory(), delta=1,
                                 quantity_after=1, reason="adjustment")
    page = admin_client.get(reverse(name)).content.decode()
    assert set(re.findall(r'class="sortable[^"]*?column-(\w+)', page)) == sortable
