"""The order download rules: mapping, skipping, idempotency, reservation, watermark."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from channels.connectors.base import (
    ChannelTransientError,
    ExternalAddress,
    ExternalOrder,
    ExternalOrderItem,
    OrderPage,
    RecordError,
    WatermarkPolicy,
)
from channels.models import NEVER_SYNCED, Channel, FulfilmentLocation, OrderStatusMapping, ShippingMapping, SyncRun
from channels.services import channel_create
from channels.sync.order_download import orders_download, orders_store_page
from inventory.models import StockLevel
from orders.models import Order
from tests.channels.factories import (
    AmazonChannelFactory,
    ChannelFactory,
    ChannelListingFactory,
    OrderStatusMappingFactory,
    ShippingMappingFactory,
)
from tests.inventory.factories import LocationFactory, StockItemFactory, StockLevelFactory
from tests.orders.factories import PostalServiceFactory

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


def external(order_id="1001", *, sku="SKU-1", quantity=1, status="PROCESSING", paid=True, **overrides):
    fields = {
        "channel_order_id": order_id,
        "channel_status": status,
        "is_paid": paid,
        "is_cancelled": False,
        "created_at": T0,
        "updated_at": T0,
        "items": (ExternalOrderItem(line_id=f"{order_id}-1", sku=sku, title="Mug", quantity=quantity,
                                    unit_price=Decimal("12.00"), tax=Decimal("2.00")),),
        "buyer_name": "Ann Buyer",
        "buyer_email": "ann@example.com",
        "shipping_address": ExternalAddress(name="Ann Buyer", line1="1 High St", city="Leeds", postcode="LS1 1AA",
                                            country="GB"),
        "shipping_tag": "Standard Delivery",
        "subtotal": Decimal("12.00"),
        "shipping_cost": Decimal("3.00"),
        "tax": Decimal("2.50"),
        "total": Decimal("15.00"),
    }
    return ExternalOrder(**(fields | overrides))


@pytest.fixture
def warehouse():
    return LocationFactory(name="Main warehouse", is_default=True)


@pytest.fixture
def channel():
    return ChannelFactory(name="EKM shop", currency="GBP", utc_offset_hours=Decimal("0"))


@pytest.fixture
def mug(warehouse):
    return StockLevelFactory(stock_item=StockItemFactory(sku="SKU-1"), location=warehouse, quantity=10).stock_item


def store(channel, *orders, errors=()):
    return orders_store_page(channel=channel, page=OrderPage(orders=tuple(orders), errors=tuple(errors)))


def test_a_new_order_is_stored_and_its_stock_reserved_at_the_default_warehouse(channel, mug, warehouse):
    store(channel, external(quantity=3))

    order = Order.objects.get(channel=channel, channel_order_id="1001")
    assert order.status == Order.Status.PAID
    assert order.fulfilment_location == warehouse
    assert order.items.get().stock_item == mug
    level = StockLevel.objects.get(stock_item=mug, location=warehouse)
    assert (level.quantity, level.in_open_orders, level.available) == (10, 3, 7)


def test_downloading_the_same_orders_twice_creates_each_once_and_reserves_once(channel, mug):
    store(channel, external("1"), external("2", quantity=2))
    store(channel, external("1"), external("2", quantity=2))

    assert Order.objects.filter(channel=channel).count() == 2
    assert StockLevel.objects.get(stock_item=mug).in_open_orders == 3


def test_the_same_order_id_on_two_channels_is_two_orders(channel, mug):
    other = ChannelFactory(name="Other shop")

    store(channel, external("77"))
    store(other, external("77"))

    assert Order.objects.filter(channel_order_id="77").count() == 2


def test_a_status_seen_for_the_first_time_is_added_unmapped(channel, mug):
    store(channel, external(status="AWAITING COLLECTION", paid=True))

    mapping = OrderStatusMapping.objects.get(channel=channel, channel_status="AWAITING COLLECTION")
    assert mapping.hub_status == OrderStatusMapping.UNMAPPED
    # Unmapped but paid: downloaded.
    assert Order.objects.filter(channel_order_id="1001").exists()


def test_an_unmapped_unpaid_order_is_not_downloaded_even_with_unpaid_download_on(channel, mug):
    channel.download_unpaid_orders = True
    channel.save()

    outcome = store(channel, external(status="NEW", paid=False))

    assert outcome.skipped == 1
    assert not Order.objects.exists()


def test_unpaid_orders_are_skipped_unless_download_unpaid_orders_is_on(channel, mug):
    OrderStatusMappingFactory(channel=channel, channel_status="PENDING", hub_status=Order.Status.UNPAID)

    store(channel, external("1", status="PENDING", paid=False))
    assert not Order.objects.exists()

    channel.download_unpaid_orders = True
    channel.save()
    store(channel, external("1", status="PENDING", paid=False))
    order = Order.objects.get()
    assert order.status == Order.Status.UNPAID
    # An unpaid open order still holds its stock, so no channel can sell it twice.
    assert StockLevel.objects.get(stock_item=mug).in_open_orders == 1


def test_an_order_paid_later_becomes_paid(channel, mug):
    OrderStatusMappingFactory(channel=channel, channel_status="PENDING", hub_status=Order.Status.UNPAID)
    OrderStatusMappingFactory(channel=channel, channel_status="PROCESSING", hub_status=Order.Status.PAID)
    channel.download_unpaid_orders = True
    channel.save()

    store(channel, external("1", status="PENDING", paid=False))
    store(channel, external("1", status="PROCESSING", paid=True, updated_at=T0 + timedelta(hours=1)))

    order = Order.objects.get()
    assert (order.status, order.channel_status, order.is_paid) == (Order.Status.PAID, "PROCESSING", True)
    assert StockLevel.objects.get(stock_item=mug).in_open_orders == 1


def test_an_order_cancelled_on_the_channel_is_cancelled_here_and_its_stock_released(channel, mug):
    store(channel, external("1", quantity=4))
    store(channel, external("1", quantity=4, status="CANCELLED", is_cancelled=True))

    order = Order.objects.get()
    assert order.status == Order.Status.CANCELLED
    assert order.cancelled_at is not None
    assert StockLevel.objects.get(stock_item=mug).in_open_orders == 0


def test_a_status_mapped_to_cancelled_cancels(channel, mug):
    OrderStatusMappingFactory(channel=channel, channel_status="REFUNDED", hub_status=Order.Status.CANCELLED)

    store(channel, external("1", quantity=2))
    store(channel, external("1", quantity=2, status="REFUNDED"))

    assert Order.objects.get().status == Order.Status.CANCELLED
    assert StockLevel.objects.get(stock_item=mug).in_open_orders == 0


def test_shipping_tags_appear_once_seen_and_a_mapped_tag_sets_the_postal_service(channel, mug):
    store(channel, external("1", shipping_tag="Express"))
    assert ShippingMapping.objects.get(channel=channel, tag="Express").postal_service is None
    assert Order.objects.get(channel_order_id="1").postal_service is None

    dpd = PostalServiceFactory(name="DPD Next Day")
    ShippingMappingFactory(channel=channel, tag="Next Day", postal_service=dpd)
    store(channel, external("2", shipping_tag="Next Day"))
    assert Order.objects.get(channel_order_id="2").postal_service == dpd


def test_currency_defaults_to_the_channels_when_the_payload_has_none(channel, mug):
    channel.currency = "EUR"
    channel.save()

    store(channel, external("1", currency=None), external("2", currency="USD"))

    assert Order.objects.get(channel_order_id="1").currency == "EUR"
    assert Order.objects.get(channel_order_id="2").currency == "USD"


def test_channel_tax_or_the_hubs_rate_by_destination_country(channel, mug, settings):
    settings.HUB_TAX_RATES = {"default": "20", "IE": "23"}
    store(channel, external("1"))
    assert Order.objects.get(channel_order_id="1").tax == Decimal("2.50")

    channel.use_channel_tax = False
    channel.save()
    store(channel, external("2"), external("3", shipping_address=ExternalAddress(country="IE")))
    # 15.00 gross including 20 %: 2.50; including 23 %: 2.80.
    assert Order.objects.get(channel_order_id="2").tax == Decimal("2.50")
    assert Order.objects.get(channel_order_id="3").tax == Decimal("2.80")


def test_received_time_is_the_instant_the_buyer_ordered_whatever_the_channels_utc_offset(channel, mug):
    # The offset is the clock staff read the order on (its "received (channel time)"), not a shift of the instant.
    channel.utc_offset_hours = Decimal("-5")
    channel.save()

    store(channel, external("1"))

    assert Order.objects.get().received_at == T0


def test_a_withheld_amazon_email_becomes_the_default_or_not_disclosed(warehouse, mug):
    amazon = AmazonChannelFactory(name="Amazon UK")
    store(amazon, external("A1", status="UNSHIPPED", buyer_email=None))
    assert Order.objects.get(channel_order_id="A1").buyer_email == "NOT DISCLOSED BY AMAZON"

    amazon.default_email = "orders@myshop.example"
    amazon.save()
    store(amazon, external("A2", status="UNSHIPPED", buyer_email=None))
    assert Order.objects.get(channel_order_id="A2").buyer_email == "orders@myshop.example"


def test_items_link_through_the_listing_first_then_by_sku_and_unlinked_ones_are_kept(channel, mug):
    teapot = StockItemFactory(sku="TEAPOT")
    ChannelListingFactory(channel=channel, channel_sku="EKM-TEAPOT-RED", stock_item=teapot)
    items = (
        ExternalOrderItem(line_id="a", sku="EKM-TEAPOT-RED", title="Teapot", quantity=1, unit_price=Decimal("20")),
        ExternalOrderItem(line_id="b", sku="SKU-1", title="Mug", quantity=1, unit_price=Decimal("12")),
        ExternalOrderItem(line_id="c", sku="MYSTERY", title="Gift card", quantity=1, unit_price=Decimal("5")),
    )

    store(channel, external("1", items=items))

    order = Order.objects.get()
    linked = {item.channel_sku: item.stock_item for item in order.items.all()}
    assert linked == {"EKM-TEAPOT-RED": teapot, "SKU-1": mug, "MYSTERY": None}
    assert order.has_unlinked_items


def test_a_malformed_order_is_reported_by_id_and_the_rest_of_the_page_is_stored(channel, mug):
    bad_quantity = external("BAD", items=(ExternalOrderItem(line_id="x", sku="SKU-1", title="", quantity=0,
                                                            unit_price=Decimal("1")),))
    bad_currency = external("BAD-CUR", currency="ZZZ")

    outcome = store(channel, external("GOOD"), bad_quantity, bad_currency,
                    errors=(RecordError("UNREADABLE", "missing order_date"),))

    assert list(Order.objects.values_list("channel_order_id", flat=True)) == ["GOOD"]
    assert {e.record_id for e in outcome.errors} == {"BAD", "BAD-CUR", "UNREADABLE"}


def test_afn_orders_go_to_the_channels_fba_location_and_hold_no_warehouse_stock(warehouse, mug):
    amazon = channel_create(channel=AmazonChannelFactory.build(name="Amazon UK", fba_enabled=True))
    fba = FulfilmentLocation.objects.get(channel=amazon).location

    store(amazon, external("AFN-1", status="SHIPPED", fulfilled_by_channel=True, quantity=2))

    order = Order.objects.get()
    assert order.fulfilment_location == fba and order.fulfilled_by_channel
    assert StockLevel.objects.get(stock_item=mug, location=warehouse).in_open_orders == 0


class FakeConnector:
    """Stands in for the HTTP connector only to drive page failures; the real ones are tested on the sandbox."""

    watermark_policy = WatermarkPolicy.LATEST_ORDER
    order_overlap = timedelta(minutes=5)
    reads_order_details_apart = False

    def __init__(self, pages, fail_after=None):
        self.pages, self.fail_after, self.calls = pages, fail_after, []

    def fetch_orders(self, since, until=None):
        self.calls.append(since)
        for index, page in enumerate(self.pages):
            if index == self.fail_after:
                raise ChannelTransientError("HTTP 503 from the channel")
            yield page


def test_watermark_moves_to_the_latest_order_change_and_stays_when_a_page_fails(channel, mug, monkeypatch):
    later = T0 + timedelta(hours=2)
    pages = [OrderPage(orders=(external("1"),)), OrderPage(orders=(external("2", created_at=later, updated_at=later),))]
    failing = FakeConnector(pages, fail_after=1)
    monkeypatch.setattr("channels.sync.order_download.channel_connector", lambda channel: failing)

    with pytest.raises(ChannelTransientError):
        orders_download(channel_id=channel.pk)

    channel.refresh_from_db()
    assert channel.last_order_sync == NEVER_SYNCED
    run = SyncRun.objects.get(channel=channel)
    assert run.status == SyncRun.Status.PARTIAL and "503" in run.error

    working = FakeConnector(pages)
    monkeypatch.setattr("channels.sync.order_download.channel_connector", lambda channel: working)
    orders_download(channel_id=channel.pk)

    channel.refresh_from_db()
    assert channel.last_order_sync == T0 + timedelta(hours=2)
    assert Order.objects.filter(channel=channel).count() == 2
    assert StockLevel.objects.get(stock_item=mug).in_open_orders == 2

    orders_download(channel_id=channel.pk)
    assert working.calls[-1] == T0 + timedelta(hours=2) - timedelta(minutes=5)


def test_an_order_changed_after_it_was_placed_is_not_read_again_by_every_download(channel, mug, monkeypatch):
    # Placed at T0, paid (changed) an hour later: the channel finds it by its change time.
    paid_later = FakeConnector([OrderPage(orders=(external("1", updated_at=T0 + timedelta(hours=1)),))])
    monkeypatch.setattr("channels.sync.order_download.channel_connector", lambda channel: paid_later)

    orders_download(channel_id=channel.pk)

    channel.refresh_from_db()
    assert channel.last_order_sync == T0 + timedelta(hours=1)


def test_a_disabled_channel_downloads_nothing(channel, monkeypatch):
    channel.enabled = False
    channel.save()
    monkeypatch.setattr(
        "channels.sync.order_download.channel_connector", lambda channel: pytest.fail("must not connect")
    )

    assert orders_download(channel_id=channel.pk) is None
    assert Channel.objects.get(pk=channel.pk).last_order_sync == NEVER_SYNCED
