"""Order services running at once on PostgreSQL row locks: one lock order everywhere (orders, then stock
levels, each in pk order), so none deadlocks and every count adds up."""

import threading

import pytest
from django.db import connection

from inventory.models import StockLevel
from orders.services import order_reallocate
from tests.channels.factories import ChannelFactory
from tests.inventory.factories import LocationFactory, StockItemFactory, StockLevelFactory
from tests.orders.factories import OrderFactory, OrderItemFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_orders_moving_between_two_warehouses_both_ways_at_once_neither_deadlock_nor_lose_a_reservation():
    east, west = LocationFactory(name="East"), LocationFactory(name="West")
    items = [StockItemFactory(sku=f"SKU-{n}") for n in range(2)]
    for location in (east, west):
        for item in items:
            StockLevelFactory(stock_item=item, location=location, quantity=100, in_open_orders=20)
    channel = ChannelFactory()
    moves = []
    for start, end in ((east, west), (west, east)):
        for _ in range(20):
            order = OrderFactory(channel=channel, fulfilment_location=start)
            for item in items:
                OrderItemFactory(order=order, stock_item=item, quantity=1)
            moves.append((order.pk, end.pk))
    errors, barrier = [], threading.Barrier(2)

    def move_all(direction):
        try:
            barrier.wait()
            for order_id, location_id in moves[direction * 20:(direction + 1) * 20]:
                order_reallocate(order_id=order_id, location_id=location_id)
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=move_all, args=(direction,)) for direction in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    # Twenty orders left each warehouse and twenty arrived: each level holds what it held.
    assert set(StockLevel.objects.values_list("in_open_orders", flat=True)) == {20}
