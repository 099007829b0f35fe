"""What reaches a channel after an edit: the listings marked for a push, one push queued once the edit commits.

Stock changes arrive as inventory's on-commit announcement; channel and listing edits go through the
channel services, whichever screen, command or task makes them.
"""

import functools
import weakref

import pytest
from django.db import connection
from django.db.models.signals import m2m_changed, post_delete, post_save, pre_delete, pre_save
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from channels.connectors.base import ExternalListing
from channels.models import Channel, ChannelListing, ListingPushMark
from channels.services import (
    channel_location_mapping_save,
    channel_settings_update,
    listing_create,
    listing_overrides_update,
    listings_link_by_sku,
)
from channels.sync.listings_download import listings_store_page
from inventory.services import stock_item_price_set, stock_level_adjust, stock_reserve
from tests.channels.factories import ChannelFactory, ChannelListingFactory, waiting_for_push
from tests.inventory.factories import LocationFactory, StockItemFactory

pytestmark = pytest.mark.django_db

@pytest.fixture
def queued(monkeypatch):
    """The channel of every inventory push queued with Celery, in order."""
    pushes = []
    monkeypatch.setattr("channels.tasks.inventory_push_task.apply_async", lambda args, **kw: pushes.append(args[0]))
    return pushes


def settled(*listings) -> None:
    ListingPushMark.objects.filter(listing_id__in=[listing.pk for listing in listings]).delete()


def pending(listing) -> bool:
    return waiting_for_push(listing)


def fresh(listing) -> ChannelListing:
    return ChannelListing.objects.get(pk=listing.pk)


# --- Stock changes (inventory's announcement) ---------------------------------------------------


def test_a_stock_change_marks_the_items_listings_and_queues_syncing_channels(
    queued, django_capture_on_commit_callbacks
):
    location = LocationFactory()
    item, other = StockItemFactory(), StockItemFactory()
    syncing, not_syncing = ChannelFactory(), ChannelFactory(inventory_sync=False)
    on_syncing = ChannelListingFactory(channel=syncing, stock_item=item)
    on_not_syncing = ChannelListingFactory(channel=not_syncing, stock_item=item)
    untouched = ChannelListingFactory(channel=syncing, stock_item=other)
    settled(on_syncing, on_not_syncing, untouched)

    with django_capture_on_commit_callbacks(execute=True):
        stock_level_adjust(stock_item_id=item.pk, location_id=location.pk, delta=3, reason="adjustment")

    assert (pending(on_syncing), pending(on_not_syncing), pending(untouched)) == (True, True, False)
    assert queued == [syncing.pk]


def test_a_reservation_reaches_every_channel_listing_the_item(queued, django_capture_on_commit_callbacks):
    location = LocationFactory()
    item = StockItemFactory()
    channels = [ChannelFactory() for _ in range(3)]
    listings = [ChannelListingFactory(channel=channel, stock_item=item) for channel in channels]
    settled(*listings)

    with django_capture_on_commit_callbacks(execute=True):
        stock_reserve(lines=[(item.pk, location.pk, 1)])

    assert all(pending(listing) for listing in listings)
    assert sorted(queued) == sorted(channel.pk for channel in channels)


def test_a_price_change_marks_the_listings(queued, django_capture_on_commit_callbacks):
    listing = ChannelListingFactory(channel=ChannelFactory(price_change=True))
    settled(listing)

    with django_capture_on_commit_callbacks(execute=True):
        stock_item_price_set(stock_item_id=listing.stock_item_id, retail_price=listing.stock_item.retail_price + 1)

    assert pending(listing)
    assert queued == [listing.channel_id]


# --- Listing edits -------------------------------------------------------------------------------


def test_editing_a_listing_override_marks_it_and_queues_one_push_on_commit(queued, django_capture_on_commit_callbacks):
    listing = ChannelListingFactory()
    settled(listing)
    edited = fresh(listing)

    with django_capture_on_commit_callbacks(execute=True):
        edited.max_listed_quantity = 4
        listing_overrides_update(listing=edited, changed_fields=["max_listed_quantity"])
        assert queued == []  # nothing is queued before the edit commits

    assert pending(listing)
    assert fresh(listing).max_listed_quantity == 4
    assert queued == [listing.channel_id]


def test_editing_a_listings_title_marks_nothing(queued, django_capture_on_commit_callbacks):
    listing = ChannelListingFactory()
    settled(listing)
    edited = fresh(listing)

    with django_capture_on_commit_callbacks(execute=True):
        edited.title = "A new title"
        listing_overrides_update(listing=edited, changed_fields=["title"])

    assert fresh(listing).title == "A new title"
    assert not pending(listing)
    assert queued == []


def test_linking_a_listing_marks_it_but_an_amazon_fulfilled_one_stays_unmarked(
    queued, django_capture_on_commit_callbacks
):
    channel = ChannelFactory()
    merchant = ChannelListingFactory(channel=channel, stock_item=None, channel_sku="MUG")
    by_amazon = ChannelListingFactory(
        channel=channel, stock_item=None, channel_sku="MUG-FBA", fulfilled_by_channel=True
    )
    item = StockItemFactory()

    with django_capture_on_commit_callbacks(execute=True):
        for listing in (fresh(merchant), fresh(by_amazon)):
            listing.stock_item = item
            listing_overrides_update(listing=listing, changed_fields=["stock_item"])

    assert fresh(merchant).stock_item == item and fresh(by_amazon).stock_item == item
    assert (pending(merchant), pending(by_amazon)) == (True, False)
    assert queued == [channel.pk]


def test_an_edited_listing_on_a_channel_without_inventory_sync_is_marked_but_nothing_is_sent(
    queued, django_capture_on_commit_callbacks
):
    listing = ChannelListingFactory(channel=ChannelFactory(inventory_sync=False))
    settled(listing)
    edited = fresh(listing)

    with django_capture_on_commit_callbacks(execute=True):
        edited.end_when_quantity = 2
        listing_overrides_update(listing=edited, changed_fields=["end_when_quantity"])

    assert pending(listing)
    assert queued == []


def test_a_listing_added_by_hand_and_linked_is_marked_and_queued(queued, django_capture_on_commit_callbacks):
    channel = ChannelFactory()

    with django_capture_on_commit_callbacks(execute=True):
        listing = listing_create(
            listing=ChannelListing(channel=channel, channel_sku="MUG", stock_item=StockItemFactory())
        )

    assert pending(listing)
    assert queued == [channel.pk]


# --- Channel edits -------------------------------------------------------------------------------


def test_changing_a_channel_rule_marks_all_its_listings_and_queues_one_push_on_commit(
    queued, django_capture_on_commit_callbacks
):
    channel = ChannelFactory()
    listings = [ChannelListingFactory(channel=channel) for _ in range(2)]
    other = ChannelListingFactory()
    settled(*listings, other)

    with django_capture_on_commit_callbacks(execute=True):
        channel.max_listed_percentage = 50
        channel_settings_update(channel=channel, changed_fields=["max_listed_percentage"])
        assert queued == []

    assert all(pending(listing) for listing in listings) and not pending(other)
    assert Channel.objects.get(pk=channel.pk).max_listed_percentage == 50
    assert queued == [channel.pk]


def test_switching_inventory_sync_back_on_queues_a_push_for_what_waited(queued, django_capture_on_commit_callbacks):
    channel = ChannelFactory(inventory_sync=False)
    waiting = ChannelListingFactory(channel=channel, push_pending=True)

    with django_capture_on_commit_callbacks(execute=True):
        channel.inventory_sync = True
        channel_settings_update(channel=channel, changed_fields=["inventory_sync"])

    assert pending(waiting)
    assert queued == [channel.pk]


def test_switching_a_channel_off_queues_nothing(queued, django_capture_on_commit_callbacks):
    channel = ChannelFactory()
    listing = ChannelListingFactory(channel=channel)
    settled(listing)

    with django_capture_on_commit_callbacks(execute=True):
        channel.enabled = False
        channel_settings_update(channel=channel, changed_fields=["enabled"])

    assert not pending(listing)
    assert queued == []


def test_a_channel_edit_that_changes_nothing_it_is_sent_marks_nothing_and_reads_nothing(
    queued, django_capture_on_commit_callbacks
):
    channel = ChannelFactory()
    listing = ChannelListingFactory(channel=channel)
    settled(listing)
    channel = Channel.objects.get(pk=channel.pk)

    with django_capture_on_commit_callbacks(execute=True), CaptureQueriesContext(connection) as queries:
        channel.default_email = "orders@example.com"
        channel_settings_update(channel=channel, changed_fields=["default_email"])

    assert Channel.objects.get(pk=channel.pk).default_email == "orders@example.com"
    assert not pending(listing)
    assert queued == []
    # No look at the row before it is written, and no listing or periodic task query (the history's own
    # reads follow the write).
    sqls = [query["sql"] for query in queries.captured_queries]
    write = next(n for n, sql in enumerate(sqls) if sql.startswith('UPDATE "channels_channel"'))
    assert [sql for sql in sqls[:write] if sql.startswith("SELECT")] == []
    assert [sql for sql in sqls if "channels_channellisting" in sql or "django_celery_beat" in sql] == []


# --- Location mapping ----------------------------------------------------------------------------


def test_new_location_ticks_mark_the_channels_listings_and_the_same_ticks_mark_none(
    queued, django_capture_on_commit_callbacks
):
    main, overflow = LocationFactory(), LocationFactory()
    channel = ChannelFactory()
    listing = ChannelListingFactory(channel=channel)
    channel_location_mapping_save(channel_id=channel.pk, from_locations=True, location_ids=[main.pk])
    settled(listing)

    with django_capture_on_commit_callbacks(execute=True):
        channel_location_mapping_save(channel_id=channel.pk, from_locations=True, location_ids=[main.pk])
    assert (pending(listing), queued) == (False, [])

    with django_capture_on_commit_callbacks(execute=True):
        channel_location_mapping_save(channel_id=channel.pk, from_locations=True, location_ids=[main.pk, overflow.pk])
    assert (pending(listing), queued) == (True, [channel.pk])


def test_turning_the_location_mapping_off_marks_the_listings(queued, django_capture_on_commit_callbacks):
    main = LocationFactory()
    channel = ChannelFactory()
    listing = ChannelListingFactory(channel=channel)
    channel_location_mapping_save(channel_id=channel.pk, from_locations=True, location_ids=[main.pk])
    settled(listing)

    with django_capture_on_commit_callbacks(execute=True):
        channel_location_mapping_save(channel_id=channel.pk, from_locations=False, location_ids=[])

    assert pending(listing)
    assert queued == [channel.pk]
    assert list(Channel.objects.get(pk=channel.pk).inventory_locations.all()) == [main]  # kept for next time


# --- Linking in bulk -----------------------------------------------------------------------------


def test_linking_by_sku_queues_only_the_channel_of_the_linked_listing(queued, django_capture_on_commit_callbacks):
    item = StockItemFactory(sku="MUG")
    shop, marketplace = ChannelFactory(), ChannelFactory()
    unlinked = ChannelListingFactory(channel=shop, stock_item=None, channel_sku="MUG")
    elsewhere = ChannelListingFactory(channel=marketplace, stock_item=item)
    settled(elsewhere)

    with django_capture_on_commit_callbacks(execute=True):
        assert listings_link_by_sku(listing_ids=[unlinked.pk]) == 1

    assert fresh(unlinked).stock_item == item and pending(unlinked)
    # The other channel's listing of the same item gets the same number as before: nothing to send there.
    assert not pending(elsewhere)
    assert queued == [shop.pk]


def test_a_listing_download_links_a_known_sku_and_queues_its_push(queued, django_capture_on_commit_callbacks):
    item = StockItemFactory(sku="MUG")
    StockItemFactory(sku="TEAPOT")
    channel = ChannelFactory()
    # Pushed once, then unlinked by staff: the download links it again and it must be sent again.
    ChannelListingFactory(channel=channel, stock_item=None, channel_sku="MUG", last_pushed_quantity=0,
                          last_pushed_at=timezone.now())
    page = (
        ExternalListing(channel_sku="MUG", external_id="1", title="Mug", quantity=0),
        ExternalListing(channel_sku="TEAPOT", external_id="2", title="Teapot", quantity=5, fulfilled_by_channel=True),
        ExternalListing(channel_sku="UNKNOWN", external_id="3", title="Unknown", quantity=1),
    )

    with django_capture_on_commit_callbacks(execute=True):
        listings_store_page(channel_id=channel.pk, listings=page)

    by_sku = {listing.channel_sku: listing for listing in ChannelListing.objects.filter(channel=channel)}
    assert by_sku["MUG"].stock_item == item and pending(by_sku["MUG"])
    assert by_sku["TEAPOT"].stock_item is not None and not pending(by_sku["TEAPOT"])  # Amazon's stock
    assert by_sku["UNKNOWN"].stock_item is None and not pending(by_sku["UNKNOWN"])
    assert queued == [channel.pk]


# --- No domain logic in model signals --------------------------------------------------------------


def test_no_model_signal_of_ours_reacts_to_channel_or_listing_saves():
    """Channel and listing edits reach the push and the schedule only through the services above."""
    from django.dispatch.dispatcher import _make_id

    watched = {_make_id(model) for model in (Channel, ChannelListing, Channel.inventory_locations.through)}
    watched.add(_make_id(None))  # a receiver for every sender hears these models too
    ours = []
    for signal, name in ((pre_save, "pre_save"), (post_save, "post_save"), (pre_delete, "pre_delete"),
                         (post_delete, "post_delete"), (m2m_changed, "m2m_changed")):
        for (_key, sender_id), reference, _is_async in signal.receivers:
            function = reference() if isinstance(reference, weakref.ReferenceType) else reference
            while isinstance(function, functools.partial):
                function = function.func
            function = getattr(function, "__func__", function)
            module = getattr(function, "__module__", "") or ""
            if sender_id not in watched:
                continue
            # django-simple-history's receivers write the audit trail, Django's its own bookkeeping.
            if module.split(".")[0] in ("simple_history", "django", "django_celery_beat"):
                continue
            ours.append(f"{name}: {module}.{getattr(function, '__qualname__', function)}")

    assert ours == []


def test_a_rule_change_marks_the_listings_after_the_save_commits_not_during_it(
    queued, django_capture_on_commit_callbacks
):
    channel = ChannelFactory()
    listing = ChannelListingFactory(channel=channel)
    settled(listing)

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        channel.max_listed_quantity = 4
        channel_settings_update(channel=channel, changed_fields=["max_listed_quantity"])
    assert not pending(listing), "marked inside the request"

    with django_capture_on_commit_callbacks(execute=True):
        for callback in callbacks:
            callback()

    assert pending(listing)
    assert queued == [channel.pk]


def test_the_order_webhooks_follow_a_channel_switched_on_when_the_hub_has_a_public_url(
    settings, monkeypatch, django_capture_on_commit_callbacks
):
    followed = []
    monkeypatch.setattr("channels.tasks.channel_webhooks_follow_task.delay", followed.append)
    channel = ChannelFactory(enabled=False)

    with django_capture_on_commit_callbacks(execute=True):
        channel.enabled = True
        channel_settings_update(channel=channel, changed_fields=["enabled"])
    settings.STOCKLINE_PUBLIC_URL = "https://hub.example.com"
    with django_capture_on_commit_callbacks(execute=True):
        channel.enabled = False
        channel_settings_update(channel=channel, changed_fields=["enabled"])
        channel_settings_update(channel=channel, changed_fields=["title_unrelated"])

    assert followed == [channel.pk], "only the switch, and only with a public URL"
