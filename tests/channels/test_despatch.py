"""Despatch and cancellation confirmations sent to the channel, with what the order shows afterwards."""

from datetime import timedelta

import pytest
from django.utils import timezone

from channels.connectors.base import ChannelAuthError, ChannelRejected, ChannelTransientError
from channels.models import Channel, OrderStatusMapping, SyncRun
from channels.sync.despatch import order_cancellation_confirm, order_despatch_confirm
from orders.models import Order
from orders.selectors import order_channel_told, orders_channel_not_told, orders_channel_not_told_count
from tests.channels.factories import AmazonChannelFactory, ChannelFactory, ShippingMappingFactory
from tests.orders.factories import OrderFactory, OrderItemFactory, PostalServiceFactory

pytestmark = pytest.mark.django_db


class RecordingConnector:
    def __init__(self, error=None):
        self.despatched, self.cancelled, self.error = [], [], error

    def confirm_despatch(self, order, shipment):
        if self.error:
            raise self.error
        self.despatched.append((order, shipment))

    def cancel_order(self, order, reason):
        if self.error:
            raise self.error
        self.cancelled.append((order, reason))


@pytest.fixture
def connector(monkeypatch):
    def install(**kwargs):
        fake = RecordingConnector(**kwargs)
        monkeypatch.setattr("channels.sync.despatch.channel_connector", lambda channel: fake)
        return fake
    return install


@pytest.fixture
def royal_mail():
    return PostalServiceFactory(name="Royal Mail 1st", carrier_code="Royal Mail",
                                tracking_url_template="https://rm.example/{tracking_number}")


def processed_order(channel, postal, **fields):
    order = OrderFactory(channel=channel, status=Order.Status.PROCESSED, tracking_number="RM1GB",
                         postal_service=postal, **fields)
    OrderItemFactory(order=order, channel_line_id="L1", channel_sku="MUG", quantity=2)
    return order


def test_amazon_is_sent_tracking_and_its_own_name_for_the_shipping_service(connector, royal_mail):
    amazon = AmazonChannelFactory(name="Amazon UK")
    ShippingMappingFactory(channel=amazon, tag="Standard", postal_service=royal_mail)
    order = processed_order(amazon, royal_mail)
    fake = connector()

    assert order_despatch_confirm(order_id=order.pk) == "sent"

    ref, shipment = fake.despatched[0]
    assert ref.channel_order_id == order.channel_order_id and ref.lines[0].quantity == 2
    assert (shipment.tracking_number, shipment.carrier, shipment.shipping_method) == ("RM1GB", "Royal Mail", "Standard")
    order.refresh_from_db()
    assert order.despatch_sent_at and not order.despatch_error
    assert order_despatch_confirm(order_id=order.pk) == "nothing to send"
    assert len(fake.despatched) == 1


def test_ekm_needs_the_shipped_status_mapped_and_the_order_says_so(connector, royal_mail):
    ekm = ChannelFactory(name="EKM shop", kind=Channel.Kind.EKM)
    order = processed_order(ekm, royal_mail)
    fake = connector()

    assert order_despatch_confirm(order_id=order.pk) == "failed"

    order.refresh_from_db()
    assert "Order Status Mapping" in order.despatch_error and not order.despatch_sent_at
    OrderStatusMapping.objects.create(channel=ekm, channel_status="DISPATCHED", hub_status=Order.Status.PROCESSED)
    assert order_despatch_confirm(order_id=order.pk) == "sent"
    assert fake.despatched[0][1].channel_status == "DISPATCHED"


def test_nothing_is_sent_when_mark_as_despatched_is_off(connector, royal_mail):
    channel = AmazonChannelFactory(mark_as_despatched=False)
    order = processed_order(channel, royal_mail)
    fake = connector()

    assert order_despatch_confirm(order_id=order.pk).startswith("not sent")
    assert fake.despatched == []


def test_a_channel_outage_is_retried_and_shown_on_the_order(connector, royal_mail):
    order = processed_order(AmazonChannelFactory(), royal_mail)
    connector(error=ChannelTransientError("HTTP 503 from the channel"))

    with pytest.raises(ChannelTransientError):
        order_despatch_confirm(order_id=order.pk)

    order.refresh_from_db()
    assert order.despatch_error.startswith("Will retry") and not order.despatch_sent_at
    assert SyncRun.objects.get().kind == SyncRun.Kind.DESPATCH


def test_an_auth_failure_flags_the_channel_for_reauthorisation(connector, royal_mail):
    channel = AmazonChannelFactory()
    order = processed_order(channel, royal_mail)
    connector(error=ChannelAuthError("Access to requested resource is denied."))

    assert order_despatch_confirm(order_id=order.pk) == "failed"
    channel.refresh_from_db()
    assert channel.needs_reauthorisation


def test_cancellation_notes_are_sent_only_when_switched_on(connector):
    channel = AmazonChannelFactory(send_cancellation_notes=False)
    order = OrderFactory(channel=channel, status=Order.Status.CANCELLED)
    fake = connector()

    assert order_cancellation_confirm(order_id=order.pk).startswith("not sent")
    Channel.objects.filter(pk=channel.pk).update(send_cancellation_notes=True)
    assert order_cancellation_confirm(order_id=order.pk, reason="Out of stock") == "sent"
    assert fake.cancelled[0][1] == "Out of stock"
    order.refresh_from_db()
    assert order.cancellation_sent_at


def test_what_the_channel_heard_is_kept_on_the_order_and_a_refusal_or_a_failed_try_counts_as_not_told(
    connector, royal_mail
):
    channel = AmazonChannelFactory(name="Amazon UK")
    told, refused, retrying = (processed_order(channel, royal_mail, channel_told=Order.ChannelTold.TELLING)
                               for _ in range(3))
    connector()
    order_despatch_confirm(order_id=told.pk)
    connector(error=ChannelRejected("InvalidInput: the tracking number is not valid"))
    order_despatch_confirm(order_id=refused.pk)
    connector(error=ChannelTransientError("HTTP 503 from the channel"))
    with pytest.raises(ChannelTransientError):
        order_despatch_confirm(order_id=retrying.pk)

    states = {order.pk: order_channel_told(order=order) for order in Order.objects.select_related("channel")}
    assert states[told.pk] == ("told", "Amazon told")
    assert states[refused.pk] == ("not told", "Amazon refused: InvalidInput: the tracking number is not valid")
    assert states[retrying.pk] == ("not told", "telling Amazon… Will retry: HTTP 503 from the channel")
    assert set(orders_channel_not_told().values_list("pk", flat=True)) == {refused.pk, retrying.pk}
    assert orders_channel_not_told_count() == 2


def test_a_despatch_still_telling_an_hour_on_was_lost_and_counts_as_not_told(royal_mail):
    channel = AmazonChannelFactory(name="Amazon UK")
    now = timezone.now()
    lost = processed_order(channel, royal_mail, channel_told=Order.ChannelTold.TELLING,
                           channel_told_at=now - timedelta(hours=2))
    on_its_way = processed_order(channel, royal_mail, channel_told=Order.ChannelTold.TELLING,
                                 channel_told_at=now - timedelta(minutes=5))

    assert list(orders_channel_not_told().values_list("pk", flat=True)) == [lost.pk]
    assert order_channel_told(order=lost) == ("not told", "Amazon not told: the message was lost on the way")
    assert order_channel_told(order=on_its_way) == ("telling", "telling Amazon…")


def test_a_channel_switched_off_since_processing_leaves_nothing_waiting(connector, royal_mail):
    order = processed_order(AmazonChannelFactory(mark_as_despatched=False), royal_mail,
                            channel_told=Order.ChannelTold.TELLING)
    fake = connector()

    order_despatch_confirm(order_id=order.pk)

    order.refresh_from_db()
    assert (order.channel_told, fake.despatched) == (Order.ChannelTold.NOT_NEEDED, [])
