"""The EKM emulation answers as channels/connectors/ekm/contract/*.json says (every answer is checked against it)."""

import threading
from contextlib import contextmanager
from datetime import UTC, datetime

from channels.connectors.base import ConnectorConfig
from channels.connectors.ekm.connector import EkmConnector
from channels.connectors.ratelimit import InProcessLimiter
from sandbox.control import default_credentials
from tests.sandbox.conftest import ekm_login, make_account


def search(ekm, query, page=1, limit=20, orderby="order_date"):
    return ekm.session.get(f"{ekm.url}/api/v2/orders/search",
                           params={"query": query, "orderby": orderby, "page": page, "limit": limit}, timeout=5)


def found(ekm, query):
    return [order["id"] for order in search(ekm, query).json()["data"]]


class Credentials:
    def __init__(self, values):
        self.values = dict(values)
        self._lock = threading.Lock()

    def load(self):
        return dict(self.values)

    def save(self, credentials):
        self.values.update(credentials)

    @contextmanager
    def locked(self):
        with self._lock:
            yield


def test_refresh_tokens_are_single_use_and_a_replay_revokes_the_grant(sandbox):
    account = make_account(sandbox, "ekm", "shop")
    first_refresh = account.credentials["refresh_token"]
    first = ekm_login(account)
    assert first["token_type"] == "Bearer" and first["expires_in"] == 3600
    assert first["refresh_token"] != first_refresh
    assert account.session.get(f"{account.url}/api/v1/settings/shop_information").status_code == 200
    replay = account.session.post(f"{account.url}/connect/token", data={
        "grant_type": "refresh_token", "refresh_token": first_refresh,
        "client_id": account.credentials["client_id"], "client_secret": account.credentials["client_secret"]})
    assert replay.status_code == 400 and replay.json() == {"error": "invalid_grant"}
    # Every token of the grant is now dead: the access token in use and the newest refresh token.
    revoked = account.session.get(f"{account.url}/api/v1/settings/shop_information")
    assert revoked.status_code == 403 and revoked.content == b""
    after = account.session.post(f"{account.url}/connect/token", data={
        "grant_type": "refresh_token", "refresh_token": account.credentials["refresh_token"],
        "client_id": account.credentials["client_id"], "client_secret": account.credentials["client_secret"]})
    assert after.status_code == 400
    # Reauthorising starts a new grant.
    fresh = account.session.post(f"{account.url}/connect/token", data={
        "grant_type": "authorization_code", "code": "consent-1", "redirect_uri": "http://hub/callback",
        "client_id": account.credentials["client_id"], "client_secret": account.credentials["client_secret"]})
    assert fresh.status_code == 200
    account.session.headers["Authorization"] = f"Bearer {fresh.json()['access_token']}"
    assert account.session.get(f"{account.url}/api/v1/settings/shop_information").status_code == 200
    assert sandbox.received("ekm", "shop")["refresh_tokens_used"] == 1


def test_a_token_request_without_its_grant_is_an_oauth_error(sandbox):
    account = make_account(sandbox, "ekm", "shop")
    answer = account.session.post(f"{account.url}/connect/token", data={
        "grant_type": "refresh_token", "client_id": account.credentials["client_id"],
        "client_secret": account.credentials["client_secret"]})
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_request"
    assert "refresh_token" in answer.json()["error_description"]


def test_missing_or_expired_token_is_401_without_body(sandbox, ekm):
    response = ekm.session.get(f"{ekm.url}/api/v1/settings/shop_information", headers={"Authorization": ""})
    assert response.status_code == 401 and response.content == b""
    sandbox.faults("ekm", "shop", [{"path": "shop_information", "type": "expire_token"}])
    assert ekm.session.get(f"{ekm.url}/api/v1/settings/shop_information").status_code == 401
    ekm_login(ekm)
    assert ekm.session.get(f"{ekm.url}/api/v1/settings/shop_information").status_code == 200


def test_settings_answer_in_the_wrapper(ekm):
    info = ekm.session.get(f"{ekm.url}/api/v1/settings/shop_information").json()
    assert info == {"meta": {}, "links": [], "validation_result": None, "errors": None,
                    "data": {"shop_name": "shop (sandbox)", "country": "GB"}}
    domain = ekm.session.get(f"{ekm.url}/api/v1/settings/domains").json()["data"]
    assert domain == {"primary_domain_name": "shop.ekmsandbox.test"}
    assert ekm.session.get(f"{ekm.url}/api/v1/settings/currency").json()["data"]["currency_code"] == "GBP"


def test_order_statuses_are_an_object_holding_the_list(ekm):
    data = ekm.session.get(f"{ekm.url}/api/v1/settings/orderstatuses").json()["data"]
    assert set(data) == {"statuses"}
    assert {"PENDING", "DISPATCHED", "CANCELLED"} <= {status["name"] for status in data["statuses"]}
    assert all(set(status) == {"name", "colour", "show_in_quick_stats"} for status in data["statuses"])


def test_every_response_carries_the_leaky_bucket_and_429_past_it(sandbox, ekm):
    response = ekm.session.get(f"{ekm.url}/api/v1/settings/shop_information")
    assert response.headers["X-EKM-RateLimit-BucketSize"] == "40"
    # The leak interval (seconds) and the tokens leaked each interval: 2 a second.
    assert (response.headers["X-EKM-RateLimit-LeakRate"], response.headers["X-EKM-RateLimit-LeakAmount"]) == (
        "1", "2")
    assert response.headers["X-EKM-RateLimit-Cost"] == "1"
    remaining = int(response.headers["X-EKM-RateLimit-Remaining"])
    assert remaining < 40
    sandbox.rate_limits("ekm", "shop", {"bucket": {"rate": 0.2, "burst": 3}})
    statuses = [ekm.session.get(f"{ekm.url}/api/v1/settings/shop_information") for _ in range(4)]
    assert [response.status_code for response in statuses] == [200, 200, 200, 429]
    assert (statuses[0].headers["X-EKM-RateLimit-LeakRate"], statuses[0].headers["X-EKM-RateLimit-LeakAmount"]) == (
        "5", "1")
    assert statuses[-1].headers["X-EKM-RateLimit-Remaining"] == "0"
    assert int(statuses[-1].headers["Retry-After"]) >= 1


def test_order_search_filters_and_pages(sandbox, ekm):
    sandbox.listings("ekm", "shop", [{"sku": "A", "quantity": 5, "price": "6.00"}])
    sandbox.orders("ekm", "shop", [{"created_at": f"2026-11-01T10:{minute:02d}:00Z", "items": [{"sku": "A"}]}
                                   for minute in range(25)])
    query = "order_date gt '2026-11-01T10:02:00Z' and order_date lt '2026-11-01T10:24:00Z'"
    first = search(ekm, query).json()
    assert first["meta"] == {"pages_total": 2, "items_total": 21, "items_per_page": 20}
    assert first["links"] == [{"rel": "current", "href": "/orders?page=1"}, {"rel": "next", "href": "/orders?page=2"}]
    second = search(ekm, query, page=2).json()
    dates = [order["order_date"] for order in first["data"] + second["data"]]
    assert dates == sorted(dates) and dates[0] == "2026-11-01T10:03:00Z" and dates[-1] == "2026-11-01T10:23:00Z"
    order = first["data"][0]
    assert order["payment_status"] == "SUCCESS" and order["status"] == "PENDING"
    assert order["total_cost"] == order["sub_total"] + order["total_delivery"]
    assert isinstance(order["total_cost"], float)
    assert order["shipping_address"]["country"] == "GB" and order["shipping_address"]["address"]
    assert order["customer_details"]["email_address"]
    assert search(ekm, "order_date gt '0001-01-01T00:00:00Z'").json()["meta"]["items_total"] == 25
    assert search(ekm, "(id eq 3 or id eq 4) and not status eq 'DISPATCHED'").json()["meta"]["items_total"] == 2
    too_many = search(ekm, query, limit=50)
    assert too_many.status_code == 400 and too_many.json()["validation_result"][0]["member_names"] == ["limit"]
    bad = search(ekm, "order_date after yesterday")
    assert bad.status_code == 400
    assert bad.json()["validation_result"] == [{"member_names": None, "error_message": "Invalid search expression"}]


def test_a_new_order_has_no_last_updated_until_it_changes(sandbox, ekm):
    sandbox.listings("ekm", "shop", [{"sku": "A", "quantity": 5}])
    (order_id,) = sandbox.orders("ekm", "shop", [{"created_at": "2026-11-01T10:00:00Z", "items": [{"sku": "A"}]}])
    (order,) = search(ekm, "").json()["data"]
    assert order["last_updated"] is None
    assert found(ekm, "last_updated gt '2026-01-01T00:00:00Z'") == []
    assert found(ekm, "last_updated eq null") == [int(order_id)]
    sandbox.order_status("ekm", "shop", order_id, "PROCESSING")
    assert found(ekm, "last_updated gt '2026-01-01T00:00:00Z'") == [int(order_id)]


def test_the_connector_downloads_orders_that_were_never_updated(sandbox):
    account = make_account(sandbox, "ekm", "main")
    sandbox.listings("ekm", "main", [{"sku": "A", "quantity": 5}])
    created = sandbox.orders("ekm", "main", [{"items": [{"sku": "A"}]}, {"items": [{"sku": "A"}]}])
    config = ConnectorConfig(channel_id=9, kind="ekm", name="main", api_base_url=account.url,
                             auth_base_url=account.url, allowed_hosts=frozenset({"127.0.0.1"}))
    ekm = EkmConnector(config, Credentials(default_credentials("ekm", "main")), InProcessLimiter())
    pages = list(ekm.fetch_orders(datetime(2026, 1, 1, tzinfo=UTC), datetime.now(UTC)))
    assert sorted(order.channel_order_id for page in pages for order in page.orders) == sorted(created)
    assert all(order.shipping_address.line1 and order.currency == "GBP" for page in pages for order in page.orders)


def test_order_items_name_the_product_and_sell_a_variant_by_its_product_code(sandbox, ekm):
    sandbox.listings("ekm", "shop", [{"sku": "TEE", "title": "T-shirt", "quantity": 0},
                                     {"sku": "TEE-M", "variant_of": "TEE", "quantity": 4, "price": "15.00"}])
    (order_id,) = sandbox.orders("ekm", "shop", [{"items": [{"sku": "TEE-M", "quantity": 2}]}])
    (item,) = ekm.session.get(f"{ekm.url}/api/v2/orders/{order_id}/items").json()["data"]
    listings = {listing["sku"]: listing for listing in sandbox.listings("ekm", "shop")}
    assert str(item["product_id"]) == listings["TEE"]["external_id"] and "variant_id" not in item
    assert (item["product_code"], item["quantity"], item["item_price"]) == ("TEE-M", 2, 15.0)
    assert (item["order_id"], item["item_name"]) == (int(order_id), "TEE-M")
    assert item["item_tax"] == 5.0 and item["item_tax_rate"] == 20.0
    missing = ekm.session.get(f"{ekm.url}/api/v2/orders/999999/items")
    assert missing.status_code == 404
    assert missing.json()["validation_result"] == [
        {"member_names": ["id"], "error_message": "Order '999999' not found."}]


def test_products_with_variants_and_stock_updates(sandbox, ekm):
    created = sandbox.listings("ekm", "shop", [
        {"sku": "TEE", "title": "T-shirt", "quantity": 1, "price": "10"},
        {"sku": "TEE-S", "variant_of": "TEE", "quantity": 2}, {"sku": "TEE-L", "variant_of": "TEE", "quantity": 3}])
    product_id = created[0]["external_id"]
    variant_id = created[1]["external_id"].split("/")[1]
    assert created[1]["external_id"].startswith(f"{product_id}/")
    (product,) = ekm.session.get(f"{ekm.url}/api/v1/products", params={"page": 1, "limit": 20}).json()["data"]
    assert product["product_code"] == "TEE"
    assert [(v["product_code"], v["parent_product_id"]) for v in product["variants"]] == [
        ("TEE-S", int(product_id)), ("TEE-L", int(product_id))]
    assert ekm.session.put(f"{ekm.url}/api/v1/products/{product_id}/stock", json={"stock": 8}).json()["data"] == {
        "id": int(product_id), "stock": 8}
    assert ekm.session.put(f"{ekm.url}/api/v1/products/{product_id}/variants/{variant_id}/stock",
                           json={"stock": 6}).status_code == 200
    wrong_route = ekm.session.put(f"{ekm.url}/api/v1/products/{variant_id}/stock", json={"stock": 1})
    assert wrong_route.status_code == 422
    assert wrong_route.json()["validation_result"][0]["error_message"] == (
        f"Product '{variant_id}' is a variant. Please use master product Id '{product_id}'")
    nothing = ekm.session.put(f"{ekm.url}/api/v1/products/{product_id}/stock", json={})
    assert nothing.status_code == 400 and nothing.json()["validation_result"][0]["member_names"] == ["stock"]
    stock = sandbox.received("ekm", "shop")["stock"]
    assert {sku: entry["quantity"] for sku, entry in stock.items()} == {"TEE": 8, "TEE-S": 6}


def test_a_products_price_is_set_by_get_modify_put_within_v1_update_product(sandbox, ekm):
    (created,) = sandbox.listings("ekm", "shop", [{"sku": "MUG", "title": "Mug", "quantity": 1, "price": "5"}])
    url = f"{ekm.url}/api/v1/products/{created['external_id']}"
    product = ekm.session.get(url).json()["data"]
    update = {key: value for key, value in product.items() if key != "variants"}
    assert ekm.session.put(url, json={**update, "price": 7.25}).status_code == 200
    assert ekm.session.get(url).json()["data"]["price"] == 7.25
    assert sandbox.received("ekm", "shop")["stock"]["MUG"]["price"] == "7.25"
    nameless = ekm.session.put(url, json={"price": 8})
    assert nameless.status_code == 400
    assert nameless.json()["validation_result"] == [{"member_names": ["name"],
                                                     "error_message": "The name field is required."}]
    blank = ekm.session.put(url, json={**update, "name": " "})
    assert blank.status_code == 400 and blank.json()["validation_result"][0]["member_names"] == ["name"]
    # V1UpdateProduct has no variants: EKM does not take a product back as it was read.
    as_read = ekm.session.put(url, json=product)
    assert as_read.status_code == 400 and as_read.json()["validation_result"][0]["member_names"] == ["variants"]


def test_a_variants_price_is_set_on_the_variant(sandbox, ekm):
    created = sandbox.listings("ekm", "shop", [{"sku": "TEE", "quantity": 0},
                                               {"sku": "TEE-M", "variant_of": "TEE", "quantity": 4, "price": "15"}])
    product_id, variant_id = created[1]["external_id"].split("/")
    url = f"{ekm.url}/api/v1/products/{product_id}/variants/{variant_id}"
    variant = ekm.session.get(url).json()["data"]
    assert (variant["product_code"], variant["price"]) == ("TEE-M", 15.0)
    assert ekm.session.put(url, json={**variant, "price": 12.5}).json()["data"]["price"] == 12.5
    assert sandbox.received("ekm", "shop")["stock"]["TEE-M"]["price"] == "12.50"
    assert ekm.session.get(f"{ekm.url}/api/v1/products/{variant_id}/variants/{variant_id}").status_code == 404


def test_despatch_and_cancellation_by_status(sandbox, ekm):
    sandbox.listings("ekm", "shop", [{"sku": "A", "quantity": 5}])
    shipped, cancelled = sandbox.orders("ekm", "shop", [{"items": [{"sku": "A"}]}, {"items": [{"sku": "A"}]}])
    tracking = {"delivery_tracking_number": "RM1", "delivery_tracking_company": "Royal Mail",
                "delivery_tracking_url": "https://track/RM1"}
    answer = ekm.session.put(f"{ekm.url}/api/v2/orders/{shipped}/deliveryTracking", json=tracking).json()["data"]
    assert {key: answer[key] for key in tracking} == tracking
    assert ekm.session.put(f"{ekm.url}/api/v2/orders/{shipped}/status",
                           json={"status": "DISPATCHED", "email_customer": True}).json()["data"]["status"] == (
        "DISPATCHED")
    assert ekm.session.put(f"{ekm.url}/api/v2/orders/{cancelled}/status",
                           json={"status": "CANCELLED", "email_customer": True}).status_code == 200
    unknown = ekm.session.put(f"{ekm.url}/api/v2/orders/{cancelled}/status", json={"status": "LOST"})
    assert unknown.status_code == 400 and unknown.json()["validation_result"][0]["member_names"] == ["status"]
    statusless = ekm.session.put(f"{ekm.url}/api/v2/orders/{cancelled}/status", json={"email_customer": True})
    assert statusless.json()["validation_result"] == [{"member_names": ["status"],
                                                       "error_message": "The status field is required."}]
    assert ekm.session.put(f"{ekm.url}/api/v2/orders/999999/status", json={"status": "DISPATCHED"}).status_code == 404
    received = sandbox.received("ekm", "shop")
    (shipment,) = received["shipments"]
    assert (shipment["order_id"], shipment["tracking_number"], shipment["carrier"]) == (shipped, "RM1", "Royal Mail")
    assert [entry["order_id"] for entry in received["cancellations"]] == [cancelled]
    statuses = {order["order_id"]: order["status"] for order in sandbox.orders("ekm", "shop")}
    assert statuses == {shipped: "DISPATCHED", cancelled: "CANCELLED"}


def test_webhook_subscriptions_are_created_listed_and_deleted(ekm):
    hooks = f"{ekm.url}/api/v2/Webhooks"
    created = ekm.session.post(hooks, json={"topic": "order.created", "endpoint": "https://hub.example/ekm",
                                            "is_enabled": True})
    assert created.status_code == 201 and created.content == b""
    (subscription,) = ekm.session.get(f"{hooks}/webhooks").json()["data"]
    assert (subscription["topic"], subscription["endpoint"], subscription["is_enabled"]) == (
        "order.created", "https://hub.example/ekm", True)
    assert subscription["merchant_username"] == "shop"
    unknown_topic = ekm.session.post(hooks, json={"topic": "product.deleted", "endpoint": "https://hub.example/ekm"})
    assert unknown_topic.status_code == 400 and unknown_topic.content == b""
    assert ekm.session.delete(f"{hooks}/{subscription['id']}").status_code == 200
    assert ekm.session.get(f"{hooks}/webhooks").json()["data"] == []
    assert ekm.session.delete(f"{hooks}/{subscription['id']}").status_code == 404
