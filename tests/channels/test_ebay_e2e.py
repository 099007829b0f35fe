"""An eBay channel in the hub against the sandbox's eBay: its orders reach the other channels, its pushes go 25
SKUs a call with a 207 recorded per SKU, each listing's revisions are paced under eBay's 250 a day, its token is
refreshed, and a despatch carries the mapped carrier. Tasks run inline (see tests/conftest.py)."""

from datetime import UTC, date, datetime, timedelta
from unittest import mock
from zoneinfo import ZoneInfo

import pytest

from channels.models import Channel, ChannelListing, ListingPushState, SyncRun
from channels.services import listings_mark
from channels.sync.connections import channel_test
from channels.sync.inventory_push import inventory_push
from channels.sync.listings_download import listings_download
from channels.sync.order_download import orders_download
from inventory.models import StockLevel
from orders.models import Order
from orders.services import order_process
from sandbox.control import default_credentials
from tests.channels.test_sync_e2e import connect as connect_other
from tests.inventory.factories import LocationFactory, StockItemFactory, StockLevelFactory
from tests.orders.factories import PostalServiceFactory

pytestmark = pytest.mark.django_db
PACIFIC = ZoneInfo("America/Los_Angeles")


def connect_ebay(sandbox, **settings) -> Channel:
    """A sandbox eBay account and the hub channel that talks to it, as a seller would set it up."""
    credentials = default_credentials("ebay", "ebay-shop")
    sandbox.account("ebay", "ebay-shop", credentials=credentials, marketplace_id="EBAY_GB",
                    rate_limits={"profile": "off"}, **settings)
    url = sandbox.channel_url("ebay", "ebay-shop")
    channel = Channel.objects.create(**{
        **Channel.defaults_for("ebay"), "name": "ebay shop", "kind": "ebay", "api_base_url": url,
        "auth_base_url": url, "credentials": credentials,
    })
    for channel_status, hub_status in (("NOT_STARTED", "paid"), ("PENDING", "unpaid"), ("FULFILLED", "processed")):
        channel.status_mappings.create(channel_status=channel_status, hub_status=hub_status)
    return channel


def stock_set(sku, quantity):
    """The warehouse now holds `quantity`, and the listings of the item wait for a push (as a stock change does)."""
    StockLevel.objects.filter(stock_item__sku=sku).update(quantity=quantity)
    listings_mark(listing_ids=ChannelListing.objects.filter(stock_item__sku=sku).values_list("pk", flat=True))


def stock_on(sandbox, kind, sku):
    return sandbox.received(kind, f"{kind}-shop")["stock"][sku]["quantity"]


@pytest.fixture
def shop(sandbox):
    """An eBay and an EKM channel listing the same mug and lamp, 10 and 4 in the warehouse, pushed once."""
    warehouse = LocationFactory(name="Main warehouse", is_default=True)
    for sku, quantity in (("MUG", 10), ("LAMP", 4)):
        StockLevelFactory(stock_item=StockItemFactory(sku=sku), location=warehouse, quantity=quantity)
    channels = {"ebay": connect_ebay(sandbox), "ekm": connect_other(sandbox, "ekm")}
    for kind, channel in channels.items():
        sandbox.listings(kind, f"{kind}-shop", [{"sku": "MUG", "title": "Mug", "quantity": 3, "price": "9.99"},
                                                {"sku": "LAMP", "title": "Lamp", "quantity": 1, "price": "19.99"}])
        listings_download(channel_id=channel.pk)
        inventory_push(channel_id=channel.pk, full=True)
    return channels


def test_new_ebay_channels_start_on_ebay_gb_without_cancellation_notes():
    defaults = Channel.defaults_for("ebay")

    assert defaults["marketplace_id"] == "EBAY_GB"
    assert Channel(kind="ebay").connector_class.supports_setting("send_cancellation_notes") is False
    assert Channel(kind="ebay").connector_class.supports_setting("latency_days") is False


def test_listings_are_linked_and_the_first_push_reaches_ebay(sandbox, shop):
    mug = ChannelListing.objects.get(channel=shop["ebay"], channel_sku="MUG")

    assert mug.stock_item.sku == "MUG" and "/" in mug.external_id
    assert (stock_on(sandbox, "ebay", "MUG"), stock_on(sandbox, "ebay", "LAMP")) == (10, 4)


def test_an_ebay_order_reserves_stock_and_the_other_channels_get_the_new_quantity(
    sandbox, shop, django_capture_on_commit_callbacks
):
    sandbox.orders("ebay", "ebay-shop", [{"items": [{"sku": "MUG", "quantity": 3, "price": "9.99"}]}])

    with django_capture_on_commit_callbacks(execute=True):
        run = orders_download(channel_id=shop["ebay"].pk)

    assert run.processed == 1
    order = Order.objects.get()
    assert order.status == Order.Status.PAID and order.channel_shipping_tag == "UK_RoyalMailSecondClassStandard"
    assert StockLevel.objects.get(stock_item__sku="MUG").available == 7
    assert stock_on(sandbox, "ekm", "MUG") == 7
    assert stock_on(sandbox, "ebay", "MUG") == 7
    shop["ebay"].refresh_from_db()
    assert shop["ebay"].last_order_sync > datetime(2026, 1, 1, tzinfo=UTC)


def test_unpaid_ebay_orders_wait_unless_the_channel_downloads_them(sandbox, shop):
    sandbox.orders("ebay", "ebay-shop", [{"items": [{"sku": "MUG", "quantity": 1}], "paid": False}])

    orders_download(channel_id=shop["ebay"].pk)
    assert not Order.objects.exists()

    Channel.objects.filter(pk=shop["ebay"].pk).update(download_unpaid_orders=True,
                                                      last_order_sync=datetime(2026, 1, 1, tzinfo=UTC))
    orders_download(channel_id=shop["ebay"].pk)
    order = Order.objects.get()
    assert (order.channel_status, order.status) == ("PENDING", Order.Status.UNPAID)


def test_a_207_records_the_failing_sku_and_the_rest_as_pushed(sandbox, shop):
    # The lamp's offer was withdrawn on eBay; the mug's is live.
    sandbox.listings("ebay", "ebay-shop", [{"sku": "LAMP", "quantity": 4, "live": False}])
    StockLevel.objects.filter(stock_item__sku__in=["MUG", "LAMP"]).update(quantity=2)

    run = inventory_push(channel_id=shop["ebay"].pk, full=True)

    assert run.status == SyncRun.Status.PARTIAL
    assert [error["record_id"] for error in run.errors] == ["LAMP"]
    lamp = ListingPushState.objects.get(listing__channel=shop["ebay"], listing__channel_sku="LAMP")
    mug = ListingPushState.objects.get(listing__channel=shop["ebay"], listing__channel_sku="MUG")
    assert "25725" in lamp.push_error and lamp.last_pushed_quantity == 4
    assert mug.last_pushed_quantity == 2 and mug.push_error == ""
    assert stock_on(sandbox, "ebay", "MUG") == 2


def test_a_busy_listing_is_held_back_and_paced_under_250_revisions_a_day(sandbox, shop):
    mug = ListingPushState.objects.get(listing__channel=shop["ebay"], listing__channel_sku="MUG")
    # 06:00 Pacific: a fifth of the cap at once, then the rest spread over the day, allows 50 + 200/4 = 100.
    morning = datetime(2026, 12, 2, 6, 0, tzinfo=PACIFIC)
    ListingPushState.objects.filter(pk=mug.pk).update(revisions_day=date(2026, 12, 2), revisions_today=100)
    stock_set("MUG", 8)

    with mock.patch("django.utils.timezone.now", return_value=morning):
        held = inventory_push(channel_id=shop["ebay"].pk)
    mug.refresh_from_db()

    assert held.skipped == 1 and stock_on(sandbox, "ebay", "MUG") == 10
    assert "Held back: revised 100 times today" in mug.push_error and "14:" in mug.push_error

    with mock.patch("django.utils.timezone.now", return_value=morning + timedelta(minutes=10)):
        sent = inventory_push(channel_id=shop["ebay"].pk)
    mug.refresh_from_db()

    assert sent.skipped == 0 and stock_on(sandbox, "ebay", "MUG") == 8
    assert (mug.revisions_today, mug.push_error) == (101, "")


def test_a_sell_out_goes_at_once_but_never_past_the_daily_cap(sandbox, shop):
    mug = ListingPushState.objects.get(listing__channel=shop["ebay"], listing__channel_sku="MUG")
    morning = datetime(2026, 12, 2, 6, 0, tzinfo=PACIFIC)
    ListingPushState.objects.filter(pk=mug.pk).update(revisions_day=date(2026, 12, 2), revisions_today=200)
    stock_set("MUG", 0)

    with mock.patch("django.utils.timezone.now", return_value=morning):
        inventory_push(channel_id=shop["ebay"].pk)
    assert stock_on(sandbox, "ebay", "MUG") == 0

    ListingPushState.objects.filter(pk=mug.pk).update(revisions_today=250)
    stock_set("MUG", 5)
    with mock.patch("django.utils.timezone.now", return_value=morning):
        run = inventory_push(channel_id=shop["ebay"].pk)
    mug.refresh_from_db()

    assert run.skipped == 1 and stock_on(sandbox, "ebay", "MUG") == 0
    assert "the most it allows in one day (250)" in mug.push_error and "2026-12-03 08:00 UTC" in mug.push_error


def test_test_renews_an_expired_token_with_the_stored_refresh_token(sandbox, shop):
    sandbox.faults("ebay", "ebay-shop", [{"type": "expire_token", "path": "inventory_item"}])
    before = Channel.objects.get(pk=shop["ebay"].pk).credentials["access_token"]

    result = channel_test(channel_id=shop["ebay"].pk)

    channel = Channel.objects.get(pk=shop["ebay"].pk)
    assert result.ok and channel.credentials["access_token"] != before
    assert channel.credentials["refresh_token"] == "ebay-ebay-shop-refresh-0"


def test_processing_an_ebay_order_marks_it_shipped_with_the_mapped_carrier(
    sandbox, shop, django_capture_on_commit_callbacks
):
    royal_mail = PostalServiceFactory(name="Royal Mail Tracked 48", carrier_code="Royal Mail")
    sandbox.orders("ebay", "ebay-shop", [{"items": [{"sku": "LAMP", "quantity": 1, "price": "19.99"}]}])
    with django_capture_on_commit_callbacks(execute=True):
        orders_download(channel_id=shop["ebay"].pk)
    order = Order.objects.get()

    with django_capture_on_commit_callbacks(execute=True):
        order_process(order_id=order.pk, tracking_number="RM123456785GB", postal_service_id=royal_mail.pk)

    shipment = sandbox.received("ebay", "ebay-shop")["shipments"][0]
    assert (shipment["order_id"], shipment["carrier"], shipment["tracking_number"]) == (
        order.channel_order_id, "RoyalMail", "RM123456785GB")
    assert [item["quantity"] for item in shipment["items"]] == [1]
    order.refresh_from_db()
    assert order.despatch_sent_at and not order.despatch_error
