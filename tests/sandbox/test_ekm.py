from tests.sandbox.conftest import ekm_login, make_account


def search(ekm, query, page=1, limit=20, orderby="last_updated"):
    return ekm.session.get(f"{ekm.url}/api/v2/orders/search",
                           params={"query": query, "orderby": orderby, "page": page, "limit": limit}, timeout=5)


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


def test_missing_or_expired_token_is_401_without_body(sandbox, ekm):
    response = ekm.session.get(f"{ekm.url}/api/v1/settings/shop_information", headers={"Authorization": ""})
    assert response.status_code == 401 and response.content == b""
    sandbox.faults("ekm", "shop", [{"path": "shop_information", "type": "expire_token"}])
    assert ekm.session.get(f"{ekm.url}/api/v1/settings/shop_information").status_code == 401
    ekm_login(ekm)
    assert ekm.session.get(f"{ekm.url}/api/v1/settings/shop_information").status_code == 200


def test_shop_information_and_order_statuses(ekm):
    info = ekm.session.get(f"{ekm.url}/api/v1/settings/shop_information").json()
    assert set(info) == {"meta", "links", "validation_result", "errors", "data"}
    assert info["data"]["currency"] == "GBP"
    statuses = [entry["name"] for entry in ekm.session.get(f"{ekm.url}/api/v1/settings/orderstatuses").json()["data"]]
    assert {"PENDING", "DISPATCHED", "CANCELLED"} <= set(statuses)


def test_every_response_carries_the_leaky_bucket_and_429_past_it(sandbox, ekm):
    response = ekm.session.get(f"{ekm.url}/api/v1/settings/shop_information")
    assert response.headers["X-EKM-RateLimit-BucketSize"] == "40"
    assert response.headers["X-EKM-RateLimit-LeakRate"] == "2"
    assert response.headers["X-EKM-RateLimit-Cost"] == "1"
    remaining = int(response.headers["X-EKM-RateLimit-Remaining"])
    assert remaining < 40
    sandbox.rate_limits("ekm", "shop", {"bucket": {"rate": 0.2, "burst": 3}})
    statuses = [ekm.session.get(f"{ekm.url}/api/v1/settings/shop_information") for _ in range(4)]
    assert [response.status_code for response in statuses] == [200, 200, 200, 429]
    assert statuses[-1].headers["X-EKM-RateLimit-Remaining"] == "0"
    assert int(statuses[-1].headers["Retry-After"]) >= 1


def test_order_search_filters_and_pages(sandbox, ekm):
    sandbox.listings("ekm", "shop", [{"sku": "A", "quantity": 5, "price": "6.00"}])
    sandbox.orders("ekm", "shop", [{"created_at": f"2026-11-01T10:{minute:02d}:00Z", "items": [{"sku": "A"}]}
                                   for minute in range(25)])
    query = "last_updated gt '2026-11-01T10:02:00Z' and last_updated lt '2026-11-01T10:24:00Z'"
    first = search(ekm, query).json()
    assert first["meta"] == {"pages_total": 2, "items_total": 21, "items_per_page": 20, "current_page": 1}
    second = search(ekm, query, page=2).json()
    dates = [order["last_updated"] for order in first["data"] + second["data"]]
    assert dates == sorted(dates) and dates[0] == "2026-11-01T10:03:00Z" and dates[-1] == "2026-11-01T10:23:00Z"
    order = first["data"][0]
    assert order["payment_status"] == "SUCCESS" and order["status"] == "PENDING"
    assert order["total_cost"] == order["sub_total"] + order["total_delivery"]
    assert isinstance(order["total_cost"], float)
    assert order["shipping_address"]["country"] == "GB" and order["customer_details"]["email_address"]
    assert search(ekm, "last_updated gt '0001-01-01T00:00:00Z'").json()["meta"]["items_total"] == 25
    assert search(ekm, query, limit=50).status_code == 400
    bad = search(ekm, "last_updated after yesterday")
    assert bad.status_code == 400 and bad.json()["validation_result"][0]["member_names"] == ["query"]


def test_order_items_name_product_and_variant(sandbox, ekm):
    sandbox.listings("ekm", "shop", [{"sku": "TEE", "quantity": 0}, {"sku": "TEE-M", "variant_of": "TEE",
                                                                     "quantity": 4, "price": "15.00"}])
    (order_id,) = sandbox.orders("ekm", "shop", [{"items": [{"sku": "TEE-M", "quantity": 2}]}])
    (item,) = ekm.session.get(f"{ekm.url}/api/v2/orders/{order_id}/items").json()["data"]
    listings = {listing["sku"]: listing for listing in sandbox.listings("ekm", "shop")}
    assert f"{item['product_id']}/{item['variant_id']}" == listings["TEE-M"]["external_id"]
    assert (item["product_code"], item["quantity"], item["item_price"]) == ("TEE-M", 2, 15.0)
    assert item["item_tax"] == 5.0 and item["item_tax_rate"] == 20.0
    missing = ekm.session.get(f"{ekm.url}/api/v2/orders/999999/items")
    assert missing.status_code == 404 and missing.json()["validation_result"]


def test_products_with_variants_and_stock_updates(sandbox, ekm):
    created = sandbox.listings("ekm", "shop", [
        {"sku": "TEE", "title": "T-shirt", "quantity": 1, "price": "10"},
        {"sku": "TEE-S", "variant_of": "TEE", "quantity": 2}, {"sku": "TEE-L", "variant_of": "TEE", "quantity": 3}])
    product_id = created[0]["external_id"]
    variant_external = created[1]["external_id"]
    assert variant_external.startswith(f"{product_id}/")
    variant_id = variant_external.split("/")[1]
    (product,) = ekm.session.get(f"{ekm.url}/api/v1/products", params={"page": 1, "limit": 20}).json()["data"]
    assert product["product_code"] == "TEE" and [v["product_code"] for v in product["variants"]] == ["TEE-S",
                                                                                                      "TEE-L"]
    assert ekm.session.put(f"{ekm.url}/api/v1/products/{product_id}/stock", json={"stock": 8}).status_code == 200
    assert ekm.session.put(f"{ekm.url}/api/v1/products/{product_id}/variants/{variant_id}/stock",
                           json={"stock": 6}).status_code == 200
    wrong_route = ekm.session.put(f"{ekm.url}/api/v1/products/{variant_id}/stock", json={"stock": 1})
    assert wrong_route.status_code == 422
    assert ekm.session.put(f"{ekm.url}/api/v1/products/{product_id}/stock", json={"stock": -1}).status_code == 422
    stock = sandbox.received("ekm", "shop")["stock"]
    assert {sku: entry["quantity"] for sku, entry in stock.items()} == {"TEE": 8, "TEE-S": 6}


def test_price_is_set_by_get_modify_put(sandbox, ekm):
    (created,) = sandbox.listings("ekm", "shop", [{"sku": "MUG", "title": "Mug", "quantity": 1, "price": "5"}])
    url = f"{ekm.url}/api/v1/products/{created['external_id']}"
    product = ekm.session.get(url).json()["data"]
    product["price"] = 7.25
    assert ekm.session.put(url, json=product).status_code == 200
    nameless = ekm.session.put(url, json={**product, "name": ""})
    assert nameless.status_code == 422 and nameless.json()["validation_result"][0]["member_names"] == ["name"]
    assert ekm.session.get(url).json()["data"]["price"] == 7.25
    assert sandbox.received("ekm", "shop")["stock"]["MUG"]["price"] == "7.25"


def test_despatch_and_cancellation_by_status(sandbox, ekm):
    sandbox.listings("ekm", "shop", [{"sku": "A", "quantity": 5}])
    shipped, cancelled = sandbox.orders("ekm", "shop", [{"items": [{"sku": "A"}]}, {"items": [{"sku": "A"}]}])
    tracking = {"delivery_tracking_number": "RM1", "delivery_tracking_company": "Royal Mail",
                "delivery_tracking_url": "https://track/RM1"}
    assert ekm.session.put(f"{ekm.url}/api/v2/orders/{shipped}/deliveryTracking", json=tracking).status_code == 200
    assert ekm.session.put(f"{ekm.url}/api/v2/orders/{shipped}/status",
                           json={"status": "DISPATCHED", "email_customer": True}).status_code == 200
    assert ekm.session.put(f"{ekm.url}/api/v2/orders/{cancelled}/status",
                           json={"status": "CANCELLED", "email_customer": True}).status_code == 200
    unknown = ekm.session.put(f"{ekm.url}/api/v2/orders/{cancelled}/status", json={"status": "LOST"})
    assert unknown.status_code == 422
    received = sandbox.received("ekm", "shop")
    (shipment,) = received["shipments"]
    assert (shipment["order_id"], shipment["tracking_number"], shipment["carrier"]) == (shipped, "RM1", "Royal Mail")
    assert [entry["order_id"] for entry in received["cancellations"]] == [cancelled]
    statuses = {order["order_id"]: order["status"] for order in sandbox.orders("ekm", "shop")}
    assert statuses == {shipped: "DISPATCHED", cancelled: "CANCELLED"}
