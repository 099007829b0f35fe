"""Processing or cancelling is refused before any stock moves when the order's channel would refuse it."""

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from inventory.models import StockLevel
from orders.models import Order
from orders.services import order_cancel
from tests.channels.factories import AmazonChannelFactory, OrderStatusMappingFactory, RakutenChannelFactory
from tests.inventory.factories import StockLevelFactory
from tests.orders.factories import OrderItemFactory, PostalServiceFactory

pytestmark = pytest.mark.django_db


def order_on(channel):
    level = StockLevelFactory(quantity=5, in_open_orders=1)
    return OrderItemFactory(stock_item=level.stock_item, order__channel=channel,
                            order__fulfilment_location=level.location).order, level


def process_from_its_page(client, order, **data):
    url = reverse("admin:orders_order_process", args=(order.pk,))
    return client.post(url, {"apply": "1", **data})


def test_an_amazon_order_without_tracking_is_refused_next_to_the_field_and_nothing_moves(admin_client):
    order, level = order_on(AmazonChannelFactory(name="Amazon UK"))
    service = PostalServiceFactory(name="Royal Mail 48", carrier_code="Royal Mail")

    response = process_from_its_page(admin_client, order, postal_service=service.pk, tracking_number="")

    form = response.context["form"]
    assert form.errors["tracking_number"] == [
        "Amazon refuses a despatch without a tracking number: type the parcel's tracking number."
    ]
    order.refresh_from_db()
    assert order.status == Order.Status.PAID
    assert StockLevel.objects.get(pk=level.pk).quantity == 5


def test_the_same_order_with_tracking_is_processed(admin_client):
    order, level = order_on(AmazonChannelFactory(name="Amazon UK"))
    service = PostalServiceFactory(name="Royal Mail 48", carrier_code="Royal Mail")

    process_from_its_page(admin_client, order, postal_service=service.pk, tracking_number="RM123456785GB")

    order.refresh_from_db()
    assert order.status == Order.Status.PROCESSED
    assert StockLevel.objects.get(pk=level.pk).quantity == 4


def test_a_carrier_off_rakutens_list_needs_a_tracking_url_for_autre(admin_client):
    order, _ = order_on(RakutenChannelFactory(name="Rakuten FR"))
    courier = PostalServiceFactory(name="Local courier", carrier_code="Bob's Vans", tracking_url_template="")

    response = process_from_its_page(admin_client, order, postal_service=courier.pk, tracking_number="BV-1")

    message = response.context["form"].errors["postal_service"][0]
    assert "“Bob's Vans” is not on Rakuten's carrier list, so it is sent as “Autre”" in message
    assert Order.objects.get(pk=order.pk).status == Order.Status.PAID


def test_a_carrier_on_rakutens_list_goes_without_a_tracking_url(admin_client):
    order, _ = order_on(RakutenChannelFactory(name="Rakuten FR"))
    colissimo = PostalServiceFactory(name="Colissimo", carrier_code="Colissimo", tracking_url_template="")

    process_from_its_page(admin_client, order, postal_service=colissimo.pk, tracking_number="6A12345678901")

    assert Order.objects.get(pk=order.pk).status == Order.Status.PROCESSED


def test_an_ekm_order_needs_the_shipped_status_mapped_first(admin_client):
    from tests.channels.factories import ChannelFactory

    channel = ChannelFactory(name="EKM shop")
    order, _ = order_on(channel)

    refused = process_from_its_page(admin_client, order, tracking_number="T1")
    OrderStatusMappingFactory(channel=channel, channel_status="DISPATCHED", hub_status=Order.Status.PROCESSED)
    process_from_its_page(admin_client, order, tracking_number="T1")

    assert "Order Status Mapping first" in refused.content.decode()
    assert Order.objects.get(pk=order.pk).status == Order.Status.PROCESSED


def test_nothing_is_checked_when_the_channel_is_not_told(admin_client):
    order, _ = order_on(AmazonChannelFactory(name="Amazon UK", mark_as_despatched=False))

    process_from_its_page(admin_client, order, tracking_number="")

    assert Order.objects.get(pk=order.pk).status == Order.Status.PROCESSED


def test_several_orders_report_each_refusal_by_order(admin_client):
    channel = AmazonChannelFactory(name="Amazon UK")
    first, _ = order_on(channel)
    second, _ = order_on(channel)
    url = reverse("admin:orders_order_changelist")

    response = admin_client.post(url, {"action": "process_orders", "apply": "1",
                                       "_selected_action": [first.pk, second.pk]}, follow=True)

    page = response.content.decode()
    assert f"{first.channel_order_id}: Amazon refuses a despatch without a tracking number" in page
    assert f"{second.channel_order_id}: Amazon refuses a despatch without a tracking number" in page


def cancel_from_its_page(client, order, reason):
    return client.post(reverse("admin:orders_order_cancel", args=(order.pk,)), {"apply": "1", "reason": reason})


def test_a_free_text_reason_amazon_does_not_know_is_refused_next_to_the_field(admin_client):
    order, level = order_on(AmazonChannelFactory(name="Amazon UK", send_cancellation_notes=True))

    response = cancel_from_its_page(admin_client, order, "Cancelled by the seller")

    assert response.context["form"].errors["reason"] == [
        "Select a valid choice. Cancelled by the seller is not one of the available choices."
    ]
    assert Order.objects.get(pk=order.pk).status == Order.Status.PAID
    assert StockLevel.objects.get(pk=level.pk).in_open_orders == 1


def test_the_service_refuses_a_reason_amazon_does_not_know_and_lists_its_reasons():
    order, level = order_on(AmazonChannelFactory(name="Amazon UK", send_cancellation_notes=True))

    with pytest.raises(ValidationError) as refused:
        order_cancel(order_id=order.pk, reason="Cancelled by the seller")

    message = refused.value.message_dict["reason"][0]
    assert message.startswith("Amazon is told why an order is cancelled with one of its reasons")
    assert "NoInventory (Out of stock)" in message
    assert StockLevel.objects.get(pk=level.pk).in_open_orders == 1


def test_one_of_amazons_reasons_cancels_the_order(admin_client):
    order, level = order_on(AmazonChannelFactory(name="Amazon UK", send_cancellation_notes=True))

    cancel_from_its_page(admin_client, order, "NoInventory")

    assert Order.objects.get(pk=order.pk).status == Order.Status.CANCELLED
    assert StockLevel.objects.get(pk=level.pk).in_open_orders == 0


def test_any_reason_goes_when_amazon_is_not_told(admin_client):
    order, _ = order_on(AmazonChannelFactory(name="Amazon UK", send_cancellation_notes=False))

    cancel_from_its_page(admin_client, order, "Buyer changed their mind")

    assert Order.objects.get(pk=order.pk).status == Order.Status.CANCELLED
