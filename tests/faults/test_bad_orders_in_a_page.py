"""Readable orders with values the database cannot hold (too long, too large) among good ones.

On PostgreSQL such a value failed the whole page's insert: the good orders of the page were lost with it
and, the run failing every time, the channel's downloads were stuck for good.
"""

from decimal import Decimal

import pytest

from channels.connectors.base import ExternalAddress, ExternalOrderItem, OrderPage
from channels.sync import orders_store_page
from orders.models import Order
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
