"""Processing and cancelling orders: what happens to stock, the ledger and the channel confirmation."""

import pytest
from django.core.exceptions import ValidationError

from inventory.models import StockLevel, StockMovement
from orders.models import Order
from orders.services import (
    order_cancel,
    order_process,
    order_process_keeping_details,
    orders_tracking_number_problem,
)
from orders.signals import order_cancelled, order_processed
from tests.inventory.factories import LocationFactory, StockItemFactory
from tests.orders.factories import OrderFactory, OrderItemFactory, PostalServiceFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def warehouse():
    return LocationFactory(name="Main warehouse", is_default=True)


@pytest.fixture
def reserved_order(warehouse):
    """An open order for 2 mugs, reserved at the warehouse that holds 10."""
    mug = StockItemFactory(sku="MUG")
    StockLevel.objects.create(stock_item=mug, location=warehouse, quantity=10, in_open_orders=2)
    # The channel confirmation is covered in tests/channels; here only the announcement matters.
    order = OrderFactory(fulfilment_location=warehouse, channel__mark_as_despatched=False)
    OrderItemFactory(order=order, stock_item=mug, quantity=2)
    OrderItemFactory(order=order, stock_item=None, channel_sku="NOT-IN-STOCK", quantity=1)
    return order


def level():
    return StockLevel.objects.get(stock_item__sku="MUG")


def test_processing_takes_the_stock_off_the_shelf_and_ends_the_reservation(
    reserved_order, django_capture_on_commit_callbacks
):
    royal_mail = PostalServiceFactory(name="Royal Mail")
    announced = []
    order_processed.connect(lambda sender, order_ids, **kw: announced.extend(order_ids), weak=False,
                            dispatch_uid="test-processed")
    try:
        with django_capture_on_commit_callbacks(execute=True):
            order_process(order_id=reserved_order.pk, tracking_number=" RM123GB ", postal_service_id=royal_mail.pk)
    finally:
        order_processed.disconnect(dispatch_uid="test-processed")

    stock = level()
    assert (stock.quantity, stock.in_open_orders, stock.available) == (8, 0, 8)
    movement = StockMovement.objects.get(reason=StockMovement.Reason.DESPATCH)
    assert (movement.delta, movement.quantity_after) == (-2, 8)
    assert reserved_order.channel_order_id in movement.reference
    reserved_order.refresh_from_db()
    assert reserved_order.status == Order.Status.PROCESSED
    assert reserved_order.tracking_number == "RM123GB" and reserved_order.postal_service == royal_mail
    assert reserved_order.processed_at is not None
    assert announced == [reserved_order.pk]


def test_an_order_cannot_be_processed_twice(reserved_order):
    order_process(order_id=reserved_order.pk)

    with pytest.raises(ValidationError, match="already processed"):
        order_process(order_id=reserved_order.pk)
    assert level().quantity == 8


def test_an_unpaid_order_is_not_processed(reserved_order):
    Order.objects.filter(pk=reserved_order.pk).update(status=Order.Status.UNPAID, is_paid=False)

    with pytest.raises(ValidationError, match="not paid"):
        order_process(order_id=reserved_order.pk)
    assert (level().quantity, level().in_open_orders) == (10, 2)


def test_an_order_fulfilled_by_amazon_is_not_processed_here(reserved_order):
    Order.objects.filter(pk=reserved_order.pk).update(fulfilled_by_channel=True)

    with pytest.raises(ValidationError, match="fulfilled by"):
        order_process(order_id=reserved_order.pk)


def test_cancelling_releases_the_reservation_and_keeps_physical_stock(
    reserved_order, django_capture_on_commit_callbacks
):
    announced = []
    order_cancelled.connect(lambda sender, order_ids, reason, **kw: announced.append((order_ids, reason)),
                            weak=False, dispatch_uid="test-cancelled")
    try:
        with django_capture_on_commit_callbacks(execute=True):
            order_cancel(order_id=reserved_order.pk, reason="Out of stock")
    finally:
        order_cancelled.disconnect(dispatch_uid="test-cancelled")

    stock = level()
    assert (stock.quantity, stock.in_open_orders, stock.available) == (10, 0, 10)
    assert not StockMovement.objects.exists()
    reserved_order.refresh_from_db()
    assert reserved_order.status == Order.Status.CANCELLED and reserved_order.cancelled_at
    assert announced == [([reserved_order.pk], "Out of stock")]
    with pytest.raises(ValidationError, match="already cancelled"):
        order_cancel(order_id=reserved_order.pk)


def test_processing_from_the_order_screen_keeps_the_tracking_number_and_service_the_order_has(reserved_order):
    royal_mail = PostalServiceFactory(name="Royal Mail")
    Order.objects.filter(pk=reserved_order.pk).update(tracking_number="JD0001", postal_service=royal_mail)
    reserved_order.refresh_from_db()

    order_process_keeping_details(order=reserved_order, tracking_number="", postal_service_id=None)

    reserved_order.refresh_from_db()
    assert reserved_order.status == Order.Status.PROCESSED
    assert (reserved_order.tracking_number, reserved_order.postal_service) == ("JD0001", royal_mail)


def test_one_tracking_number_is_refused_for_several_orders_at_once():
    assert "belongs to one order" in orders_tracking_number_problem(order_count=2, tracking_number="JD0001")
    assert orders_tracking_number_problem(order_count=1, tracking_number="JD0001") == ""
    assert orders_tracking_number_problem(order_count=5, tracking_number="") == ""
