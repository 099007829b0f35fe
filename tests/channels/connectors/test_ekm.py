import json
import threading
import time
from datetime import UTC, datetime
from decimal import Decimal
from urllib.parse import parse_qs

import pytest
import responses
from responses import matchers

from channels.connectors.base import (
    ChannelAuthError,
    OrderLineRef,
    OrderRef,
    RateLimit,
    Shipment,
    StockUpdate,
)
from channels.connectors.ekm.connector import EkmConnector, listings_from_products, order_from_ekm
from channels.connectors.ratelimit import InProcessLimiter
from tests.channels.connectors.conftest import EKM_BASE, MemoryStore, ekm_config, fixture_json

TOKEN_URL = f"{EKM_BASE}/connect/token"
WRAP = {"meta": {"pages_total": 1, "items_total": 0}, "links": {}, "validation_result": [], "errors": []}


def store(**extra):
    return MemoryStore(client_id="ekm-client", client_secret="ekm-secret-xyz", refresh_token="r1", **extra)


def connector(limiter, credentials=None):
    ekm = EkmConnector(ekm_config(), credentials or store(), limiter)
    ekm.sleep = lambda seconds: None
    return ekm


def add_rotating_token_endpoint(used: list[str]):
    """EKM's behaviour: each refresh token works once and is answered with the next one."""

    def refresh(request):
        form = parse_qs(request.body)
        token = form["refresh_token"][0]
        if token in used:
            return 400, {}, json.dumps({"error": "invalid_grant"})
        used.append(token)
        number = int(token[1:]) + 1
        body = {"access_token": f"access-{number}", "expires_in": 3600, "token_type": "Bearer",
                "refresh_token": f"r{number}"}
        return 200, {}, json.dumps(body)

    responses.add_callback(responses.POST, TOKEN_URL, callback=refresh)


# --- Mappers ---


def test_order_maps_without_currency_and_with_items():
    raw = fixture_json("ekm_orders_page1.json")["data"][0]
    order = order_from_ekm(raw, fixture_json("ekm_order_123_items.json")["data"])
    assert order.channel_order_id == "123" and order.channel_status == "PENDING"
    assert order.currency is None
    assert order.is_paid and not order.is_cancelled
    assert order.shipping_tag == "Royal Mail 1st Class"
    assert (order.subtotal, order.shipping_cost, order.tax, order.total) == (
        Decimal("20.0"), Decimal("3.5"), Decimal("3.92"), Decimal("23.5"))
    assert order.buyer_name == "Ann Lee" and order.buyer_email == "ann@example.com"
    assert order.shipping_address.city == "Bath" and order.shipping_address.postcode == "BA1 1AA"
    mug, tee = order.items
    assert (mug.line_id, mug.sku, mug.unit_price, mug.external_product_id) == ("9001", "MUG-RED", Decimal("12.5"), "55")
    assert tee.external_product_id == "56/7"
    # item_tax is the line's tax, as the sandbox and EKM's totals show.
    assert (mug.tax, tee.tax) == (Decimal("2.08"), Decimal("1.25"))


def test_unpaid_order_and_empty_email():
    order = order_from_ekm(fixture_json("ekm_orders_page1.json")["data"][1], [])
    assert not order.is_paid
    assert order.buyer_email is None


def test_products_and_variants_each_become_a_listing():
    listings, errors = listings_from_products(fixture_json("ekm_products_page1.json")["data"])
    assert [(li.channel_sku, li.external_id, li.quantity) for li in listings] == [
        ("MUG-RED", "55", 8), ("TEE-M", "56/7", 3), ("TEE-L", "56/8", 0)]
    assert errors == []


# --- Client ---


@responses.activate
def test_refresh_rotates_the_single_use_token_and_saves_it_before_use(limiter):
    used: list[str] = []
    add_rotating_token_endpoint(used)
    responses.add(responses.GET, f"{EKM_BASE}/api/v1/settings/shop_information",
                  json={**WRAP, "data": {"shop_name": "Teapots Ltd", "domain": "teapots.example"}})
    credentials = store()
    result = connector(limiter, credentials).test_connection()
    assert result.ok and "Teapots Ltd" in result.message
    assert credentials.data["refresh_token"] == "r2"
    assert credentials.data["access_token"] == "access-2"
    assert responses.calls[-1].request.headers["Authorization"] == "Bearer access-2"
    assert used == ["r1"]


@responses.activate
def test_two_workers_refreshing_at_once_refresh_only_once(limiter):
    used: list[str] = []

    def slow_refresh(request):
        time.sleep(0.05)  # both workers get to the lock while the first refresh is in flight
        token = parse_qs(request.body)["refresh_token"][0]
        if token in used:
            return 400, {}, json.dumps({"error": "invalid_grant"})
        used.append(token)
        return 200, {}, json.dumps({"access_token": "access-2", "expires_in": 3600, "refresh_token": "r2"})

    responses.add_callback(responses.POST, TOKEN_URL, callback=slow_refresh)
    responses.add(responses.GET, f"{EKM_BASE}/api/v1/settings/shop_information",
                  json={**WRAP, "data": {"shop_name": "Teapots Ltd"}})
    shared = store()
    outcomes = []

    def worker():
        try:
            outcomes.append(connector(InProcessLimiter(sleep=lambda s: None), shared).test_connection().ok)
        except Exception as exc:  # noqa: BLE001 - the test reports whatever a worker hit
            outcomes.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outcomes == [True, True]
    assert used == ["r1"]
    assert shared.data["refresh_token"] == "r2"


@responses.activate
def test_a_401_renews_the_token_under_the_lock_and_repeats_the_call(limiter):
    used: list[str] = []
    add_rotating_token_endpoint(used)
    credentials = store(access_token="access-1", access_token_expires_at="2099-01-01T00:00:00+00:00")
    url = f"{EKM_BASE}/api/v1/settings/orderstatuses"
    responses.add(responses.GET, url, status=401)
    responses.add(responses.GET, url, json={**WRAP, "data": [{"name": "PENDING"}, {"name": "DISPATCHED"}]})
    assert connector(limiter, credentials).order_statuses() == ["PENDING", "DISPATCHED"]
    assert used == ["r1"]
    assert credentials.data["refresh_token"] == "r2"


@responses.activate
def test_a_reused_refresh_token_is_an_auth_error(limiter):
    responses.add(responses.POST, TOKEN_URL, status=400, json={"error": "invalid_grant"})
    with pytest.raises(ChannelAuthError, match="reauthorise"):
        connector(limiter).test_connection()


@responses.activate
def test_orders_are_searched_by_last_updated_with_items_per_order(limiter):
    used: list[str] = []
    add_rotating_token_endpoint(used)
    search = f"{EKM_BASE}/api/v2/orders/search"
    query = "last_updated gt '2026-11-29T09:00:00Z' and last_updated lt '2026-11-29T12:00:00Z'"
    responses.add(responses.GET, search, json=fixture_json("ekm_orders_page1.json"), match=[
        matchers.query_param_matcher({"query": query, "orderby": "last_updated", "page": "1", "limit": "20"})])
    responses.add(responses.GET, search, json=fixture_json("ekm_orders_page2.json"), match=[
        matchers.query_param_matcher({"page": "2"}, strict_match=False)])
    responses.add(responses.GET, f"{EKM_BASE}/api/v2/orders/123/items", json=fixture_json("ekm_order_123_items.json"))
    responses.add(responses.GET, f"{EKM_BASE}/api/v2/orders/124/items", status=404,
                  json={**WRAP, "validation_result": [{"member_names": ["id"], "error_message": "Not found"}]})
    responses.add(responses.GET, f"{EKM_BASE}/api/v2/orders/125/items", json={**WRAP, "data": []})
    pages = list(connector(limiter).fetch_orders(datetime(2026, 11, 29, 9, tzinfo=UTC),
                                                 datetime(2026, 11, 29, 12, tzinfo=UTC)))
    assert [[o.channel_order_id for o in p.orders] for p in pages] == [["123"], ["125"]]
    assert [(e.record_id, "Not found" in e.reason) for e in pages[0].errors] == [("124", True)]


@responses.activate
def test_push_sends_stock_per_product_or_variant_and_price_only_when_given(limiter):
    used: list[str] = []
    add_rotating_token_endpoint(used)
    responses.add(responses.PUT, f"{EKM_BASE}/api/v1/products/55/stock", json={**WRAP, "data": None})
    responses.add(responses.PUT, f"{EKM_BASE}/api/v1/products/56/variants/7/stock", json={**WRAP, "data": None})
    product = fixture_json("ekm_products_page1.json")["data"][1]
    responses.add(responses.GET, f"{EKM_BASE}/api/v1/products/56", json={**WRAP, "data": product})
    responses.add(responses.PUT, f"{EKM_BASE}/api/v1/products/56", json={**WRAP, "data": product})
    results = connector(limiter).push_listings([
        StockUpdate("MUG-RED", "55", quantity=4),
        StockUpdate("TEE-M", "56/7", quantity=2, price=Decimal("9.99")),
        StockUpdate("NEW", "", quantity=1),
    ])
    assert [(r.channel_sku, r.accepted) for r in results] == [("MUG-RED", True), ("TEE-M", True), ("NEW", False)]
    assert "download the listings" in results[2].message
    puts = [(c.request.url, json.loads(c.request.body)) for c in responses.calls if c.request.method == "PUT"]
    assert puts[0] == (f"{EKM_BASE}/api/v1/products/55/stock", {"stock": 4})
    assert puts[1] == (f"{EKM_BASE}/api/v1/products/56/variants/7/stock", {"stock": 2})
    full_product = puts[2][1]
    assert full_product["name"] == "T-shirt"
    assert [v["price"] for v in full_product["variants"]] == [9.99, 8.0]
    assert not any(c.request.url.endswith("/products/55") for c in responses.calls)


@responses.activate
def test_a_refused_sku_does_not_stop_the_others(limiter):
    used: list[str] = []
    add_rotating_token_endpoint(used)
    responses.add(responses.PUT, f"{EKM_BASE}/api/v1/products/55/stock", status=422,
                  json={**WRAP, "validation_result": [{"member_names": ["id"], "error_message": "Use the variant"}]})
    responses.add(responses.PUT, f"{EKM_BASE}/api/v1/products/57/stock", json={**WRAP, "data": None})
    results = connector(limiter).push_listings([StockUpdate("A", "55", quantity=1), StockUpdate("B", "57", quantity=1)])
    assert [r.accepted for r in results] == [False, True]
    assert "Use the variant" in results[0].message


@responses.activate
def test_a_low_remaining_quota_slows_the_next_call():
    used: list[str] = []
    add_rotating_token_endpoint(used)
    slept = []
    ekm = EkmConnector(ekm_config(), store(), InProcessLimiter(sleep=slept.append))
    responses.add(responses.PUT, f"{EKM_BASE}/api/v1/products/55/stock", json={**WRAP, "data": None},
                  headers={"X-EKM-RateLimit-Remaining": "1", "X-EKM-RateLimit-LeakRate": "2"})
    responses.add(responses.PUT, f"{EKM_BASE}/api/v1/products/57/stock", json={**WRAP, "data": None},
                  headers={"X-EKM-RateLimit-Remaining": "30", "X-EKM-RateLimit-LeakRate": "2"})
    ekm.push_listings([StockUpdate("A", "55", quantity=1), StockUpdate("B", "57", quantity=1)])
    assert slept and slept[-1] == pytest.approx(2.0, abs=0.1)


def test_every_call_shares_one_bucket_of_40_at_2_a_second():
    assert EkmConnector.rate_limits == {"api": RateLimit(2, 40)}


@responses.activate
def test_despatch_sends_tracking_then_the_mapped_status(limiter):
    used: list[str] = []
    add_rotating_token_endpoint(used)
    responses.add(responses.PUT, f"{EKM_BASE}/api/v2/orders/123/deliveryTracking", json={**WRAP, "data": None})
    responses.add(responses.PUT, f"{EKM_BASE}/api/v2/orders/123/status", json={**WRAP, "data": None})
    connector(limiter).confirm_despatch(
        OrderRef("123", lines=(OrderLineRef("9001", "MUG-RED", 1),)),
        Shipment(tracking_number="RM1", carrier="Royal Mail", tracking_url="https://track/RM1",
                 channel_status="SHIPPED-OUT"),
    )
    tracking, status = (json.loads(c.request.body) for c in responses.calls if c.request.method == "PUT")
    assert tracking == {"delivery_tracking_number": "RM1", "delivery_tracking_company": "Royal Mail",
                        "delivery_tracking_url": "https://track/RM1"}
    assert status == {"status": "SHIPPED-OUT", "email_customer": True}


@responses.activate
def test_cancel_sets_the_mapped_cancelled_status(limiter):
    used: list[str] = []
    add_rotating_token_endpoint(used)
    responses.add(responses.PUT, f"{EKM_BASE}/api/v2/orders/123/status", json={**WRAP, "data": None})
    responses.add(responses.PUT, f"{EKM_BASE}/api/v2/orders/124/status", json={**WRAP, "data": None})
    ekm = connector(limiter)
    ekm.cancel_order(OrderRef("123", channel_status="VOID"), "out of stock")
    ekm.cancel_order(OrderRef("124"), "out of stock")
    statuses = [json.loads(c.request.body)["status"] for c in responses.calls if c.request.method == "PUT"]
    assert statuses == ["VOID", "CANCELLED"]


@responses.activate
def test_fetch_listings_pages_products_with_progress(limiter):
    used: list[str] = []
    add_rotating_token_endpoint(used)
    url = f"{EKM_BASE}/api/v1/products"
    responses.add(responses.GET, url, json=fixture_json("ekm_products_page1.json"),
                  match=[matchers.query_param_matcher({"page": "1", "limit": "20"})])
    responses.add(responses.GET, url, json=fixture_json("ekm_products_page2.json"),
                  match=[matchers.query_param_matcher({"page": "2", "limit": "20"})])
    pages = list(connector(limiter).fetch_listings())
    assert [(p.done, p.total) for p in pages] == [(2, 3), (3, 3)]
    (teapot,) = pages[1].listings
    assert teapot.channel_sku == "TEAPOT" and not teapot.is_active
