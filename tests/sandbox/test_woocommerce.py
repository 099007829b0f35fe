"""The WooCommerce connector against the sandbox's shop: OAuth 1.0a over plain http, pages with WordPress's
headers, batches of at most 100, webhooks signed with the hub's secret, notes and Shipment Tracking."""

import time
from datetime import UTC, datetime
from decimal import Decimal

import pytest
import requests

from channels.connectors.base import ChannelAuthError, OrderRef, Shipment, StockUpdate
from channels.connectors.woocommerce.mapper import NOT_MANAGED, webhook_signature
from sandbox.control import default_credentials
from tests.channels.connectors.conftest import MemoryStore
from tests.sandbox.test_connectors_e2e import all_listings, all_orders, connector_for
from tests.sandbox.test_ekm_webhooks import Receiver

SHOP = "main"


@pytest.fixture
def woo(sandbox):
    return connector_for(sandbox, "woocommerce", SHOP)


def catalogue(sandbox, count=0, **settings):
    if settings:
        sandbox.account("woocommerce", SHOP, **settings)
    items = [{"sku": "MUG", "title": "Mug", "quantity": 3, "price": "9.99"},
             {"sku": "TEE", "title": "T-shirt", "quantity": 0, "price": "15.00"},
             {"sku": "TEE-S", "title": "T-shirt S", "quantity": 2, "price": "15.00", "variant_of": "TEE"},
             {"sku": "TEE-M", "title": "T-shirt M", "quantity": 5, "price": "16.00", "variant_of": "TEE"},
             *({"sku": f"SKU-{n:03d}", "quantity": n % 7, "price": "1.00"} for n in range(count))]
    return {row["sku"]: row for row in sandbox.listings("woocommerce", SHOP, items)}


def test_test_says_the_woocommerce_version(woo):
    result = woo.test_connection()

    assert result.ok and "WooCommerce 9.9.7" in result.message


def test_the_sandbox_refuses_basic_credentials_over_plain_http_and_a_replayed_nonce(sandbox, woo):
    url = sandbox.channel_url("woocommerce", SHOP) + "/wp-json/wc/v3/products"
    basic = requests.get(url, auth=("ck_mainkey", "cs_main-secret"), timeout=5)
    assert basic.status_code == 401 and basic.json()["code"] == "woocommerce_rest_cannot_view"

    signed = woo.client._signed("GET", "/wp-json/wc/v3/products", {})
    assert requests.get(url, params=signed, timeout=5).status_code == 200
    replayed = requests.get(url, params=signed, timeout=5)
    assert replayed.status_code == 401 and "nonce" in replayed.json()["message"]


def test_listings_are_simple_products_and_each_variation_paged_with_progress(sandbox, woo):
    catalogue(sandbox, count=150)

    pages = list(woo.fetch_listings())
    listings = {listing.channel_sku: listing for page in pages for listing in page.listings}

    assert [(page.done, page.total) for page in pages] == [(100, 152), (152, 152)]
    assert "TEE" not in listings, "a variable product sells through its variations"
    assert (listings["TEE-M"].quantity, listings["TEE-M"].price) == (5, Decimal("16.00"))
    assert listings["TEE-M"].external_id == f"{listings['TEE-S'].external_id.split('/')[0]}/" \
                                            f"{listings['TEE-M'].external_id.split('/')[1]}"
    assert listings["MUG"].quantity == 3 and "/" not in listings["MUG"].external_id
    assert len(listings) == 153


def test_a_product_without_managed_stock_is_reported_and_never_counted_pushed(sandbox, woo):
    catalogue(sandbox, stock_not_managed=["MUG"])

    errors = [error for page in woo.fetch_listings() for error in page.errors]
    listings = {listing.channel_sku: listing for listing in all_listings(woo)}
    result, = woo.push_listings([StockUpdate("MUG", listings["MUG"].external_id, quantity=8)])

    assert [(error.record_id, error.reason) for error in errors] == [("MUG", NOT_MANAGED)]
    assert listings["MUG"].quantity is None
    assert not result.accepted and "not managed" in result.message
    assert "MUG" not in sandbox.received("woocommerce", SHOP)["stock"]


def test_stock_and_price_go_in_batches_of_100_with_variations_through_their_parent(sandbox, woo):
    catalogue(sandbox, count=150)
    listings = all_listings(woo)
    updates = [StockUpdate(listing.channel_sku, listing.external_id, quantity=9,
                           price=Decimal("4.50") if listing.channel_sku == "TEE-S" else None) for listing in listings]
    updates.append(StockUpdate("GONE", "999999", quantity=1))

    results = {result.channel_sku: result for result in woo.push_listings(updates)}

    received = sandbox.received("woocommerce", SHOP)
    assert all(result.accepted for sku, result in results.items() if sku != "GONE")
    assert not results["GONE"].accepted and "invalid_id" in results["GONE"].message
    assert received["stock"]["TEE-S"]["quantity"] == 9 and received["stock"]["TEE-S"]["price"] == "4.50"
    assert received["calls"]["products_batch"] == 2, "152 simple products and one unknown id: two batches"
    assert received["calls"]["product_variations_batch"] == 1


def test_the_sandbox_refuses_a_batch_of_more_than_100(sandbox, woo):
    catalogue(sandbox, count=101)
    with pytest.raises(Exception, match="more than 100"):
        woo.client.call("POST", "/wp-json/wc/v3/products/batch", operation="products_batch",
                        body={"update": [{"id": n, "stock_quantity": 1} for n in range(1, 102)]})


def test_orders_changed_since_the_watermark_are_downloaded_with_status_shipping_and_tax(sandbox, woo):
    catalogue(sandbox)
    sandbox.orders("woocommerce", SHOP, [
        {"items": [{"sku": "TEE-M", "quantity": 2, "price": "16.00"}], "created_at": "2026-03-01T10:00:00Z"},
        {"items": [{"sku": "MUG", "quantity": 1, "price": "9.99"}], "paid": False, "created_at": "2026-03-02T10:00:00Z",
         "shipping_tag": "Royal Mail Tracked 24"},
    ])

    orders, errors = all_orders(woo, since=datetime(2026, 3, 1, 12, tzinfo=UTC))

    assert errors == []
    order, = orders
    assert (order.channel_status, order.is_paid, order.shipping_tag) == ("pending", False, "Royal Mail Tracked 24")
    assert order.items[0].sku == "MUG" and order.items[0].unit_price == Decimal("9.99")
    assert order.total == Decimal("13.49") and order.currency == "GBP"
    assert order.tax == Decimal("2.25")
    assert "shop-hold" not in woo.order_statuses() and "on-hold" in woo.order_statuses()


def test_webhooks_are_created_on_subscribe_once_per_topic_and_deliveries_check_out(sandbox, woo):
    catalogue(sandbox)
    receiver = Receiver()
    try:
        first = woo.webhooks_subscribe(receiver.url)
        again = woo.webhooks_subscribe(receiver.url)
        sandbox.orders("woocommerce", SHOP, [{"items": [{"sku": "MUG", "quantity": 1}]}])
        delivered = receiver.wait_for(1)
    finally:
        receiver.close()

    assert first == again and len(first) == 2
    assert delivered[0]["id"] and delivered[0]["line_items"][0]["sku"] == "MUG"


def test_despatch_adds_a_customer_note_then_completes_and_uses_shipment_tracking_where_the_shop_has_it(
    sandbox, woo
):
    catalogue(sandbox, shipment_tracking=True)
    order_id, = sandbox.orders("woocommerce", SHOP, [{"items": [{"sku": "MUG", "quantity": 1}]}])

    woo.confirm_despatch(OrderRef(order_id), Shipment(tracking_number="RM123GB", carrier="Royal Mail",
                                                      tracking_url="https://track.example/RM123GB"))

    shipment, = sandbox.received("woocommerce", SHOP)["shipments"]
    assert (shipment["tracking_number"], shipment["carrier"]) == ("RM123GB", "Royal Mail")
    assert "RM123GB" in shipment["note"] and "Royal Mail" in shipment["note"]
    order, = sandbox.orders("woocommerce", SHOP)
    assert order["status"] == "completed"


def test_without_the_extension_the_note_alone_carries_the_tracking_and_cancel_sets_cancelled(sandbox, woo):
    catalogue(sandbox)
    shipped, cancelled = sandbox.orders("woocommerce", SHOP, [{"items": [{"sku": "MUG", "quantity": 1}]},
                                                              {"items": [{"sku": "MUG", "quantity": 1}]}])

    woo.confirm_despatch(OrderRef(shipped), Shipment(tracking_number="X1", carrier="Evri"))
    woo.cancel_order(OrderRef(cancelled), "Out of stock")

    received = sandbox.received("woocommerce", SHOP)
    assert received["shipments"][0]["tracking_number"] == ""
    assert "X1" in received["shipments"][0]["note"]
    assert received["cancellations"][0]["reason"] == "Your order has been cancelled: Out of stock"


def test_a_forged_delivery_is_refused_and_a_signed_one_names_its_order(woo):
    woo.credentials = MemoryStore(**woo.credentials.load(), webhook_secret="s3cret")
    body = b'{"id": 42, "status": "processing"}'
    headers = {"X-WC-Webhook-Topic": "order.created", "X-WC-Webhook-Source": "https://shop.example/",
               "X-WC-Webhook-Signature": webhook_signature("s3cret", body)}

    assert woo.webhook_hint(headers, body).order_ids == ("42",)
    with pytest.raises(Exception, match="does not match"):
        woo.webhook_hint({**headers, "X-WC-Webhook-Signature": webhook_signature("guess", body)}, body)


def test_a_malformed_order_is_reported_by_its_id_and_the_rest_of_the_page_is_read(sandbox, woo):
    catalogue(sandbox)
    first, second = sandbox.orders("woocommerce", SHOP, [{"items": [{"sku": "MUG", "quantity": 1}]},
                                                         {"items": [{"sku": "MUG", "quantity": 2}]}])
    sandbox.faults("woocommerce", SHOP, [{"path": "orders", "type": "malformed", "corrupt": "quantity", "index": 0}])

    orders, errors = all_orders(woo)

    assert [order.channel_order_id for order in orders] == [second]
    assert [error.record_id for error in errors] == [first]
    assert "'one' is not a whole number" in errors[0].reason


def test_a_slow_shop_ends_at_the_deadline_and_a_throttling_host_is_waited_out(sandbox, woo):
    woo.client.http.deadline = 0.5
    sandbox.faults("woocommerce", SHOP, [{"path": "system_status", "type": "slow", "delay": 2}])
    with pytest.raises(Exception, match="no complete answer within 0.5 s"):
        woo.test_connection()

    woo.client.http.deadline = 10
    sandbox.faults("woocommerce", SHOP, [{"path": "system_status", "type": "429", "retry_after": 0.2}])
    assert woo.test_connection().ok


def test_a_webhook_the_shop_disabled_after_failed_deliveries_is_active_again_once_subscribed(sandbox, woo):
    catalogue(sandbox)
    receiver = Receiver(*[500] * 6)
    try:
        woo.webhooks_subscribe(receiver.url)
        for _ in range(6):
            sandbox.orders("woocommerce", SHOP, [{"items": [{"sku": "MUG", "quantity": 1}]}])
        receiver.wait_for(6)
        time.sleep(0.2)
        statuses = {hook["topic"]: hook["status"] for hook in woo._our_webhooks()}
        woo.webhooks_subscribe(receiver.url)
        again = {hook["topic"]: hook["status"] for hook in woo._our_webhooks()}
    finally:
        receiver.close()

    assert statuses == {"order.created": "disabled", "order.updated": "active"}
    assert again == {"order.created": "active", "order.updated": "active"}


def test_a_read_only_key_passes_test_and_its_push_is_refused_as_a_credentials_problem(sandbox):
    woo = connector_for(sandbox, "woocommerce", "readonly")
    sandbox.account("woocommerce", "readonly",
                    credentials={**default_credentials("woocommerce", "readonly"), "permissions": "read"})
    sandbox.listings("woocommerce", "readonly", [{"sku": "MUG", "quantity": 1}])
    mug, = all_listings(woo)

    assert woo.test_connection().ok
    with pytest.raises(ChannelAuthError, match="does not have write permissions"):
        woo.push_listings([StockUpdate("MUG", mug.external_id, quantity=2)])
