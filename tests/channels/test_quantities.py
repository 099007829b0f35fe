from decimal import Decimal

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from channels.selectors import channel_quantity_compute, channel_quantity_explain, listing_quantities
from inventory.models import StockLevel
from inventory.services import stock_consume, stock_release, stock_reserve
from tests.channels.factories import AmazonChannelFactory, ChannelFactory, ChannelListingFactory
from tests.inventory.factories import (
    FbaLocationFactory,
    LocationFactory,
    StockItemFactory,
    StockItemPropertyFactory,
    StockLevelFactory,
)

pytestmark = pytest.mark.django_db


def quantities(channel, **kwargs) -> dict:
    return {row.listing_id: row for row in listing_quantities(channel_id=channel.pk, **kwargs)}


def sent(listing) -> int:
    return quantities(listing.channel)[listing.pk].quantity


@pytest.fixture
def warehouse():
    return LocationFactory(name="Main warehouse")


def listing_with_available(available: int, warehouse, channel=None, **listing_fields):
    item = StockItemFactory()
    # A negative available is an oversold item: nothing on the shelf, more than that in open orders.
    StockLevelFactory(
        stock_item=item, location=warehouse, quantity=max(available, 0), in_open_orders=max(-available, 0)
    )
    return ChannelListingFactory(channel=channel or ChannelFactory(), stock_item=item, **listing_fields)


@pytest.mark.parametrize(
    ("available", "max_listed", "percentage", "expected"),
    [(10, None, 50, 5), (20, 10, None, 10), (20, 10, 50, 5)],
    ids=["10 at 50% sends 5", "20 with max 10 sends 10", "20 with max 10 at 50% sends 5"],
)
def test_seed_examples(warehouse, available, max_listed, percentage, expected):
    channel = ChannelFactory(max_listed_quantity=max_listed, max_listed_percentage=percentage)
    listing = listing_with_available(available, warehouse, channel=channel)

    assert sent(listing) == expected


def test_without_rules_the_channel_gets_what_is_available(warehouse):
    listing = listing_with_available(7, warehouse)

    row = quantities(listing.channel)[listing.pk]

    assert (row.available, row.quantity, row.is_ended) == (7, 7, False)


def test_open_orders_are_not_available(warehouse):
    item = StockItemFactory()
    StockLevelFactory(stock_item=item, location=warehouse, quantity=10, in_open_orders=4)
    listing = ChannelListingFactory(stock_item=item)

    assert sent(listing) == 6


@pytest.mark.parametrize(("available", "expected", "ended"), [(3, 0, True), (2, 0, True), (4, 4, False)])
def test_end_when_ends_the_listing_at_or_below_the_level(warehouse, available, expected, ended):
    listing = listing_with_available(available, warehouse, channel=ChannelFactory(end_when_quantity=3))

    row = quantities(listing.channel)[listing.pk]

    assert (row.quantity, row.is_ended) == (expected, ended)


@pytest.mark.parametrize("available", [0, -2], ids=["nothing left", "oversold"])
def test_by_default_the_listing_ends_at_zero_and_an_oversold_item_sends_zero(warehouse, available):
    listing = listing_with_available(available, warehouse)

    row = quantities(listing.channel)[listing.pk]

    assert (row.available, row.quantity, row.is_ended) == (available, 0, True)


def test_max_listed_alone_caps_and_lets_less_through(warehouse):
    channel = ChannelFactory(max_listed_quantity=10)
    many = listing_with_available(25, warehouse, channel=channel)
    few = listing_with_available(4, warehouse, channel=channel)

    assert (sent(many), sent(few)) == (10, 4)


def test_percentage_alone_always_rounds_down(warehouse):
    channel = ChannelFactory(max_listed_percentage=50)
    listing = listing_with_available(7, warehouse, channel=channel)

    assert sent(listing) == 3


def test_all_rules_combined_apply_in_order(warehouse):
    # 30 available, end when 5 passes; max 12; 75% of 12 = 9.
    channel = ChannelFactory(end_when_quantity=5, max_listed_quantity=12, max_listed_percentage=75)
    listing = listing_with_available(30, warehouse, channel=channel)

    assert sent(listing) == 9


def test_end_when_wins_over_max_and_percentage(warehouse):
    channel = ChannelFactory(end_when_quantity=5, max_listed_quantity=12, max_listed_percentage=75)
    listing = listing_with_available(5, warehouse, channel=channel)

    assert quantities(channel)[listing.pk].is_ended


def test_listing_overrides_beat_channel_defaults(warehouse):
    channel = ChannelFactory(max_listed_quantity=10, max_listed_percentage=50, end_when_quantity=8)
    overridden = listing_with_available(
        20, warehouse, channel=channel, max_listed_quantity=16, max_listed_percentage=100, end_when_quantity=0
    )
    defaulted = listing_with_available(20, warehouse, channel=channel)

    assert (sent(overridden), sent(defaulted)) == (16, 5)


def test_a_zero_override_is_an_override(warehouse):
    channel = ChannelFactory(max_listed_percentage=50)
    listing = listing_with_available(20, warehouse, channel=channel, max_listed_percentage=0)

    row = quantities(channel)[listing.pk]

    assert (row.quantity, row.is_ended) == (0, False)


def test_without_location_mapping_every_warehouse_counts_and_fba_never(warehouse):
    second = LocationFactory(name="Overflow")
    fba = FbaLocationFactory(name="FBA UK")
    item = StockItemFactory()
    for location, quantity in ((warehouse, 5), (second, 3), (fba, 100)):
        StockLevelFactory(stock_item=item, location=location, quantity=quantity)
    listing = ChannelListingFactory(channel=AmazonChannelFactory(), stock_item=item)

    assert sent(listing) == 8


def test_with_location_mapping_only_ticked_warehouses_count_and_fba_never(warehouse):
    second = LocationFactory(name="Overflow")
    fba = FbaLocationFactory(name="FBA UK")
    item = StockItemFactory()
    for location, quantity in ((warehouse, 5), (second, 3), (fba, 100)):
        StockLevelFactory(stock_item=item, location=location, quantity=quantity)
    channel = AmazonChannelFactory(update_inventory_from_locations=True)
    channel.inventory_locations.set([second, fba])
    listing = ChannelListingFactory(channel=channel, stock_item=item)

    assert sent(listing) == 3


def test_location_mapping_with_nothing_ticked_sends_zero(warehouse):
    channel = ChannelFactory(update_inventory_from_locations=True)
    listing = listing_with_available(5, warehouse, channel=channel)

    assert sent(listing) == 0


def test_fulfilled_by_channel_and_unlinked_listings_get_nothing(warehouse):
    channel = AmazonChannelFactory()
    fba_listing = listing_with_available(5, warehouse, channel=channel, fulfilled_by_channel=True)
    unlinked = ChannelListingFactory(channel=channel, stock_item=None, channel_sku="UNLINKED")

    assert fba_listing.pk not in quantities(channel)
    assert unlinked.pk not in quantities(channel)


def test_an_item_with_no_stock_level_is_listed_at_zero_and_ended():
    listing = ChannelListingFactory()

    row = quantities(listing.channel)[listing.pk]

    assert (row.available, row.quantity, row.is_ended) == (0, 0, True)


@pytest.mark.parametrize(
    ("channel_days", "product_based", "property_value", "listing_days", "expected"),
    [
        (0, False, None, None, None),
        (2, False, "7", None, 2),
        (2, True, "7", None, 7),
        (2, True, "soon", None, 2),
        (2, True, "45", None, 2),
        (2, True, None, None, 2),
        (2, True, "7", 4, 4),
        (2, True, "7", 0, None),
        (2, True, "0", None, None),
    ],
    ids=[
        "default 0 is not sent", "channel default", "product property", "non-numeric property ignored",
        "property out of range ignored", "no property", "listing override", "listing override 0 not sent",
        "property 0 not sent",
    ],
)
def test_latency_sources(warehouse, channel_days, product_based, property_value, listing_days, expected):
    channel = AmazonChannelFactory(latency_days=channel_days, product_based_latency=product_based)
    listing = listing_with_available(5, warehouse, channel=channel, latency_days=listing_days)
    if property_value is not None:
        StockItemPropertyFactory(stock_item=listing.stock_item, name="Latency", value=property_value)

    assert quantities(channel)[listing.pk].latency_days == expected
    assert channel_quantity_explain(listing)[-2].value == (f"{expected} days" if expected else "not sent")


def test_latency_property_name_is_configurable(warehouse):
    channel = AmazonChannelFactory(latency_days=1, product_based_latency=True, latency_property_name="HandlingDays")
    listing = listing_with_available(5, warehouse, channel=channel)
    StockItemPropertyFactory(stock_item=listing.stock_item, name="Latency", value="9")
    StockItemPropertyFactory(stock_item=listing.stock_item, name="HandlingDays", value="3")

    assert quantities(channel)[listing.pk].latency_days == 3


def test_price_is_the_channel_price_else_the_retail_price(warehouse):
    channel = ChannelFactory()
    overridden = listing_with_available(5, warehouse, channel=channel, price_override=Decimal("12.50"))
    retail = listing_with_available(5, warehouse, channel=channel)

    rows = quantities(channel)

    assert rows[overridden.pk].price == Decimal("12.50")
    assert rows[retail.pk].price == Decimal("9.99")


def test_a_subset_by_stock_item_or_listing(warehouse):
    channel = ChannelFactory()
    first = listing_with_available(5, warehouse, channel=channel)
    second = listing_with_available(6, warehouse, channel=channel)

    assert set(quantities(channel, stock_item_ids=[first.stock_item_id])) == {first.pk}
    assert set(quantities(channel, listing_ids=[second.pk])) == {second.pk}
    assert quantities(channel, listing_ids=[]) == {}


@pytest.mark.parametrize("listings", [2, 40])
def test_query_count_does_not_grow_with_the_listings(warehouse, django_assert_max_num_queries, listings):
    channel = AmazonChannelFactory(product_based_latency=True, update_inventory_from_locations=True)
    channel.inventory_locations.set([warehouse])
    for _ in range(listings):
        listing = listing_with_available(5, warehouse, channel=channel)
        StockItemPropertyFactory(stock_item=listing.stock_item)

    # The channel, its locations, and the statement (with its savepoint and, on PostgreSQL, SET LOCAL jit).
    with django_assert_max_num_queries(6):
        rows = list(listing_quantities(channel_id=channel.pk))

    assert len(rows) == listings


def test_a_reservation_for_an_item_changes_what_other_channels_get_for_it_and_nothing_else(warehouse):
    channel_a, channel_b, channel_c = ChannelFactory(), ChannelFactory(), AmazonChannelFactory()
    x, y = StockItemFactory(), StockItemFactory()
    for item in (x, y):
        StockLevelFactory(stock_item=item, location=warehouse, quantity=10)
        for channel in (channel_a, channel_b, channel_c):
            ChannelListingFactory(channel=channel, stock_item=item)
    before = {channel.pk: quantities(channel) for channel in (channel_a, channel_b, channel_c)}

    # An order for 3 of X arrives on channel A.
    stock_reserve(lines=[(x.pk, warehouse.pk, 3)])

    for channel in (channel_a, channel_b, channel_c):
        after = quantities(channel)
        for listing_id, row in after.items():
            expected = 7 if row.stock_item_id == x.pk else before[channel.pk][listing_id].quantity
            assert row.quantity == expected


def test_release_and_consume_move_what_channels_get(warehouse):
    item = StockItemFactory()
    StockLevelFactory(stock_item=item, location=warehouse, quantity=10)
    listing = ChannelListingFactory(stock_item=item)

    stock_reserve(lines=[(item.pk, warehouse.pk, 4)])
    assert sent(listing) == 6
    stock_release(lines=[(item.pk, warehouse.pk, 1)])
    assert sent(listing) == 7
    stock_consume(lines=[(item.pk, warehouse.pk, 3)])
    assert sent(listing) == 7
    assert StockLevel.objects.values_list("quantity", "in_open_orders").get() == (7, 0)


@pytest.mark.parametrize(
    ("channel_fields", "listing_fields", "available"),
    [
        ({}, {}, 7),
        ({"max_listed_quantity": 10, "max_listed_percentage": 50}, {}, 20),
        ({"end_when_quantity": 5}, {}, 5),
        ({"end_when_quantity": 5}, {"end_when_quantity": 1, "max_listed_percentage": 30}, 9),
        ({}, {}, -3),
    ],
)
def test_explain_ends_on_the_number_the_selector_computes(warehouse, channel_fields, listing_fields, available):
    listing = listing_with_available(available, warehouse, channel=ChannelFactory(**channel_fields), **listing_fields)

    steps = {step.label: step for step in channel_quantity_explain(listing)}

    assert steps["Result"].value == str(sent(listing))
    assert steps["Available"].value == str(available)


def test_explain_says_which_locations_count(warehouse):
    fba = FbaLocationFactory(name="FBA UK")
    item = StockItemFactory()
    StockLevelFactory(stock_item=item, location=warehouse, quantity=5, in_open_orders=1)
    StockLevelFactory(stock_item=item, location=fba, quantity=50)
    listing = ChannelListingFactory(channel=AmazonChannelFactory(max_listed_quantity=3), stock_item=item)

    steps = {step.label: step for step in channel_quantity_explain(listing)}

    assert steps["Stock at Main warehouse"].note == "counted; 1 in open orders"
    assert "not counted" in steps["Stock at FBA UK"].note
    assert steps["In open orders"].value == "1"
    assert steps["Max listed"].note == "channel default; min(4, 3) = 3"
    assert steps["Result"].value == "3"


@given(
    available=st.integers(-20, 200),
    end_when=st.one_of(st.none(), st.integers(0, 50)),
    # 0 is refused (channels 0015): empty is "no maximum".
    max_listed=st.one_of(st.none(), st.integers(1, 100)),
    percentage=st.one_of(st.none(), st.integers(0, 100)),
)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_computed_quantity_never_exceeds_available_or_max_and_is_never_negative(
    warehouse, available, end_when, max_listed, percentage
):
    with transaction.atomic():
        channel = ChannelFactory(end_when_quantity=end_when or 0)
        listing = listing_with_available(
            available, warehouse, channel=channel, max_listed_quantity=max_listed, max_listed_percentage=percentage,
            end_when_quantity=end_when,
        )
        row = quantities(channel)[listing.pk]
        transaction.set_rollback(True)

    assert 0 <= row.quantity <= max(available, 0)
    if max_listed is not None:
        assert row.quantity <= max_listed
    assert (row.quantity, row.is_ended) == channel_quantity_compute(
        available=available, end_when=end_when or 0, max_listed=max_listed, percentage=percentage
    )
