"""The cancel form says whether the channel will be told and why not, offers the channel's own reason codes in
the seller's words, and the code chosen is what the channel receives."""

import pytest
from django.contrib import messages
from django.urls import reverse

from orders.models import Order
from orders.selectors import orders_channel_not_told_by_channel
from tests.channels.factories import AmazonChannelFactory, RakutenChannelFactory
from tests.orders.factories import OrderFactory, OrderItemFactory
from tests.orders.test_despatch_retry import downloaded_order, said, sandbox_channel

pytestmark = pytest.mark.django_db


def cancel_page(client, order):
    return client.get(reverse("admin:orders_order_cancel", args=(order.pk,)))


def cancel_from_its_page(client, order, reason):
    return client.post(reverse("admin:orders_order_cancel", args=(order.pk,)), {"apply": "1", "reason": reason},
                       follow=True)


def cancellations(sandbox, kind):
    return [(c["order_id"], c["reason"]) for c in sandbox.received(kind, f"{kind}-shop")["cancellations"]]


def test_with_cancellation_notes_off_the_form_warns_that_amazon_will_not_be_told(admin_client):
    # Seed 002: a new Amazon channel has only Mark as despatched and Update inventory on.
    channel = AmazonChannelFactory(name="Amazon UK", send_cancellation_notes=False)
    order = OrderFactory(channel=channel)

    response = cancel_page(admin_client, order)

    page = response.content.decode()
    assert "Amazon will not be told: Send cancellation notes is off on this channel" in page
    assert f'<a href="{reverse("admin:channels_channel_change", args=(channel.pk,))}">change it on the channel' in page
    assert "will be told (reason" not in page


def test_with_notes_off_any_reason_is_kept_and_the_message_says_amazon_was_not_told(admin_client):
    order = OrderFactory(channel=AmazonChannelFactory(name="Amazon UK", send_cancellation_notes=False))

    response = cancel_from_its_page(admin_client, order, "Buyer changed their mind")

    assert said(response) == [f"Order {order.channel_order_id} cancelled; Amazon not told: Send cancellation notes "
                              "is off on this channel."]
    assert [message.level for message in response.context["messages"]] == [messages.WARNING]
    order.refresh_from_db()
    assert (order.status, order.cancellation_reason, order.channel_told) == (
        Order.Status.CANCELLED, "Buyer changed their mind", Order.ChannelTold.NOT_NEEDED)


def test_with_notes_on_the_reason_is_a_choice_of_amazons_codes_in_the_sellers_words(admin_client):
    order = OrderFactory(channel=AmazonChannelFactory(name="Amazon UK", send_cancellation_notes=True))

    response = cancel_page(admin_client, order)

    page = response.content.decode()
    assert "Amazon will be told (reason: the one chosen below, from Amazon&#x27;s list)." in page
    choices = dict(response.context["form"].fields["reason"].choices)
    assert choices["NoInventory"] == "Out of stock"
    assert choices["BuyerCanceled"] == "The buyer cancelled"
    assert '<option value="NoInventory">Out of stock</option>' in page


def test_a_reason_must_be_chosen_when_amazon_is_told(admin_client):
    order = OrderFactory(channel=AmazonChannelFactory(name="Amazon UK", send_cancellation_notes=True))

    response = cancel_from_its_page(admin_client, order, "")

    assert response.context["form"].errors["reason"] == ["This field is required."]
    assert Order.objects.get(pk=order.pk).status == Order.Status.PAID


def test_amazon_receives_the_reason_code_chosen(sandbox, admin_client, django_capture_on_commit_callbacks):
    channel = sandbox_channel(sandbox, "amazon", send_cancellation_notes=True)
    order = downloaded_order(sandbox, channel)

    with django_capture_on_commit_callbacks(execute=True):
        response = cancel_from_its_page(admin_client, order, "BuyerCanceled")

    assert said(response) == [f"Order {order.channel_order_id} cancelled; telling Amazon…"]
    assert cancellations(sandbox, "amazon") == [(order.channel_order_id, "BuyerCanceled")]
    order.refresh_from_db()
    assert (order.cancellation_reason, order.channel_told) == ("BuyerCanceled", Order.ChannelTold.TOLD)


def test_rakuten_is_sent_the_reason_as_typed(sandbox, admin_client, django_capture_on_commit_callbacks):
    channel = sandbox_channel(sandbox, "rakuten", send_cancellation_notes=True)
    order = downloaded_order(sandbox, channel)

    page = cancel_page(admin_client, order).content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        cancel_from_its_page(admin_client, order, "Article endommagé, désolé")

    assert "Rakuten will be told (reason: the text below, which Rakuten passes on)." in page
    assert cancellations(sandbox, "rakuten") == [(order.channel_order_id, "Article endommagé, désolé")]


def test_amazon_and_rakuten_orders_together_each_get_the_reason_in_their_own_terms(admin_client):
    amazon = OrderFactory(channel=AmazonChannelFactory(name="Amazon UK", send_cancellation_notes=True))
    rakuten = OrderFactory(channel=RakutenChannelFactory(name="Rakuten FR", send_cancellation_notes=True))
    for order in (amazon, rakuten):
        OrderItemFactory(order=order)

    admin_client.post(reverse("admin:orders_order_changelist"), {
        "action": "cancel_orders", "apply": "1", "reason": "NoInventory", "_selected_action": [amazon.pk, rakuten.pk]})

    reasons = dict(Order.objects.values_list("channel__name", "cancellation_reason"))
    assert reasons == {"Amazon UK": "NoInventory", "Rakuten FR": "Out of stock"}


def test_a_cancellation_amazon_refused_is_listed_and_retried_with_the_reason_chosen(
    sandbox, admin_client, django_capture_on_commit_callbacks
):
    channel = sandbox_channel(sandbox, "amazon", send_cancellation_notes=True)
    order = downloaded_order(sandbox, channel)
    # Marked shipped on Amazon by mistake: Amazon will not cancel a shipped order.
    sandbox.order_status("amazon", "amazon-shop", order.channel_order_id, "SHIPPED")
    with django_capture_on_commit_callbacks(execute=True):
        cancel_from_its_page(admin_client, order, "NoInventory")
    order.refresh_from_db()
    assert order.channel_told == Order.ChannelTold.REFUSED
    assert "A shipped order cannot be cancelled" in order.cancellation_error
    assert orders_channel_not_told_by_channel() == {channel.pk: 1}

    sandbox.order_status("amazon", "amazon-shop", order.channel_order_id, "UNSHIPPED")
    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(reverse("admin:orders_order_retry", args=(order.pk,)), {"apply": "1"})

    assert cancellations(sandbox, "amazon") == [(order.channel_order_id, "NoInventory")]
    order.refresh_from_db()
    assert (order.channel_told, order.cancellation_error) == (Order.ChannelTold.TOLD, "")
    assert orders_channel_not_told_by_channel() == {}
