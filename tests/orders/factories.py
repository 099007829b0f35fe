from datetime import UTC, datetime
from decimal import Decimal

import factory

from orders.models import Order, OrderItem, PostalService
from tests.channels.factories import ChannelFactory
from tests.inventory.factories import StockItemFactory


class PostalServiceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PostalService
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"Postal service {n}")
    carrier_code = "Royal Mail"
    tracking_url_template = "https://track.example/{tracking_number}"


class OrderFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Order

    channel = factory.SubFactory(ChannelFactory)
    channel_order_id = factory.Sequence(lambda n: f"ORDER-{n:06d}")
    status = Order.Status.PAID
    channel_status = "UNSHIPPED"
    is_paid = True
    currency = "GBP"
    received_at = factory.LazyFunction(lambda: datetime(2026, 11, 1, 12, 0, tzinfo=UTC))
    buyer_name = factory.Faker("name")
    buyer_email = factory.Faker("email")
    ship_country = "GB"
    total = Decimal("19.98")


class OrderItemFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = OrderItem

    order = factory.SubFactory(OrderFactory)
    stock_item = factory.SubFactory(StockItemFactory)
    channel_line_id = factory.Sequence(lambda n: f"LINE-{n}")
    channel_sku = factory.LazyAttribute(lambda o: o.stock_item.sku if o.stock_item else "UNKNOWN-SKU")
    title = "Item"
    quantity = 1
    unit_price = Decimal("9.99")
