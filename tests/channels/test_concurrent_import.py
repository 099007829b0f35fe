"""Several workers importing overlapping windows from three channels at once, on PostgreSQL row locks."""

import threading
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.db import connection

from channels.connectors.base import ExternalOrder, ExternalOrderItem, OrderPage
from channels.models import Channel
from channels.sync import orders_store_page
from inventory.models import StockLevel
from orders.models import Order, OrderItem
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
