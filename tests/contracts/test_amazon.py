"""The Amazon connector against contract/*.json: every request it sends holds to the operation's request schema,
and every answer it is given here (fixtures shaped as Amazon's models define them) holds to the response schema
before it is mapped.
"""

import json
from datetime import UTC, datetime
from decimal import Decimal
from urllib.parse import urlsplit

import pytest
import responses

from channels.connectors.amazon.connector import AmazonConnector
from channels.connectors.base import (
    ExternalAddress,
    FulfilmentLine,
    FulfilmentRequest,
    OrderLineRef,
    OrderRef,
    Shipment,
    StockUpdate,
)
from channels.connectors.contracts import contract_load
from channels.connectors.ratelimit import InProcessLimiter
from tests.channels.connectors.conftest import AMAZON_AUTH, AMAZON_BASE, MemoryStore, amazon_config, fixture_json
from tests.contracts.helpers import request_parts, valid

CONTRACT = contract_load("amazon")
DOCUMENTS = {("PUT", "feeds"): "uploadFeedDocument", ("GET", "feeds"): "downloadFeedDocument",
             ("GET", "reports"): "downloadReportDocument"}


# --- Helpers -----------------------------------------------------------------------------------------------


def operation_of(request) -> str:
    url = urlsplit(request.url)
    if request.url.startswith(AMAZON_AUTH):
        return "token"
    if url.path.startswith("/_documents/"):
        return DOCUMENTS[(request.method, url.path.split("/")[2])]
    found = CONTRACT.match(request.method, url.path)
    assert found, f"no contract operation for {request.method} {url.path}"
    return found[0].operation_id


def answer_body(response):
    if not response.content:
        return None
    if "json" in response.headers.get("Content-Type", ""):
        return response.json()
    return response.text


def assert_calls_hold_to_the_contract() -> list[str]:
    """Every request sent and every answer given held to its operation; the operations, in order."""
    operations = []
    for call in responses.calls:
        operation_id = operation_of(call.request)
        operation = CONTRACT.operation(operation_id)
        # The presigned document urls take the document's bytes, whatever they hold.
        parts = request_parts(call.request, raw_body=urlsplit(call.request.url).path.startswith("/_documents/"))
        assert operation.request_errors(**parts) == [], operation_id
        assert operation.response_errors(call.response.status_code, answer_body(call.response)) == [], operation_id
        operations.append(operation_id)
    return operations


@pytest.fixture
def limiter():
    return InProcessLimiter(sleep=lambda seconds: None)


def connector(limiter):
    amazon = AmazonConnector(amazon_config(), MemoryStore(client_id="amzn1.client", client_secret="lwa-secret",
                                                          refresh_token="Atzr|refresh"), limiter)
    amazon.sleep = lambda seconds: None
    return amazon


def money(value):
    return {"amount": value, "currencyCode": "GBP"}


def token():
    responses.add(responses.POST, f"{AMAZON_AUTH}/auth/o2/token",
                  json={"access_token": "Atza|1", "token_type": "bearer", "expires_in": 3600})


def feed_answers(feed_type, result, content_type):
    feeds, upload = f"{AMAZON_BASE}/feeds/2021-06-30", f"{AMAZON_BASE}/_documents/feeds/in"
    responses.add(responses.POST, f"{feeds}/documents", status=201, json={"feedDocumentId": "in", "url": upload})
    responses.add(responses.PUT, upload, status=200)
    responses.add(responses.POST, f"{feeds}/feeds", status=202, json={"feedId": "F1"})
    responses.add(responses.GET, f"{feeds}/feeds/F1", json={
        "feedId": "F1", "feedType": feed_type, "createdTime": "2026-11-29T10:00:00Z", "processingStatus": "DONE",
        "resultFeedDocumentId": "out", "processingEndTime": "2026-11-29T10:01:00Z"})
    responses.add(responses.GET, f"{feeds}/documents/out",
                  json={"feedDocumentId": "out", "url": f"{AMAZON_BASE}/_documents/feeds/out"})
    responses.add(responses.GET, f"{AMAZON_BASE}/_documents/feeds/out", body=result, content_type=content_type)


# --- The contract's own rules ----------------------------------------------------------------------------------


def test_the_usage_plans_are_the_models_defaults():
    plans = {name: (limit.rate, limit.burst) for name, limit in AmazonConnector.rate_limits.items()}
    assert plans["searchOrders"] == (0.0056, 20) and plans["confirmShipment"] == (2, 10)
    assert plans["createFeed"] == (0.0083, 15) and plans["getInventorySummaries"] == (2, 2)
    assert "token" not in plans and "uploadFeedDocument" not in plans


def test_search_orders_takes_exactly_one_of_created_after_and_last_updated_after():
    search = CONTRACT.operation("searchOrders")
    headers = {"x-amz-access-token": "Atza|1"}
    assert search.request_errors(query={"lastUpdatedAfter": "2026-11-01T00:00:00Z"}, headers=headers) == []
    for query in ({}, {"createdAfter": "2026-11-01T00:00:00Z", "lastUpdatedAfter": "2026-11-01T00:00:00Z"},
                  {"lastUpdatedAfter": "2026-11-01T00:00:00Z", "createdBefore": "2026-11-02T00:00:00Z"},
                  {"lastUpdatedAfter": "2026-11-01T00:00:00Z", "maxResultsPerPage": "101"},
                  {"lastUpdatedAfter": "2026-11-01T00:00:00Z", "includedData": "BUYER,ITEMTAX"}):
        assert search.request_errors(query=query, headers=headers), query
    assert search.request_errors(query={"lastUpdatedAfter": "2026-11-01T00:00:00Z"}), "the access token is required"


def test_confirm_shipment_requires_tracking_and_a_name_for_another_carrier():
    confirm = CONTRACT.operation("confirmShipment")
    package = {"packageReferenceId": "1", "carrierCode": "Royal Mail", "trackingNumber": "RM1",
               "shipDate": "2026-11-30T09:00:00Z", "orderItems": [{"orderItemId": "1", "quantity": 1}]}
    headers = {"x-amz-access-token": "Atza|1"}

    def errors(**changes):
        body = {"marketplaceId": "A1F83G8C2ARO7P", "packageDetail": {**package, **changes}}
        body["packageDetail"] = {key: value for key, value in body["packageDetail"].items() if value is not None}
        return confirm.request_errors(headers=headers, body=body)

    assert errors() == []
    assert errors(trackingNumber=None) and errors(carrierCode="Other") and errors(packageReferenceId="0")
    assert errors(carrierCode="Other", carrierName="Evri") == []
    assert errors(shippingMethod="Tracked 24", surprise="field"), "the request body is closed"


# --- The connector's requests and the answers it reads ---------------------------------------------------------


@responses.activate
def test_orders_pages_and_their_mapping(limiter):
    token()
    for page in ("amazon_orders_page1.json", "amazon_orders_page2.json"):
        responses.add(responses.GET, f"{AMAZON_BASE}/orders/2026-01-01/orders", json=fixture_json(page))

    pages = list(connector(limiter).fetch_orders(datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 11, 2, tzinfo=UTC)))

    assert assert_calls_hold_to_the_contract() == ["token", "searchOrders", "searchOrders"]
    first, afn = pages[0].orders
    assert (first.tax, first.shipping_cost, first.total) == (Decimal("7.49"), Decimal("4.99"), Decimal("44.97"))
    # No buyer, no proceeds breakdowns, no marketplace name: absent optional parts map to the hub's defaults.
    assert afn.buyer_email is None and afn.buyer_name == "Sam Smith" and afn.shipping_cost == Decimal("0")
    cancelled, pending = pages[1].orders
    assert cancelled.is_cancelled and pending.items[0].unit_price == Decimal("0") and pending.currency is None


@responses.activate
def test_test_connection(limiter):
    token()
    responses.add(responses.GET, f"{AMAZON_BASE}/sellers/v1/marketplaceParticipations", json={"payload": [{
        "marketplace": {"id": "A1F83G8C2ARO7P", "name": "Amazon.co.uk", "countryCode": "GB",
                        "defaultCurrencyCode": "GBP", "defaultLanguageCode": "en_GB", "domainName": "www.amazon.co.uk"},
        "participation": {"isParticipating": True, "hasSuspendedListings": False}, "storeName": "Mugs"}]})

    assert connector(limiter).test_connection().ok
    assert assert_calls_hold_to_the_contract() == ["token", "getMarketplaceParticipations"]


@responses.activate
def test_reauthorisation_exchanges_a_code(limiter):
    responses.add(responses.POST, f"{AMAZON_AUTH}/auth/o2/token", json={
        "access_token": "Atza|1", "token_type": "bearer", "expires_in": 3600, "refresh_token": "Atzr|2"})

    assert connector(limiter).reauthorise(authorization_code="code-1").ok
    assert assert_calls_hold_to_the_contract() == ["token"]


@responses.activate
def test_a_price_and_stock_patch(limiter):
    token()
    responses.add(responses.PATCH, f"{AMAZON_BASE}/listings/2021-08-01/items/A2SELLER/MUG%20RED", json={
        "sku": "MUG RED", "status": "ACCEPTED", "submissionId": "f1dc2914", "issues": [
            {"code": "99001", "message": "A value is recommended", "severity": "WARNING", "categories": [],
             "attributeNames": ["bullet_point"]}]})

    (result,) = connector(limiter).push_listings([StockUpdate("MUG RED", "1", quantity=3, latency_days=2,
                                                              price=Decimal("9.99"))])

    assert assert_calls_hold_to_the_contract() == ["token", "patchListingsItem"]
    assert result.accepted and "recommended" in result.message


@responses.activate
def test_the_json_listings_feed_and_its_processing_report(limiter):
    token()
    report = {"header": {"sellerId": "A2SELLER", "version": "2.0", "feedId": "F1"},
              "issues": [{"messageId": 2, "sku": "SKU-2", "code": "4000001", "severity": "ERROR",
                          "message": "SKU not found"},
                         {"messageId": 3, "code": "99001", "severity": "WARNING", "message": "Recommended",
                          "attributeName": "bullet_point"}],
              "summary": {"errors": 1, "warnings": 1, "messagesProcessed": 25, "messagesAccepted": 24,
                          "messagesInvalid": 1}}
    feed_answers("JSON_LISTINGS_FEED", json.dumps(report), "application/json")

    results = connector(limiter).push_listings([StockUpdate(f"SKU-{n}", "", quantity=n, price=Decimal("5"))
                                                for n in range(1, 26)])

    assert assert_calls_hold_to_the_contract() == [
        "token", "createFeedDocument", "uploadFeedDocument", "createFeed", "getFeed", "getFeedDocument",
        "downloadFeedDocument"]
    feeds = CONTRACT.files["feeds"]["$defs"]
    uploaded = json.loads(next(c.request.body for c in responses.calls if c.request.method == "PUT"))
    assert valid({"$ref": "#/$defs/ListingsFeed"}, uploaded, feeds)
    assert valid({"$ref": "#/$defs/ListingsFeedProcessingReport"}, report, feeds)
    assert [r.channel_sku for r in results if not r.accepted] == ["SKU-2"]
    assert results[2].accepted and "Recommended" in results[2].message


@responses.activate
def test_the_order_acknowledgement_feed(limiter):
    token()
    feed_answers("POST_FLAT_FILE_ORDER_ACKNOWLEDGEMENT_DATA",
                 "Feed Processing Summary:\n\tNumber of records processed\t\t1\n\tNumber of records successful\t\t1\n",
                 "text/plain")

    connector(limiter).cancel_order(OrderRef("202-1", lines=(OrderLineRef("111", "A", 1),)), "NoInventory")

    assert "uploadFeedDocument" in assert_calls_hold_to_the_contract()


@responses.activate
def test_the_merchant_listings_report(limiter):
    token()
    reports = f"{AMAZON_BASE}/reports/2021-06-30"
    responses.add(responses.POST, f"{reports}/reports", status=202, json={"reportId": "R1"})
    responses.add(responses.GET, f"{reports}/reports/R1", json={
        "reportId": "R1", "reportType": "GET_MERCHANT_LISTINGS_ALL_DATA", "createdTime": "2026-11-29T10:00:00Z",
        "processingStatus": "DONE", "reportDocumentId": "D1", "marketplaceIds": ["A1F83G8C2ARO7P"]})
    responses.add(responses.GET, f"{reports}/documents/D1", json={
        "reportDocumentId": "D1", "url": f"{AMAZON_BASE}/_documents/reports/D1"})
    responses.add(responses.GET, f"{AMAZON_BASE}/_documents/reports/D1", content_type="text/tab-separated-values",
                  body="item-name\tlisting-id\tseller-sku\tprice\tquantity\tstatus\nMug\t1\tMUG\t9.99\t4\tActive\n")

    pages = list(connector(limiter).fetch_listings())

    assert assert_calls_hold_to_the_contract() == [
        "token", "createReport", "getReport", "getReportDocument", "downloadReportDocument"]
    assert [(listing.channel_sku, listing.quantity) for listing in pages[0].listings] == [("MUG", 4)]


@responses.activate
def test_a_shipment_confirmation_with_another_carrier(limiter):
    token()
    responses.add(responses.POST, f"{AMAZON_BASE}/orders/v0/orders/202-1/shipmentConfirmation", status=204)

    connector(limiter).confirm_despatch(OrderRef("202-1", lines=(OrderLineRef("111", "A", 2),)),
                                        Shipment(tracking_number="H123", carrier="Evri", shipping_method="48"))

    assert assert_calls_hold_to_the_contract() == ["token", "confirmShipment"]


@responses.activate
def test_fba_stock_and_a_fulfilment_order(limiter):
    token()
    responses.add(responses.GET, f"{AMAZON_BASE}/fba/inventory/v1/summaries", json={
        "payload": {"granularity": {"granularityType": "Marketplace", "granularityId": "A1F83G8C2ARO7P"},
                    "inventorySummaries": [{"sellerSku": "MUG", "fnSku": "X001", "totalQuantity": 5,
                                            "inventoryDetails": {"fulfillableQuantity": 4}}]}})
    orders = f"{AMAZON_BASE}/fba/outbound/2020-07-01/fulfillmentOrders"
    responses.add(responses.POST, orders, json={})
    address = {"name": "Jo Bloggs", "addressLine1": "1 High Street", "city": "York", "postalCode": "YO1 7HH",
               "countryCode": "GB"}
    responses.add(responses.GET, f"{orders}/SL-1", json={"payload": {
        "fulfillmentOrder": {"sellerFulfillmentOrderId": "SL-1", "marketplaceId": "A1F83G8C2ARO7P",
                             "displayableOrderId": "10042", "displayableOrderDate": "2026-11-29T10:00:00Z",
                             "displayableOrderComment": "Thanks", "shippingSpeedCategory": "Standard",
                             "destinationAddress": address, "receivedDate": "2026-11-29T10:01:00Z",
                             "fulfillmentOrderStatus": "Complete", "statusUpdatedDate": "2026-11-30T08:00:00Z"},
        "fulfillmentOrderItems": [{"sellerSku": "MUG", "sellerFulfillmentOrderItemId": "31", "quantity": 2,
                                   "cancelledQuantity": 0, "unfulfillableQuantity": 0}],
        "fulfillmentShipments": [{"amazonShipmentId": "D1", "fulfillmentCenterId": "LTN1",
                                  "fulfillmentShipmentStatus": "SHIPPED", "shippingDate": "2026-11-30T08:00:00Z",
                                  "fulfillmentShipmentItem": [{"sellerSku": "MUG", "sellerFulfillmentOrderItemId": "31",
                                                               "quantity": 2}],
                                  "fulfillmentShipmentPackage": [{"packageNumber": 1, "carrierCode": "AMZN_UK",
                                                                  "trackingNumber": "QA1"}]}],
        "returnItems": [], "returnAuthorizations": []}})
    amazon = connector(limiter)

    stock = [s for page in amazon.fetch_fba_stock() for s in page.stock]
    amazon.create_fulfilment_order(FulfilmentRequest(
        fulfilment_order_id="SL-1", displayable_order_id="10042", ordered_at=datetime(2026, 11, 29, 10, tzinfo=UTC),
        comment="Thanks", shipping_speed="Standard",
        address=ExternalAddress(name="Jo Bloggs", line1="1 High Street", city="York", postcode="YO1 7HH", country="GB"),
        lines=(FulfilmentLine(line_id="31", sku="MUG", quantity=2, unit_value=Decimal("9.5"), currency="GBP"),)))
    state = amazon.fulfilment_order("SL-1")

    assert assert_calls_hold_to_the_contract() == [
        "token", "getInventorySummaries", "createFulfillmentOrder", "getFulfillmentOrder"]
    assert [(s.sku, s.fulfillable) for s in stock] == [("MUG", 4)]
    assert state.status == "COMPLETE" and state.packages[0].tracking_number == "QA1"
