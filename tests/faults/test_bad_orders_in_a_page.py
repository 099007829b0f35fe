"""Readable orders with values the database cannot hold (too long, too large, a NUL byte, a lone surrogate,
the same line twice) among good ones.

On PostgreSQL such a value failed the whole page's insert: the good orders of the page were lost with it
and, the run failing every time, the channel's downloads were stuck for good. Every test here runs on the
database the run is given: SQLite by default, PostgreSQL with DATABASE_URL (as CI does).
"""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from channels.connectors.base import ExternalAddress, ExternalOrderItem, OrderPage, RecordError, WatermarkPolicy
from channels.models import Channel, SyncRun
from channels.sync import order_download
from channels.sync.order_download import UNREADABLE_RETRY_WINDOW, orders_download, orders_store_page
from inventory.models import StockLevel
from orders.models import Order, OrderItem
from orders.services import OrderData, OrderLineData
from tests.channels.factories import ChannelFactory
from tests.channels.test_order_download import external
from tests.inventory.factories import LocationFactory, StockItemFactory, StockLevelFactory

pytestmark = pytest.mark.django_db

TOO_BIG = [
    ("a 150-character order id", {"channel_order_id": "9" * 150}),
    ("an amount of 10^12", {"total": Decimal("1e12")}),
    ("an amount of 10^30", {"subtotal": Decimal("1e30")}),
    ("a quantity of 2^40", {"items": (ExternalOrderItem(line_id="L1", sku="SKU-1", title="Mug", quantity=2**40,
                                                        unit_price=Decimal("1")),)}),
    ("a 150-character channel status", {"channel_status": "S" * 150}),
    ("a 300-character shipping service", {"shipping_tag": "T" * 300}),
    ("a 150-character SKU", {"items": (ExternalOrderItem(line_id="L1", sku="S" * 150, title="Mug", quantity=1,
                                                         unit_price=Decimal("1")),)}),
]


@pytest.mark.parametrize(("what", "overrides"), TOO_BIG, ids=[what for what, _ in TOO_BIG])
def test_a_value_too_big_for_the_database_is_that_orders_error_and_the_rest_are_stored(what, overrides):
    channel = ChannelFactory()
    StockLevelFactory(stock_item=StockItemFactory(sku="SKU-1"), location=LocationFactory(is_default=True))
    bad = external("BAD", **overrides)

    outcome = orders_store_page(channel=channel, page=OrderPage(orders=(external("1"), bad, external("2"))))

    assert set(Order.objects.values_list("channel_order_id", flat=True)) == {"1", "2"}
    assert [error.record_id for error in outcome.errors] == [bad.channel_order_id]


def test_long_address_parts_are_shortened_to_fit_and_the_order_stored():
    channel = ChannelFactory()
    address = ExternalAddress(name="N" * 300, city="C" * 150, region="R" * 150, postcode="P" * 30,
                              phone="0" * 80, country="GB")

    orders_store_page(channel=channel, page=OrderPage(orders=(external("1", shipping_address=address),)))

    order = Order.objects.get()
    assert (len(order.ship_city), len(order.ship_postcode), len(order.ship_phone)) == (100, 20, 50)


def item(line_id="L1", sku="SKU-1", title="Mug"):
    return ExternalOrderItem(line_id=line_id, sku=sku, title=title, quantity=1, unit_price=Decimal("12.00"))


@pytest.fixture
def mug():
    return StockLevelFactory(stock_item=StockItemFactory(sku="SKU-1"), location=LocationFactory(is_default=True),
                             quantity=10).stock_item


def test_a_nul_byte_or_a_lone_surrogate_in_free_text_is_cleaned_and_the_order_stored_with_the_rest(mug):
    channel = ChannelFactory()
    address = ExternalAddress(name="Ann\x00 Buyer", line1="1 High\ud800 St", city="Leeds\x00", country="G\x00B")
    spoilt = external("SPOILT", buyer_name="Ann\x00 Buyer\udfff", buyer_email="ann\x00@example.com",
                      shipping_address=address, items=(item(title="Blue\x00 mug \ud83d"),))

    outcome = orders_store_page(channel=channel, page=OrderPage(orders=(external("1"), spoilt, external("2"))))

    assert outcome.errors == []
    assert set(Order.objects.values_list("channel_order_id", flat=True)) == {"1", "SPOILT", "2"}
    order = Order.objects.get(channel_order_id="SPOILT")
    assert (order.buyer_name, order.buyer_email) == ("Ann Buyer\ufffd", "ann@example.com")
    assert (order.ship_name, order.ship_line1, order.ship_city, order.ship_country) == (
        "Ann Buyer", "1 High\ufffd St", "Leeds", "GB")
    assert order.items.get().title == "Blue mug \ufffd"
    assert StockLevel.objects.get(stock_item=mug).in_open_orders == 3


UNMATCHABLE = [
    ("a NUL in the order id", {"channel_order_id": "BAD\x00"}),
    ("a lone surrogate in the order id", {"channel_order_id": "BAD\ud800"}),
    ("a NUL in a line id", {"items": (item(line_id="L\x001"),)}),
    ("a NUL in a SKU", {"items": (item(sku="SKU\x00-1"),)}),
    ("a lone surrogate in a SKU", {"items": (item(sku="SKU-\udc001"),)}),
    ("a NUL in the channel status", {"channel_status": "PAID\x00"}),
    ("a NUL in the shipping service", {"shipping_tag": "Royal\x00 Mail"}),
    ("the same line id twice", {"items": (item(line_id="L1"), item(line_id="L1", sku="SKU-2"))}),
    ("two lines without ids and the same SKU", {"items": (item(line_id=""), item(line_id=""))}),
]


@pytest.mark.parametrize(("what", "overrides"), UNMATCHABLE, ids=[what for what, _ in UNMATCHABLE])
def test_an_id_the_database_cannot_match_is_that_orders_error_and_the_rest_of_the_page_is_stored(
    what, overrides, mug
):
    channel = ChannelFactory()
    bad = external("BAD", **overrides)

    outcome = orders_store_page(channel=channel, page=OrderPage(orders=(external("1"), bad, external("2"))))

    assert set(Order.objects.values_list("channel_order_id", flat=True)) == {"1", "2"}
    assert [error.record_id for error in outcome.errors] == [bad.channel_order_id]
    # Held like an order the connector could not read: the channel may send it corrected.
    assert outcome.unreadable == 1
    assert StockLevel.objects.get(stock_item=mug).in_open_orders == 2


class OnePage:
    """Stands in for the connector: the same page at every download (the channel's orders do not change)."""

    watermark_policy = WatermarkPolicy.LATEST_ORDER
    order_overlap = timedelta(minutes=5)
    reads_order_details_apart = False

    def __init__(self, page):
        self.page = page

    def fetch_orders(self, since, until=None):
        yield self.page


def test_an_unstorable_order_is_recorded_the_rest_stored_and_the_watermark_waits_for_it(mug, monkeypatch):
    channel = ChannelFactory()
    an_hour_ago = timezone.now() - timedelta(hours=1)
    bad = external("BAD\x00", created_at=an_hour_ago, buyer_name="Ann\x00")
    page = OrderPage(orders=(external("1", created_at=an_hour_ago, buyer_name="Bob\x00"), bad),
                     errors=(RecordError("UNREAD\x00", "unreadable order: bad \x00 byte"),))
    monkeypatch.setattr(order_download, "channel_connector", lambda channel: OnePage(page))

    run = orders_download(channel_id=channel.pk)

    assert run.status == SyncRun.Status.PARTIAL
    assert [e["record_id"] for e in SyncRun.objects.get(pk=run.pk).errors] == ["UNREAD", "BAD"]
    assert Order.objects.get().buyer_name == "Bob"
    watermark = Channel.objects.get(pk=channel.pk).last_order_sync
    assert watermark < an_hour_ago
    assert watermark >= run.started_at - UNREADABLE_RETRY_WINDOW - timedelta(seconds=5)

    # The next downloads keep going, and keep asking for it.
    run = orders_download(channel_id=channel.pk)
    assert run.status == SyncRun.Status.PARTIAL and Order.objects.count() == 1


def test_an_order_the_database_refuses_despite_the_checks_is_that_orders_error(mug):
    channel = ChannelFactory()

    def data(order_id, *line_ids):
        lines = tuple(OrderLineData(channel_line_id=line_id, channel_sku="SKU-1", title="Mug", quantity=1,
                                    unit_price=Decimal("1"), tax=Decimal("0"), stock_item_id=mug.pk)
                      for line_id in line_ids)
        now = timezone.now()
        return OrderData(channel_order_id=order_id, status=Order.Status.PAID, channel_status="PAID", is_paid=True,
                         received_at=now, channel_updated_at=now, currency="GBP", lines=lines,
                         fulfilment_location_id=StockLevel.objects.get().location_id)

    outcome = order_download.PageOutcome()
    # What a check nobody wrote yet would let through: the unique line constraint refuses it.
    result, stored = order_download._orders_import(channel=channel, orders=[data("1", "A"), data("BAD", "A", "A"),
                                                                  data("2", "A")], outcome=outcome)

    assert sorted(result.created) == ["1", "2"] and [d.channel_order_id for d in stored] == ["1", "2"]
    assert [error.record_id for error in outcome.errors] == ["BAD"] and outcome.unreadable == 1
    assert OrderItem.objects.count() == 2
    assert StockLevel.objects.get().in_open_orders == 2


@pytest.mark.postgres
def test_on_postgresql_the_nul_that_failed_the_whole_page_and_every_later_download_is_cleaned(mug, monkeypatch):
    from django.db import DataError, transaction

    # The premise: PostgreSQL refuses the raw value outright.
    with pytest.raises(DataError), transaction.atomic():
        Order.objects.filter(buyer_name="Ann\x00").exists()
    channel = ChannelFactory()
    page = OrderPage(orders=(external("1"), external("2", buyer_name="Ann\x00 Buyer", items=(item(title="M\x00ug"),)),
                             external("3")))
    monkeypatch.setattr(order_download, "channel_connector", lambda channel: OnePage(page))

    for _ in range(2):
        run = orders_download(channel_id=channel.pk)
        assert run.status == SyncRun.Status.SUCCESS

    assert Order.objects.count() == 3
    assert Order.objects.get(channel_order_id="2").buyer_name == "Ann Buyer"
    assert StockLevel.objects.get(stock_item=mug).in_open_orders == 3
