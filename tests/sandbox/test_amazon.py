"""The Amazon sandbox answers as contract/*.json says SP-API does (the session's sandbox checks every answer
against its response schema too: a broken one is a 500)."""

import json
from datetime import UTC, datetime, timedelta

import pytest

from channels.connectors.contracts import contract_load
from tests.contracts.helpers import answer_undeclared
from tests.sandbox.conftest import amazon_login, make_account

CONTRACT = contract_load("amazon")
UK = "A1F83G8C2ARO7P"
ORDERS = "/orders/2026-01-01/orders"
ALL_DATA = "BUYER,RECIPIENT,PROCEEDS,FULFILLMENT"
SINCE_EVER = "2000-01-01T00:00:00Z"


def get_orders(amazon, **params):
    query = {"marketplaceIds": UK, "includedData": ALL_DATA, **params}
    return amazon.session.get(amazon.url + ORDERS, params=query, timeout=5)


def patch_body(quantity=None, lead_time=None, price=None, audience=None):
    patches = []
    if quantity is not None:
        availability = {"fulfillment_channel_code": "DEFAULT", "quantity": quantity}
        if lead_time is not None:
            availability["lead_time_to_ship_max_days"] = lead_time
        patches.append({"op": "merge", "path": "/attributes/fulfillment_availability", "value": [availability]})
    if price is not None:
        offer = {"marketplace_id": UK, "currency": "GBP", "our_price": [{"schedule": [{"value_with_tax": price}]}]}
        if audience:
            offer["audience"] = audience
        patches.append({"op": "merge", "path": "/attributes/purchasable_offer", "value": [offer]})
    return {"productType": "PRODUCT", "patches": patches}


def poll(amazon, path, limit=5):
    for _ in range(limit):
        body = amazon.session.get(amazon.url + path, timeout=5).json()
        if body["processingStatus"] in ("DONE", "FATAL", "CANCELLED"):
            return body
    raise AssertionError(f"{path} never finished: {body}")


def assert_declared(operation_id, response):
    operation = CONTRACT.operation(operation_id)
    assert answer_undeclared(operation, response.status_code, response.json()) == [], operation_id
    return response.json()


def test_refresh_token_grant_and_bad_clients(sandbox):
    account = make_account(sandbox, "amazon", "uk")
    token = amazon_login(account)
    assert token.startswith("Atza|")
    form = {"grant_type": "refresh_token", "refresh_token": account.credentials["refresh_token"],
            "client_id": account.credentials["client_id"], "client_secret": "wrong"}
    bad_client = account.session.post(f"{account.url}/auth/o2/token", data=form)
    assert bad_client.status_code == 401 and bad_client.json()["error"] == "invalid_client"
    bad_token = account.session.post(f"{account.url}/auth/o2/token", data={
        **form, "client_secret": account.credentials["client_secret"], "refresh_token": "Atzr|nope"})
    assert bad_token.status_code == 400 and bad_token.json()["error"] == "invalid_grant"
    no_grant = account.session.post(f"{account.url}/auth/o2/token", data={**form, "grant_type": "password"})
    assert no_grant.status_code == 400 and no_grant.json()["error"] == "invalid_request"
    # Amazon refresh tokens are reusable, unlike EKM's.
    assert amazon_login(account) != token
    assert sandbox.received("amazon", "uk")["refresh_tokens_used"] == 2


def test_authorization_code_gives_a_new_refresh_token_once(sandbox):
    account = make_account(sandbox, "amazon", "uk")
    form = {"grant_type": "authorization_code", "code": "spapi-code-1",
            "client_id": account.credentials["client_id"], "client_secret": account.credentials["client_secret"]}
    first = account.session.post(f"{account.url}/auth/o2/token", data=form)
    assert first.status_code == 200
    assert {"access_token", "refresh_token", "expires_in"} <= set(first.json())
    assert account.session.post(f"{account.url}/auth/o2/token", data=form).json()["error"] == "invalid_grant"
    account.credentials["refresh_token"] = first.json()["refresh_token"]
    assert amazon_login(account)


def test_calls_without_a_valid_token_are_denied(amazon):
    url = amazon.url + "/sellers/v1/marketplaceParticipations"
    for headers in ({"x-amz-access-token": ""}, {"x-amz-access-token": "Atza|forged"}):
        response = amazon.session.get(url, headers=headers)
        assert response.status_code == 403
        assert response.json()["errors"][0]["code"] == "Unauthorized"


def test_marketplace_participations(amazon):
    response = amazon.session.get(amazon.url + "/sellers/v1/marketplaceParticipations")
    participation = assert_declared("getMarketplaceParticipations", response)["payload"][0]
    assert participation["marketplace"]["id"] == UK and participation["storeName"]
    assert participation["participation"] == {"isParticipating": True, "hasSuspendedListings": False}


def test_every_answer_names_its_request_and_the_accounts_rate(sandbox, amazon):
    sandbox.rate_limits("amazon", "uk", {"searchOrders": {"rate": 2.5, "burst": 30}})
    response = get_orders(amazon, lastUpdatedAfter=SINCE_EVER)
    assert response.headers["x-amzn-RateLimit-Limit"] == "2.5" and response.headers["x-amzn-RequestId"]


def test_order_shape_proceeds_and_included_data(sandbox, amazon):
    sandbox.listings("amazon", "uk", [{"sku": "SKU-1", "title": "Mug", "quantity": 5, "price": "10.00"}])
    sandbox.orders("amazon", "uk", [
        {"order_id": "202-0000001-0000001", "items": [{"sku": "SKU-1", "quantity": 2, "price": "10.00"}],
         "shipping_tag": "EXPEDITED", "buyer_email": None, "shipping_cost": "3.60"},
        {"order_id": "202-0000001-0000002", "paid": False, "fulfilled_by_channel": True,
         "items": [{"sku": "SKU-1", "quantity": 1}]},
    ])
    first, second = assert_declared("searchOrders", get_orders(amazon, lastUpdatedAfter=SINCE_EVER))["orders"]
    assert first["orderId"] == "202-0000001-0000001"
    assert first["salesChannel"] == {"channelName": "AMAZON", "marketplaceId": UK, "marketplaceName": "Amazon.co.uk"}
    assert "buyerEmail" not in first["buyer"]
    assert first["fulfillment"] == {"fulfillmentStatus": "UNSHIPPED", "fulfilledBy": "MERCHANT",
                                    "fulfillmentServiceLevel": "EXPEDITED"}
    item = first["orderItems"][0]
    assert item["quantityOrdered"] == 2 and item["product"]["sellerSku"] == "SKU-1"
    assert item["product"]["price"]["unitPrice"]["amount"] == "10.00"
    # Prices include VAT: TAX is the VAT within the goods and the delivery.
    by_type = {entry["type"]: entry for entry in item["proceeds"]["breakdowns"]}
    assert {kind: entry["subtotal"]["amount"] for kind, entry in by_type.items()} == {
        "ITEM": "20.00", "SHIPPING": "3.60", "TAX": "3.93"}
    assert by_type["TAX"]["detailedBreakdowns"] == [
        {"subtype": "ITEM", "value": {"amount": "3.33", "currencyCode": "GBP"}},
        {"subtype": "SHIPPING", "value": {"amount": "0.60", "currencyCode": "GBP"}}]
    assert first["proceeds"]["grandTotal"] == {"amount": "23.60", "currencyCode": "GBP"}
    assert {entry["type"]: entry["subtotal"]["amount"] for entry in first["proceeds"]["breakdowns"]} == {
        "ITEM": "20.00", "SHIPPING": "3.60", "TAX": "3.93"}
    assert "itemTax" not in json.dumps(first)
    assert set(first["recipient"]["deliveryAddress"]) == {"name", "addressLine1", "addressLine2", "city",
                                                          "stateOrRegion", "postalCode", "countryCode", "phone"}
    assert second["fulfillment"]["fulfillmentStatus"] == "PENDING"
    assert second["fulfillment"]["fulfilledBy"] == "AMAZON"
    assert second["fulfillment"]["fulfillmentServiceLevel"] == "STANDARD"
    bare = amazon.session.get(amazon.url + ORDERS, params={"lastUpdatedAfter": SINCE_EVER}).json()["orders"][0]
    assert "buyer" not in bare and "recipient" not in bare and "proceeds" not in bare and bare["orderItems"]


def test_orders_paginate_in_last_updated_order_without_gaps(sandbox, amazon):
    sandbox.listings("amazon", "uk", [{"sku": "A", "quantity": 9}])
    created = sandbox.orders("amazon", "uk", generate=250, skus=["A"])
    seen, token, pages = [], None, 0
    while True:
        params = {"lastUpdatedAfter": SINCE_EVER, "maxResultsPerPage": 100}
        body = get_orders(amazon, **params, **({"paginationToken": token} if token else {})).json()
        pages += 1
        seen += body["orders"]
        token = body["pagination"].get("nextToken")
        if not token:
            break
    assert pages == 3
    assert sorted(order["orderId"] for order in seen) == sorted(created)
    times = [order["lastUpdatedTime"] for order in seen]
    assert times == sorted(times)


def test_orders_time_filters(sandbox, amazon):
    sandbox.listings("amazon", "uk", [{"sku": "A", "quantity": 9}])
    for day in ("01", "02", "03"):
        sandbox.orders("amazon", "uk", [{"order_id": f"202-0000000-00000{day}",
                                         "created_at": f"2026-11-{day}T10:00:00Z",
                                         "items": [{"sku": "A", "quantity": 1}]}])
    window = get_orders(amazon, lastUpdatedAfter="2026-11-02T00:00:00Z", lastUpdatedBefore="2026-11-02T23:00:00Z")
    assert [order["orderId"] for order in window.json()["orders"]] == ["202-0000000-0000002"]
    created = get_orders(amazon, createdAfter="2026-11-02T10:00:00Z").json()["orders"]
    assert [order["orderId"] for order in created] == ["202-0000000-0000002", "202-0000000-0000003"]
    since_ever = get_orders(amazon, lastUpdatedAfter="0001-01-01T00:00:00Z").json()["orders"]
    assert len(since_ever) == 3


@pytest.mark.parametrize("query", [
    {"createdAfter": "2026-11-01T00:00:00Z", "lastUpdatedAfter": "2026-11-01T00:00:00Z"},
    {},
    {"lastUpdatedAfter": "2026-11-01T00:00:00Z", "createdBefore": "2026-11-02T00:00:00Z"},
    {"lastUpdatedAfter": "2026-11-01T00:00:00Z", "maxResultsPerPage": "500"},
    {"lastUpdatedAfter": "2026-11-01T00:00:00Z", "includedData": "ITEMTAX"},
    {"lastUpdatedAfter": "yesterday"},
])
def test_search_orders_refuses_what_the_contract_refuses(amazon, query):
    refused = amazon.session.get(amazon.url + ORDERS, params=query, timeout=5)
    assert refused.status_code == 400
    (error,) = refused.json()["errors"]
    assert error["code"] == "InvalidInput" and error["message"]


def test_an_upper_bound_must_be_two_minutes_old(amazon):
    now = (datetime.now(UTC) - timedelta(seconds=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    refused = get_orders(amazon, lastUpdatedAfter=SINCE_EVER, lastUpdatedBefore=now)
    assert refused.status_code == 400 and "two minutes" in refused.json()["errors"][0]["message"]


def test_a_status_change_moves_the_order_to_the_end(sandbox, amazon):
    sandbox.listings("amazon", "uk", [{"sku": "A", "quantity": 9}])
    first, _ = sandbox.orders("amazon", "uk", [
        {"created_at": "2026-11-01T10:00:00Z", "items": [{"sku": "A"}]},
        {"created_at": "2026-11-02T10:00:00Z", "items": [{"sku": "A"}]}])
    sandbox.order_status("amazon", "uk", first, "CANCELLED")
    orders = get_orders(amazon, lastUpdatedAfter="2026-11-01T00:00:00Z").json()["orders"]
    assert orders[-1]["orderId"] == first
    assert orders[-1]["fulfillment"]["fulfillmentStatus"] == "CANCELLED"


def test_patch_listing_records_quantity_latency_and_the_price_for_every_buyer(sandbox, amazon):
    sandbox.listings("amazon", "uk", [{"sku": "SKU 1/A", "quantity": 1, "price": "9.99"}])
    seller = amazon.seller_id
    url = f"{amazon.url}/listings/2021-08-01/items/{seller}/SKU%201%2FA"
    accepted = amazon.session.patch(url, params={"marketplaceIds": UK}, json=patch_body(7, 2, 12.5, audience="ALL"))
    assert assert_declared("patchListingsItem", accepted)["status"] == "ACCEPTED"
    assert accepted.json()["sku"] == "SKU 1/A"
    # A merge without the lead time keeps the one received before; a business-only offer is another offer.
    amazon.session.patch(url, params={"marketplaceIds": UK}, json=patch_body(4, price=8.0, audience="B2B"))
    stock = sandbox.received("amazon", "uk")["stock"]["SKU 1/A"]
    assert (stock["quantity"], stock["latency"], stock["price"], stock["updates"]) == (4, 2, "12.50", 2)
    unknown = amazon.session.patch(f"{amazon.url}/listings/2021-08-01/items/{seller}/NOPE",
                                   params={"marketplaceIds": UK}, json=patch_body(1))
    assert assert_declared("patchListingsItem", unknown)["status"] == "INVALID"
    assert unknown.json()["issues"][0]["code"] == "4000001"
    negative = amazon.session.patch(url, params={"marketplaceIds": UK}, json=patch_body(-1)).json()
    assert negative["status"] == "INVALID" and negative["issues"][0]["categories"] == ["INVALID_ATTRIBUTE"]
    assert sandbox.received("amazon", "uk")["stock"]["SKU 1/A"]["quantity"] == 4
    empty = amazon.session.patch(url, params={"marketplaceIds": UK}, json={"productType": "PRODUCT", "patches": []})
    assert empty.status_code == 400 and empty.json()["errors"][0]["code"] == "InvalidInput"


def create_feed(amazon, feed_type, content, content_type):
    document = amazon.session.post(amazon.url + "/feeds/2021-06-30/documents", json={"contentType": content_type})
    assert document.status_code == 201
    upload = amazon.session.put(document.json()["url"], data=content,
                                headers={"x-amz-access-token": None, "Content-Type": content_type})
    assert upload.status_code == 200
    feed = amazon.session.post(amazon.url + "/feeds/2021-06-30/feeds", json={
        "feedType": feed_type, "marketplaceIds": [UK], "inputFeedDocumentId": document.json()["feedDocumentId"]})
    assert feed.status_code == 202
    return feed.json()["feedId"]


def read_result(amazon, feed):
    document = amazon.session.get(f"{amazon.url}/feeds/2021-06-30/documents/{feed['resultFeedDocumentId']}").json()
    return amazon.session.get(document["url"], headers={"x-amz-access-token": None}).content


def test_a_feed_document_is_uploaded_with_the_content_type_its_url_is_signed_for(amazon):
    document = amazon.session.post(amazon.url + "/feeds/2021-06-30/documents",
                                   json={"contentType": "application/json; charset=UTF-8"}).json()
    refused = amazon.session.put(document["url"], data=b"{}", headers={"Content-Type": "text/plain"})
    assert refused.status_code == 403 and b"SignatureDoesNotMatch" in refused.content
    missing = amazon.session.get(document["url"])
    assert missing.status_code == 404 and b"NoSuchKey" in missing.content


def test_json_listings_feed_is_processed_on_the_second_poll(sandbox, amazon):
    sandbox.listings("amazon", "uk", [{"sku": "A", "quantity": 1}, {"sku": "B", "quantity": 1}])
    messages = [{"messageId": index, "sku": sku, "operationType": "PATCH", **patch_body(quantity)}
                for index, (sku, quantity) in enumerate([("A", 5), ("B", 0), ("MISSING", 3)], start=1)]
    messages.append({"messageId": 4, "sku": "B", "operationType": "PATCH", "productType": "PRODUCT"})
    feed_id = create_feed(amazon, "JSON_LISTINGS_FEED",
                          json.dumps({"header": {"sellerId": amazon.seller_id, "version": "2.0"},
                                      "messages": messages}),
                          "application/json; charset=UTF-8")
    first = amazon.session.get(f"{amazon.url}/feeds/2021-06-30/feeds/{feed_id}").json()
    assert first["processingStatus"] in ("IN_QUEUE", "IN_PROGRESS")
    assert sandbox.received("amazon", "uk")["stock"] == {}
    feed = poll(amazon, f"/feeds/2021-06-30/feeds/{feed_id}")
    assert feed["processingStatus"] == "DONE"
    result = json.loads(read_result(amazon, feed))
    assert result["summary"] == {"errors": 2, "warnings": 0, "messagesProcessed": 4, "messagesAccepted": 2,
                                 "messagesInvalid": 2}
    assert [(issue["messageId"], issue["sku"]) for issue in result["issues"]] == [(3, "MISSING"), (4, "B")]
    assert result["header"]["feedId"] == feed_id
    stock = sandbox.received("amazon", "uk")["stock"]
    assert {sku: entry["quantity"] for sku, entry in stock.items()} == {"A": 5, "B": 0}


def test_a_listings_feed_for_another_seller_is_refused_as_a_whole(sandbox, amazon):
    sandbox.listings("amazon", "uk", [{"sku": "A", "quantity": 1}])
    messages = [{"messageId": 1, "sku": "A", "operationType": "PATCH", **patch_body(5)}]
    feed_id = create_feed(amazon, "JSON_LISTINGS_FEED",
                          json.dumps({"header": {"sellerId": "SOMEONE-ELSE", "version": "2.0"}, "messages": messages}),
                          "application/json")
    result = json.loads(read_result(amazon, poll(amazon, f"/feeds/2021-06-30/feeds/{feed_id}")))
    (issue,) = result["issues"]
    assert "messageId" not in issue and "sellerId" in issue["message"]
    assert result["summary"]["messagesAccepted"] == 0
    assert sandbox.received("amazon", "uk")["stock"] == {}


def test_order_acknowledgement_feed_cancels_the_order(sandbox, amazon):
    sandbox.listings("amazon", "uk", [{"sku": "A", "quantity": 9}])
    (order_id,) = sandbox.orders("amazon", "uk", [{"items": [{"sku": "A", "quantity": 1}]}])
    item_code = get_orders(amazon, lastUpdatedAfter=SINCE_EVER).json()["orders"][0]["orderItems"][0]["orderItemId"]
    content = f"order-id\tamazon-order-item-code\tcancellation-reason-code\n{order_id}\t{item_code}\tNoInventory\n"
    feed_id = create_feed(amazon, "POST_FLAT_FILE_ORDER_ACKNOWLEDGEMENT_DATA", content, "text/tab-separated-values")
    feed = poll(amazon, f"/feeds/2021-06-30/feeds/{feed_id}")
    assert b"Number of records successful\t\t1" in read_result(amazon, feed)
    cancellations = sandbox.received("amazon", "uk")["cancellations"]
    assert [(entry["order_id"], entry["reason"]) for entry in cancellations] == [(order_id, "NoInventory")]
    assert sandbox.orders("amazon", "uk")[0]["status"] == "CANCELLED"


def test_merchant_listings_report(sandbox, amazon):
    sandbox.listings("amazon", "uk", [{"sku": "A", "title": "Blue mug", "quantity": 3, "price": "4.50"},
                                      {"sku": "B", "quantity": 0}, {"sku": "F", "fulfilled_by_channel": True}])
    report = amazon.session.post(amazon.url + "/reports/2021-06-30/reports",
                                 json={"reportType": "GET_MERCHANT_LISTINGS_ALL_DATA", "marketplaceIds": [UK]})
    assert report.status_code == 202
    done = poll(amazon, f"/reports/2021-06-30/reports/{report.json()['reportId']}")
    document = amazon.session.get(f"{amazon.url}/reports/2021-06-30/documents/{done['reportDocumentId']}").json()
    lines = amazon.session.get(document["url"]).text.splitlines()
    header = lines[0].split("\t")
    assert header == ["item-name", "listing-id", "seller-sku", "price", "quantity", "open-date", "asin1",
                      "fulfillment-channel", "status"]
    rows = {row["seller-sku"]: row for row in (dict(zip(header, line.split("\t"), strict=True)) for line in lines[1:])}
    assert rows["A"]["item-name"] == "Blue mug" and rows["A"]["quantity"] == "3" and rows["A"]["price"] == "4.50"
    assert rows["A"]["status"] == "Active" and rows["B"]["status"] == "Inactive"
    assert rows["F"]["fulfillment-channel"] == "AMAZON_EU" and rows["A"]["fulfillment-channel"] == "DEFAULT"


def test_a_malformed_fault_spoils_one_row_of_a_report_document_once(sandbox, amazon):
    sandbox.listings("amazon", "uk", [{"sku": "A", "quantity": 1}, {"sku": "B", "quantity": 2}])
    report = amazon.session.post(amazon.url + "/reports/2021-06-30/reports",
                                 json={"reportType": "GET_MERCHANT_LISTINGS_ALL_DATA", "marketplaceIds": [UK]}).json()
    done = poll(amazon, f"/reports/2021-06-30/reports/{report['reportId']}")
    url = amazon.session.get(f"{amazon.url}/reports/2021-06-30/documents/{done['reportDocumentId']}").json()["url"]
    sandbox.faults("amazon", "uk", [{"path": "_documents/reports", "type": "malformed", "index": 1}])

    quantities = [[line.split("\t")[4] for line in amazon.session.get(url).text.splitlines()[1:]] for _ in range(2)]

    assert quantities == [["1", "lots"], ["1", "2"]]


def test_a_report_with_nothing_to_report_is_cancelled(amazon):
    report = amazon.session.post(amazon.url + "/reports/2021-06-30/reports",
                                 json={"reportType": "GET_MERCHANT_LISTINGS_ALL_DATA", "marketplaceIds": [UK]}).json()
    done = poll(amazon, f"/reports/2021-06-30/reports/{report['reportId']}")
    assert done["processingStatus"] == "CANCELLED" and "reportDocumentId" not in done


def shipment_body(item_id, **package):
    return {"marketplaceId": UK, "packageDetail": {
        "packageReferenceId": "1", "carrierCode": "Royal Mail", "shippingMethod": "1st Class",
        "trackingNumber": "RM123", "shipDate": "2026-11-29T10:00:00Z",
        "orderItems": [{"orderItemId": item_id, "quantity": 2}], **package}}


def test_shipment_confirmation(sandbox, amazon):
    sandbox.listings("amazon", "uk", [{"sku": "A", "quantity": 9}])
    (order_id,) = sandbox.orders("amazon", "uk", [{"items": [{"sku": "A", "quantity": 2}]}])
    item_id = get_orders(amazon, lastUpdatedAfter=SINCE_EVER).json()["orders"][0]["orderItems"][0]["orderItemId"]
    url = f"{amazon.url}/orders/v0/orders/{order_id}/shipmentConfirmation"
    assert amazon.session.post(url, json=shipment_body(item_id)).status_code == 204
    again = amazon.session.post(url, json=shipment_body(item_id))
    assert again.status_code == 400 and again.json()["errors"][0]["code"] == "InvalidInput"
    missing = amazon.session.post(f"{amazon.url}/orders/v0/orders/202-9999999-9999999/shipmentConfirmation",
                                  json=shipment_body(item_id))
    assert missing.status_code == 404
    (shipment,) = sandbox.received("amazon", "uk")["shipments"]
    assert (shipment["order_id"], shipment["tracking_number"], shipment["carrier"]) == (order_id, "RM123",
                                                                                        "Royal Mail")
    assert shipment["items"] == [{"line_id": item_id, "sku": "A", "quantity": 2}]
    assert sandbox.orders("amazon", "uk")[0]["status"] == "SHIPPED"


@pytest.mark.parametrize("package", [{"trackingNumber": None}, {"carrierCode": "Other"}, {"packageReferenceId": "A"},
                                     {"carrierCode": "Royal Mail", "trackingUrl": "https://track"}])
def test_a_shipment_confirmation_the_contract_refuses_ships_nothing(sandbox, amazon, package):
    sandbox.listings("amazon", "uk", [{"sku": "A", "quantity": 9}])
    (order_id,) = sandbox.orders("amazon", "uk", [{"items": [{"sku": "A", "quantity": 2}]}])
    item_id = get_orders(amazon, lastUpdatedAfter=SINCE_EVER).json()["orders"][0]["orderItems"][0]["orderItemId"]
    body = shipment_body(item_id, **package)
    body["packageDetail"] = {key: value for key, value in body["packageDetail"].items() if value is not None}
    refused = amazon.session.post(f"{amazon.url}/orders/v0/orders/{order_id}/shipmentConfirmation", json=body)
    assert refused.status_code == 400 and refused.json()["errors"][0]["code"] == "InvalidInput"
    assert sandbox.received("amazon", "uk")["shipments"] == []


def test_another_carrier_goes_by_its_name(sandbox, amazon):
    sandbox.listings("amazon", "uk", [{"sku": "A", "quantity": 9}])
    (order_id,) = sandbox.orders("amazon", "uk", [{"items": [{"sku": "A", "quantity": 2}]}])
    item_id = get_orders(amazon, lastUpdatedAfter=SINCE_EVER).json()["orders"][0]["orderItems"][0]["orderItemId"]
    body = shipment_body(item_id, carrierCode="Other", carrierName="Evri")
    assert amazon.session.post(f"{amazon.url}/orders/v0/orders/{order_id}/shipmentConfirmation",
                               json=body).status_code == 204
    assert sandbox.received("amazon", "uk")["shipments"][0]["carrier"] == "Evri"


def test_operation_buckets_answer_429(sandbox, amazon):
    sandbox.rate_limits("amazon", "uk", {"getMarketplaceParticipations": {"rate": 0.5, "burst": 2}})
    url = amazon.url + "/sellers/v1/marketplaceParticipations"
    statuses = [amazon.session.get(url) for _ in range(3)]
    assert [response.status_code for response in statuses] == [200, 200, 429]
    throttled = statuses[-1]
    assert throttled.json()["errors"][0]["code"] == "QuotaExceeded"
    assert int(throttled.headers["Retry-After"]) >= 1
    assert throttled.headers["x-amzn-RateLimit-Limit"] == "0.5"
    # Buckets are per operation: another operation still has its tokens.
    assert get_orders(amazon, lastUpdatedAfter=SINCE_EVER).status_code == 200
    assert sandbox.received("amazon", "uk")["calls"]["getMarketplaceParticipations"] == 3


def test_published_profile_uses_amazons_own_numbers(sandbox):
    account = make_account(sandbox, "amazon", "uk", rate_limits={"profile": "published"})
    amazon_login(account)
    url = account.url + "/sellers/v1/marketplaceParticipations"
    statuses = [account.session.get(url).status_code for _ in range(16)]
    assert statuses.count(200) == 15 and statuses[-1] == 429
    assert int(account.session.get(url).headers["Retry-After"]) > 30


def test_no_answer_carries_a_field_its_contract_lacks(sandbox, amazon):
    sandbox.listings("amazon", "uk", [{"sku": "A", "quantity": 9}])
    sandbox.fba_inventory("uk", [{"sku": "F", "fulfillable": 3}])
    sandbox.orders("amazon", "uk", [{"items": [{"sku": "A", "quantity": 1}], "shipping_cost": "2.00"}])
    token = amazon.session.post(f"{amazon.url}/auth/o2/token", data={
        "grant_type": "refresh_token", "refresh_token": amazon.credentials["refresh_token"],
        "client_id": amazon.credentials["client_id"], "client_secret": amazon.credentials["client_secret"]})
    assert_declared("token", token)
    assert_declared("searchOrders", get_orders(amazon, lastUpdatedAfter=SINCE_EVER))
    feeds, reports = amazon.url + "/feeds/2021-06-30", amazon.url + "/reports/2021-06-30"
    document = assert_declared("createFeedDocument", amazon.session.post(f"{feeds}/documents", json={
        "contentType": "application/json"}))
    messages = [{"messageId": 1, "sku": "A", "operationType": "PATCH", **patch_body(2)},
                {"messageId": 2, "sku": "NOPE", "operationType": "PATCH", **patch_body(2)}]
    feed_document = {"header": {"sellerId": amazon.seller_id, "version": "2.0"}, "messages": messages}
    amazon.session.put(document["url"], headers={"Content-Type": "application/json"}, data=json.dumps(feed_document))
    feed = assert_declared("createFeed", amazon.session.post(f"{feeds}/feeds", json={
        "feedType": "JSON_LISTINGS_FEED", "marketplaceIds": [UK], "inputFeedDocumentId": document["feedDocumentId"]}))
    for _ in range(2):
        done = assert_declared("getFeed", amazon.session.get(f"{feeds}/feeds/{feed['feedId']}"))
    result = assert_declared("getFeedDocument",
                             amazon.session.get(f"{feeds}/documents/{done['resultFeedDocumentId']}"))
    assert_declared("downloadFeedDocument", amazon.session.get(result["url"]))
    report = assert_declared("createReport", amazon.session.post(f"{reports}/reports", json={
        "reportType": "GET_MERCHANT_LISTINGS_ALL_DATA", "marketplaceIds": [UK]}))
    for _ in range(2):
        done = assert_declared("getReport", amazon.session.get(f"{reports}/reports/{report['reportId']}"))
    assert_declared("getReportDocument", amazon.session.get(f"{reports}/documents/{done['reportDocumentId']}"))
    assert_declared("getInventorySummaries", amazon.session.get(amazon.url + "/fba/inventory/v1/summaries", params={
        "granularityType": "Marketplace", "granularityId": UK, "marketplaceIds": UK, "details": "true"}))
    outbound = amazon.url + "/fba/outbound/2020-07-01/fulfillmentOrders"
    assert_declared("createFulfillmentOrder", amazon.session.post(outbound, json={
        "sellerFulfillmentOrderId": "SL-1", "displayableOrderId": "1", "displayableOrderDate": "2026-11-29T10:00:00Z",
        "displayableOrderComment": "Thanks", "shippingSpeedCategory": "Standard",
        "destinationAddress": {"name": "Jo", "addressLine1": "1 High St", "postalCode": "YO1 7HH", "countryCode": "GB"},
        "items": [{"sellerSku": "F", "sellerFulfillmentOrderItemId": "1", "quantity": 1}]}))
    for _ in range(3):
        assert_declared("getFulfillmentOrder", amazon.session.get(f"{outbound}/SL-1"))
    assert_declared("searchOrders", amazon.session.get(amazon.url + ORDERS, params={"createdAfter": "nope"}))
