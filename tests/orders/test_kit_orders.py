"""Orders for a kit hold, take and give back its components, and the nightly recount agrees with them."""

import pytest

from inventory.models import StockLevel, StockMovement
from inventory.services import kit_components_set, stock_reserve
from orders.models import Order
from orders.services import open_orders_recount, order_cancel, order_process
from tests.inventory.factories import LocationFactory, StockItemFactory, StockLevelFactory
from tests.orders.factories import OrderFactory, OrderItemFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def warehouse():
    return LocationFactory(name="Main warehouse", is_default=True)


@pytest.fixture
def gift_set(warehouse):
    """A gift set of a mug and two coasters; 10 mugs and 30 coasters on the shelf."""
    kit, mug, coaster = StockItemFactory(sku="GIFT-SET"), StockItemFactory(sku="MUG"), StockItemFactory(sku="COASTER")
    StockLevelFactory(stock_item=mug, location=warehouse, quantity=10)
    StockLevelFactory(stock_item=coaster, location=warehouse, quantity=30)
    kit_components_set(kit_id=kit.pk, components=[(mug.pk, 1), (coaster.pk, 2)])
    return kit


def stock(sku) -> tuple[int, int]:
    return StockLevel.objects.values_list("quantity", "in_open_orders").get(stock_item__sku=sku)


def kit_order(kit, warehouse, quantity=2):
    """An open order for `quantity` gift sets and one mug, holding its stock as the order download leaves it."""
    order = OrderFactory(fulfilment_location=warehouse, channel__mark_as_despatched=False)
    OrderItemFactory(order=order, stock_item=kit, quantity=quantity)
    mug = StockLevel.objects.get(stock_item__sku="MUG").stock_item
    OrderItemFactory(order=order, stock_item=mug, quantity=1)
    stock_reserve(lines=[(kit.pk, warehouse.pk, quantity), (mug.pk, warehouse.pk, 1)])
    return order


def test_processing_a_kit_order_takes_its_parts_off_the_shelf_under_the_orders_number(gift_set, warehouse):
    order = kit_order(gift_set, warehouse)

    order_process(order_id=order.pk, tracking_number="RM1")

    assert (stock("MUG"), stock("COASTER"), stock("GIFT-SET")) == ((7, 0), (26, 0), (0, 0))
    despatched = StockMovement.objects.filter(reason=StockMovement.Reason.DESPATCH, kit__sku="GIFT-SET")
    assert sorted(despatched.values_list("stock_item__sku", "delta")) == [("COASTER", -4), ("MUG", -2)]
    assert all(order.channel_order_id in reference for reference in despatched.values_list("reference", flat=True))


def test_cancelling_a_kit_order_gives_its_parts_back(gift_set, warehouse):
    order = kit_order(gift_set, warehouse)
    assert (stock("MUG"), stock("COASTER")) == ((10, 3), (30, 4))

    order_cancel(order_id=order.pk)

    assert (stock("MUG"), stock("COASTER"), stock("GIFT-SET")) == ((10, 0), (30, 0), (0, 0))
    assert Order.objects.get(pk=order.pk).status == Order.Status.CANCELLED


def test_the_recount_agrees_with_kit_orders_and_puts_back_what_drifted(gift_set, warehouse):
    kit_order(gift_set, warehouse)
    assert open_orders_recount(correct=False) == []

    StockLevel.objects.filter(stock_item__sku="COASTER").update(in_open_orders=0)
    differences = open_orders_recount()

    assert [(d.recorded, d.counted) for d in differences] == [(0, 4)]
    assert stock("COASTER") == (30, 4)
