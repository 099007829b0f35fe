"""A kit and its part sold at once on two channels, on PostgreSQL row locks: every order holds what it sold,
whoever wins each race, so neither channel is offered a unit already sold on the other (Medusa #16502)."""

import threading
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.db import connection

from channels.connectors.base import ExternalOrder, ExternalOrderItem, OrderPage
from channels.models import Channel
from channels.selectors import listing_quantities
from channels.sync.order_download import orders_store_page
from inventory.models import StockLevel
from inventory.services import kit_components_set
from orders.services import open_orders_recount
from tests.channels.factories import ChannelFactory, ChannelListingFactory
from tests.inventory.factories import LocationFactory, StockItemFactory, StockLevelFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def one_line_orders(prefix: str, sku: str, count: int, quantity: int = 1) -> list[OrderPage]:
    """One page per order, as a download finding them one after another."""
    at = datetime(2026, 12, 2, tzinfo=UTC)
    return [
        OrderPage(orders=(ExternalOrder(
            channel_order_id=f"{prefix}-{n}", channel_status="PAID", is_paid=True, is_cancelled=False,
            created_at=at, updated_at=at,
            items=(ExternalOrderItem(line_id=f"{prefix}-{n}-1", sku=sku, title=sku, quantity=quantity,
                                     unit_price=Decimal("12")),),
        ),))
        for n in range(count)
    ]


def test_a_kit_and_its_part_sold_at_once_on_two_channels_hold_every_unit_sold(monkeypatch):
    # The pushes the orders queue are counted, not run: here only what they would send matters.
    pushes = []
    monkeypatch.setattr("channels.tasks.inventory_push_task.apply_async", lambda args, **kw: pushes.append(args[0]))
    warehouse = LocationFactory(name="Main", is_default=True)
    mug, coaster, gift_set = (StockItemFactory(sku=sku) for sku in ("MUG", "COASTER", "GIFT-SET"))
    mug_pair = StockItemFactory(sku="MUG-PAIR")
    StockLevelFactory(stock_item=mug, location=warehouse, quantity=60)
    StockLevelFactory(stock_item=coaster, location=warehouse, quantity=100)
    kit_components_set(kit_id=gift_set.pk, components=[(mug.pk, 1), (coaster.pk, 2)])
    kit_components_set(kit_id=mug_pair.pk, components=[(mug.pk, 2)])
    amazon, ekm = ChannelFactory(name="Amazon UK"), ChannelFactory(name="EKM shop")
    listings = {
        (channel.name, item.sku): ChannelListingFactory(channel=channel, stock_item=item, channel_sku=item.sku)
        for channel in (amazon, ekm) for item in (mug, gift_set, mug_pair)
    }
    # Gift sets on Amazon, mugs and mug pairs on EKM, two workers per channel: three lines share the mugs.
    jobs = [
        (amazon.pk, one_line_orders("A", "GIFT-SET", 10)), (amazon.pk, one_line_orders("B", "GIFT-SET", 10)),
        (ekm.pk, one_line_orders("C", "MUG", 10)), (ekm.pk, one_line_orders("D", "MUG-PAIR", 10)),
    ]
    errors, barrier = [], threading.Barrier(len(jobs))

    def work(channel_id, pages):
        try:
            barrier.wait()
            channel = Channel.objects.get(pk=channel_id)
            for page in pages:
                orders_store_page(channel=channel, page=page)
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
    assert set(pushes) == {amazon.pk, ekm.pk}
    held = dict(StockLevel.objects.values_list("stock_item__sku", "in_open_orders"))
    # 20 gift sets take 20 mugs and 40 coasters; 10 mugs; 10 pairs take 20 mugs: 50 of the 60 mugs are sold.
    assert (held["MUG"], held["COASTER"], held["GIFT-SET"], held["MUG-PAIR"]) == (50, 40, 20, 10)
    assert open_orders_recount(correct=False) == []
    sent = {
        (channel.name, row.channel_sku): row.quantity
        for channel in (amazon, ekm) for row in listing_quantities(channel_id=channel.pk)
    }
    # 10 mugs left make 10 mugs, 10 gift sets (60 coasters make 30) and 5 pairs, on both channels.
    assert sent == {(name, sku): {"MUG": 10, "GIFT-SET": 10, "MUG-PAIR": 5}[sku] for name, sku in listings}
