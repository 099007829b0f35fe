"""The Shopify connector against the sandbox's Admin API: Test, listings by cursor, stock by compare-and-set with
idempotency keys, throttling, orders, webhooks' signatures, despatch and cancellation."""

import base64
import hashlib
import hmac
import json
import time
from datetime import UTC, datetime

import pytest

from channels.connectors.base import (
    ChannelAuthError,
    ChannelRateLimited,
    OrderRef,
    Shipment,
    StockUpdate,
    WebhookRefused,
    WebhookUnsigned,
)
from channels.connectors.shopify import connector as shopify_connector
from channels.connectors.shopify.mapper import idempotency_key, set_quantities_input
from tests.sandbox.test_connectors_e2e import connector_for

SINCE = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def shop(sandbox):
    connector = connector_for(sandbox, "shopify", "teapots")
    sandbox.listings("shopify", "teapots", [
        {"sku": "MUG", "title": "Mug", "quantity": 5, "price": "9.99"},
        {"sku": "LAMP", "title": "Lamp", "quantity": 2, "price": "19.99"},
    ])
    return connector


def on_shopify(sandbox, sku):
    return next(row for row in sandbox.listings("shopify", "teapots") if row["sku"] == sku)


def listings(connector):
    return {listing.channel_sku: listing for page in connector.fetch_listings() for listing in page.listings}


def update(listing, quantity, seen):
    return StockUpdate(listing.channel_sku, listing.external_id, quantity, channel_quantity=seen)


def test_test_names_the_shop_its_plan_and_where_stock_goes(shop):
    result = shop.test_connection()

    assert result.ok
    assert result.message == ("Connected to Shopify shop teapots (Basic plan). Locations: Shop location (1), "
                              "Pop-up store (2); stock goes to location 1.")


def test_a_wrong_client_secret_asks_for_reauthorisation(shop):
    shop.credentials.values["client_secret"] = "not-it"

    with pytest.raises(ChannelAuthError):
        shop.test_connection()


def test_listings_come_by_cursor_with_progress(sandbox, shop, monkeypatch):
    monkeypatch.setattr(shopify_connector, "LISTING_PAGE", 1)

    pages = list(shop.fetch_listings())

    assert [(page.done, page.total) for page in pages] == [(1, 2), (2, 2)]
    mug = pages[0].listings[0]
    assert (mug.channel_sku, mug.quantity, str(mug.price), mug.is_active) == ("MUG", 5, "9.99", True)
    assert mug.external_id == on_shopify(sandbox, "MUG")["external_id"]


def test_stock_is_set_when_shopify_holds_what_the_hub_saw(sandbox, shop):
    found = listings(shop)

    results = shop.push_listings([update(found["MUG"], 3, 5), update(found["LAMP"], 0, 2)])

    assert [r.accepted for r in results] == [True, True]
    assert [r.channel_quantity_found for r in results] == [None, None]
    assert (on_shopify(sandbox, "MUG")["quantity"], on_shopify(sandbox, "LAMP")["quantity"]) == (3, 0)


def test_a_stale_quantity_is_read_reported_as_drift_and_overwritten_once(sandbox, shop):
    found = listings(shop)
    # Edited in Shopify's admin after the hub last looked.
    sandbox.listings("shopify", "teapots", [{"sku": "MUG", "quantity": 12}])

    results = shop.push_listings([update(found["MUG"], 3, 5), update(found["LAMP"], 1, 2)])

    assert [(r.accepted, r.channel_quantity_found) for r in results] == [(True, 12), (True, None)]
    assert (on_shopify(sandbox, "MUG")["quantity"], on_shopify(sandbox, "LAMP")["quantity"]) == (3, 1)
    calls = sandbox.received("shopify", "teapots")["calls"]
    assert calls["graphql:InventorySetQuantities"] == 2 and calls["graphql:InventoryLevels"] == 1


def test_a_quantity_never_seen_is_read_before_it_is_set(sandbox, shop):
    found = listings(shop)

    results = shop.push_listings([update(found["MUG"], 4, None)])

    assert results[0].accepted and on_shopify(sandbox, "MUG")["quantity"] == 4
    assert sandbox.received("shopify", "teapots")["calls"]["graphql:InventorySetQuantities"] == 1


def test_a_push_retried_after_a_lost_answer_is_applied_once(sandbox, shop):
    found = listings(shop)
    shop.push_listings([update(found["MUG"], 3, 5)])
    # The first answer was lost: the hub sends the same planned push again while Shopify moved on.
    sandbox.listings("shopify", "teapots", [{"sku": "MUG", "quantity": 7}])

    again = shop.push_listings([update(found["MUG"], 3, 5)])

    assert again[0].accepted
    assert on_shopify(sandbox, "MUG")["quantity"] == 7, "the retry did not set the quantity a second time"


def test_the_idempotency_key_follows_the_planned_push():
    payload = set_quantities_input([("3", 4, 6)], "11")

    assert idempotency_key(7, payload) == idempotency_key(7, set_quantities_input([("3", 4, 6)], "11"))
    assert idempotency_key(7, payload) != idempotency_key(7, set_quantities_input([("3", 4, 5)], "11"))
    assert idempotency_key(7, payload) != idempotency_key(8, payload)
    seen = ["2026-12-02T10:00:00+00:00"]
    assert idempotency_key(7, payload, seen) != idempotency_key(7, payload, ["2026-12-02T10:05:00+00:00"])


def test_the_same_change_planned_again_later_is_a_new_push(sandbox, shop):
    """5 to 3, back to 5, then 5 to 3 again: the third push repeats the first's values but is not its retry."""
    from datetime import timedelta

    found = listings(shop)
    mug, at = found["MUG"], datetime(2026, 12, 2, 10, tzinfo=UTC)

    def push(quantity, seen, when):
        return shop.push_listings([StockUpdate("MUG", mug.external_id, quantity, channel_quantity=seen,
                                               channel_quantity_seen_at=when)])[0]

    assert push(3, 5, at).accepted and push(5, 3, at + timedelta(minutes=1)).accepted
    assert push(3, 5, at + timedelta(minutes=2)).accepted

    assert on_shopify(sandbox, "MUG")["quantity"] == 3


def test_a_listing_without_a_shopify_id_is_refused_with_why(shop):
    results = shop.push_listings([StockUpdate("GHOST", "", 1)])

    assert not results[0].accepted and "download the listings first" in results[0].message


def test_a_price_change_goes_by_productVariantsBulkUpdate(sandbox, shop):  # noqa: N802
    from decimal import Decimal

    found = listings(shop)
    mug = found["MUG"]

    results = shop.push_listings([StockUpdate("MUG", mug.external_id, 5, price=Decimal("11.50"), channel_quantity=5)])

    assert results[0].accepted and on_shopify(sandbox, "MUG")["price"] == "11.50"


def test_a_throttled_query_waits_for_the_refill_shopify_names_then_goes_on(sandbox, shop):
    # A page of 100 variants asks for 602 points; two answered, it keeps ~14.
    sandbox.rate_limits("shopify", "teapots", {"points": {"rate": 100, "burst": 610}})
    list(shop.fetch_listings())
    # Another worker, which has not seen what the query costs.
    shop.client.costs.clear()
    shop.client.bucket = None
    waits = []
    shop.sleep = lambda seconds: (waits.append(seconds), time.sleep(seconds))

    listed = list(shop.fetch_listings())

    assert listed[0].done == 2
    assert len(waits) == 1 and 0 < waits[0] < 1
    assert sandbox.received("shopify", "teapots")["calls"]["graphql:ProductVariants"] == 3


def test_throttling_waits_for_the_bucket_then_goes_on(sandbox, shop):
    sandbox.rate_limits("shopify", "teapots", {"points": {"rate": 2, "burst": 5}})
    waits = []
    shop.sleep = waits.append

    for _ in range(4):
        shop.client.query("ShopInformation")

    assert waits and all(0 < wait <= 1.5 for wait in waits)


def test_a_long_throttle_goes_back_to_the_caller_with_its_wait(sandbox, shop):
    sandbox.rate_limits("shopify", "teapots", {"points": {"rate": 0.01, "burst": 5}})
    shop.client.query("ShopInformation")
    shop.client.query("ShopInformation")

    with pytest.raises(ChannelRateLimited) as raised:
        shop.client.query("ShopInformation")

    assert raised.value.retry_after > 30


def test_orders_changed_since_the_watermark_are_downloaded(sandbox, shop):
    sandbox.orders("shopify", "teapots", [{"items": [{"sku": "MUG", "quantity": 2}]},
                                          {"items": [{"sku": "LAMP", "quantity": 1}], "paid": False}])

    orders = [order for page in shop.fetch_orders(SINCE) for order in page.orders]

    assert [(o.channel_status, o.is_paid, o.items[0].sku) for o in orders] == [
        ("UNFULFILLED", True, "MUG"), ("PENDING", False, "LAMP")]
    assert orders[0].shipping_tag == "Standard Shipping" and orders[0].currency == "GBP"
    assert orders[0].total == orders[0].subtotal + orders[0].shipping_cost


def test_an_order_with_more_lines_than_a_page_holds_is_read_again_alone(sandbox, shop, monkeypatch):
    monkeypatch.setattr(shopify_connector, "ORDER_LINES", 1)
    sandbox.orders("shopify", "teapots", [{"items": [{"sku": "MUG", "quantity": 2}, {"sku": "LAMP", "quantity": 1}]}])

    orders = [order for page in shop.fetch_orders(SINCE) for order in page.orders]

    assert [item.sku for item in orders[0].items] == ["MUG", "LAMP"]


def signed(body: bytes, secret="shopify-teapots-secret") -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def test_a_signed_webhook_names_its_order(shop):
    body = json.dumps({"id": 5000000001, "admin_graphql_api_id": "gid://shopify/Order/5000000001"}).encode()

    hint = shop.webhook_hint({"X-Shopify-Hmac-Sha256": signed(body), "X-Shopify-Topic": "orders/create",
                              "X-Shopify-Shop-Domain": "teapots.myshopify.com"}, body)

    assert hint.order_ids == ("5000000001",) and hint.topic == "orders/create"


@pytest.mark.parametrize("signature", ["", "forged", None])
def test_a_webhook_without_the_apps_signature_is_refused(shop, signature):
    body = b'{"id": 5000000001}'
    headers = {"X-Shopify-Topic": "orders/create", "X-Shopify-Shop-Domain": "teapots.myshopify.com",
               "X-Shopify-Hmac-Sha256": signed(body, "another-apps-secret") if signature is None else signature}

    with pytest.raises(WebhookUnsigned):
        shop.webhook_hint(headers, body)


def test_a_signed_webhook_of_a_topic_not_subscribed_is_refused(shop):
    body = b'{"id": 1}'

    with pytest.raises(WebhookRefused, match="not one the hub subscribes to"):
        shop.webhook_hint({"X-Shopify-Hmac-Sha256": signed(body), "X-Shopify-Topic": "products/create"}, body)


def test_despatch_fulfils_the_orders_fulfillment_orders_with_tracking(sandbox, shop):
    [order_id] = sandbox.orders("shopify", "teapots", [{"items": [{"sku": "MUG", "quantity": 1}]}])

    shop.confirm_despatch(OrderRef(order_id), Shipment(tracking_number="RM123GB", carrier="royal mail",
                                                       tracking_url="https://track.example/RM123GB"))
    shop.confirm_despatch(OrderRef(order_id), Shipment(tracking_number="RM123GB", carrier="royal mail"))

    shipments = sandbox.received("shopify", "teapots")["shipments"]
    assert [(s["order_id"], s["tracking_number"], s["carrier"], s["notify_customer"]) for s in shipments] == [
        (order_id, "RM123GB", "Royal Mail", True)], "sent once, under Shopify's own carrier name"


def test_despatch_without_notes_sends_no_tracking_and_no_notification(sandbox, shop):
    [order_id] = sandbox.orders("shopify", "teapots", [{"items": [{"sku": "MUG", "quantity": 1}]}])

    shop.confirm_despatch(OrderRef(order_id), Shipment(tracking_number="", carrier="Royal Mail"))

    [shipment] = sandbox.received("shopify", "teapots")["shipments"]
    assert (shipment["tracking_number"], shipment["notify_customer"]) == ("", False)


def test_cancellation_sends_shopifys_reason_code(sandbox, shop):
    [first, second] = sandbox.orders("shopify", "teapots", [{"items": [{"sku": "MUG", "quantity": 1}]},
                                                            {"items": [{"sku": "LAMP", "quantity": 1}]}])

    shop.cancel_order(OrderRef(first), "INVENTORY")
    shop.cancel_order(OrderRef(second), "Buyer changed their mind")

    cancellations = sandbox.received("shopify", "teapots")["cancellations"]
    assert [(c["reason"], c["staff_note"], c["restock"]) for c in cancellations] == [
        ("INVENTORY", None, True), ("OTHER", "Buyer changed their mind", True)]


def test_a_signed_webhook_for_another_shop_is_refused():
    from channels.connectors.base import ConnectorConfig
    from channels.connectors.shopify.connector import ShopifyConnector
    from tests.sandbox.test_connectors_e2e import MemoryCredentials

    config = ConnectorConfig(channel_id=1, kind="shopify", name="Teapots", api_base_url="https://teapots.myshopify.com",
                             auth_base_url="", allowed_hosts=frozenset({"*.myshopify.com"}))
    connector = ShopifyConnector(config, MemoryCredentials({"client_id": "id", "client_secret": "s3cret"}))
    body = b'{"id": 7}'
    headers = {"X-Shopify-Hmac-Sha256": signed(body, "s3cret"), "X-Shopify-Topic": "orders/updated"}

    assert connector.webhook_hint({**headers, "X-Shopify-Shop-Domain": "teapots.myshopify.com"}, body).order_ids == (
        "7",)
    with pytest.raises(WebhookRefused, match="another shop"):
        connector.webhook_hint({**headers, "X-Shopify-Shop-Domain": "kettles.myshopify.com"}, body)


@pytest.mark.parametrize("corrupt", ["id", "quantity"])
def test_a_malformed_variant_is_reported_and_the_rest_of_the_page_kept(sandbox, shop, corrupt):
    sandbox.faults("shopify", "teapots", [{"path": "graphql", "type": "malformed", "index": 0, "corrupt": corrupt}])

    [page] = list(shop.fetch_listings())

    assert [listing.channel_sku for listing in page.listings] == ["LAMP"]
    assert len(page.errors) == 1 and page.errors[0].reason.startswith("unreadable variant")


def test_an_expired_token_is_replaced_by_a_new_grant_and_the_call_goes_on(sandbox, shop):
    shop.test_connection()
    first = shop.credentials.values["access_token"]
    sandbox.faults("shopify", "teapots", [{"path": "graphql", "type": "expire_token"}])

    assert shop.test_connection().ok

    assert shop.credentials.values["access_token"] != first
    assert sandbox.received("shopify", "teapots")["calls"]["token"] == 2


def test_a_push_of_more_than_250_quantities_goes_in_calls_of_250(sandbox, shop):
    sandbox.listings("shopify", "teapots", [{"sku": f"SKU-{n:03d}", "quantity": 1} for n in range(258)])
    found = listings(shop)

    results = shop.push_listings([update(listing, 2, listing.quantity) for listing in found.values()])

    assert len(results) == 260 and all(result.accepted for result in results)
    assert sandbox.received("shopify", "teapots")["calls"]["graphql:InventorySetQuantities"] == 2
    assert {row["quantity"] for row in sandbox.listings("shopify", "teapots")} == {2}
