"""What each channel gets for a kit: the fewest whole kits its components make, then the listing rules."""

import pytest

from channels.selectors import channel_quantity_explain, listing_quantities
from inventory.services import kit_components_set, stock_reserve
from tests.channels.factories import AmazonChannelFactory, ChannelFactory, ChannelListingFactory
from tests.inventory.factories import FbaLocationFactory, LocationFactory, StockItemFactory, StockLevelFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(params=["whole channel", "some listings"])
def sent(request):
    """What the listing's channel is sent, computed for the whole channel at once (a full push, a rule change)
    and for the listing alone (after an order): the two forms of the statement must agree."""

    def quantity_of(listing):
        if request.param == "whole channel":
            rows = listing_quantities(channel_id=listing.channel_id)
        else:
            rows = listing_quantities(channel_id=listing.channel_id, stock_item_ids=[listing.stock_item_id])
        return {row.listing_id: (row.available, row.quantity) for row in rows}[listing.pk]

    return quantity_of


@pytest.fixture
def warehouse():
    return LocationFactory(name="Main warehouse")


def kit_of(*parts, sku="KIT"):
    kit = StockItemFactory(sku=sku)
    kit_components_set(kit_id=kit.pk, components=[(item.pk, quantity) for item, quantity in parts])
    return kit


def stocked(warehouse, quantity, sku=None, in_open_orders=0):
    item = StockItemFactory(**({"sku": sku} if sku else {}))
    StockLevelFactory(stock_item=item, location=warehouse, quantity=quantity, in_open_orders=in_open_orders)
    return item


def test_a_three_pack_with_ten_singles_available_sends_three(warehouse, sent):
    single = stocked(warehouse, 10, sku="SOCK")
    listing = ChannelListingFactory(stock_item=kit_of((single, 3), sku="SOCK-3PK"))

    assert sent(listing) == (3, 3)


def test_a_gift_set_is_limited_by_its_scarcest_part(warehouse, sent):
    mug, coaster, ribbon = stocked(warehouse, 40), stocked(warehouse, 30, in_open_orders=8), stocked(warehouse, 9)
    listing = ChannelListingFactory(stock_item=kit_of((mug, 1), (coaster, 2), (ribbon, 1)))

    # Coasters: 30 on the shelf, 8 held by open orders, 2 per set: 11 sets; ribbons make 9.
    assert sent(listing) == (9, 9)


def test_a_part_missing_from_a_warehouse_makes_no_kit_there(warehouse, sent):
    mug = stocked(warehouse, 5)
    lid = StockItemFactory()
    listing = ChannelListingFactory(stock_item=kit_of((mug, 1), (lid, 1)))

    assert sent(listing) == (0, 0)


def test_kits_made_at_each_warehouse_are_added_not_pooled(warehouse, sent):
    second = LocationFactory(name="Second warehouse")
    mug, coaster = stocked(warehouse, 3), stocked(warehouse, 0)
    StockLevelFactory(stock_item=mug, location=second, quantity=0)
    StockLevelFactory(stock_item=coaster, location=second, quantity=3)
    listing = ChannelListingFactory(stock_item=kit_of((mug, 1), (coaster, 1)))

    # Three mugs here and three coasters there make no set anywhere: nobody packs across warehouses.
    assert sent(listing) == (0, 0)


def test_only_the_channels_ticked_locations_make_kits(warehouse, sent):
    second = LocationFactory(name="Second warehouse")
    mug = stocked(warehouse, 4)
    StockLevelFactory(stock_item=mug, location=second, quantity=6)
    channel = ChannelFactory(update_inventory_from_locations=True)
    channel.inventory_locations.set([second])
    listing = ChannelListingFactory(channel=channel, stock_item=kit_of((mug, 2)))

    assert sent(listing) == (3, 3)


def test_fba_stock_of_the_parts_never_makes_kits_for_a_merchant_listing(warehouse, sent):
    fba = FbaLocationFactory()
    mug = stocked(warehouse, 2)
    StockLevelFactory(stock_item=mug, location=fba, quantity=50)
    listing = ChannelListingFactory(channel=AmazonChannelFactory(), stock_item=kit_of((mug, 1)))

    assert sent(listing) == (2, 2)


def test_open_orders_for_the_kit_are_not_available_again(warehouse, sent):
    mug = stocked(warehouse, 10)
    kit = kit_of((mug, 2))
    stock_reserve(lines=[(kit.pk, warehouse.pk, 2)])
    listing = ChannelListingFactory(stock_item=kit)

    # 10 mugs, 4 held by the two kits sold: 3 more kits, not 5 - 2 counted twice.
    assert sent(listing) == (3, 3)


def test_an_oversold_part_makes_the_kit_oversold_too(warehouse, sent):
    mug = stocked(warehouse, 0, in_open_orders=1)
    listing = ChannelListingFactory(stock_item=kit_of((mug, 3)))

    assert sent(listing) == (-1, 0)


@pytest.mark.parametrize(
    ("rules", "expected"),
    [({"end_when_quantity": 4}, 0), ({"max_listed_quantity": 2}, 2), ({"max_listed_percentage": 50}, 2)],
    ids=["4 kits at end when 4 ends it", "max listed 2 sends 2", "4 kits at 50% sends 2"],
)
def test_end_when_max_listed_and_percentage_apply_to_a_kit_as_to_any_listing(warehouse, sent, rules, expected):
    single = stocked(warehouse, 12)
    listing = ChannelListingFactory(channel=ChannelFactory(**rules), stock_item=kit_of((single, 3)))

    assert sent(listing)[1] == expected


def test_a_listing_override_beats_the_channel_default_for_a_kit(warehouse, sent):
    single = stocked(warehouse, 10)
    listing = ChannelListingFactory(
        channel=ChannelFactory(max_listed_quantity=1), stock_item=kit_of((single, 2)), max_listed_quantity=4
    )

    assert sent(listing) == (5, 4)


def test_the_stock_item_page_explains_a_kit_by_its_limiting_part(warehouse):
    mug, coaster = stocked(warehouse, 40, sku="MUG"), stocked(warehouse, 9, sku="COASTER")
    listing = ChannelListingFactory(
        channel=ChannelFactory(max_listed_quantity=3), stock_item=kit_of((mug, 1), (coaster, 2))
    )

    steps = {step.label: (step.value, step.note) for step in channel_quantity_explain(listing)}

    assert steps["Kits at Main warehouse"] == (
        "4", "limited by COASTER: 9 available / 2 per kit; MUG makes 40"
    )
    assert steps["Available"][0] == "4"
    assert steps["Result"] == ("3", "sent to the channel")
