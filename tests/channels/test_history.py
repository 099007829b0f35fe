"""Audit: who changed a channel's settings, its mappings and listing overrides, when, and what changed."""

import pytest
from django.contrib.auth.models import User
from django.urls import reverse
from django.utils import timezone

from channels.models import Channel, ChannelListing, OrderStatusMapping, ShippingMapping
from channels.services import listings_link_by_sku
from orders.models import Order
from tests.channels.factories import ChannelFactory, ChannelListingFactory, RakutenChannelFactory
from tests.inventory.factories import LocationFactory, StockItemFactory
from tests.orders.factories import PostalServiceFactory
from tests.security.conftest import change_form_data

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client):
    user = User.objects.create_superuser("alex", password="pw-long-enough-1")
    client.force_login(user)
    client.user = user
    return client


def test_a_channel_setting_changed_in_the_admin_is_recorded_with_who_and_what(staff_client):
    channel = ChannelFactory(max_listed_quantity=None)
    url = reverse("admin:channels_channel_change", args=(channel.pk,))

    response = staff_client.post(url, change_form_data(staff_client, url, max_listed_quantity=10))

    assert response.status_code == 302
    latest = channel.history.latest()
    delta = latest.diff_against(latest.prev_record)
    assert latest.history_user == staff_client.user and latest.history_type == "~"
    assert [(c.field, c.old, c.new) for c in delta.changes] == [("max_listed_quantity", None, 10)]
    page = staff_client.get(reverse("admin:channels_channel_history", args=(channel.pk,))).content.decode()
    assert "alex" in page and "Default max listed quantity:</strong>" in page


def test_sync_progress_written_by_the_engine_adds_no_history():
    channel = ChannelFactory()
    before = channel.history.count()

    Channel.objects.filter(pk=channel.pk).update(listing_download_done=50, needs_reauthorisation=True)

    assert channel.history.count() == before
    assert not hasattr(channel.history.model, "listing_download_done")


def test_an_order_download_moving_the_watermark_is_not_shown_as_the_next_staff_change(staff_client):
    channel = ChannelFactory(max_listed_quantity=None)
    # What every download does to the watermark, by .update().
    Channel.objects.filter(pk=channel.pk).update(last_order_sync=timezone.now())
    url = reverse("admin:channels_channel_change", args=(channel.pk,))

    staff_client.post(url, change_form_data(staff_client, url, max_listed_quantity=10))

    latest = channel.history.latest()
    assert [change.field for change in latest.diff_against(latest.prev_record).changes] == ["max_listed_quantity"]
    page = staff_client.get(reverse("admin:channels_channel_history", args=(channel.pk,))).content.decode()
    assert "Last order sync" not in page


def test_location_mapping_changes_are_in_the_channel_history(staff_client):
    channel = ChannelFactory()
    main = LocationFactory(name="Main")
    url = reverse("admin:channels_channel_location_mapping", args=(channel.pk,))

    staff_client.post(url, {"update_inventory_from_locations": "on", "locations": [main.pk]})

    latest = channel.history.latest()
    assert latest.history_user == staff_client.user
    assert latest.update_inventory_from_locations
    assert [row.location_id for row in latest.inventory_locations.all()] == [main.pk]


def test_status_and_shipping_mapping_screens_record_each_change(staff_client):
    channel = RakutenChannelFactory()
    service = PostalServiceFactory(name="DPD Next Day")
    status_url = reverse("admin:channels_channel_status_mapping", args=(channel.pk,))
    statuses = staff_client.get(status_url).context["form"].statuses
    data = {f"status_{i}": "unmapped" for i in range(len(statuses))}
    # CLOSED is one of Rakuten's item statuses (channels/connectors/rakuten/contract); it has no SHIPPED.
    data[f"status_{statuses.index('CLOSED')}"] = Order.Status.PROCESSED

    staff_client.post(status_url, data)
    staff_client.post(reverse("admin:channels_channel_shipping_mapping", args=(channel.pk,)),
                      {"new_tag": "Express", "new_tag_service": service.pk})

    shipped = OrderStatusMapping.objects.get(channel=channel, channel_status="CLOSED")
    change = shipped.history.filter(history_type="~").get()
    assert (change.hub_status, change.history_user) == (Order.Status.PROCESSED, staff_client.user)
    express = ShippingMapping.objects.get(channel=channel, tag="Express")
    assert express.history.latest().postal_service_id == service.pk
    assert express.history.latest().history_user == staff_client.user


def test_a_listing_override_edit_is_recorded_but_not_its_sync_state(staff_client):
    listing = ChannelListingFactory(end_when_quantity=None)
    url = reverse("admin:channels_channellisting_change", args=(listing.pk,))

    response = staff_client.post(url, change_form_data(staff_client, url, end_when_quantity=3))
    ChannelListing.objects.filter(pk=listing.pk).update(channel_quantity=7)

    assert response.status_code == 302, response.context["adminform"].form.errors
    latest = listing.history.latest()
    assert (latest.end_when_quantity, latest.history_user) == (3, staff_client.user)
    assert latest.prev_record.end_when_quantity is None
    assert listing.history.count() == 2  # created, then the edit; pushes and downloads add none
    assert not hasattr(latest, "channel_quantity")
    page = staff_client.get(reverse("admin:channels_channellisting_history", args=(listing.pk,))).content.decode()
    assert "End when quantity:</strong>" in page and "alex" in page


def test_linking_by_sku_in_bulk_is_recorded_for_each_listing(staff_client):
    item = StockItemFactory(sku="MUG")
    listing = ChannelListingFactory(stock_item=None, channel_sku="MUG")
    other = ChannelListingFactory(stock_item=None, channel_sku="NO-SUCH-ITEM")

    response = staff_client.post(
        reverse("admin:channels_channellisting_changelist"),
        {"action": "auto_link_by_sku", "_selected_action": [listing.pk, other.pk]},
    )

    assert response.status_code == 302
    latest = listing.history.latest()
    assert (latest.stock_item_id, latest.history_change_reason, latest.history_user) == (
        item.pk, "Linked by SKU", staff_client.user,
    )
    assert other.history.count() == 1  # nothing linked, nothing recorded


def test_linking_by_sku_outside_a_request_is_recorded_without_a_user():
    StockItemFactory(sku="CUP")
    listing = ChannelListingFactory(stock_item=None, channel_sku="CUP")

    listings_link_by_sku(listing_ids=[listing.pk])

    latest = listing.history.latest()
    assert latest.history_change_reason == "Linked by SKU" and latest.history_user is None
