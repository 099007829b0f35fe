"""The nightly recount: 'in open orders' is put back to what the open orders hold, and channels hear of it."""

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django_celery_beat.models import PeriodicTask

from config.celery import app
from inventory.models import StockLevel
from orders.models import Order
from orders.tasks import orders_open_orders_recount_task
from tests.channels.factories import ChannelListingFactory, waiting_for_push
from tests.inventory.factories import LocationFactory, StockItemFactory
from tests.orders.factories import OrderFactory, OrderItemFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def drifted():
    """Mugs: 2 held by an open order but the counter says 5. Lamps: counter 3, no open order at all.
    Vases: 4 held at the overflow store, which has no level row yet. Processed, cancelled and unlinked
    lines hold nothing."""
    main, overflow = LocationFactory(name="Main", is_default=True), LocationFactory(name="Overflow")
    mug, lamp, vase = StockItemFactory(sku="MUG"), StockItemFactory(sku="LAMP"), StockItemFactory(sku="VASE")
    StockLevel.objects.create(stock_item=mug, location=main, quantity=10, in_open_orders=5)
    StockLevel.objects.create(stock_item=lamp, location=main, quantity=10, in_open_orders=3)
    StockLevel.objects.create(stock_item=vase, location=main, quantity=10, in_open_orders=0)
    OrderItemFactory(order__fulfilment_location=main, stock_item=mug, quantity=2)
    OrderItemFactory(order__fulfilment_location=overflow, stock_item=vase, quantity=4)
    for status in (Order.Status.PROCESSED, Order.Status.CANCELLED):
        OrderItemFactory(order__fulfilment_location=main, order__status=status, stock_item=lamp, quantity=7)
    OrderItemFactory(order__fulfilment_location=main, stock_item=None, quantity=9)
    return ChannelListingFactory(stock_item=mug, push_pending=False)


def in_open_orders():
    return {(level.stock_item.sku, level.location.name): level.in_open_orders
            for level in StockLevel.objects.select_related("stock_item", "location")}


def test_the_recount_corrects_every_level_and_the_channels_get_a_push(drifted, capsys,
                                                                       django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        call_command("recount_open_orders")

    assert in_open_orders() == {("MUG", "Main"): 2, ("LAMP", "Main"): 0, ("VASE", "Main"): 0,
                                ("VASE", "Overflow"): 4}
    out = capsys.readouterr().out
    assert "MUG at Main: in open orders was 5, open orders hold 2 (corrected)" in out
    assert "3 stock level(s) corrected" in out
    assert waiting_for_push(drifted)

    call_command("recount_open_orders", "--check")
    assert "matches the open orders everywhere" in capsys.readouterr().out


def test_check_only_reports_and_exits_non_zero(drifted, capsys):
    with pytest.raises(CommandError, match="3 stock level\\(s\\) differ from their open orders"):
        call_command("recount_open_orders", "--check")
    assert "LAMP at Main: in open orders was 3, open orders hold 0\n" in capsys.readouterr().out
    assert in_open_orders()[("MUG", "Main")] == 5


def test_the_nightly_task_corrects_and_logs_each_difference(drifted, caplog):
    assert orders_open_orders_recount_task() == "3 level(s) corrected"
    assert sum("orders.recount.corrected" in message for message in caplog.messages) == 3
    assert in_open_orders()[("LAMP", "Main")] == 0


def test_nothing_changes_when_the_counter_is_right():
    order = OrderFactory(fulfilment_location=LocationFactory())
    item = OrderItemFactory(order=order, quantity=2).stock_item
    StockLevel.objects.create(stock_item=item, location=order.fulfilment_location, quantity=5, in_open_orders=2)
    call_command("recount_open_orders", "--check")


def test_beat_runs_the_recount_every_night():
    nightly = PeriodicTask.objects.get(name="open-orders-recount")
    assert nightly.enabled and (nightly.crontab.hour, nightly.crontab.minute) == ("3", "30")
    assert nightly.task in app.tasks
