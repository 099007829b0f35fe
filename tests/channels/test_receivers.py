import pytest

from channels import scheduling
from channels.models import ChannelListing
from inventory.services import stock_item_price_set, stock_level_adjust, stock_reserve
from tests.channels.factories import ChannelFactory, ChannelListingFactory
from tests.inventory.factories import LocationFactory, StockItemFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def scheduled(monkeypatch):
    """The channel ids each push scheduling was asked for, instead of queueing Celery tasks."""
    calls = []
    monkeypatch.setattr(scheduling, "inventory_push_schedule", lambda *, channel_ids: calls.append(list(channel_ids)))
    return calls


def settled(*listings) -> None:
    ChannelListing.objects.filter(pk__in=[listing.pk for listing in listings]).update(push_pending=False)


def pending(listing) -> bool:
    listing.refresh_from_db()
    return listing.push_pending


def test_a_stock_change_marks_the_items_listings_and_schedules_syncing_channels(
    scheduled, django_capture_on_commit_callbacks
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
    assert scheduled == [[syncing.pk]]


def test_a_reservation_reaches_every_channel_listing_the_item(scheduled, django_capture_on_commit_callbacks):
    location = LocationFactory()
    item = StockItemFactory()
    channels = [ChannelFactory() for _ in range(3)]
    listings = [ChannelListingFactory(channel=channel, stock_item=item) for channel in channels]
    settled(*listings)

    with django_capture_on_commit_callbacks(execute=True):
        stock_reserve(lines=[(item.pk, location.pk, 1)])

    assert all(pending(listing) for listing in listings)
    assert scheduled == [sorted(channel.pk for channel in channels)]


def test_a_price_change_marks_the_listings(scheduled, django_capture_on_commit_callbacks):
    listing = ChannelListingFactory(channel=ChannelFactory(price_change=True))
    settled(listing)

    with django_capture_on_commit_callbacks(execute=True):
        stock_item_price_set(stock_item_id=listing.stock_item_id, retail_price=listing.stock_item.retail_price + 1)

    assert pending(listing)


def test_editing_a_listing_override_marks_it(scheduled, django_capture_on_commit_callbacks):
    listing = ChannelListingFactory()
    settled(listing)
    listing.refresh_from_db()

    with django_capture_on_commit_callbacks(execute=True):
        listing.max_listed_quantity = 4
        listing.save()

    assert pending(listing)
    assert scheduled == [[listing.channel_id]]


def test_saving_a_listing_without_a_relevant_change_marks_nothing(scheduled, django_capture_on_commit_callbacks):
    listing = ChannelListingFactory()
    settled(listing)
    listing.refresh_from_db()

    with django_capture_on_commit_callbacks(execute=True):
        listing.title = "A new title"
        listing.save()

    assert not pending(listing)
    assert scheduled == []


def test_changing_a_channel_rule_marks_all_its_listings(scheduled, django_capture_on_commit_callbacks):
    channel = ChannelFactory()
    listings = [ChannelListingFactory(channel=channel) for _ in range(2)]
    settled(*listings)

    with django_capture_on_commit_callbacks(execute=True):
        channel.max_listed_percentage = 50
        channel.save()

    assert all(pending(listing) for listing in listings)
    assert scheduled == [[channel.pk]]


def test_changing_the_location_mapping_marks_all_listings_when_mapping_is_on(
    scheduled, django_capture_on_commit_callbacks
):
    mapped, unmapped = ChannelFactory(update_inventory_from_locations=True), ChannelFactory()
    on_mapped, on_unmapped = ChannelListingFactory(channel=mapped), ChannelListingFactory(channel=unmapped)
    settled(on_mapped, on_unmapped)
    location = LocationFactory()

    with django_capture_on_commit_callbacks(execute=True):
        mapped.inventory_locations.add(location)
        unmapped.inventory_locations.add(location)

    assert (pending(on_mapped), pending(on_unmapped)) == (True, False)
    assert scheduled == [[mapped.pk]]
