"""The eBay connector against channels/connectors/ebay/contract/*.json (written from eBay's OpenAPI files and OAuth
pages), over `responses`: every request it sends validates against its operation's request schema, and answers
valid per the response schemas (optional fields absent) map to what a seller expects."""

import base64
import json
import re
from datetime import UTC, datetime
from decimal import Decimal
from urllib.parse import urlsplit

import pytest
import responses

from channels.connectors.base import ConnectorConfig, OrderLineRef, OrderRef, Shipment, StockUpdate
from channels.connectors.contracts import contract_load
from channels.connectors.ebay.connector import EbayConnector
from channels.connectors.ebay.mapper import listing_from_item
from channels.connectors.ratelimit import InProcessLimiter
from tests.contracts.helpers import request_parts
from tests.sandbox.test_connectors_e2e import MemoryCredentials

CONTRACT = contract_load("ebay")
API = "https://api.ebay.com"
CREDENTIALS = {"client_id": "Shop-Stockline-PRD-1", "client_secret": "PRD-cert-id", "refresh_token": "v^1.1#r",
               "ru_name": "Shop-Stockline-PRD-runame"}
# A getOrders page as eBay documents it: many optional fields left out (no sku on one line, no tax, no email).
ORDERS = {"href": f"{API}/sell/fulfillment/v1/order?offset=0", "limit": 100, "offset": 0, "total": 1, "orders": [{
    "orderId": "04-08751-11111", "creationDate": "2026-11-30T10:00:00.000Z",
    "lastModifiedDate": "2026-11-30T10:05:00.000Z", "orderFulfillmentStatus": "NOT_STARTED",
    "orderPaymentStatus": "PAID", "buyer": {"username": "teapot_fan"},
    "pricingSummary": {"priceSubtotal": {"currency": "GBP", "value": "25.00"},
                       "deliveryCost": {"currency": "GBP", "value": "3.50"},
                       "total": {"currency": "GBP", "value": "28.50"}},
    "fulfillmentStartInstructions": [{"shippingStep": {"shippingServiceCode": "UK_RoyalMailFirstClassStandard",
                                                       "shipTo": {"fullName": "Jo Bloggs", "contactAddress": {
                                                           "addressLine1": "1 High Street", "city": "York",
                                                           "postalCode": "YO1 7HH", "countryCode": "GB"}}}}],
    "lineItems": [
        {"lineItemId": "10012345678901", "legacyItemId": "110012345678", "sku": "MUG", "title": "Mug",
         "quantity": 2, "lineItemCost": {"currency": "GBP", "value": "20.00"}},
        {"lineItemId": "10012345678902", "legacyItemId": "110012345679", "title": "Coaster", "quantity": 1,
         "lineItemCost": {"currency": "GBP", "value": "5.00"}},
    ]}]}
BULK_207 = {"responses": [
    {"sku": "MUG", "offerId": "5000000001", "statusCode": 200},
    {"sku": "LAMP", "offerId": "5000000002", "statusCode": 400, "errors": [
        {"errorId": 25713, "domain": "API_INVENTORY", "category": "REQUEST",
         "message": "This Offer is not available."}]},
]}
TOKEN = {"access_token": "v^1.1#access", "expires_in": 7200, "token_type": "User Access Token"}


@pytest.fixture
def recorded():
    """Every call the connector makes, checked against the contract as it is made; answers per operation."""
    calls, answers = [], {"token": (200, TOKEN), "getOrders": (200, ORDERS), "bulkUpdatePriceQuantity": (207, BULK_207),
                          "createShippingFulfillment": (201, {})}

    def callback(request):
        path = urlsplit(request.url).path
        found = CONTRACT.match(request.method, path)
        assert found is not None, f"{request.method} {path} is no operation of the contract"
        operation, _ = found
        problems = operation.request_errors(**request_parts(request))
        assert problems == [], f"{operation.operation_id}: {problems}"
        status, body = answers[operation.operation_id]
        assert operation.response_errors(status, body) == []
        calls.append((operation.operation_id, request))
        return status, {"Location": f"{API}{path}/1"} if status == 201 else {}, json.dumps(body)

    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add_callback(responses.POST, re.compile(f"{API}/.*"), callback=callback)
        mock.add_callback(responses.GET, re.compile(f"{API}/.*"), callback=callback)
        yield calls


def connector():
    config = ConnectorConfig(channel_id=7, kind="ebay", name="eBay UK", api_base_url=API, auth_base_url=API,
                             marketplace_id="EBAY_GB", allowed_hosts=frozenset({"api.ebay.com"}))
    return EbayConnector(config, MemoryCredentials(CREDENTIALS), InProcessLimiter())


def test_the_token_call_sends_the_client_as_basic_auth_not_in_the_form(recorded):
    list(connector().fetch_orders(datetime(2026, 11, 30, tzinfo=UTC)))

    name, token = recorded[0]
    assert name == "token"
    assert token.headers["Authorization"] == "Basic " + base64.b64encode(b"Shop-Stockline-PRD-1:PRD-cert-id").decode()
    assert "PRD-cert-id" not in token.body and "grant_type=refresh_token" in token.body


def test_orders_map_from_a_page_with_optional_fields_left_out(recorded):
    [page] = list(connector().fetch_orders(datetime(2026, 11, 30, tzinfo=UTC)))

    request = recorded[1][1]
    assert "lastmodifieddate%3A%5B2026-11-30T00%3A00%3A00.000Z..%5D" in request.url
    [order] = page.orders
    assert (order.channel_order_id, order.channel_status, order.is_paid) == ("04-08751-11111", "NOT_STARTED", True)
    assert (order.buyer_name, order.buyer_email, order.shipping_address.name) == ("teapot_fan", None, "Jo Bloggs")
    assert [(item.sku, item.quantity, item.unit_price) for item in order.items] == [
        ("MUG", 2, Decimal("10.00")), ("", 1, Decimal("5.00"))]
    assert (order.total, order.shipping_cost, order.tax, order.currency) == (Decimal("28.50"), Decimal("3.50"),
                                                                            None, "GBP")


def test_a_207_refuses_one_sku_and_accepts_the_other(recorded):
    results = connector().push_listings([
        StockUpdate("MUG", "110000000001/5000000001", 4, price=Decimal("9.5"), currency="GBP"),
        StockUpdate("LAMP", "110000000002/5000000002", 0, currency="GBP"),
        StockUpdate("NEW", "", 3),
    ])

    assert [(r.channel_sku, r.accepted) for r in results] == [("MUG", True), ("LAMP", False), ("NEW", False)]
    assert "25713" in results[1].message and "publish it on eBay" in results[2].message
    body = json.loads(recorded[-1][1].body)
    assert body["requests"][0] == {"sku": "MUG", "shipToLocationAvailability": {"quantity": 4}, "offers": [
        {"offerId": "5000000001", "availableQuantity": 4, "price": {"currency": "GBP", "value": "9.50"}}]}


def test_despatch_sends_what_create_shipping_fulfillment_requires(recorded):
    connector().confirm_despatch(
        OrderRef("04-08751-11111", (OrderLineRef("10012345678901", "MUG", 2),)),
        Shipment(tracking_number="JD0002", carrier="Evri (Hermes)", shipped_at=datetime(2026, 12, 1, 8, tzinfo=UTC)))

    body = json.loads(recorded[-1][1].body)
    assert body == {"lineItems": [{"lineItemId": "10012345678901", "quantity": 2}],
                    "shippedDate": "2026-12-01T08:00:00.000Z", "shippingCarrierCode": "Hermes",
                    "trackingNumber": "JD0002"}


def test_an_unknown_carrier_goes_as_other_and_no_tracking_sends_neither(recorded):
    ebay = connector()
    ref = OrderRef("04-08751-11111", (OrderLineRef("10012345678901", "MUG", 2),))
    ebay.confirm_despatch(ref, Shipment(tracking_number="X1", carrier="Pigeon Post"))
    ebay.confirm_despatch(ref, Shipment(tracking_number="", carrier="Royal Mail"))

    first, second = (json.loads(call[1].body) for call in recorded[-2:])
    assert first["shippingCarrierCode"] == "Other"
    assert "shippingCarrierCode" not in second and "trackingNumber" not in second


def test_a_request_the_contract_refuses_is_named():
    operation = CONTRACT.operation("bulkUpdatePriceQuantity")

    headers = {"authorization": "Bearer t", "content-type": "application/json"}
    too_many = [{"sku": f"SKU-{n}", "shipToLocationAvailability": {"quantity": 1}} for n in range(26)]

    assert [problem for problem in operation.request_errors(headers=headers, body={"requests": too_many})
            if problem.endswith("is too long")]
    # An offer needs availableQuantity or price ("Either ... is required, but not necessarily both").
    problems = operation.request_errors(headers=headers, body={"requests": [{"offers": [{"offerId": "1"}]}]})
    assert [problem.split(":")[1].strip() for problem in problems] == ["requests[0].offers[0]"]


def test_an_auction_only_item_is_listed_but_gets_no_stock():
    auction = {"offerId": "9", "sku": "RARE", "marketplaceId": "EBAY_GB", "format": "AUCTION", "status": "PUBLISHED",
               "listing": {"listingId": "1100009"}, "pricingSummary": {"price": {"currency": "GBP", "value": "1.00"}}}
    assert CONTRACT.operation("getOffers").response_errors(200, {"total": 1, "offers": [auction]}) == []

    listing = listing_from_item({"sku": "RARE", "product": {"title": "Rare teapot"}}, [auction], "EBAY_GB")

    assert (listing.channel_sku, listing.title, listing.external_id, listing.is_active) == (
        "RARE", "Rare teapot", "", False)
