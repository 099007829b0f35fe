import contextlib
import gzip
import json
import math
from datetime import UTC, datetime
from decimal import Decimal

import pytest
import responses
from responses import matchers

from channels.connectors.amazon.connector import AmazonConnector
from channels.connectors.amazon.mapper import listings_from_report, order_from_amazon, orders_page_from_amazon
from channels.connectors.base import (
    ChannelAuthError,
    ChannelRateLimited,
    ChannelRejected,
    OrderLineRef,
    OrderRef,
    Shipment,
    StockUpdate,
    WatermarkPolicy,
)
from channels.connectors.contracts import contract_load
from channels.connectors.ratelimit import InProcessLimiter
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
FEEDS = f"{AMAZON_BASE}/feeds/2021-06-30"
ORDER = OrderRef("202-1111111-1111111", lines=(OrderLineRef("11111111111111", "MUG-RED", 2),))


def connector(limiter, store=None, **config):
    store = store or MemoryStore(client_id="amzn1.client", client_secret="lwa-secret-xyz", refresh_token="Atzr|refresh")
    amazon = AmazonConnector(amazon_config(**config), store, limiter)
    amazon.sleep = lambda seconds: None
    return amazon


def token_response(token="Atza|access-1", **extra):
    responses.add(responses.POST, TOKEN_URL, json={"access_token": token, "token_type": "bearer", "expires_in": 3600,
                                                   **extra})


def money(value):
    return {"amount": value, "currencyCode": "GBP"}


def breakdown(kind, value, **details):
    entry = {"type": kind, "subtotal": money(value)}
    if details:
        entry["detailedBreakdowns"] = [{"subtype": subtype, "value": money(part)} for subtype, part in details.items()]
    return entry


def order_with(order_proceeds, *line_proceeds):
    """One order of 2 x 10.00, with the proceeds given (None: left out)."""
    order = {
        "orderId": "202-7777777-7777777", "createdTime": "2026-11-29T10:05:00Z",
        "lastUpdatedTime": "2026-11-29T10:06:00Z",
        "salesChannel": {"channelName": "AMAZON", "marketplaceId": "A1F83G8C2ARO7P"},
        "fulfillment": {"fulfillmentStatus": "UNSHIPPED", "fulfilledBy": "MERCHANT"},
        "orderItems": [
            {"orderItemId": f"7777777777777{n}", "quantityOrdered": 1,
             "product": {"sellerSku": f"SKU-{n}", "price": {"unitPrice": money("10.00")}},
             **({"proceeds": proceeds} if proceeds is not None else {})}
            for n, proceeds in enumerate(line_proceeds or (None, None))
        ],
    }
    if order_proceeds is not None:
        order["proceeds"] = order_proceeds
    return order


def feed_calls(feed_id, status="DONE", result=None, result_content_type="application/json"):
    """createFeedDocument, the upload, createFeed, getFeed (in progress, then `status`) and the result document."""
    upload = f"{AMAZON_BASE}/_documents/feeds/doc-in"
    responses.add(responses.POST, f"{FEEDS}/documents", status=201, json={"feedDocumentId": "doc-in", "url": upload})
    responses.add(responses.PUT, upload, status=200)
    responses.add(responses.POST, f"{FEEDS}/feeds", status=202, json={"feedId": feed_id})
    responses.add(responses.GET, f"{FEEDS}/feeds/{feed_id}", json={
        "feedId": feed_id, "feedType": "JSON_LISTINGS_FEED", "createdTime": "2026-11-29T10:00:00Z",
        "processingStatus": "IN_PROGRESS"})
    done = {"feedId": feed_id, "feedType": "JSON_LISTINGS_FEED", "createdTime": "2026-11-29T10:00:00Z",
            "processingStatus": status}
    if result is not None:
        done["resultFeedDocumentId"] = "doc-out"
        responses.add(responses.GET, f"{FEEDS}/documents/doc-out",
                      json={"feedDocumentId": "doc-out", "url": f"{AMAZON_BASE}/_documents/feeds/doc-out"})
        responses.add(responses.GET, f"{AMAZON_BASE}/_documents/feeds/doc-out",
                      body=result if isinstance(result, str) else json.dumps(result),
                      content_type=result_content_type)
    responses.add(responses.GET, f"{FEEDS}/feeds/{feed_id}", json=done)


def processing_report(issues, *, processed, accepted, invalid):
    return {"header": {"sellerId": "A2SELLER", "version": "2.0", "feedId": "F1"}, "issues": issues,
            "summary": {"errors": len(issues), "warnings": 0, "messagesProcessed": processed,
                        "messagesAccepted": accepted, "messagesInvalid": invalid}}


# --- Mappers ---


def test_order_maps_what_the_seller_sees():
    order = order_from_amazon(fixture_json("amazon_orders_page1.json")["orders"][0])
    assert order.channel_order_id == "202-1111111-1111111"
    assert order.is_paid and not order.is_cancelled and not order.fulfilled_by_channel
    assert order.shipping_tag == "STANDARD"
    assert order.currency == "GBP"
    assert order.buyer_email == "abc123@marketplace.amazon.co.uk"
    assert order.created_at == datetime(2026, 11, 29, 10, 5, tzinfo=UTC)
    assert order.total == Decimal("44.97") and order.subtotal == Decimal("39.98")
    assert order.shipping_cost == Decimal("4.99")
    # The order's TAX breakdown (goods and delivery); the line's is the ITEM part of its own.
    assert order.tax == Decimal("7.49")
    (item,) = order.items
    assert (item.line_id, item.sku, item.quantity, item.unit_price, item.tax) == (
        "11111111111111", "MUG-RED", 2, Decimal("19.99"), Decimal("6.66"))
    assert order.shipping_address.postcode == "LS1 1AA" and order.shipping_address.country == "GB"


def test_delivery_and_discounts_are_read_from_their_breakdowns_not_inferred():
    order = order_from_amazon(order_with({"grandTotal": money("18.00"), "breakdowns": [
        breakdown("ITEM", "20.00"), breakdown("SHIPPING", "3.00"), breakdown("TAX", "3.00"),
        breakdown("DISCOUNT", "-5.00", ITEM="-2.00", SHIPPING="-3.00")]}))
    assert (order.subtotal, order.shipping_cost, order.tax, order.total) == (
        Decimal("18.00"), Decimal("0.00"), Decimal("3.00"), Decimal("18.00"))


def test_the_items_breakdowns_are_summed_when_the_order_has_none():
    order = order_from_amazon(order_with(
        {"grandTotal": money("23.50")},
        {"proceedsTotal": money("13.50"), "breakdowns": [breakdown("ITEM", "10.00"), breakdown("SHIPPING", "3.50"),
                                                          breakdown("TAX", "2.25")]},
        {"proceedsTotal": money("10.00"), "breakdowns": [breakdown("ITEM", "10.00"), breakdown("TAX", "1.67")]},
    ))
    assert (order.subtotal, order.shipping_cost, order.tax) == (Decimal("20.00"), Decimal("3.50"), Decimal("3.92"))
    assert [item.tax for item in order.items] == [Decimal("2.25"), Decimal("1.67")]


def test_an_order_without_proceeds_has_unknown_tax_and_no_delivery_charge():
    order = order_from_amazon(order_with(None))
    assert order.tax is None and all(item.tax is None for item in order.items)
    assert (order.subtotal, order.shipping_cost, order.total) == (Decimal("20.00"), Decimal("0"), Decimal("20.00"))


def test_afn_order_without_buyer_email():
    order = order_from_amazon(fixture_json("amazon_orders_page1.json")["orders"][1])
    assert order.fulfilled_by_channel and order.is_shipped
    assert order.buyer_email is None
    assert order.shipping_tag == "EXPEDITED"
    assert (order.tax, order.shipping_cost) == (Decimal("2.08"), Decimal("0"))


def test_pending_is_unpaid_and_cancelled_is_cancelled():
    cancelled, pending = (order_from_amazon(o) for o in fixture_json("amazon_orders_page2.json")["orders"])
    assert cancelled.is_cancelled and cancelled.is_paid
    assert not pending.is_paid and not pending.is_cancelled


def test_an_unreadable_order_is_reported_by_id_and_the_page_goes_on():
    body = fixture_json("amazon_orders_page1.json")
    broken = order_with(None)
    broken["orderItems"][0]["quantityOrdered"] = "two"
    body["orders"].insert(1, broken)
    page = orders_page_from_amazon(body)
    assert [o.channel_order_id for o in page.orders] == ["202-1111111-1111111", "202-2222222-2222222"]
    assert [e.record_id for e in page.errors] == ["202-7777777-7777777"]


def test_listings_report_rows_become_listings_with_progress():
    pages = list(listings_from_report(fixture_text("amazon_listings_report.tsv"), page_size=2))
    assert [(p.done, p.total) for p in pages] == [(2, 4), (4, 4)]
    red, blue = pages[0].listings
    assert (red.channel_sku, red.external_id, red.quantity, red.price) == ("MUG-RED", "1129X0001", 7, Decimal("19.99"))
    assert blue.fulfilled_by_channel and blue.quantity is None
    (teapot,) = pages[1].listings
    assert not teapot.is_active
    assert [e.record_id for e in pages[1].errors] == ["BROKEN"]


# --- Capabilities ---


def test_amazon_declares_what_confirm_shipment_and_the_acknowledgement_feed_accept():
    assert AmazonConnector.despatch_needs_tracking_number
    codes = [carrier.code for carrier in AmazonConnector.carriers]
    assert {"Royal Mail", "Parcelforce", "DPD", "UPS"} <= set(codes) and AmazonConnector.other_carrier not in codes
    assert AmazonConnector.other_carrier == "Other"
    assert {"NoInventory", "BuyerCanceled", "GeneralAdjustment"} <= set(AmazonConnector.cancellation_reasons)
    assert all(AmazonConnector.cancellation_reasons.values())
    assert AmazonConnector.has_fulfilment_network and AmazonConnector.withheld_email_placeholder


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
    responses.add(responses.GET, ORDERS_URL, status=403,
                  json={"errors": [{"code": "Unauthorized", "message": "Access to requested resource is denied."}]})
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
def test_fetch_orders_pages_through_sending_its_query_with_each_token(limiter):
    token_response()
    query = {"marketplaceIds": "A1F83G8C2ARO7P", "lastUpdatedAfter": "2025-11-29T10:00:00Z",
             "lastUpdatedBefore": "2025-11-29T12:00:00Z", "maxResultsPerPage": "100",
             "includedData": "BUYER,RECIPIENT,PROCEEDS,FULFILLMENT"}
    responses.add(responses.GET, ORDERS_URL, json=fixture_json("amazon_orders_page1.json"),
                  match=[matchers.query_param_matcher(query)])
    responses.add(responses.GET, ORDERS_URL, json=fixture_json("amazon_orders_page2.json"),
                  match=[matchers.query_param_matcher({**query, "paginationToken": "page-2-token"})])
    amazon = connector(limiter)
    pages = list(amazon.fetch_orders(datetime(2025, 11, 29, 10, tzinfo=UTC), datetime(2025, 11, 29, 12, tzinfo=UTC)))
    assert [len(p.orders) for p in pages] == [2, 2]
    assert amazon.watermark_policy is WatermarkPolicy.OLDEST_IMPORTED


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


@responses.activate
@pytest.mark.parametrize(("announced", "pages_before_the_quota"), [(None, 20), ("2", 25)])
def test_the_orders_bucket_follows_the_rate_amazon_announces(announced, pages_before_the_quota):
    """searchOrders' default plan is 20 calls then one per 3 minutes; a seller whose plan Amazon announces as
    2 a second pages on, waiting half a second a call."""
    clock = Clock()
    limiter = InProcessLimiter(clock=clock, sleep=clock.sleep)
    token_response()
    headers = {"x-amzn-RateLimit-Limit": announced} if announced else {}
    for page in range(25):
        responses.add(responses.GET, ORDERS_URL, headers=headers, json={
            "orders": [], "pagination": {"nextToken": f"token-{page + 1}"} if page < 24 else {}})
    fetched = 0
    with pytest.raises(ChannelRateLimited) if pages_before_the_quota < 25 else contextlib.nullcontext():
        for _page in connector(limiter).fetch_orders(datetime(2026, 11, 1, tzinfo=UTC)):
            fetched += 1
    assert fetched == pages_before_the_quota


@responses.activate
def test_orders_are_polled_as_often_as_the_searchorders_plan_sustains_and_no_more(limiter):
    """A download spends one searchOrders call a page (the items come with the orders), so the poll's default
    interval follows that operation's usage plan in the contract."""
    token_response()
    responses.add(responses.GET, ORDERS_URL, json=fixture_json("amazon_orders_page2.json"))
    list(connector(limiter).fetch_orders(datetime(2026, 11, 1, tzinfo=UTC)))
    spent = [call.request.url.split("?")[0] for call in responses.calls if call.request.url.startswith(AMAZON_BASE)]
    assert spent == [ORDERS_URL]
    assert AmazonConnector.order_download_operation == "searchOrders"

    plan = contract_load("amazon").operation("searchOrders").spec["usage_plan"]
    rate = float(plan["rate"])
    interval = AmazonConnector.order_download_interval()
    # The periodic download takes its share of the plan, and never comes faster than the plan refills.
    assert interval == math.ceil(1 / (AmazonConnector.order_download_share * rate))
    assert AmazonConnector.order_download_quota_seconds() == math.ceil(1 / rate)
    assert interval * rate >= 1 and AmazonConnector.order_download_quota_seconds() * rate >= 1


@responses.activate
def test_small_push_patches_each_sku_with_latency_and_price_only_when_given(limiter):
    token_response()
    url = f"{AMAZON_BASE}/listings/2021-08-01/items/A2SELLER/"
    responses.add(responses.PATCH, url + "MUG-RED", json={"sku": "MUG-RED", "status": "ACCEPTED",
                                                          "submissionId": "s1", "issues": []})
    responses.add(responses.PATCH, url + "MUG%2FBLUE", json={
        "sku": "MUG/BLUE", "status": "INVALID", "submissionId": "s2",
        "issues": [{"code": "4000001", "message": "SKU not found", "severity": "ERROR", "categories": []}]})
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
    assert offer["value"] == [{"marketplace_id": "A1F83G8C2ARO7P", "currency": "GBP", "audience": "ALL",
                               "our_price": [{"schedule": [{"value_with_tax": 12.5}]}]}]


@responses.activate
def test_large_push_goes_through_one_listings_feed(limiter):
    token_response()
    feed_calls("F1", result=processing_report(
        [{"messageId": 3, "sku": "SKU-3", "code": "4000001", "severity": "ERROR", "message": "SKU not found"}],
        processed=25, accepted=24, invalid=1))
    updates = [StockUpdate(f"SKU-{n}", str(n), quantity=n) for n in range(1, 26)]
    results = connector(limiter).push_listings(updates)
    assert [r.channel_sku for r in results if not r.accepted] == ["SKU-3"]
    assert sum(r.accepted for r in results) == 24
    uploaded = next(c for c in responses.calls if c.request.method == "PUT")
    assert "x-amz-access-token" not in uploaded.request.headers
    assert uploaded.request.headers["Content-Type"] == "application/json; charset=UTF-8"
    feed = json.loads(uploaded.request.body)
    assert feed["header"] == {"sellerId": "A2SELLER", "version": "2.0"}
    assert feed["messages"][2]["sku"] == "SKU-3" and feed["messages"][2]["messageId"] == 3
    assert not any(c.request.method == "PATCH" for c in responses.calls)


@responses.activate
def test_a_feed_level_error_accepts_no_listing_even_when_the_feed_is_done(limiter):
    token_response()
    feed_calls("F1", result=processing_report(
        [{"code": "100002", "severity": "ERROR", "message": "header.sellerId: not your seller id"}],
        processed=0, accepted=0, invalid=0))
    results = connector(limiter).push_listings([StockUpdate(f"SKU-{n}", str(n), quantity=n) for n in range(1, 26)])
    assert not any(result.accepted for result in results)
    assert all("not your seller id" in result.message for result in results)


@responses.activate
def test_a_summary_accepting_fewer_messages_than_the_issues_explain_accepts_none_unflagged(limiter):
    token_response()
    feed_calls("F1", result=processing_report([], processed=25, accepted=20, invalid=5))
    results = connector(limiter).push_listings([StockUpdate(f"SKU-{n}", str(n), quantity=n) for n in range(1, 26)])
    assert not any(result.accepted for result in results)
    assert "accepted 20 of the feed's 25 messages" in results[0].message


@responses.activate
def test_a_fatal_feed_rejects_every_listing(limiter):
    token_response()
    feed_calls("F1", status="FATAL")
    results = connector(limiter).push_listings([StockUpdate(f"SKU-{n}", str(n), quantity=n) for n in range(1, 26)])
    assert not any(result.accepted for result in results) and "FATAL" in results[0].message


@responses.activate
@pytest.mark.parametrize(("carrier", "code", "name"), [
    ("Royal Mail", "Royal Mail", None), ("royal mail", "Royal Mail", None), ("dpd", "DPD", None),
    ("Evri", "Other", "Evri"),
])
def test_despatch_confirms_the_shipment_with_items_tracking_and_amazons_carrier_code(limiter, carrier, code, name):
    token_response()
    url = f"{AMAZON_BASE}/orders/v0/orders/202-1111111-1111111/shipmentConfirmation"
    responses.add(responses.POST, url, status=204)
    connector(limiter).confirm_despatch(ORDER, Shipment(tracking_number="RM123", carrier=carrier,
                                                        shipped_at=datetime(2026, 11, 30, 9, tzinfo=UTC)))
    body = json.loads(responses.calls[-1].request.body)
    assert body["marketplaceId"] == "A1F83G8C2ARO7P"
    package = body["packageDetail"]
    assert (package["carrierCode"], package.get("carrierName")) == (code, name)
    assert package["trackingNumber"] == "RM123" and "shippingMethod" not in package
    assert package["orderItems"] == [{"orderItemId": "11111111111111", "quantity": 2}]
    assert package["shipDate"] == "2026-11-30T09:00:00Z"


@responses.activate
@pytest.mark.parametrize(("shipment", "words"), [
    (Shipment(tracking_number="", carrier="Royal Mail"), "tracking number"),
    (Shipment(tracking_number="RM1", carrier=" "), "carrier"),
])
def test_a_despatch_amazon_would_refuse_is_refused_before_it_is_sent(limiter, shipment, words):
    with pytest.raises(ChannelRejected, match=words):
        connector(limiter).confirm_despatch(ORDER, shipment)
    assert len(responses.calls) == 0


@responses.activate
def test_cancellation_goes_as_an_order_acknowledgement_feed(limiter):
    token_response()
    feed_calls("F2", result="Feed Processing Summary:\n\tNumber of records processed\t\t2\n"
                            "\tNumber of records successful\t\t2\n\n"
                            "original-record-number\torder-id\terror-code\terror-type\terror-message\n",
               result_content_type="text/plain")
    connector(limiter).cancel_order(
        OrderRef("202-1", lines=(OrderLineRef("111", "A", 1), OrderLineRef("222", "B", 1))), "out of stock")
    upload = next(c for c in responses.calls if c.request.method == "PUT").request
    assert upload.body.decode().splitlines() == [
        "order-id\tamazon-order-item-code\tcancellation-reason-code",
        "202-1\t111\tNoInventory",
        "202-1\t222\tNoInventory",
    ]
    created = json.loads(next(c for c in responses.calls if c.request.url == f"{FEEDS}/feeds").request.body)
    assert created["feedType"] == "POST_FLAT_FILE_ORDER_ACKNOWLEDGEMENT_DATA"


def test_a_cancellation_reason_amazon_does_not_know_is_refused_not_replaced(limiter):
    with pytest.raises(ChannelRejected, match="NoInventory"):
        connector(limiter).cancel_order(OrderRef("202-1", lines=(OrderLineRef("111", "A", 1),)),
                                        "Cancelled by the seller")


@responses.activate
def test_a_cancellation_amazons_report_refuses_is_an_error(limiter):
    token_response()
    feed_calls("F2", result="Feed Processing Summary:\n\tNumber of records processed\t\t1\n"
                            "\tNumber of records successful\t\t0\n\n"
                            "original-record-number\torder-id\terror-code\terror-type\terror-message\n"
                            "1\t202-1\t18029\tError\tA shipped order cannot be cancelled.\n",
               result_content_type="text/plain")
    with pytest.raises(ChannelRejected, match="shipped order cannot be cancelled"):
        connector(limiter).cancel_order(OrderRef("202-1", lines=(OrderLineRef("111", "A", 1),)), "BuyerCanceled")


def report_calls(final, *, gzipped=False):
    reports = f"{AMAZON_BASE}/reports/2021-06-30"
    report = {"reportId": "R1", "reportType": "GET_MERCHANT_LISTINGS_ALL_DATA", "createdTime": "2026-11-29T10:00:00Z"}
    responses.add(responses.POST, f"{reports}/reports", status=202, json={"reportId": "R1"})
    responses.add(responses.GET, f"{reports}/reports/R1", json={**report, "processingStatus": "IN_QUEUE"})
    responses.add(responses.GET, f"{reports}/reports/R1", json={**report, **final})
    document = {"reportDocumentId": "D1", "url": f"{AMAZON_BASE}/_documents/reports/D1"}
    content = fixture_text("amazon_listings_report.tsv").encode()
    if gzipped:
        document["compressionAlgorithm"] = "GZIP"
        content = gzip.compress(content)
    responses.add(responses.GET, f"{reports}/documents/D1", json=document)
    responses.add(responses.GET, f"{AMAZON_BASE}/_documents/reports/D1", body=content)


@responses.activate
@pytest.mark.parametrize("gzipped", [False, True])
def test_fetch_listings_reads_the_merchant_listings_report(limiter, gzipped):
    token_response()
    report_calls({"processingStatus": "DONE", "reportDocumentId": "D1"}, gzipped=gzipped)
    pages = list(connector(limiter).fetch_listings())
    assert [li.channel_sku for p in pages for li in p.listings] == ["MUG-RED", "MUG-BLUE", "TEAPOT-OLD"]
    assert pages[-1].done == pages[-1].total == 4


@responses.activate
def test_a_listings_report_amazon_cancels_for_want_of_data_is_no_listings(limiter):
    token_response()
    report_calls({"processingStatus": "CANCELLED"})
    assert [(p.listings, p.total) for p in connector(limiter).fetch_listings()] == [((), 0)]


@responses.activate
def test_test_connection_checks_the_configured_marketplace(limiter):
    token_response()

    def participation(marketplace_id, name):
        return {"marketplace": {"id": marketplace_id, "name": name, "countryCode": "GB", "defaultCurrencyCode": "GBP",
                                "defaultLanguageCode": "en_GB", "domainName": "www.amazon.co.uk"},
                "participation": {"isParticipating": True, "hasSuspendedListings": False}, "storeName": "Mugs"}

    participations = {"payload": [participation("A13V1IB3VIYZZH", "Amazon.fr")]}
    responses.add(responses.GET, f"{AMAZON_BASE}/sellers/v1/marketplaceParticipations", json=participations)
    result = connector(limiter).test_connection()
    assert not result.ok and "A1F83G8C2ARO7P" in result.message
    participations["payload"].append(participation("A1F83G8C2ARO7P", "Amazon.co.uk"))
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
