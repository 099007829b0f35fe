import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest
import responses
from responses import matchers

from channels.connectors.amazon.connector import (
    AmazonConnector,
    listings_from_report,
    order_from_amazon,
    orders_page_from_amazon,
)
from channels.connectors.base import (
    ChannelAuthError,
    OrderLineRef,
    OrderRef,
    Shipment,
    StockUpdate,
    WatermarkPolicy,
)
from tests.channels.connectors.conftest import (
    AMAZON_AUTH,
    AMAZON_BASE,
    MemoryStore,
    amazon_config,
    fixture_json,
    fixture_text,
)

TOKEN_URL = f"{AMAZON_AUTH}/auth/o2/token"
ORDERS_URL = f"{AMAZON_BASE}/orders/2026-01-01/orders"


def connector(limiter, store=None, **config):
    store = store or MemoryStore(client_id="amzn1.client", client_secret="lwa-secret-xyz", refresh_token="Atzr|refresh")
    amazon = AmazonConnector(amazon_config(**config), store, limiter)
    amazon.sleep = lambda seconds: None
    return amazon


def token_response(token="Atza|access-1", **extra):
    responses.add(responses.POST, TOKEN_URL, json={"access_token": token, "token_type": "bearer", "expires_in": 3600,
                                                   **extra})


# --- Mappers ---


def test_order_maps_what_the_seller_sees():
    order = order_from_amazon(fixture_json("amazon_orders_page1.json")["orders"][0])
    assert order.channel_order_id == "202-1111111-1111111"
    assert order.is_paid and not order.is_cancelled and not order.fulfilled_by_channel
    assert order.shipping_tag == "Standard"
    assert order.currency == "GBP"
    assert order.buyer_email == "abc123@marketplace.amazon.co.uk"
    assert order.created_at == datetime(2026, 11, 29, 10, 5, tzinfo=UTC)
    assert order.total == Decimal("44.97") and order.subtotal == Decimal("39.98")
    assert order.shipping_cost == Decimal("4.99")
    assert order.tax == Decimal("6.66")
    (item,) = order.items
    assert (item.line_id, item.sku, item.quantity, item.unit_price, item.tax) == (
        "11111111111111", "MUG-RED", 2, Decimal("19.99"), Decimal("6.66"))
    assert order.shipping_address.postcode == "LS1 1AA" and order.shipping_address.country == "GB"


def test_afn_order_without_buyer_email():
    order = order_from_amazon(fixture_json("amazon_orders_page1.json")["orders"][1])
    assert order.fulfilled_by_channel
    assert order.buyer_email is None
    assert order.shipping_tag == "Expedited"


def test_pending_is_unpaid_and_cancelled_is_cancelled():
    cancelled, pending = (order_from_amazon(o) for o in fixture_json("amazon_orders_page2.json")["orders"])
    assert cancelled.is_cancelled and cancelled.is_paid
    assert not pending.is_paid and not pending.is_cancelled


def test_an_unreadable_order_is_reported_by_id_and_the_page_goes_on():
    page = orders_page_from_amazon(fixture_json("amazon_orders_page1.json"))
    assert [o.channel_order_id for o in page.orders] == ["202-1111111-1111111", "202-2222222-2222222"]
    assert [e.record_id for e in page.errors] == ["202-3333333-3333333"]


def test_listings_report_rows_become_listings_with_progress():
    pages = list(listings_from_report(fixture_text("amazon_listings_report.tsv"), page_size=2))
    assert [(p.done, p.total) for p in pages] == [(2, 4), (4, 4)]
    red, blue = pages[0].listings
    assert (red.channel_sku, red.external_id, red.quantity, red.price) == ("MUG-RED", "1129X0001", 7, Decimal("19.99"))
    assert blue.fulfilled_by_channel and blue.quantity is None
    (teapot,) = pages[1].listings
    assert not teapot.is_active
    assert [e.record_id for e in pages[1].errors] == ["BROKEN"]


# --- Client ---


@responses.activate
def test_token_is_refreshed_cached_and_shared_through_the_store(limiter):
    store = MemoryStore(client_id="amzn1.client", client_secret="lwa-secret-xyz", refresh_token="Atzr|refresh")
    token_response()
    responses.add(responses.GET, ORDERS_URL, json={"orders": [], "pagination": {}})
    responses.add(responses.GET, ORDERS_URL, json={"orders": [], "pagination": {}})
    first = connector(limiter, store)
    list(first.fetch_orders(datetime(2026, 11, 1, tzinfo=UTC)))
    list(first.fetch_orders(datetime(2026, 11, 1, tzinfo=UTC)))
    # Another worker's connector finds the token in the store and does not refresh.
    responses.add(responses.GET, ORDERS_URL, json={"orders": [], "pagination": {}})
    list(connector(limiter, store).fetch_orders(datetime(2026, 11, 1, tzinfo=UTC)))
    token_calls = [c for c in responses.calls if c.request.url == TOKEN_URL]
    assert len(token_calls) == 1
    assert "grant_type=refresh_token" in token_calls[0].request.body
    assert all(c.request.headers["x-amz-access-token"] == "Atza|access-1"
               for c in responses.calls if c.request.url.startswith(ORDERS_URL))
    assert store.data["access_token"] == "Atza|access-1"


@responses.activate
def test_an_expired_token_is_renewed_and_the_call_repeated(limiter):
    store = MemoryStore(client_id="c", client_secret="lwa-secret-xyz", refresh_token="Atzr|refresh",
                        access_token="Atza|stale", access_token_expires_at="2099-01-01T00:00:00+00:00")
    token_response("Atza|fresh")
    responses.add(responses.GET, ORDERS_URL, status=403, json={"errors": [{"code": "Unauthorized"}]})
    responses.add(responses.GET, ORDERS_URL, json={"orders": [], "pagination": {}})
    list(connector(limiter, store).fetch_orders(datetime(2026, 11, 1, tzinfo=UTC)))
    calls = [c for c in responses.calls if c.request.url.startswith(ORDERS_URL)]
    sent = [c.request.headers.get("x-amz-access-token") for c in calls]
    assert sent == ["Atza|stale", "Atza|fresh"]
    assert store.data["access_token"] == "Atza|fresh"


@responses.activate
def test_invalid_grant_is_an_auth_error_without_secrets(limiter):
    responses.add(responses.POST, TOKEN_URL, status=400,
                  json={"error": "invalid_grant", "error_description": "The refresh token Atzr|refresh is invalid"})
    with pytest.raises(ChannelAuthError) as caught:
        connector(limiter).test_connection()
    assert "Atzr|refresh" not in str(caught.value)
    assert "lwa-secret-xyz" not in str(caught.value)


@responses.activate
def test_fetch_orders_pages_through_with_the_contract_parameters(limiter):
    token_response()
    responses.add(responses.GET, ORDERS_URL, json=fixture_json("amazon_orders_page1.json"),
                  match=[matchers.query_param_matcher({
                      "marketplaceIds": "A1F83G8C2ARO7P", "lastUpdatedAfter": "2025-11-29T10:00:00Z",
                      "lastUpdatedBefore": "2025-11-29T12:00:00Z", "maxResultsPerPage": "100",
                      "includedData": "BUYER,RECIPIENT,PROCEEDS,FULFILLMENT"})])
    responses.add(responses.GET, ORDERS_URL, json=fixture_json("amazon_orders_page2.json"),
                  match=[matchers.query_param_matcher({"paginationToken": "page-2-token"}, strict_match=False)])
    amazon = connector(limiter)
    pages = list(amazon.fetch_orders(datetime(2025, 11, 29, 10, tzinfo=UTC), datetime(2025, 11, 29, 12, tzinfo=UTC)))
    assert [len(p.orders) for p in pages] == [2, 2]
    assert len(pages[0].errors) == 1
    assert amazon.watermark_policy is WatermarkPolicy.OLDEST_IMPORTED


@responses.activate
def test_small_push_patches_each_sku_with_latency_and_price_only_when_given(limiter):
    token_response()
    url = f"{AMAZON_BASE}/listings/2021-08-01/items/A2SELLER/"
    responses.add(responses.PATCH, url + "MUG-RED", json={"sku": "MUG-RED", "status": "ACCEPTED", "issues": []})
    responses.add(responses.PATCH, url + "MUG%2FBLUE", json={
        "sku": "MUG/BLUE", "status": "INVALID", "issues": [{"code": "4000001", "message": "SKU not found",
                                                             "severity": "ERROR"}]})
    results = connector(limiter).push_listings([
        StockUpdate("MUG-RED", "1", quantity=5),
        StockUpdate("MUG/BLUE", "2", quantity=0, latency_days=3, price=Decimal("12.50")),
    ])
    assert [(r.channel_sku, r.accepted) for r in results] == [("MUG-RED", True), ("MUG/BLUE", False)]
    assert "SKU not found" in results[1].message
    patches = [json.loads(c.request.body) for c in responses.calls if c.request.method == "PATCH"]
    assert patches[0]["patches"] == [{"op": "merge", "path": "/attributes/fulfillment_availability",
                                      "value": [{"fulfillment_channel_code": "DEFAULT", "quantity": 5}]}]
    availability, offer = patches[1]["patches"]
    assert availability["value"][0]["lead_time_to_ship_max_days"] == 3
    assert offer["value"][0]["our_price"][0]["schedule"][0]["value_with_tax"] == 12.5
    assert offer["value"][0]["marketplace_id"] == "A1F83G8C2ARO7P"


@responses.activate
def test_large_push_goes_through_one_listings_feed(limiter):
    token_response()
    upload = f"{AMAZON_BASE}/_documents/doc-in"
    responses.add(responses.POST, f"{AMAZON_BASE}/feeds/2021-06-30/documents",
                  json={"feedDocumentId": "doc-in", "url": upload})
    responses.add(responses.PUT, upload, status=200)
    responses.add(responses.POST, f"{AMAZON_BASE}/feeds/2021-06-30/feeds", status=202, json={"feedId": "F1"})
    responses.add(responses.GET, f"{AMAZON_BASE}/feeds/2021-06-30/feeds/F1",
                  json={"feedId": "F1", "processingStatus": "IN_PROGRESS"})
    responses.add(responses.GET, f"{AMAZON_BASE}/feeds/2021-06-30/feeds/F1",
                  json={"feedId": "F1", "processingStatus": "DONE", "resultFeedDocumentId": "doc-out"})
    responses.add(responses.GET, f"{AMAZON_BASE}/feeds/2021-06-30/documents/doc-out",
                  json={"feedDocumentId": "doc-out", "url": f"{AMAZON_BASE}/_documents/doc-out"})
    responses.add(responses.GET, f"{AMAZON_BASE}/_documents/doc-out", json={
        "header": {"sellerId": "A2SELLER", "version": "2.0", "feedId": "F1"},
        "issues": [{"messageId": 3, "code": "4000001", "severity": "ERROR", "message": "SKU not found"}],
        "summary": {"messagesProcessed": 25, "messagesAccepted": 24, "messagesInvalid": 1},
    })
    updates = [StockUpdate(f"SKU-{n}", str(n), quantity=n) for n in range(1, 26)]
    results = connector(limiter).push_listings(updates)
    assert [r.channel_sku for r in results if not r.accepted] == ["SKU-3"]
    assert sum(r.accepted for r in results) == 24
    uploaded = next(c for c in responses.calls if c.request.method == "PUT")
    assert "x-amz-access-token" not in uploaded.request.headers
    feed = json.loads(uploaded.request.body)
    assert feed["header"] == {"sellerId": "A2SELLER", "version": "2.0"}
    assert feed["messages"][2]["sku"] == "SKU-3" and feed["messages"][2]["messageId"] == 3
    assert not any(c.request.method == "PATCH" for c in responses.calls)


@responses.activate
def test_despatch_confirms_the_shipment_with_items_and_tracking(limiter):
    token_response()
    url = f"{AMAZON_BASE}/orders/v0/orders/202-1111111-1111111/shipmentConfirmation"
    responses.add(responses.POST, url, status=204)
    connector(limiter).confirm_despatch(
        OrderRef("202-1111111-1111111", lines=(OrderLineRef("11111111111111", "MUG-RED", 2),)),
        Shipment(tracking_number="RM123", carrier="Royal Mail", shipping_method="Standard",
                 shipped_at=datetime(2026, 11, 30, 9, tzinfo=UTC)),
    )
    body = json.loads(responses.calls[-1].request.body)
    assert body["marketplaceId"] == "A1F83G8C2ARO7P"
    package = body["packageDetail"]
    assert package["carrierCode"] == "Royal Mail" and package["trackingNumber"] == "RM123"
    assert package["orderItems"] == [{"orderItemId": "11111111111111", "quantity": 2}]
    assert package["shipDate"] == "2026-11-30T09:00:00Z"


@responses.activate
def test_cancellation_goes_as_an_order_acknowledgement_feed(limiter):
    token_response()
    upload = f"{AMAZON_BASE}/_documents/doc-c"
    responses.add(responses.POST, f"{AMAZON_BASE}/feeds/2021-06-30/documents",
                  json={"feedDocumentId": "doc-c", "url": upload})
    responses.add(responses.PUT, upload)
    responses.add(responses.POST, f"{AMAZON_BASE}/feeds/2021-06-30/feeds", status=202, json={"feedId": "F2"})
    responses.add(responses.GET, f"{AMAZON_BASE}/feeds/2021-06-30/feeds/F2",
                  json={"feedId": "F2", "processingStatus": "DONE", "resultFeedDocumentId": "r"})
    connector(limiter).cancel_order(
        OrderRef("202-1", lines=(OrderLineRef("111", "A", 1), OrderLineRef("222", "B", 1))), "NoInventory")
    content = next(c for c in responses.calls if c.request.method == "PUT").request.body.decode()
    assert content.splitlines() == [
        "order-id\tamazon-order-item-code\tcancellation-reason-code",
        "202-1\t111\tNoInventory",
        "202-1\t222\tNoInventory",
    ]
    created = json.loads(responses.calls[-2].request.body)
    assert created["feedType"] == "POST_FLAT_FILE_ORDER_ACKNOWLEDGEMENT_DATA"


@responses.activate
def test_fetch_listings_reads_the_merchant_listings_report(limiter):
    token_response()
    responses.add(responses.POST, f"{AMAZON_BASE}/reports/2021-06-30/reports", status=202, json={"reportId": "R1"})
    responses.add(responses.GET, f"{AMAZON_BASE}/reports/2021-06-30/reports/R1",
                  json={"reportId": "R1", "processingStatus": "IN_QUEUE"})
    responses.add(responses.GET, f"{AMAZON_BASE}/reports/2021-06-30/reports/R1",
                  json={"reportId": "R1", "processingStatus": "DONE", "reportDocumentId": "D1"})
    responses.add(responses.GET, f"{AMAZON_BASE}/reports/2021-06-30/documents/D1",
                  json={"reportDocumentId": "D1", "url": f"{AMAZON_BASE}/_documents/D1"})
    responses.add(responses.GET, f"{AMAZON_BASE}/_documents/D1", body=fixture_text("amazon_listings_report.tsv"))
    pages = list(connector(limiter).fetch_listings())
    assert [li.channel_sku for p in pages for li in p.listings] == ["MUG-RED", "MUG-BLUE", "TEAPOT-OLD"]
    assert pages[-1].done == pages[-1].total == 4


@responses.activate
def test_test_connection_checks_the_configured_marketplace(limiter):
    token_response()
    participations = {"payload": [{"marketplace": {"id": "A13V1IB3VIYZZH", "name": "Amazon.fr"},
                                   "participation": {"isParticipating": True}}]}
    responses.add(responses.GET, f"{AMAZON_BASE}/sellers/v1/marketplaceParticipations", json=participations)
    result = connector(limiter).test_connection()
    assert not result.ok and "A1F83G8C2ARO7P" in result.message
    participations["payload"].append({"marketplace": {"id": "A1F83G8C2ARO7P", "name": "Amazon.co.uk"},
                                      "participation": {"isParticipating": True}})
    responses.replace(responses.GET, f"{AMAZON_BASE}/sellers/v1/marketplaceParticipations", json=participations)
    assert connector(limiter).test_connection().ok


@responses.activate
def test_reauthorise_exchanges_the_code_and_saves_the_new_refresh_token(limiter):
    store = MemoryStore(client_id="c", client_secret="lwa-secret-xyz", refresh_token="Atzr|old")
    token_response("Atza|new-access", refresh_token="Atzr|new")
    result = connector(limiter, store).reauthorise(authorization_code="spapi-code-1")
    assert result.ok
    assert store.data["refresh_token"] == "Atzr|new"
    assert "grant_type=authorization_code" in responses.calls[0].request.body
    assert "spapi-code-1" not in result.message
