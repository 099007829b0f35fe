"""Sending an order to Amazon's multi-channel fulfilment holds no row lock while Amazon is asked.

Amazon stands in as a fake connector here: these tests are about what the hub does around the call (the
sandbox's fulfilment API is tested in test_fba.py).
"""

import threading

import pytest
from django.core.exceptions import ValidationError
from django.db import DatabaseError, connection, transaction

from channels.connectors.base import ChannelRejected, ChannelTransientError, FulfilmentState
from channels.models import FulfilmentOrder
from channels.services import channel_create
from channels.sync.fba import outbound
from channels.sync.fba.outbound import fba_outbound_follow, fba_outbound_submit
from inventory.models import Location
from orders.models import Order
from orders.services import order_cancel, order_reallocate
from tests.channels.factories import AmazonChannelFactory
from tests.inventory.factories import LocationFactory, StockItemFactory, StockLevelFactory
from tests.orders.factories import OrderFactory, OrderItemFactory


class FakeAmazon:
    """Runs `during` while the fulfilment order is being created, then answers as told."""

    def __init__(self, *, during=lambda: None, answer=None, known=()):
        self.during, self.answer, self.known, self.sent = during, answer, set(known), []

    def create_fulfilment_order(self, request):
        self.sent.append(request.fulfilment_order_id)
        self.during()
        if self.answer is not None:
            raise self.answer
        self.known.add(request.fulfilment_order_id)

    def fulfilment_order(self, fulfilment_order_id):
        if fulfilment_order_id not in self.known:
            raise ChannelRejected("not found")
        return FulfilmentState(fulfilment_order_id=fulfilment_order_id, status="RECEIVED")


@pytest.fixture
def queued_order():
    amazon = channel_create(channel=AmazonChannelFactory.build(name="Amazon UK", fba_enabled=True))
    fba_location = Location.objects.get(kind=Location.Kind.EXTERNAL, fulfilment__channel=amazon)
    mug = StockItemFactory(sku="MUG")
    StockLevelFactory(stock_item=mug, location=fba_location, quantity=5, in_open_orders=1)
    StockLevelFactory(stock_item=mug, location=LocationFactory(name="Main", is_default=True), quantity=5)
    order = OrderFactory(fulfilment_location=fba_location, channel__mark_as_despatched=False)
    OrderItemFactory(order=order, stock_item=mug, quantity=1)
    # Queued without the reallocation that would send it at once: each test sends it itself.
    FulfilmentOrder.objects.create(order=order, status=FulfilmentOrder.Status.QUEUED, fulfilment_order_id="SL-1-261201")
    return order


def sent(order) -> FulfilmentOrder:
    return FulfilmentOrder.objects.get(order=order)


def use(monkeypatch, amazon: FakeAmazon) -> FakeAmazon:
    monkeypatch.setattr(outbound, "channel_connector", lambda channel: amazon)
    return amazon


@pytest.mark.django_db
def test_staff_cannot_cancel_or_move_an_order_while_amazon_is_being_asked_and_it_is_sent_once(
    queued_order, monkeypatch
):
    refusals = []

    def staff_act():
        warehouse = Location.objects.get(name="Main")
        for act in (lambda: order_cancel(order_id=queued_order.pk),
                    lambda: order_reallocate(order_id=queued_order.pk, location_id=warehouse.pk)):
            with pytest.raises(ValidationError) as refused:
                act()
            refusals.append(" ".join(refused.value.messages))

    amazon = use(monkeypatch, FakeAmazon(during=staff_act))

    assert fba_outbound_submit(order_id=queued_order.pk) == "sent"

    assert refusals == [f"Order {queued_order.channel_order_id} is being sent to Amazon right now: try again in a "
                        "minute, once Amazon has answered."] * 2
    queued_order.refresh_from_db()
    assert queued_order.is_open and sent(queued_order).status == FulfilmentOrder.Status.RECEIVED
    assert amazon.sent == ["SL-1-261201"]
    assert fba_outbound_submit(order_id=queued_order.pk) == "nothing to send"


@pytest.mark.django_db
def test_a_transient_failure_queues_the_order_again_without_sending_a_second_task(
    queued_order, monkeypatch, django_capture_on_commit_callbacks
):
    use(monkeypatch, FakeAmazon(answer=ChannelTransientError("HTTP 503")))

    with django_capture_on_commit_callbacks() as queued_tasks, pytest.raises(ChannelTransientError):
        fba_outbound_submit(order_id=queued_order.pk)

    queued_order.refresh_from_db()
    assert (sent(queued_order).status, sent(queued_order).error) == (
        FulfilmentOrder.Status.QUEUED, "Will retry: HTTP 503")
    # The task retries itself: a second one would double the calls at every failure.
    assert queued_tasks == []


@pytest.mark.django_db
def test_an_order_whose_sender_died_mid_call_is_sent_again_by_the_next_follow_and_recorded_once(
    queued_order, monkeypatch
):
    # The worker died after Amazon took the order, before it recorded the answer.
    FulfilmentOrder.objects.filter(order=queued_order).update(status=FulfilmentOrder.Status.SENDING)
    amazon = use(monkeypatch, FakeAmazon(answer=ChannelRejected("duplicate SellerFulfillmentOrderId"),
                                         known={"SL-1-261201"}))

    fba_outbound_follow(channel_id=queued_order.fulfilment_location.fulfilment.channel_id)

    queued_order.refresh_from_db()
    assert (sent(queued_order).status, sent(queued_order).error) == (FulfilmentOrder.Status.RECEIVED, "")
    assert amazon.sent == ["SL-1-261201"]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_no_row_lock_is_held_while_amazon_is_asked(queued_order, monkeypatch):
    seen = []

    def another_worker_locks_the_order():
        def lock():
            try:
                with transaction.atomic():
                    Order.objects.select_for_update(nowait=True).get(pk=queued_order.pk)
                seen.append("locked")
            except DatabaseError as exc:
                seen.append(type(exc).__name__)
            finally:
                connection.close()

        other = threading.Thread(target=lock)
        other.start()
        other.join()

    use(monkeypatch, FakeAmazon(during=another_worker_locks_the_order))

    assert fba_outbound_submit(order_id=queued_order.pk) == "sent"
    assert seen == ["locked"]


@pytest.mark.django_db
def test_an_order_cancelled_before_it_was_sent_to_amazon_is_never_sent(queued_order, monkeypatch):
    amazon = use(monkeypatch, FakeAmazon())

    order_cancel(order_id=queued_order.pk)

    assert fba_outbound_submit(order_id=queued_order.pk) == "nothing to send"
    assert amazon.sent == [] and not FulfilmentOrder.objects.filter(order=queued_order).exists()


@pytest.mark.django_db
def test_an_order_moved_back_to_a_warehouse_before_it_was_sent_to_amazon_is_never_sent(queued_order, monkeypatch):
    amazon = use(monkeypatch, FakeAmazon())

    order_reallocate(order_id=queued_order.pk, location_id=Location.objects.get(name="Main").pk)

    assert fba_outbound_submit(order_id=queued_order.pk) == "nothing to send"
    assert amazon.sent == [] and not FulfilmentOrder.objects.filter(order=queued_order).exists()
