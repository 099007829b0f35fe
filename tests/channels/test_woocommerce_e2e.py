"""A WooCommerce shop in the whole flow against the sandbox: its order reaches the other channels, a variation's new
stock goes in a batch, its webhooks are subscribed on save and a forged one is refused, despatch sets completed
with a note the customer sees. Tasks run inline (see tests/conftest.py)."""

import json
import time

import pytest

from channels.models import Channel, SyncRun
from channels.services import channel_create
from channels.sync.connections import channel_order_statuses
from channels.sync.inventory_push import inventory_push
from channels.sync.listings_download import listings_download
from channels.sync.order_download import orders_download
from channels.sync.order_hints import channel_webhook_token
from inventory.models import StockLevel
from orders.models import Order
from orders.services import order_cancel, order_process
from sandbox.control import default_credentials
from tests.channels.test_sync_e2e import connect as connect_other
from tests.inventory.factories import LocationFactory, StockItemFactory, StockLevelFactory
from tests.orders.factories import PostalServiceFactory

pytestmark = pytest.mark.django_db

SHOP = "woo-shop"
LISTINGS = [{"sku": "MUG", "title": "Mug", "quantity": 3, "price": "9.99"},
            {"sku": "TEE", "title": "T-shirt", "quantity": 0, "price": "15.00"},
            {"sku": "TEE-S", "title": "T-shirt S", "quantity": 1, "price": "15.00", "variant_of": "TEE"}]


def woo_channel(sandbox, *, create=Channel.objects.create, **settings) -> Channel:
    credentials = default_credentials("woocommerce", SHOP)
    sandbox.account("woocommerce", SHOP, credentials=credentials, **settings)
    channel = Channel(**{
        **Channel.defaults_for("woocommerce"), "name": "Woo shop", "kind": "woocommerce",
        "api_base_url": sandbox.channel_url("woocommerce", SHOP), "credentials": credentials,
        "send_cancellation_notes": True,
    })
    channel = create(channel=channel) if create is channel_create else create(**{
        field.name: getattr(channel, field.name) for field in Channel._meta.concrete_fields if field.name != "id"})
    channel.status_mappings.create(channel_status="processing", hub_status="paid")
    return channel


@pytest.fixture
def stock():
    warehouse = LocationFactory(name="Main warehouse", is_default=True)
    for sku, quantity in (("MUG", 10), ("TEE-S", 6)):
        StockLevelFactory(stock_item=StockItemFactory(sku=sku), location=warehouse, quantity=quantity)


@pytest.fixture
def shops(sandbox, stock):
    """The WooCommerce shop and an EKM shop listing the same mug, linked and pushed once."""
    woo = woo_channel(sandbox)
    ekm = connect_other(sandbox, "ekm")
    sandbox.listings("woocommerce", SHOP, LISTINGS)
    sandbox.listings("ekm", "ekm-shop", [{"sku": "MUG", "title": "Mug", "quantity": 3, "price": "9.99"}])
    for channel in (woo, ekm):
        listings_download(channel_id=channel.pk)
        inventory_push(channel_id=channel.pk, full=True)
    return {"woocommerce": woo, "ekm": ekm}


def stock_on(sandbox, kind, account, sku) -> int:
    return sandbox.received(kind, account)["stock"][sku]["quantity"]


def test_the_first_push_sends_the_variation_its_stock_in_a_batch(sandbox, shops):
    received = sandbox.received("woocommerce", SHOP)
    assert (received["stock"]["MUG"]["quantity"], received["stock"]["TEE-S"]["quantity"]) == (10, 6)
    assert received["calls"]["product_variations_batch"] == 1 and received["calls"]["products_batch"] == 1


def test_a_woocommerce_order_reserves_stock_and_the_other_channel_gets_the_new_quantity(
    sandbox, shops, django_capture_on_commit_callbacks
):
    sandbox.orders("woocommerce", SHOP, [{"items": [{"sku": "MUG", "quantity": 3, "price": "9.99"}]}])

    with django_capture_on_commit_callbacks(execute=True):
        run = orders_download(channel_id=shops["woocommerce"].pk)

    assert run.processed == 1
    assert StockLevel.objects.get(stock_item__sku="MUG").available == 7
    assert stock_on(sandbox, "ekm", "ekm-shop", "MUG") == 7
    assert stock_on(sandbox, "woocommerce", SHOP, "MUG") == 7
    order = Order.objects.get(channel=shops["woocommerce"])
    assert (order.channel_shipping_tag, order.currency) == ("Flat rate", "GBP")


def test_an_ekm_order_for_the_variation_reaches_woocommerce_through_its_parents_batch(
    sandbox, shops, django_capture_on_commit_callbacks
):
    sandbox.listings("ekm", "ekm-shop", [{"sku": "TEE-S", "title": "T-shirt S", "quantity": 0, "price": "15.00"}])
    listings_download(channel_id=shops["ekm"].pk)
    sandbox.orders("ekm", "ekm-shop", [{"items": [{"sku": "TEE-S", "quantity": 2, "price": "15.00"}], "paid": True}])

    with django_capture_on_commit_callbacks(execute=True):
        orders_download(channel_id=shops["ekm"].pk)

    received = sandbox.received("woocommerce", SHOP)
    assert received["stock"]["TEE-S"]["quantity"] == 4
    assert received["calls"]["product_variations_batch"] == 2


def test_processing_completes_the_woocommerce_order_with_a_note_carrying_the_tracking(
    sandbox, shops, django_capture_on_commit_callbacks
):
    royal_mail = PostalServiceFactory(name="Royal Mail", carrier_code="Royal Mail")
    sandbox.orders("woocommerce", SHOP, [{"items": [{"sku": "TEE-S", "quantity": 1, "price": "15.00"}]}])
    with django_capture_on_commit_callbacks(execute=True):
        orders_download(channel_id=shops["woocommerce"].pk)
    order = Order.objects.get()

    with django_capture_on_commit_callbacks(execute=True):
        order_process(order_id=order.pk, tracking_number="RM123456789GB", postal_service_id=royal_mail.pk)

    shipment, = sandbox.received("woocommerce", SHOP)["shipments"]
    assert "RM123456789GB" in shipment["note"] and "Royal Mail" in shipment["note"]
    on_shop, = sandbox.orders("woocommerce", SHOP)
    assert on_shop["status"] == "completed"
    order.refresh_from_db()
    assert order.despatch_sent_at and not order.despatch_error


def test_cancelling_here_sets_cancelled_on_woocommerce_with_the_reason(
    sandbox, shops, django_capture_on_commit_callbacks
):
    sandbox.orders("woocommerce", SHOP, [{"items": [{"sku": "MUG", "quantity": 1, "price": "9.99"}]}])
    with django_capture_on_commit_callbacks(execute=True):
        orders_download(channel_id=shops["woocommerce"].pk)

    with django_capture_on_commit_callbacks(execute=True):
        order_cancel(order_id=Order.objects.get().pk, reason="Out of stock")

    cancellation, = sandbox.received("woocommerce", SHOP)["cancellations"]
    assert "Out of stock" in cancellation["reason"]
    assert sandbox.orders("woocommerce", SHOP)[0]["status"] == "cancelled"


def test_a_forged_webhook_is_refused_logged_and_nothing_is_stored(client, sandbox, shops):
    channel = shops["woocommerce"]
    Channel.objects.filter(pk=channel.pk).update(credentials={**channel.credentials, "webhook_secret": "ours"})
    order_id, = sandbox.orders("woocommerce", SHOP, [{"items": [{"sku": "MUG", "quantity": 1}]}])
    body = json.dumps({"id": int(order_id)}).encode()

    answer = client.post(f"/webhooks/{channel.pk}/{channel_webhook_token(channel_id=channel.pk)}/", body,
                         content_type="application/json", HTTP_X_WC_WEBHOOK_TOPIC="order.created",
                         HTTP_X_WC_WEBHOOK_SOURCE="http://elsewhere/", HTTP_X_WC_WEBHOOK_SIGNATURE="Zm9yZ2Vk")

    assert answer.status_code == 400 and b"does not match" in answer.content
    assert not Order.objects.filter(channel=channel).exists()
    assert "order_get" not in sandbox.received("woocommerce", SHOP)["calls"]
    run = SyncRun.objects.filter(channel=channel, kind=SyncRun.Kind.ORDERS).first()
    assert run.status == SyncRun.Status.FAILED and "Signature does not match" in run.error


@pytest.mark.django_db(transaction=True)
def test_saving_the_channel_subscribes_its_webhooks_and_a_signed_delivery_brings_the_order_in(
    sandbox, live_server, settings, stock
):
    settings.STOCKLINE_PUBLIC_URL = live_server.url
    channel = woo_channel(sandbox, create=channel_create)
    sandbox.listings("woocommerce", SHOP, LISTINGS)
    channel.refresh_from_db()
    assert channel.credentials["webhook_secret"], "the hub made the secret the shop signs with"

    order_id, = sandbox.orders("woocommerce", SHOP, [{"items": [{"sku": "MUG", "quantity": 2, "price": "9.99"}]}])

    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and not Order.objects.filter(channel=channel).exists():
        time.sleep(0.1)
    order = Order.objects.get(channel=channel)
    assert order.channel_order_id == order_id
    assert StockLevel.objects.get(stock_item__sku="MUG").in_open_orders == 2


def test_the_status_mapping_offers_the_shops_own_statuses_and_the_watermark_follows_the_change_time(
    sandbox, stock, django_capture_on_commit_callbacks
):
    channel = woo_channel(sandbox, order_statuses=["awaiting-pickup"])
    sandbox.listings("woocommerce", SHOP, LISTINGS)
    order_id, = sandbox.orders("woocommerce", SHOP, [{"items": [{"sku": "MUG", "quantity": 1}],
                                                      "created_at": "2026-11-20T09:00:00Z"}])
    sandbox.order_status("woocommerce", SHOP, order_id, "awaiting-pickup")

    offered = channel_order_statuses(channel=channel)
    with django_capture_on_commit_callbacks(execute=True):
        orders_download(channel_id=channel.pk)

    assert {"awaiting-pickup", "on-hold", "completed"} <= set(offered)
    channel.refresh_from_db()
    changed_at = sandbox.orders("woocommerce", SHOP)[0]["updated_at"]
    assert channel.last_order_sync.strftime("%Y-%m-%dT%H:%M:%SZ") == changed_at
    assert channel.status_mappings.get(channel_status="awaiting-pickup").hub_status == "unmapped"
