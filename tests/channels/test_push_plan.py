import itertools
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from channels.dashboard import listings_waiting_count
from channels.models import ChannelListing, ChannelPushMark, ListingPushMark
from channels.selectors import listings_push_plan, listings_waiting_for_push
from channels.services import (
    channel_listings_mark_all,
    listings_mark_for_push,
    listings_pending_settle,
    listings_push_claim,
    listings_record_pushed,
    listings_record_rejected,
)
from inventory.models import StockLevel
from inventory.services import stock_reserve
from tests.channels.factories import (
    AmazonChannelFactory,
    ChannelFactory,
    ChannelListingFactory,
    last_push,
    waiting_for_push,
)
from tests.inventory.factories import LocationFactory, StockItemFactory, StockLevelFactory

pytestmark = pytest.mark.django_db

AT = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
RUN_IDS = itertools.count(1)


@pytest.fixture
def warehouse():
    return LocationFactory(name="Main warehouse")


def linked(channel, warehouse, quantity=10, **fields) -> ChannelListing:
    item = StockItemFactory()
    StockLevelFactory(stock_item=item, location=warehouse, quantity=quantity)
    return ChannelListingFactory(channel=channel, stock_item=item, **fields)


def push_everything(channel) -> None:
    """As a push run does: claim the marks, plan, record what the channel accepted, settle."""
    run_id = next(RUN_IDS)
    listings_push_claim(channel_id=channel.pk, run_id=run_id)
    listings_record_pushed(pushes=listings_push_plan(channel_id=channel.pk), at=AT)
    listings_pending_settle(channel_id=channel.pk, run_id=run_id)


def plan_ids(channel, **kwargs) -> set[int]:
    return {push.listing_id for push in listings_push_plan(channel_id=channel.pk, **kwargs)}


def test_never_pushed_listings_are_planned_with_what_to_send(warehouse):
    channel = AmazonChannelFactory(latency_days=2)
    listing = linked(channel, warehouse, quantity=7)

    [push] = listings_push_plan(channel_id=channel.pk)

    assert (push.listing_id, push.channel_sku, push.quantity, push.is_ended, push.latency_days, push.price) == (
        listing.pk, listing.channel_sku, 7, False, 2, None
    )


def test_recording_a_push_remembers_it_and_then_nothing_is_planned(warehouse):
    channel = ChannelFactory()
    listing = linked(channel, warehouse, quantity=7)

    push_everything(channel)

    pushed = last_push(listing)
    assert (pushed.last_pushed_quantity, pushed.last_pushed_at, waiting_for_push(listing), pushed.is_ended) == (
        7, AT, False, False
    )
    assert listings_push_plan(channel_id=channel.pk) == []


def test_a_marked_listing_whose_values_did_not_change_is_not_planned(warehouse):
    channel = ChannelFactory()
    listing = linked(channel, warehouse)
    push_everything(channel)

    listings_mark_for_push(stock_item_ids=[listing.stock_item_id])

    listings_push_claim(channel_id=channel.pk, run_id=99)
    assert listings_push_plan(channel_id=channel.pk) == []
    assert listings_pending_settle(channel_id=channel.pk, run_id=99) == 0
    assert not ListingPushMark.objects.exists()


def test_a_reservation_plans_exactly_that_items_listings(warehouse):
    channel_a, channel_b = ChannelFactory(), ChannelFactory()
    x, y = linked(channel_a, warehouse), linked(channel_a, warehouse)
    x_on_b = ChannelListingFactory(channel=channel_b, stock_item=x.stock_item)
    for channel in (channel_a, channel_b):
        push_everything(channel)

    stock_reserve(lines=[(x.stock_item_id, warehouse.pk, 2)])
    channel_ids = listings_mark_for_push(stock_item_ids=[x.stock_item_id])

    assert channel_ids == {channel_a.pk, channel_b.pk}
    assert [(p.listing_id, p.quantity) for p in listings_push_plan(channel_id=channel_a.pk)] == [(x.pk, 8)]
    assert [(p.listing_id, p.quantity) for p in listings_push_plan(channel_id=channel_b.pk)] == [(x_on_b.pk, 8)]
    assert y.pk not in plan_ids(channel_a)


def test_a_change_made_on_the_channel_is_overwritten_only_at_the_next_change_or_a_full_resync(warehouse):
    channel = ChannelFactory()
    listing = linked(channel, warehouse, quantity=5)
    push_everything(channel)
    # Staff edit the quantity on the marketplace to 10: the hub does not know, and sends nothing.
    ChannelListing.objects.filter(pk=listing.pk).update(channel_quantity=10)

    assert plan_ids(channel) == set()
    assert plan_ids(channel, full=True) == {listing.pk}


def test_full_resync_plans_every_linked_merchant_listing_but_never_fba_or_unlinked(warehouse):
    channel = AmazonChannelFactory()
    merchant = linked(channel, warehouse)
    linked(channel, warehouse, fulfilled_by_channel=True)
    ChannelListingFactory(channel=channel, stock_item=None, channel_sku="UNLINKED")
    push_everything(channel)

    assert plan_ids(channel, full=True) == {merchant.pk}


def test_price_is_planned_only_when_the_channel_sends_prices(warehouse):
    quiet, priced = ChannelFactory(price_change=False), ChannelFactory(price_change=True)
    item = StockItemFactory(retail_price=Decimal("5.00"))
    StockLevelFactory(stock_item=item, location=warehouse, quantity=3)
    on_quiet = ChannelListingFactory(channel=quiet, stock_item=item)
    on_priced = ChannelListingFactory(channel=priced, stock_item=item)
    for channel in (quiet, priced):
        push_everything(channel)

    item.retail_price = Decimal("6.00")
    item.save()
    listings_mark_for_push(stock_item_ids=[item.pk], price_changed=True)

    assert plan_ids(quiet) == set()
    [push] = listings_push_plan(channel_id=priced.pk)
    assert (push.listing_id, push.price) == (on_priced.pk, Decimal("6.00"))
    assert last_push(on_quiet).last_pushed_price is None


def test_a_latency_change_is_planned(warehouse):
    channel = AmazonChannelFactory(latency_days=2)
    listing = linked(channel, warehouse)
    push_everything(channel)

    channel.latency_days = 4
    channel.save()
    channel_listings_mark_all(channel_id=channel.pk)

    [push] = listings_push_plan(channel_id=channel.pk)
    assert (push.listing_id, push.latency_days) == (listing.pk, 4)


def test_ending_is_planned_even_when_the_quantity_was_already_zero(warehouse):
    channel = ChannelFactory(max_listed_percentage=10)
    listing = linked(channel, warehouse, quantity=5)  # 10% of 5 is 0, but the listing is not ended
    push_everything(channel)

    StockLevel.objects.filter(stock_item=listing.stock_item).update(quantity=0)
    listings_mark_for_push(stock_item_ids=[listing.stock_item_id])

    [push] = listings_push_plan(channel_id=channel.pk)
    assert (push.quantity, push.is_ended) == (0, True)


def test_a_change_during_the_push_keeps_the_listing_marked(warehouse):
    channel = ChannelFactory()
    listing = linked(channel, warehouse, quantity=5)
    listings_push_claim(channel_id=channel.pk, run_id=1)
    plan = listings_push_plan(channel_id=channel.pk)

    # An order arrives while the plan is being sent: the hub now has 4, the channel was sent 5.
    stock_reserve(lines=[(listing.stock_item_id, warehouse.pk, 1)])
    listings_mark_for_push(stock_item_ids=[listing.stock_item_id])
    listings_record_pushed(pushes=plan, at=AT)
    listings_pending_settle(channel_id=channel.pk, run_id=1)

    assert (last_push(listing).last_pushed_quantity, waiting_for_push(listing)) == (5, True)
    assert [(p.listing_id, p.quantity) for p in listings_push_plan(channel_id=channel.pk)] == [(listing.pk, 4)]


def test_a_push_removes_only_the_marks_it_claimed(warehouse):
    channel = ChannelFactory()
    claimed, later = linked(channel, warehouse), linked(channel, warehouse, push_pending=False)
    listings_push_claim(channel_id=channel.pk, run_id=1)
    listings_mark_for_push(stock_item_ids=[later.stock_item_id])  # marked after the claim

    assert listings_pending_settle(channel_id=channel.pk, run_id=1) == 1
    assert (waiting_for_push(claimed), waiting_for_push(later)) == (False, True)


def test_a_rejected_listing_stays_marked_with_the_reason_until_accepted(warehouse):
    channel = ChannelFactory()
    listing = linked(channel, warehouse)
    listings_push_claim(channel_id=channel.pk, run_id=1)

    listings_record_rejected(rejected=[(listing.pk, "SKU not found on the channel")])
    listings_pending_settle(channel_id=channel.pk, run_id=1)

    assert (waiting_for_push(listing), last_push(listing).push_error) == (True, "SKU not found on the channel")
    assert last_push(listing).last_pushed_at is None, "a refusal is not a push"
    push_everything(channel)
    assert (waiting_for_push(listing), last_push(listing).push_error) == (False, "")


def test_recording_skips_a_listing_deleted_since_the_plan(warehouse):
    channel = ChannelFactory()
    kept, deleted = linked(channel, warehouse), linked(channel, warehouse)
    plan = listings_push_plan(channel_id=channel.pk)
    deleted.delete()

    listings_record_pushed(pushes=plan, at=AT)

    assert last_push(kept).last_pushed_at == AT


def test_mark_for_push_returns_only_channels_that_sync_inventory(warehouse):
    syncing, off, disabled = ChannelFactory(), ChannelFactory(inventory_sync=False), ChannelFactory(enabled=False)
    item = StockItemFactory()
    for channel in (syncing, off, disabled):
        ChannelListingFactory(channel=channel, stock_item=item)

    ListingPushMark.objects.all().delete()
    assert listings_mark_for_push(stock_item_ids=[item.pk]) == {syncing.pk}
    assert ListingPushMark.objects.count() == 3


def test_mark_all_marks_only_linked_merchant_listings(warehouse):
    channel = AmazonChannelFactory()
    merchant = linked(channel, warehouse)
    linked(channel, warehouse, fulfilled_by_channel=True)
    ChannelListingFactory(channel=channel, stock_item=None, channel_sku="UNLINKED")
    ListingPushMark.objects.all().delete()

    channel_listings_mark_all(channel_id=channel.pk)

    waiting = listings_waiting_for_push(ChannelListing.objects.filter(channel=channel))
    assert list(waiting.values_list("pk", flat=True)) == [merchant.pk]
    assert listings_waiting_count(channel_ids=[channel.pk]) == {channel.pk: 1}


def test_a_rule_change_is_one_mark_for_the_channel_settled_by_the_push_that_claimed_it(warehouse):
    channel = ChannelFactory()
    listing = linked(channel, warehouse, quantity=4)
    push_everything(channel)
    channel.max_listed_quantity = 2
    channel.save()

    channel_listings_mark_all(channel_id=channel.pk)
    assert ChannelPushMark.objects.count() == 1 and not ListingPushMark.objects.exists()
    listings_push_claim(channel_id=channel.pk, run_id=7)
    channel_listings_mark_all(channel_id=channel.pk)  # changed again while the push runs
    assert [(push.listing_id, push.quantity) for push in listings_push_plan(channel_id=channel.pk)] == [
        (listing.pk, 2)
    ]
    assert listings_pending_settle(channel_id=channel.pk, run_id=7) == 1, "the second change still waits"

    push_everything(channel)
    assert not ChannelPushMark.objects.exists() and not waiting_for_push(listing)


@pytest.mark.parametrize("listings", [3, 30])
def test_planning_takes_a_fixed_number_of_queries(warehouse, django_assert_max_num_queries, listings):
    channel = AmazonChannelFactory(price_change=True, product_based_latency=True)
    for _ in range(listings):
        linked(channel, warehouse)

    # The rules, whether the whole channel or most of it is marked, the statement (in a transaction).
    with django_assert_max_num_queries(7):
        plan = listings_push_plan(channel_id=channel.pk)
    # Recording and settling recompute nothing: an update and an insert (in a savepoint), then two deletes
    # and the counts of what still waits, whatever the number of listings.
    with django_assert_max_num_queries(4):
        listings_record_pushed(pushes=plan, at=AT)
    with django_assert_max_num_queries(4):
        listings_pending_settle(channel_id=channel.pk, run_id=1)

    assert len(plan) == listings


def test_a_plan_over_most_of_the_channel_sends_what_the_per_listing_plan_sends(warehouse, monkeypatch):
    channel = AmazonChannelFactory(max_listed_quantity=6, end_when_quantity=1, latency_days=2)
    listings = [linked(channel, warehouse, quantity=quantity) for quantity in (0, 1, 4, 9, 30)]
    # Not marked and unchanged since its push: neither plan sends it.
    ChannelListingFactory(channel=channel, stock_item=listings[0].stock_item, channel_sku="OTHER", push_pending=False,
                          last_pushed_quantity=0, is_ended=True, last_pushed_latency=2, last_pushed_at=AT)
    per_listing = sorted(listings_push_plan(channel_id=channel.pk), key=lambda push: push.listing_id)

    monkeypatch.setattr("channels.selectors.FEW_MARKS", 1)
    grouped = sorted(listings_push_plan(channel_id=channel.pk), key=lambda push: push.listing_id)

    assert grouped == per_listing
    assert [push.quantity for push in grouped] == [0, 0, 4, 6, 6]


def test_a_plan_of_the_whole_channel_reads_that_channels_own_push_states(warehouse):
    amazon, ekm = AmazonChannelFactory(), ChannelFactory()
    item = StockItemFactory()
    StockLevelFactory(stock_item=item, location=warehouse, quantity=4)
    ChannelListingFactory(channel=amazon, stock_item=item)
    on_ekm = ChannelListingFactory(channel=ekm, stock_item=item)
    push_everything(amazon)

    channel_listings_mark_all(channel_id=amazon.pk)
    channel_listings_mark_all(channel_id=ekm.pk)
    assert plan_ids(amazon) == set(), "pushed and unchanged"
    assert plan_ids(ekm) == {on_ekm.pk}, "the same item's push on Amazon is not EKM's"

    push_everything(ekm)
    channel_listings_mark_all(channel_id=ekm.pk)
    assert plan_ids(ekm) == set(), "EKM's own push is remembered"
    ekm.max_listed_quantity = 3
    ekm.save()
    channel_listings_mark_all(channel_id=amazon.pk)
    assert plan_ids(amazon) == set()
    assert [(push.listing_id, push.quantity) for push in listings_push_plan(channel_id=ekm.pk)] == [(on_ekm.pk, 3)]
