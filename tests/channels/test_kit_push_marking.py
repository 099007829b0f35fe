"""Pushes follow kits: a part's stock change reaches the listings of every kit made of it, and a kit sold on
one channel changes what its parts are offered for on the others."""

import pytest

from channels.models import ListingPushMark
from channels.selectors import listings_push_plan
from inventory.services import kit_components_set, stock_item_price_set, stock_level_change, stock_reserve
from tests.channels.factories import ChannelFactory, ChannelListingFactory, waiting_for_push
from tests.inventory.factories import LocationFactory, StockItemFactory, StockLevelFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def queued(monkeypatch):
    pushes = []
    monkeypatch.setattr("channels.tasks.inventory_push_task.apply_async", lambda args, **kw: pushes.append(args[0]))
    return pushes


@pytest.fixture
def shop():
    """A 3-pack of socks on Amazon, the single socks on EKM, a hat on both; 10 socks and 5 hats in stock."""
    warehouse = LocationFactory(name="Main", is_default=True)
    sock, pack, hat = StockItemFactory(sku="SOCK"), StockItemFactory(sku="SOCK-3PK"), StockItemFactory(sku="HAT")
    StockLevelFactory(stock_item=sock, location=warehouse, quantity=10)
    StockLevelFactory(stock_item=hat, location=warehouse, quantity=5)
    kit_components_set(kit_id=pack.pk, components=[(sock.pk, 3)])
    amazon, ekm = ChannelFactory(name="Amazon"), ChannelFactory(name="EKM")
    listings = {
        "pack": ChannelListingFactory(channel=amazon, stock_item=pack),
        "sock": ChannelListingFactory(channel=ekm, stock_item=sock),
        "hat on Amazon": ChannelListingFactory(channel=amazon, stock_item=hat),
        "hat on EKM": ChannelListingFactory(channel=ekm, stock_item=hat),
    }
    ListingPushMark.objects.all().delete()
    return warehouse, sock, pack, hat, listings


def waiting(listings) -> set[str]:
    return {name for name, listing in listings.items() if waiting_for_push(listing)}


def test_a_parts_stock_change_marks_the_kits_listings_and_its_own(shop, queued, django_capture_on_commit_callbacks):
    warehouse, sock, _, _, listings = shop

    with django_capture_on_commit_callbacks(execute=True):
        stock_level_change(stock_item_id=sock.pk, location_id=warehouse.pk, add=2, note="delivery")

    assert waiting(listings) == {"pack", "sock"}
    assert sorted(queued) == sorted({listings["pack"].channel_id, listings["sock"].channel_id})
    assert [(push.quantity) for push in listings_push_plan(channel_id=listings["pack"].channel_id)] == [4]


def test_a_kit_sold_on_one_channel_changes_its_parts_on_the_other(shop, queued, django_capture_on_commit_callbacks):
    warehouse, sock, pack, _, listings = shop

    with django_capture_on_commit_callbacks(execute=True):
        stock_reserve(lines=[(pack.pk, warehouse.pk, 1)])

    assert waiting(listings) == {"pack", "sock"}
    assert [push.quantity for push in listings_push_plan(channel_id=listings["sock"].channel_id)] == [7]


def test_changing_a_kits_parts_marks_its_listings(shop, queued, django_capture_on_commit_callbacks):
    _, _, pack, hat, listings = shop

    with django_capture_on_commit_callbacks(execute=True):
        kit_components_set(kit_id=pack.pk, components=[(hat.pk, 1)])

    assert waiting(listings) == {"pack"}
    assert [push.quantity for push in listings_push_plan(channel_id=listings["pack"].channel_id)] == [5]


def test_a_parts_price_change_leaves_the_kit_alone(shop, queued, django_capture_on_commit_callbacks):
    _, sock, _, _, listings = shop

    with django_capture_on_commit_callbacks(execute=True):
        stock_item_price_set(stock_item_id=sock.pk, retail_price=3)

    assert waiting(listings) == {"sock"}
