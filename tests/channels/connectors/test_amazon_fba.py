"""The Amazon connector's FBA calls: inventory summaries and multi-channel fulfilment orders."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
import responses
from responses import matchers

from channels.connectors.base import (
    ChannelAuthError,
    ChannelPayloadError,
    ChannelRejected,
    ChannelTransientError,
    ExternalAddress,
    FulfilmentLine,
    FulfilmentRequest,
)
from channels.connectors.ekm.connector import EkmConnector
from tests.channels.connectors.conftest import AMAZON_BASE, MemoryStore, ekm_config
from tests.channels.connectors.test_amazon import connector, token_response

SUMMARIES_URL = f"{AMAZON_BASE}/fba/inventory/v1/summaries"
ORDERS_URL = f"{AMAZON_BASE}/fba/outbound/2020-07-01/fulfillmentOrders"


def summary(sku, fulfillable):
    return {"asin": "B000000001", "fnSku": f"X00{sku}", "sellerSku": sku, "condition": "NewItem",
            "inventoryDetails": {"fulfillableQuantity": fulfillable}, "totalQuantity": fulfillable}


def summaries_page(*rows, next_token=None):
    body = {"payload": {"granularity": {"granularityType": "Marketplace", "granularityId": "A1F83G8C2ARO7P"},
                        "inventorySummaries": list(rows)}}
    if next_token:
        body["pagination"] = {"nextToken": next_token}
    return body


def request(**overrides):
    return FulfilmentRequest(**{
        "fulfilment_order_id": "SL-7-261129100000", "displayable_order_id": "10042",
        "ordered_at": datetime(2026, 11, 29, 10, 0, tzinfo=UTC), "comment": "Thank you for your order from EKM.",
        "shipping_speed": "Standard",
        "address": ExternalAddress(name="Jo Bloggs", line1="1 High Street", city="York", postcode="YO1 7HH",
                                   country="GB"),
        "lines": (FulfilmentLine(line_id="31", sku="MUG", quantity=2, unit_value=Decimal("9.5"), currency="GBP"),),
        **overrides,
    })


@responses.activate
def test_fba_stock_follows_next_tokens_and_reports_unreadable_summaries(limiter):
    token_response()
    marketplace = {"granularityType": "Marketplace", "granularityId": "A1F83G8C2ARO7P",
                   "marketplaceIds": "A1F83G8C2ARO7P", "details": "true"}
    responses.add(responses.GET, SUMMARIES_URL, match=[matchers.query_param_matcher(marketplace)],
                  json=summaries_page(summary("MUG", 7), summary("LAMP", 0), next_token="page-2"))
    responses.add(responses.GET, SUMMARIES_URL, match=[matchers.query_param_matcher({**marketplace,
                                                                                     "nextToken": "page-2"})],
                  json=summaries_page(summary("TEAPOT", 3), {"sellerSku": "BROKEN", "inventoryDetails": {}}))

    pages = list(connector(limiter).fetch_fba_stock())

    assert [(s.sku, s.fulfillable) for page in pages for s in page.stock] == [("MUG", 7), ("LAMP", 0), ("TEAPOT", 3)]
    assert [e.record_id for page in pages for e in page.errors] == ["BROKEN"]


@responses.activate
def test_fba_stock_errors_become_typed_errors(limiter):
    token_response()
    responses.add(responses.GET, SUMMARIES_URL, status=503, json={"errors": [{"code": "ServiceUnavailable"}]})
    with pytest.raises(ChannelTransientError):
        list(connector(limiter).fetch_fba_stock())

    responses.replace(responses.GET, SUMMARIES_URL, status=200, json={"payload": {}})
    with pytest.raises(ChannelPayloadError):
        list(connector(limiter).fetch_fba_stock())

    token_response()
    responses.replace(responses.GET, SUMMARIES_URL, status=403, json={"errors": [{"code": "Unauthorized"}]})
    with pytest.raises(ChannelAuthError):
        list(connector(limiter).fetch_fba_stock())


@responses.activate
def test_a_fulfilment_order_is_sent_as_amazon_expects_it(limiter):
    token_response()
    responses.add(responses.POST, ORDERS_URL, json={}, match=[matchers.json_params_matcher({
        "marketplaceId": "A1F83G8C2ARO7P", "sellerFulfillmentOrderId": "SL-7-261129100000",
        "displayableOrderId": "10042", "displayableOrderDate": "2026-11-29T10:00:00Z",
        "displayableOrderComment": "Thank you for your order from EKM.", "shippingSpeedCategory": "Standard",
        "destinationAddress": {"name": "Jo Bloggs", "addressLine1": "1 High Street", "city": "York",
                               "postalCode": "YO1 7HH", "countryCode": "GB"},
        "fulfillmentAction": "Ship",
        "items": [{"sellerSku": "MUG", "sellerFulfillmentOrderItemId": "31", "quantity": 2,
                   "perUnitDeclaredValue": {"currencyCode": "GBP", "value": "9.50"}}],
    })])

    connector(limiter).create_fulfilment_order(request())

    assert len(responses.calls) == 2


@responses.activate
def test_amazons_refusal_of_a_fulfilment_order_carries_its_reason(limiter):
    token_response()
    responses.add(responses.POST, ORDERS_URL, status=400, json={"errors": [
        {"code": "InvalidInput", "message": "sellerSku MUG: 1 fulfillable, 2 requested."}]})

    with pytest.raises(ChannelRejected, match="1 fulfillable, 2 requested"):
        connector(limiter).create_fulfilment_order(request())


@responses.activate
def test_a_shipped_fulfilment_order_gives_its_tracking(limiter):
    token_response()
    responses.add(responses.GET, f"{ORDERS_URL}/SL-7-261129100000", json={"payload": {
        "fulfillmentOrder": {"sellerFulfillmentOrderId": "SL-7-261129100000", "fulfillmentOrderStatus": "Complete"},
        "fulfillmentShipments": [
            {"fulfillmentShipmentStatus": "CANCELLED_BY_FULFILLER", "fulfillmentShipmentPackage": [
                {"packageNumber": 1, "carrierCode": "DPD", "trackingNumber": "NOT-THIS-ONE"}]},
            {"fulfillmentShipmentStatus": "SHIPPED", "shippingDate": "2026-11-30T08:00:00Z",
             "fulfillmentShipmentPackage": [{"packageNumber": 2, "carrierCode": "AMZN_UK", "trackingNumber": "QA42"}]},
        ]}})

    state = connector(limiter).fulfilment_order("SL-7-261129100000")

    assert state.status == "COMPLETE"
    assert [(p.tracking_number, p.carrier, p.shipped_at) for p in state.packages] == [
        ("QA42", "AMZN_UK", datetime(2026, 11, 30, 8, 0, tzinfo=UTC))
    ]


@responses.activate
def test_an_unknown_fulfilment_status_is_a_payload_error_not_a_guess(limiter):
    token_response()
    responses.add(responses.GET, f"{ORDERS_URL}/SL-1", json={"payload": {
        "fulfillmentOrder": {"sellerFulfillmentOrderId": "SL-1", "fulfillmentOrderStatus": "Teleported"}}})
    responses.add(responses.GET, f"{ORDERS_URL}/SL-2", status=404, json={"errors": [{"code": "NotFound"}]})

    with pytest.raises(ChannelPayloadError):
        connector(limiter).fulfilment_order("SL-1")
    with pytest.raises(ChannelRejected):
        connector(limiter).fulfilment_order("SL-2")


def test_channels_without_a_fulfilment_network_refuse_fba_calls(limiter):
    ekm = EkmConnector(ekm_config(), MemoryStore(client_id="c", client_secret="s", refresh_token="r"), limiter)

    with pytest.raises(ChannelRejected):
        list(ekm.fetch_fba_stock())
    with pytest.raises(ChannelRejected):
        ekm.create_fulfilment_order(request())
