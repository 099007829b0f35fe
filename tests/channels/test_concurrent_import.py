"""Several workers importing overlapping windows at once, and a download racing the despatch of its orders, on
PostgreSQL row locks."""

import contextlib
import threading
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import connection, transaction

from channels.connectors.base import ExternalOrder, ExternalOrderItem, OrderPage
from channels.models import Channel
from channels.sync.order_download import orders_store_page
from inventory.models import StockLevel, StockMovement
from orders.models import Order, OrderItem
from orders.services import order_process
from tests.channels.factories import ChannelFactory
from tests.inventory.factories import LocationFactory, StockItemFactory, StockLevelFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

HOT_SKUS = ["HOT-1", "HOT-2", "HOT-3"]


def page(prefix: str, numbers: range) -> OrderPage:
    at = datetime(2026, 11, 20, tzinfo=UTC)
    return OrderPage(orders=tuple(
        ExternalOrder(
            channel_order_id=f"{prefix}-{n}", channel_status="PAID", is_paid=True, is_cancelled=False,
            created_at=at, updated_at=at,
            items=(ExternalOrderItem(line_id=f"{prefix}-{n}-1", sku=HOT_SKUS[n % 3], title="Hot item", quantity=1,
                                     unit_price=Decimal("5")),),
        )
        for n in numbers
    ))


def test_overlapping_imports_from_many_workers_create_each_order_once_and_reserve_exactly():
    warehouse = LocationFactory(name="Main", is_default=True)
    for sku in HOT_SKUS:
        StockLevelFactory(stock_item=StockItemFactory(sku=sku), location=warehouse, quantity=1000)
    channels = [ChannelFactory(name=f"Channel {n}") for n in range(3)]
    # Each channel's 60 orders arrive as three windows that overlap by half, each fetched by two workers.
    jobs = [
        (channel.pk, page(f"C{channel.pk}", range(start, start + 30)))
        for channel in channels for start in (0, 15, 30) for _worker in range(2)
    ]
    errors, barrier = [], threading.Barrier(len(jobs))

    def work(channel_id, order_page):
        try:
            barrier.wait()
            orders_store_page(channel=Channel.objects.get(pk=channel_id), page=order_page)
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=job) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert Order.objects.count() == 3 * 60
    assert OrderItem.objects.count() == 3 * 60
    reserved = dict(StockLevel.objects.values_list("stock_item__sku", "in_open_orders"))
    assert reserved == {"HOT-1": 60, "HOT-2": 60, "HOT-3": 60}


def two_line_order(order_id: str, n: int, *, cancelled: bool = False) -> ExternalOrder:
    at = datetime(2026, 11, 20, tzinfo=UTC)
    return ExternalOrder(
        channel_order_id=order_id, channel_status="CANCELLED" if cancelled else "PAID", is_paid=True,
        is_cancelled=cancelled, created_at=at, updated_at=at,
        # Two levels per order, in both orders across the page, so lock order matters.
        items=tuple(ExternalOrderItem(line_id=f"{order_id}-{k}", sku=HOT_SKUS[(n + k) % 3], title="Hot item",
                                      quantity=1 + k, unit_price=Decimal("5")) for k in range(2)),
    )


def test_a_download_racing_the_despatch_of_its_orders_neither_deadlocks_nor_consumes_twice():
    warehouse = LocationFactory(name="Main", is_default=True)
    for sku in HOT_SKUS:
        StockLevelFactory(stock_item=StockItemFactory(sku=sku), location=warehouse, quantity=1000)
    # The channel is not told of despatches: nothing here leaves the machine.
    channel = ChannelFactory(mark_as_despatched=False)
    known = range(60)
    orders_store_page(channel=channel, page=OrderPage(orders=tuple(two_line_order(f"K-{n}", n) for n in known)))
    known_ids = list(Order.objects.filter(channel=channel).order_by("pk").values_list("pk", flat=True))

    def download(worker: int):
        # The channel now says every third known order is cancelled, and sends new orders on the same items.
        page = OrderPage(orders=tuple(
            [two_line_order(f"K-{n}", n, cancelled=n % 3 == 0) for n in known]
            + [two_line_order(f"N-{worker}-{n}", n) for n in range(20)]
        ))
        with transaction.atomic():
            orders_store_page(channel=Channel.objects.get(pk=channel.pk), page=page)

    def despatch(worker: int):
        # One worker from the oldest order, one from the newest: every pair of orders meets both ways.
        for order_id in known_ids if worker % 2 else reversed(known_ids):
            # Refused when already processed by the other worker, or cancelled by the download.
            with contextlib.suppress(ValidationError):
                order_process(order_id=order_id)

    errors, barrier = [], threading.Barrier(6)

    def work(job, worker):
        try:
            barrier.wait()
            job(worker)
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(job, worker))
               for job, worker in [(download, 0), (download, 1), (download, 2), (despatch, 0), (despatch, 1),
                                   (download, 3)]]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    orders = Order.objects.filter(channel=channel)
    assert orders.count() == 60 + 4 * 20
    assert not orders.filter(status__in=Order.OPEN_STATUSES, channel_order_id__startswith="K-").exists()
    # Each despatched line left the shelf once, each open line is held once, whoever won each race.
    despatched = StockMovement.objects.filter(reason=StockMovement.Reason.DESPATCH)
    for sku in HOT_SKUS:
        lines = OrderItem.objects.filter(order__channel=channel, stock_item__sku=sku)
        shipped = sum(lines.filter(order__status=Order.Status.PROCESSED).values_list("quantity", flat=True))
        held = sum(lines.filter(order__status__in=Order.OPEN_STATUSES).values_list("quantity", flat=True))
        level = StockLevel.objects.get(stock_item__sku=sku)
        assert (level.quantity, level.in_open_orders) == (1000 - shipped, held), sku
        assert -sum(despatched.filter(stock_item__sku=sku).values_list("delta", flat=True)) == shipped


def test_a_download_reading_again_an_order_it_holds_unchanged_does_not_wait_for_a_despatch_holding_that_order():
    warehouse = LocationFactory(name="Main", is_default=True)
    for sku in HOT_SKUS:
        StockLevelFactory(stock_item=StockItemFactory(sku=sku), location=warehouse, quantity=100)
    channel = ChannelFactory(name="EKM shop")
    first = page("E", range(3))
    orders_store_page(channel=channel, page=first)
    locked, release, errors = threading.Event(), threading.Event(), []

    def despatch_holding_the_order():
        try:
            with transaction.atomic():
                Order.objects.select_for_update().filter(channel_order_id="E-1").get()
                locked.set()
                release.wait(30)
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)
        finally:
            connection.close()

    holder = threading.Thread(target=despatch_holding_the_order)
    holder.start()
    try:
        assert locked.wait(10)
        with connection.cursor() as cursor:
            # Waiting for the row would fail the download in 2 s rather than hang the test.
            cursor.execute("SET lock_timeout = '2s'")
        # The next download's overlap brings the same three orders, as the channel last changed them, and a new one.
        again = OrderPage(orders=first.orders + page("E", range(3, 4)).orders)
        outcome = orders_store_page(channel=channel, page=again)
    finally:
        release.set()
        holder.join()
        with connection.cursor() as cursor:
            cursor.execute("RESET lock_timeout")
    assert errors == []
    assert outcome.errors == [] and outcome.stored == 4
    assert Order.objects.filter(channel=channel).count() == 4
    # Each order reserved its unit once: E-0 and E-3 sell HOT-1.
    assert StockLevel.objects.get(stock_item__sku="HOT-1").in_open_orders == 2
    assert sum(StockLevel.objects.values_list("in_open_orders", flat=True)) == 4
