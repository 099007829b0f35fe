"""Despatch you can trust, through the sandbox: the channel's needs checked before anything is sent, a message
that says what the channel heard, orders the channel was not told listed and counted, and a retry after the
tracking number or carrier is fixed that tells the channel, through the same path as processing."""

import pytest
from django.urls import reverse
from django.utils import timezone

from channels.models import Channel
from channels.sync.order_download import orders_download
from orders.models import Order
from orders.selectors import orders_channel_not_told, orders_channel_not_told_count
from orders.services import order_process
from tests.admin.pages import change_form_data
from tests.channels.test_sync_e2e import connect
from tests.migrations import at_migrations
from tests.orders.factories import PostalServiceFactory

PAID = {"amazon": "UNSHIPPED", "ekm": "PENDING", "rakuten": "ACCEPTED"}
SHIPPED = {"amazon": "SHIPPED", "ekm": "DISPATCHED", "rakuten": "SHIPPED"}


def sandbox_channel(sandbox, kind: str, **settings) -> Channel:
    """A sandbox account and the hub channel talking to it, with the seeds' defaults for its kind (the
    end-to-end tests' set-up, cancellation notes as the seeds leave them)."""
    notes = Channel.defaults_for(kind).get(
        "send_cancellation_notes", Channel._meta.get_field("send_cancellation_notes").get_default()
    )
    return connect(sandbox, kind, **{"send_cancellation_notes": notes, **settings})


def downloaded_order(sandbox, channel: Channel, **order) -> Order:
    """An order placed on the channel (one mug, paid) and downloaded into the hub."""
    [order_id] = sandbox.orders(channel.kind, f"{channel.kind}-shop", [
        {"items": [{"sku": "MUG", "quantity": 1, "price": "12.50"}], "paid": True, **order}])
    orders_download(channel_id=channel.pk)
    return Order.objects.get(channel=channel, channel_order_id=order_id)


def shipments(sandbox, kind: str) -> list[dict]:
    return sandbox.received(kind, f"{kind}-shop")["shipments"]


def process_from_its_page(client, order, **data):
    return client.post(reverse("admin:orders_order_process", args=(order.pk,)), {"apply": "1", **data},
                       follow=True)


def retry_from_its_page(client, order, **data):
    return client.post(reverse("admin:orders_order_retry", args=(order.pk,)), {"apply": "1", **data}, follow=True)


def said(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


def not_told_list(client) -> str:
    return client.get(reverse("admin:orders_order_changelist"), {"channel_told": "not_told"}).content.decode()


@pytest.fixture
def colissimo():
    return PostalServiceFactory(name="Colissimo", carrier_code="Colissimo", tracking_url_template="")


@pytest.mark.django_db
def test_a_rakuten_order_without_tracking_is_refused_next_to_the_field_before_anything_is_sent(
    sandbox, admin_client, colissimo
):
    order = downloaded_order(sandbox, sandbox_channel(sandbox, "rakuten"))

    response = process_from_its_page(admin_client, order, postal_service=colissimo.pk, tracking_number="")

    assert response.context["form"].errors["tracking_number"] == [
        "Rakuten refuses a despatch without a tracking number: type the parcel's tracking number."
    ]
    assert Order.objects.get(pk=order.pk).status == Order.Status.PAID
    assert shipments(sandbox, "rakuten") == []


# Real commits: the despatch is sent on commit (inline here), so the message can say what Rakuten answered.
@pytest.mark.django_db(transaction=True)
def test_processing_says_rakuten_was_told_and_rakuten_has_the_tracking(sandbox, admin_client, colissimo):
    order = downloaded_order(sandbox, sandbox_channel(sandbox, "rakuten"))

    response = process_from_its_page(admin_client, order, postal_service=colissimo.pk, tracking_number="6A1")

    assert said(response) == [f"Order {order.channel_order_id} processed; Rakuten told."]
    assert [(s["order_id"], s["tracking_number"], s["carrier"]) for s in shipments(sandbox, "rakuten")] == [
        (order.channel_order_id, "6A1", "Colissimo")]
    assert Order.objects.get(pk=order.pk).channel_told == Order.ChannelTold.TOLD


@pytest.mark.django_db(transaction=True)
def test_a_refusal_by_rakuten_is_said_and_the_order_is_listed_as_not_told(sandbox, admin_client, colissimo):
    order = downloaded_order(sandbox, sandbox_channel(sandbox, "rakuten"))
    # The buyer cancelled on Rakuten after the last download: Rakuten refuses to ship it.
    sandbox.order_status("rakuten", "rakuten-shop", order.channel_order_id, "CANCELLED")

    response = process_from_its_page(admin_client, order, postal_service=colissimo.pk, tracking_number="6A1")

    [message] = said(response)
    assert message.startswith(f"Order {order.channel_order_id} processed; Rakuten refused: ")
    assert "cannot be shipped" in message
    assert order.channel_order_id in not_told_list(admin_client)
    assert orders_channel_not_told_count() == 1
    page = admin_client.get(reverse("admin:orders_order_change", args=(order.pk,))).content.decode()
    assert "Retry telling the channel" in page and "Rakuten refused: " in page


@pytest.mark.django_db
def test_fixing_the_carrier_and_retrying_tells_rakuten(
    sandbox, admin_client, colissimo, django_capture_on_commit_callbacks
):
    order = downloaded_order(sandbox, sandbox_channel(sandbox, "rakuten"))
    # Processed by a path that does not ask Rakuten's rules first (an FBA shipment, or the hub before it
    # checked them): Amazon's carrier, which Rakuten does not know, and no tracking URL to send it as "Autre".
    amazon_logistics = PostalServiceFactory(name="Amazon Logistics", carrier_code="AMZN_UK", tracking_url_template="")
    with django_capture_on_commit_callbacks(execute=True):
        order_process(order_id=order.pk, tracking_number="QA123", postal_service_id=amazon_logistics.pk,
                      check_despatch=False)
    order.refresh_from_db()
    assert order.channel_told == Order.ChannelTold.REFUSED and "AMZN_UK" in order.despatch_error
    assert order.channel_order_id in not_told_list(admin_client)

    with django_capture_on_commit_callbacks(execute=True):
        retry_from_its_page(admin_client, order, postal_service=colissimo.pk, tracking_number="6A99")

    assert [(s["tracking_number"], s["carrier"]) for s in shipments(sandbox, "rakuten")] == [("6A99", "Colissimo")]
    order.refresh_from_db()
    assert (order.channel_told, order.despatch_error, order.tracking_number) == (Order.ChannelTold.TOLD, "", "6A99")
    assert order.channel_order_id not in not_told_list(admin_client)
    assert orders_channel_not_told_count() == 0


@pytest.mark.django_db
def test_the_retry_checks_the_fix_like_processing_and_sends_nothing_while_it_is_wrong(
    sandbox, admin_client, django_capture_on_commit_callbacks
):
    order = downloaded_order(sandbox, sandbox_channel(sandbox, "rakuten"))
    vans = PostalServiceFactory(name="Bob's Vans", carrier_code="Bob's Vans", tracking_url_template="")
    with django_capture_on_commit_callbacks(execute=True):
        order_process(order_id=order.pk, tracking_number="BV-1", postal_service_id=vans.pk, check_despatch=False)

    with django_capture_on_commit_callbacks(execute=True):
        response = retry_from_its_page(admin_client, order, tracking_number="BV-2")

    assert "“Bob's Vans” is not on Rakuten's carrier list" in response.context["form"].errors["postal_service"][0]
    assert shipments(sandbox, "rakuten") == []
    order.refresh_from_db()
    assert (order.channel_told, order.tracking_number) == (Order.ChannelTold.REFUSED, "BV-1")


@pytest.mark.django_db
def test_processing_again_is_refused_and_points_to_the_retry(
    sandbox, admin_client, django_capture_on_commit_callbacks
):
    order = downloaded_order(sandbox, sandbox_channel(sandbox, "rakuten"))
    vans = PostalServiceFactory(name="Bob's Vans", carrier_code="Bob's Vans", tracking_url_template="")
    with django_capture_on_commit_callbacks(execute=True):
        order_process(order_id=order.pk, tracking_number="BV-1", postal_service_id=vans.pk, check_despatch=False)

    response = admin_client.post(reverse("admin:orders_order_changelist"), {
        "action": "process_orders", "apply": "1", "_selected_action": [order.pk]}, follow=True)

    assert said(response) == [f"{order.channel_order_id}: Order {order.channel_order_id} is already processed "
                              "(shipped). Rakuten was not told: use “Retry telling the channel”."]


@pytest.mark.django_db
def test_the_bulk_retry_sends_each_order_again_with_its_own_tracking(
    sandbox, admin_client, colissimo, django_capture_on_commit_callbacks
):
    channel = sandbox_channel(sandbox, "rakuten")
    first, second = downloaded_order(sandbox, channel), downloaded_order(sandbox, channel)
    vans = PostalServiceFactory(name="Bob's Vans", carrier_code="Bob's Vans", tracking_url_template="")
    with django_capture_on_commit_callbacks(execute=True):
        for order, tracking in ((first, "T-1"), (second, "T-2")):
            order_process(order_id=order.pk, tracking_number=tracking, postal_service_id=vans.pk,
                          check_despatch=False)

    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(reverse("admin:orders_order_changelist"), {
            "action": "retry_telling_channel", "apply": "1", "postal_service": colissimo.pk,
            "_selected_action": [first.pk, second.pk]})

    assert sorted((s["order_id"], s["tracking_number"]) for s in shipments(sandbox, "rakuten")) == sorted(
        [(first.channel_order_id, "T-1"), (second.channel_order_id, "T-2")])
    assert orders_channel_not_told_count() == 0


@pytest.mark.django_db
def test_an_order_told_already_is_not_retried(sandbox, admin_client, colissimo, django_capture_on_commit_callbacks):
    order = downloaded_order(sandbox, sandbox_channel(sandbox, "rakuten"))
    with django_capture_on_commit_callbacks(execute=True):
        order_process(order_id=order.pk, tracking_number="6A1", postal_service_id=colissimo.pk)

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(reverse("admin:orders_order_changelist"), {
            "action": "retry_telling_channel", "apply": "1", "_selected_action": [order.pk]}, follow=True)

    assert said(response) == [f"{order.channel_order_id}: Order {order.channel_order_id}: nothing to retry "
                              "(Rakuten: told)."]
    assert len(shipments(sandbox, "rakuten")) == 1


@pytest.mark.django_db(transaction=True)
def test_orders_refused_before_the_upgrade_are_listed_as_not_told_after_it():
    with at_migrations([("orders", "0008_fba_outbound_to_channels")]) as apps:
        channel = apps.get_model("channels", "Channel").objects.create(name="Rakuten FR", kind="rakuten")
        order = apps.get_model("orders", "Order")
        at = timezone.now()
        placed = {"channel": channel, "received_at": at, "status": "processed", "processed_at": at}
        order.objects.create(channel_order_id="refused", despatch_error="sale refused: Rakuten needs a tracking "
                             "number for a despatch", **placed)
        order.objects.create(channel_order_id="retrying", despatch_error="Will retry: HTTP 503", **placed)
        order.objects.create(channel_order_id="told", despatch_sent_at=at, **placed)
        order.objects.create(channel_order_id="queued", **placed)
        order.objects.create(channel_order_id="open", channel=channel, received_at=at, status="paid")

    told = dict(Order.objects.values_list("channel_order_id", "channel_told"))
    assert told == {"refused": "refused", "retrying": "telling", "told": "told", "queued": "telling",
                    "open": "not_needed"}
    assert set(orders_channel_not_told().values_list("channel_order_id", flat=True)) == {"refused", "retrying"}


@pytest.mark.django_db
def test_saving_a_new_tracking_number_on_the_order_page_points_to_the_retry(
    sandbox, admin_client, django_capture_on_commit_callbacks
):
    order = downloaded_order(sandbox, sandbox_channel(sandbox, "rakuten"))
    vans = PostalServiceFactory(name="Bob's Vans", carrier_code="Bob's Vans", tracking_url_template="")
    with django_capture_on_commit_callbacks(execute=True):
        order_process(order_id=order.pk, tracking_number="BV-1", postal_service_id=vans.pk, check_despatch=False)
    order.refresh_from_db()
    url = reverse("admin:orders_order_change", args=(order.pk,))

    response = admin_client.post(url, change_form_data(admin_client, url, tracking_number="BV-2"), follow=True)

    assert (f"Order {order.channel_order_id}: the channel has not been told yet; use “Retry telling the channel” "
            "to send it the new details.") in said(response)
    assert Order.objects.get(pk=order.pk).tracking_number == "BV-2"
    assert shipments(sandbox, "rakuten") == []
