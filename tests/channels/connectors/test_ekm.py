import base64
import json
import re
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
    WebhookRefused,
)
from channels.connectors.ekm.connector import EkmConnector
from channels.connectors.ekm.mapper import (
    PRODUCT_COMPUTED_FIELDS,
    PRODUCT_UPDATE_FIELDS,
    VARIANT_FIELDS,
    listings_from_products,
    order_from_ekm,
    orders_query,
    statuses_from_settings,
)
from channels.connectors.ratelimit import InProcessLimiter
from tests.channels.connectors.conftest import EKM_BASE, MemoryStore, ekm_config, fixture_json

TOKEN_URL = f"{EKM_BASE}/connect/token"
WRAP = {"meta": {}, "links": [], "validation_result": None, "errors": None}
CURRENCY = {**WRAP, "data": {"currency_code": "GBP", "currency_symbol": "£"}}
ORDER = fixture_json("ekm_orders_page1.json")["data"][0]
TEE = fixture_json("ekm_products_page1.json")["data"][1]


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


def puts():
    return [(c.request.url, json.loads(c.request.body)) for c in responses.calls if c.request.method == "PUT"]


# --- Mappers ---


def test_order_maps_with_the_shops_currency_and_its_items():
    order = order_from_ekm(ORDER, fixture_json("ekm_order_123_items.json")["data"], "GBP")
    assert order.channel_order_id == "123" and order.channel_status == "PENDING"
    assert order.currency == "GBP"
    assert order.is_paid and not order.is_cancelled
    assert order.shipping_tag == "Royal Mail 1st Class"
    assert (order.subtotal, order.shipping_cost, order.tax, order.total) == (
        Decimal("20.0"), Decimal("3.5"), Decimal("3.92"), Decimal("23.5"))
    assert order.buyer_name == "Ann Lee" and order.buyer_email == "ann@example.com"
    mug, tee = order.items
    assert (mug.line_id, mug.sku, mug.unit_price, mug.external_product_id) == ("9001", "MUG-RED", Decimal("12.5"), "55")
    # item_tax is the line's tax, as the sandbox and EKM's totals show.
    assert (mug.tax, tee.tax) == (Decimal("2.08"), Decimal("1.25"))


def test_the_street_address_comes_from_address_and_address2():
    address = order_from_ekm(ORDER, []).shipping_address
    assert (address.name, address.line1, address.line2) == ("Ann Lee", "3 Mill Lane", "Widcombe")
    assert (address.city, address.region, address.postcode, address.country, address.phone) == (
        "Bath", "Somerset", "BA1 1AA", "GB", "01225 000000")


def test_order_lines_are_titled_by_item_name_and_name_the_product_not_a_variant():
    mug, tee = order_from_ekm(ORDER, fixture_json("ekm_order_123_items.json")["data"]).items
    assert (mug.title, tee.title) == ("Red mug", "T-shirt")
    # EKM's order items carry no variant id: the variant sold is known by its product_code.
    assert (tee.sku, tee.external_product_id) == ("TEE-M", "56")


def test_an_order_never_updated_has_no_last_updated_and_dates_from_its_order_date():
    order = order_from_ekm(fixture_json("ekm_orders_page1.json")["data"][1], [])
    assert order.updated_at == order.created_at == datetime(2026, 11, 29, 10, 10, tzinfo=UTC)


def test_unpaid_order_with_null_email_and_address_details():
    order = order_from_ekm(fixture_json("ekm_orders_page1.json")["data"][1], [])
    assert not order.is_paid
    assert order.buyer_email is None
    assert (order.shipping_address.line1, order.shipping_address.line2, order.shipping_address.phone) == (
        "4 Quay", "", "")


def test_an_order_without_a_total_cost_totals_its_parts():
    order = order_from_ekm({key: value for key, value in ORDER.items() if key != "total_cost"}, [])
    assert order.total == Decimal("23.5")


def test_the_order_search_asks_for_orders_placed_or_changed_in_the_window():
    since, until = datetime(2026, 11, 29, 9, tzinfo=UTC), datetime(2026, 11, 29, 12, 0, 0, 500, tzinfo=UTC)
    assert orders_query(since, until) == (
        "(order_date gt '2026-11-29T09:00:00Z' and order_date lt '2026-11-29T12:00:01Z') or "
        "(last_updated gt '2026-11-29T09:00:00Z' and last_updated lt '2026-11-29T12:00:01Z')")
    assert orders_query(since) == "order_date gt '2026-11-29T09:00:00Z' or last_updated gt '2026-11-29T09:00:00Z'"


def test_order_statuses_are_read_from_data_statuses():
    data = {"statuses": [{"name": "Pending", "colour": "#000099", "show_in_quick_stats": True},
                         {"name": None, "colour": None}, {"name": "VOID", "show_in_quick_stats": False}]}
    assert statuses_from_settings(data) == ["Pending", "VOID"]
    assert statuses_from_settings([{"name": "PENDING"}]) == []


def test_products_and_variants_each_become_a_listing():
    listings, errors = listings_from_products(fixture_json("ekm_products_page1.json")["data"])
    assert [(li.channel_sku, li.external_id, li.quantity) for li in listings] == [
        ("MUG-RED", "55", 8), ("TEE-M", "56/7", 3), ("TEE-L", "56/8", 0)]
    assert errors == []


def test_a_variant_taken_off_sale_is_an_inactive_listing():
    product = {**TEE, "variants": [{**TEE["variants"][0], "live": False}, TEE["variants"][1]]}
    listings, _ = listings_from_products([product])
    assert [(li.channel_sku, li.is_active) for li in listings] == [("TEE-M", False), ("TEE-L", True)]


def test_the_update_fields_are_the_contracts():
    from channels.connectors.contracts import contract_load

    defs = contract_load("ekm").files["partner_api"]["$defs"]
    assert set(PRODUCT_UPDATE_FIELDS) | set(PRODUCT_COMPUTED_FIELDS) == set(defs["V1UpdateProduct"]["properties"])
    assert set(VARIANT_FIELDS) == set(defs["V1ProductVariant"]["properties"])


# --- Capabilities ---


def test_despatch_needs_the_status_mapping_but_no_tracking_number_and_the_carrier_is_free_text():
    assert EkmConnector.despatch_needs_status_mapping and not EkmConnector.despatch_needs_tracking_number
    assert EkmConnector.carriers == () and EkmConnector.cancellation_reasons == {}
    assert EkmConnector.supports_price_push


# --- Client ---


@responses.activate
def test_refresh_rotates_the_single_use_token_and_saves_it_before_use(limiter):
    used: list[str] = []
    add_rotating_token_endpoint(used)
    responses.add(responses.GET, f"{EKM_BASE}/api/v1/settings/shop_information",
                  json={**WRAP, "data": {"shop_name": "Teapots Ltd", "country": "GB"}})
    credentials = store()
    result = connector(limiter, credentials).test_connection()
    assert result.ok and "Teapots Ltd" in result.message
    assert credentials.data["refresh_token"] == "r2"
    assert credentials.data["access_token"] == "access-2"
    assert responses.calls[-1].request.headers["Authorization"] == "Bearer access-2"
    assert used == ["r1"]
    (token_call,) = [c for c in responses.calls if c.request.url == TOKEN_URL]
    assert "offline_access" in parse_qs(token_call.request.body)["scope"][0].split()


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
    responses.add(responses.GET, url, json={**WRAP, "data": {"statuses": [
        {"name": "PENDING", "colour": "#000099", "show_in_quick_stats": True},
        {"name": "DISPATCHED", "colour": "#FF00FF", "show_in_quick_stats": True}]}})
    assert connector(limiter, credentials).order_statuses() == ["PENDING", "DISPATCHED"]
    assert used == ["r1"]
    assert credentials.data["refresh_token"] == "r2"


@responses.activate
def test_a_reused_refresh_token_is_an_auth_error(limiter):
    responses.add(responses.POST, TOKEN_URL, status=400, json={"error": "invalid_grant"})
    with pytest.raises(ChannelAuthError, match="reauthorise"):
        connector(limiter).test_connection()


@responses.activate
def test_orders_placed_or_changed_are_searched_by_id_with_items_per_order(limiter):
    used: list[str] = []
    add_rotating_token_endpoint(used)
    responses.add(responses.GET, f"{EKM_BASE}/api/v1/settings/currency", json=CURRENCY)
    search = f"{EKM_BASE}/api/v2/orders/search"
    since, until = datetime(2026, 11, 29, 9, tzinfo=UTC), datetime(2026, 11, 29, 12, tzinfo=UTC)
    responses.add(responses.GET, search, json=fixture_json("ekm_orders_page1.json"), match=[
        matchers.query_param_matcher({"query": orders_query(since, until), "orderby": "id", "page": "1",
                                      "limit": "20"})])
    responses.add(responses.GET, search, json=fixture_json("ekm_orders_page2.json"), match=[
        matchers.query_param_matcher({"page": "2"}, strict_match=False)])
    responses.add(responses.GET, f"{EKM_BASE}/api/v2/orders/123/items", json=fixture_json("ekm_order_123_items.json"))
    responses.add(responses.GET, f"{EKM_BASE}/api/v2/orders/124/items", status=404,
                  json={**WRAP, "data": None,
                        "validation_result": [{"member_names": ["id"], "error_message": "Order '124' not found."}]})
    responses.add(responses.GET, f"{EKM_BASE}/api/v2/orders/125/items", json={**WRAP, "data": []})
    pages = list(connector(limiter).fetch_orders(since, until))
    assert [[o.channel_order_id for o in p.orders] for p in pages] == [["123"], ["125"]]
    assert [(e.record_id, "not found" in e.reason) for e in pages[0].errors] == [("124", True)]
    assert {o.currency for p in pages for o in p.orders} == {"GBP"}
    # One currency call for the whole download.
    assert sum(c.request.url.endswith("/settings/currency") for c in responses.calls) == 1


def held_by_the_hub(stored):
    """The hub's answer to `unchanged`: the orders it stores with the change time and status EKM lists."""
    def unchanged(changes):
        return {c.channel_order_id for c in changes if stored.get(c.channel_order_id) == (c.updated_at,
                                                                                           c.channel_status)}
    return unchanged


@responses.activate
def test_orders_the_hub_holds_as_ekm_last_changed_them_are_left_out_before_their_items_are_read(limiter):
    add_rotating_token_endpoint([])
    responses.add(responses.GET, f"{EKM_BASE}/api/v1/settings/currency", json=CURRENCY)
    search = f"{EKM_BASE}/api/v2/orders/search"
    responses.add(responses.GET, search, json=fixture_json("ekm_orders_page1.json"), match=[
        matchers.query_param_matcher({"page": "1"}, strict_match=False)])
    responses.add(responses.GET, search, json=fixture_json("ekm_orders_page2.json"), match=[
        matchers.query_param_matcher({"page": "2"}, strict_match=False)])
    responses.add(responses.GET, f"{EKM_BASE}/api/v2/orders/124/items", json=fixture_json("ekm_order_123_items.json"))
    stored = {"123": (datetime(2026, 11, 29, 10, 1, tzinfo=UTC), "PENDING"),
              # Stored before EKM marked it despatched: read again.
              "125": (datetime(2026, 11, 29, 11, 1, tzinfo=UTC), "PENDING")}
    responses.add(responses.GET, f"{EKM_BASE}/api/v2/orders/125/items", json=fixture_json("ekm_order_123_items.json"))
    since = datetime(2026, 11, 29, 9, tzinfo=UTC)

    pages = list(connector(limiter).fetch_orders(since, unchanged=held_by_the_hub(stored)))

    assert [[o.channel_order_id for o in p.orders] for p in pages] == [["124"], ["125"]]
    items_read = [c.request.url.split("/")[-2] for c in responses.calls if c.request.url.endswith("/items")]
    assert items_read == ["124", "125"]


@responses.activate
def test_a_download_that_finds_nothing_new_asks_ekm_only_for_the_order_list(limiter):
    add_rotating_token_endpoint([])
    search = f"{EKM_BASE}/api/v2/orders/search"
    responses.add(responses.GET, search, json={**WRAP, "meta": {"pages_total": 1}, "data": []})

    assert [p.orders for p in connector(limiter).fetch_orders(datetime(2026, 11, 29, 9, tzinfo=UTC))] == [()]
    assert [c.request.url.split("?")[0].removeprefix(EKM_BASE) for c in responses.calls
            if "/connect/" not in c.request.url] == ["/api/v2/orders/search"]


@responses.activate
def test_a_shop_without_currency_settings_leaves_the_currency_to_the_channel(limiter):
    used: list[str] = []
    add_rotating_token_endpoint(used)
    responses.add(responses.GET, f"{EKM_BASE}/api/v1/settings/currency", status=404, json={
        **WRAP, "validation_result": [{"member_names": None, "error_message": "Currency Settings not found."}],
        "data": None})
    responses.add(responses.GET, f"{EKM_BASE}/api/v2/orders/search",
                  json={**fixture_json("ekm_orders_page2.json"), "meta": {"pages_total": 1}})
    responses.add(responses.GET, f"{EKM_BASE}/api/v2/orders/125/items", json={**WRAP, "data": []})
    (page,) = connector(limiter).fetch_orders(datetime(2026, 11, 29, tzinfo=UTC))
    assert [o.currency for o in page.orders] == [None]


@responses.activate
def test_push_sends_stock_per_product_or_variant_and_a_products_price_by_products_update(limiter):
    used: list[str] = []
    add_rotating_token_endpoint(used)
    mug = fixture_json("ekm_products_page1.json")["data"][0]
    responses.add(responses.PUT, f"{EKM_BASE}/api/v1/products/55/stock", json={**WRAP, "data": {"id": 55, "stock": 4}})
    responses.add(responses.PUT, f"{EKM_BASE}/api/v1/products/57/stock", json={**WRAP, "data": {"id": 57, "stock": 1}})
    responses.add(responses.GET, f"{EKM_BASE}/api/v1/products/55", json={**WRAP, "data": mug})
    responses.add(responses.PUT, f"{EKM_BASE}/api/v1/products/55", json={**WRAP, "data": mug})
    results = connector(limiter).push_listings([
        StockUpdate("MUG-RED", "55", quantity=4, price=Decimal("13.99")),
        StockUpdate("TEAPOT", "57", quantity=1),
        StockUpdate("NEW", "", quantity=1),
    ])
    assert [(r.channel_sku, r.accepted) for r in results] == [("MUG-RED", True), ("TEAPOT", True), ("NEW", False)]
    assert "download the listings" in results[2].message
    sent = puts()
    assert sent[0] == (f"{EKM_BASE}/api/v1/products/55/stock", {"stock": 4})
    url, update = sent[1]
    assert url == f"{EKM_BASE}/api/v1/products/55"
    assert (update["name"], update["price"], update["number_in_stock"], update["description"]) == (
        "Red mug", 13.99, 4, "A red mug.")
    # V1UpdateProduct knows none of what Products_Get adds, nor what EKM computes.
    assert not {"variants", "options", "categories", "tax_rate_id", "seo_friendly_url", "total_product_stock"} & set(
        update)
    assert sent[2] == (f"{EKM_BASE}/api/v1/products/57/stock", {"stock": 1})
    assert not any(c.request.url.endswith("/products/57") for c in responses.calls)


@responses.activate
def test_a_variants_price_is_set_on_the_variant_not_inside_the_product(limiter):
    used: list[str] = []
    add_rotating_token_endpoint(used)
    variant_url = f"{EKM_BASE}/api/v1/products/56/variants/7"
    variant = TEE["variants"][0]
    responses.add(responses.PUT, f"{variant_url}/stock",
                  json={**WRAP, "data": {"id": 7, "parent_product_id": 56, "stock": 2}})
    responses.add(responses.GET, variant_url, json={**WRAP, "data": variant})
    responses.add(responses.PUT, variant_url, json={**WRAP, "data": variant})
    (result,) = connector(limiter).push_listings([StockUpdate("TEE-M", "56/7", quantity=2, price=Decimal("9.99"))])
    assert result.accepted, result.message
    assert puts() == [(f"{variant_url}/stock", {"stock": 2}), (variant_url, {**variant, "price": 9.99,
                                                                              "number_in_stock": 2})]
    assert not any(c.request.url.endswith("/products/56") for c in responses.calls)


@responses.activate
def test_a_refused_sku_does_not_stop_the_others(limiter):
    used: list[str] = []
    add_rotating_token_endpoint(used)
    responses.add(responses.PUT, f"{EKM_BASE}/api/v1/products/55/stock", status=422, json={
        **WRAP, "data": None, "validation_result": [
            {"member_names": ["id"], "error_message": "Product '55' is a variant. Please use master product Id '54'"}]})
    responses.add(responses.PUT, f"{EKM_BASE}/api/v1/products/57/stock", json={**WRAP, "data": {"id": 57, "stock": 1}})
    results = connector(limiter).push_listings([StockUpdate("A", "55", quantity=1), StockUpdate("B", "57", quantity=1)])
    assert [r.accepted for r in results] == [False, True]
    assert "is a variant" in results[0].message


@pytest.mark.parametrize(("interval", "amount", "wait"), [("1", "2", 2.0), ("2", "2", 4.0)])
@responses.activate
def test_a_low_remaining_quota_waits_for_the_bucket_to_leak_by_interval_and_amount(interval, amount, wait):
    used: list[str] = []
    add_rotating_token_endpoint(used)
    slept = []
    ekm = EkmConnector(ekm_config(), store(), InProcessLimiter(sleep=slept.append))
    # LeakRate is the leak interval in seconds, LeakAmount the tokens leaked each interval.
    headers = {"X-EKM-RateLimit-LeakRate": interval, "X-EKM-RateLimit-LeakAmount": amount,
               "X-EKM-RateLimit-BucketSize": "40", "X-EKM-RateLimit-Cost": "1"}
    responses.add(responses.PUT, f"{EKM_BASE}/api/v1/products/55/stock", json={**WRAP, "data": {"id": 55, "stock": 1}},
                  headers={**headers, "X-EKM-RateLimit-Remaining": "1"})
    responses.add(responses.PUT, f"{EKM_BASE}/api/v1/products/57/stock", json={**WRAP, "data": {"id": 57, "stock": 1}},
                  headers={**headers, "X-EKM-RateLimit-Remaining": "30"})
    ekm.push_listings([StockUpdate("A", "55", quantity=1), StockUpdate("B", "57", quantity=1)])
    # Four calls short of the margin, leaking amount/interval a second.
    assert slept and slept[-1] == pytest.approx(wait, abs=0.1)


def test_every_call_shares_one_bucket_of_40_at_2_a_second():
    assert EkmConnector.rate_limits == {"api": RateLimit(2, 40)}


@responses.activate
def test_despatch_sends_tracking_then_the_mapped_status(limiter):
    used: list[str] = []
    add_rotating_token_endpoint(used)
    order = {**WRAP, "data": ORDER}
    responses.add(responses.PUT, f"{EKM_BASE}/api/v2/orders/123/deliveryTracking", json=order)
    responses.add(responses.PUT, f"{EKM_BASE}/api/v2/orders/123/status", json=order)
    connector(limiter).confirm_despatch(
        OrderRef("123", lines=(OrderLineRef("9001", "MUG-RED", 1),)),
        Shipment(tracking_number="RM1", carrier="Royal Mail", tracking_url="https://track/RM1",
                 channel_status="SHIPPED-OUT"),
    )
    tracking, status = (body for _, body in puts())
    assert tracking == {"delivery_tracking_number": "RM1", "delivery_tracking_company": "Royal Mail",
                        "delivery_tracking_url": "https://track/RM1"}
    assert status == {"status": "SHIPPED-OUT", "email_customer": True}


@responses.activate
def test_despatch_without_a_tracking_number_only_sets_the_status(limiter):
    used: list[str] = []
    add_rotating_token_endpoint(used)
    responses.add(responses.PUT, f"{EKM_BASE}/api/v2/orders/123/status", json={**WRAP, "data": ORDER})
    connector(limiter).confirm_despatch(OrderRef("123"), Shipment(tracking_number="", carrier="Other",
                                                                  channel_status="DISPATCHED"))
    assert puts() == [(f"{EKM_BASE}/api/v2/orders/123/status", {"status": "DISPATCHED", "email_customer": True})]


@responses.activate
def test_cancel_sets_the_mapped_cancelled_status(limiter):
    used: list[str] = []
    add_rotating_token_endpoint(used)
    responses.add(responses.PUT, f"{EKM_BASE}/api/v2/orders/123/status", json={**WRAP, "data": ORDER})
    responses.add(responses.PUT, f"{EKM_BASE}/api/v2/orders/124/status", json={**WRAP, "data": ORDER})
    ekm = connector(limiter)
    ekm.cancel_order(OrderRef("123", channel_status="VOID"), "out of stock")
    ekm.cancel_order(OrderRef("124"), "out of stock")
    assert [body["status"] for _, body in puts()] == ["VOID", "CANCELLED"]


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


# --- Orders by webhook ---

HOOKS = f"{EKM_BASE}/api/v2/Webhooks"
ENDPOINT = "https://hub.example.com/webhooks/2/token/"


def jwt_for(merchant: str) -> str:
    """An EKM access token: a JSON Web Token whose `sub` is the merchant's username."""

    def segment(claims):
        return base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")

    return f"{segment({'alg': 'RS256'})}.{segment({'sub': merchant, 'exp': 4102444800})}.signature"


def connected(limiter, merchant="teapots"):
    """A connector holding a fresh access token for `merchant`, as after its first call."""
    token = {"access_token": jwt_for(merchant), "access_token_expires_at": "2100-01-01T00:00:00+00:00"}
    return connector(limiter, store(**token))


def delivery(**fields):
    return json.dumps({"username": "teapots", "topic": "order.created", "entity_id": "123", **fields}).encode()


def test_a_delivery_for_the_channels_merchant_names_its_order(limiter):
    ekm = connected(limiter)
    assert ekm.receives_order_webhooks
    hint = ekm.webhook_hint({"Content-Type": "application/json"}, delivery())
    assert (hint.order_ids, hint.merchant, hint.topic) == (("123",), "teapots", "order.created")
    # entity_id may come as a number too.
    assert ekm.webhook_hint({}, delivery(topic="order.updated", entity_id=124)).order_ids == ("124",)


@pytest.mark.parametrize(("body", "reason"), [
    (b"username=teapots", "not JSON"),
    (b"[1, 2]", "not a JSON object"),
    (delivery(username="otherShop"), "another merchant"),
    (delivery(username=""), "names no merchant"),
    (delivery(topic="product.updated"), "'product.updated' is not one the hub subscribes to"),
    (delivery(entity_id="../products/55"), "not an order id"),
    (delivery(entity_id=True), "not an order id"),
    (delivery(entity_id=None), "not an order id"),
])
def test_a_delivery_the_hub_will_not_act_on_is_refused_with_its_reason(limiter, body, reason):
    with pytest.raises(WebhookRefused, match=re.escape(reason)):
        connected(limiter).webhook_hint({}, body)


def test_a_delivery_before_the_channel_holds_a_token_is_refused_for_its_unknown_merchant(limiter):
    with pytest.raises(WebhookRefused, match="merchant is unknown"):
        connector(limiter).webhook_hint({}, delivery())


@responses.activate
def test_a_hinted_order_is_read_by_id_and_mapped_as_the_download_maps_it(limiter):
    responses.add(responses.GET, f"{EKM_BASE}/api/v1/settings/currency", json=CURRENCY)
    responses.add(responses.GET, f"{EKM_BASE}/api/v2/orders/123", json={**WRAP, "data": ORDER})
    responses.add(responses.GET, f"{EKM_BASE}/api/v2/orders/123/items", json=fixture_json("ekm_order_123_items.json"))
    not_found = [{"member_names": ["id"], "error_message": "Order '999' not found."}]
    responses.add(responses.GET, f"{EKM_BASE}/api/v2/orders/999", status=404,
                  json={**WRAP, "data": None, "validation_result": not_found})
    page = connected(limiter).order_get(["123", "999"])
    (order,) = page.orders
    assert order == order_from_ekm(ORDER, fixture_json("ekm_order_123_items.json")["data"], "GBP")
    assert [(error.record_id, "not found" in error.reason) for error in page.errors] == [("999", True)]


class Subscriptions:
    """EKM's subscription endpoints over a list, as `responses` callbacks."""

    def __init__(self, *existing):
        self.rows = [{"id": f"00000000-0000-4000-8000-00000000000{n}", "merchant_username": "teapots",
                      "client_id": "ekm-client", "disabled_reason": None, **row} for n, row in enumerate(existing)]
        responses.add_callback(responses.GET, f"{HOOKS}/webhooks", callback=self.listed)
        responses.add_callback(responses.POST, HOOKS, callback=self.added)
        responses.add_callback(responses.PUT, re.compile(re.escape(HOOKS) + "/.+"), callback=self.updated)
        responses.add_callback(responses.DELETE, re.compile(re.escape(HOOKS) + "/.+"), callback=self.deleted)

    def listed(self, request):
        return 200, {}, json.dumps({**WRAP, "data": self.rows})

    def added(self, request):
        body = json.loads(request.body)
        self.rows.append({"id": f"00000000-0000-4000-8000-0000000001{len(self.rows):02d}", "merchant_username":
                          "teapots", "client_id": "ekm-client", "disabled_reason": None, **body})
        return 201, {}, ""

    def find(self, request):
        wanted = request.url.rsplit("/", 1)[1]
        return next((row for row in self.rows if row["id"] == wanted), None)

    def updated(self, request):
        row = self.find(request)
        row.update(json.loads(request.body))
        return 200, {}, ""

    def deleted(self, request):
        row = self.find(request)
        if row is None:
            return 404, {}, ""
        self.rows.remove(row)
        return 200, {}, ""

    def topics(self):
        return sorted((row["topic"], row["endpoint"], row["is_enabled"]) for row in self.rows)


@responses.activate
def test_subscribing_points_one_enabled_subscription_per_topic_at_the_hub(limiter):
    shop = Subscriptions(
        {"topic": "order.created", "endpoint": "https://old-hub.example.com/webhooks/2/x/", "is_enabled": False},
        {"topic": "order.created", "endpoint": "https://old-hub.example.com/webhooks/2/x/", "is_enabled": True},
    )
    ekm = connected(limiter)
    ids = ekm.webhooks_subscribe(ENDPOINT)
    assert shop.topics() == [("order.created", ENDPOINT, True), ("order.updated", ENDPOINT, True)]
    assert sorted(ids) == sorted(row["id"] for row in shop.rows)
    # Again: nothing to change, so nothing is sent but the list.
    before = len(responses.calls)
    assert sorted(ekm.webhooks_subscribe(ENDPOINT)) == sorted(ids)
    assert [call.request.method for call in responses.calls[before:]] == ["GET", "GET"]


@responses.activate
def test_unsubscribing_deletes_every_order_subscription(limiter):
    shop = Subscriptions({"topic": "order.created", "endpoint": ENDPOINT, "is_enabled": True},
                         {"topic": "order.updated", "endpoint": ENDPOINT, "is_enabled": True})
    connected(limiter).webhooks_unsubscribe()
    assert shop.rows == []
    connected(limiter).webhooks_unsubscribe()
