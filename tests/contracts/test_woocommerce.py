"""The WooCommerce connector against channels/connectors/woocommerce/contract/*.json (from WooCommerce 9.9.7's route
index), over https as a real shop: every request it sends holds to its operation's schema, every answer it is given
here holds to the response schema, and the shop's HTML pages (an error, a login wall) are named for what they are."""

import json
import re
from datetime import UTC, datetime
from decimal import Decimal
from urllib.parse import urlsplit

import pytest
import responses

from channels.connectors.base import (
    ChannelPayloadError,
    ChannelRejected,
    ChannelTransientError,
    ConnectorConfig,
    OrderRef,
    Shipment,
    StockUpdate,
)
from channels.connectors.contracts import contract_load
from channels.connectors.ratelimit import InProcessLimiter
from channels.connectors.woocommerce.connector import WooCommerceConnector
from tests.channels.connectors.conftest import MemoryStore
from tests.contracts.helpers import request_parts

CONTRACT = contract_load("woocommerce")
SHOP = "https://shop.example.test"
KEY, SECRET = "ck_0123456789abcdef", "cs_fedcba9876543210"
PRODUCT = {"id": 10, "name": "Mug", "type": "simple", "status": "publish", "sku": "MUG", "manage_stock": True,
           "stock_quantity": 3, "price": "9.99", "regular_price": "9.99", "sale_price": "", "parent_id": 0,
           "variations": [], "date_modified_gmt": "2026-11-29T10:15:00", "date_on_sale_from_gmt": None}
VARIABLE = {**PRODUCT, "id": 20, "name": "T-shirt", "type": "variable", "sku": "TEE", "manage_stock": False,
            "stock_quantity": None, "variations": [21]}
VARIATION = {"id": 21, "sku": "TEE-S", "status": "publish", "manage_stock": "parent", "stock_quantity": None,
             "price": "15.00", "regular_price": "15.00"}
ORDER = {
    "id": 501, "number": "501", "status": "processing", "currency": "GBP", "prices_include_tax": True,
    "date_created_gmt": "2026-11-29T10:00:00", "date_modified_gmt": "2026-11-29T10:05:00",
    "date_paid_gmt": "2026-11-29T10:00:00", "total": "22.99", "total_tax": "3.83", "shipping_total": "2.50",
    "shipping_tax": "0.50", "billing": {"first_name": "Jo", "last_name": "Bloggs", "email": "jo@example.com",
                                        "address_1": "1 High St", "city": "York", "postcode": "YO1 7HH",
                                        "country": "GB", "phone": "01904"},
    "shipping": {"first_name": "Jo", "last_name": "Bloggs", "address_1": "", "city": "", "postcode": "", "country": ""},
    "line_items": [{"id": 7, "name": "Mug", "product_id": 10, "variation_id": 0, "quantity": 2, "sku": "MUG",
                    "total": "16.66", "total_tax": "3.33", "price": 8.33}],
    "shipping_lines": [{"id": 8, "method_title": "Royal Mail 1st Class", "method_id": "flat_rate", "total": "2.50"}],
}
WEBHOOK = {"id": 3, "name": "Stockline order webhook (order.created)", "status": "disabled", "topic": "order.created",
           "delivery_url": "https://hub.example/old/", "date_created_gmt": "2026-11-01T00:00:00"}
ANSWERS = {
    "system_status_get": {"environment": {"version": "9.9.7", "home_url": SHOP, "wp_version": "6.8.1"}},
    "order_statuses_list": [{"slug": "pending", "name": "Pending payment"}, {"slug": "wc-shipped", "name": "Shipped"}],
    "products_list": [PRODUCT, VARIABLE],
    "product_variations_list": [VARIATION],
    "orders_list": [ORDER],
    "order_get": ORDER,
    "order_update": {**ORDER, "status": "completed"},
    "order_note_create": {"id": 1, "note": "x", "customer_note": True, "date_created_gmt": "2026-11-29T10:00:00"},
    "webhooks_list": [WEBHOOK],
    "webhook_create": {**WEBHOOK, "id": 4, "topic": "order.updated", "status": "active"},
    "webhook_update": {**WEBHOOK, "status": "active"},
    "tracking_create": {"tracking_id": "abc", "tracking_number": "RM1", "tracking_provider": "Royal Mail"},
    "tracking_providers_list": {"United Kingdom": {"Royal Mail": "https://royalmail.example/%1$s"}},
}


def connector(**overrides) -> WooCommerceConnector:
    config = ConnectorConfig(channel_id=1, kind="woocommerce", name="Shop", api_base_url=SHOP, auth_base_url=SHOP,
                             allowed_hosts=frozenset({"shop.example.test"}), **overrides)
    woo = WooCommerceConnector(config, MemoryStore(consumer_key=KEY, consumer_secret=SECRET),
                               InProcessLimiter(sleep=lambda s: None))
    woo.sleep = lambda s: None
    return woo


@pytest.fixture
def shop():
    """A shop answering every contract operation; each request is checked against its schema first."""
    seen: list[tuple[str, dict]] = []

    def answer(request):
        path = urlsplit(request.url).path.removeprefix(urlsplit(SHOP).path)
        found = CONTRACT.match(request.method, path)
        assert found is not None, f"no contract operation for {request.method} {path}"
        operation, _ = found
        parts = request_parts(request)
        problems = operation.request_errors(**parts)
        assert problems == [], f"{operation.operation_id}: {problems}"
        seen.append((operation.operation_id, parts))
        if operation.operation_id.endswith("_batch"):
            body = {"update": [{**PRODUCT, "id": entry["id"], "manage_stock": entry["id"] != 11}
                               for entry in parts["body"]["update"]]}
        else:
            body = ANSWERS.get(operation.operation_id, WEBHOOK)
        status = next(iter(operation.spec["responses"]))
        assert operation.response_errors(int(status), body) == [], operation.operation_id
        return int(status), {"X-WP-Total": "2", "X-WP-TotalPages": "1"}, json.dumps(body)

    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        for method in ("GET", "POST", "PUT", "DELETE"):
            mock.add_callback(method, re.compile(re.escape(SHOP) + ".*"), callback=answer)
        yield seen


def test_every_call_holds_to_the_contract_and_carries_basic_credentials_over_https(shop):
    woo = connector()
    woo.test_connection()
    listings = [listing for page in woo.fetch_listings() for listing in page.listings]
    woo.push_listings([StockUpdate("MUG", "10", quantity=4, price=Decimal("9.5")),
                       StockUpdate("CUP", "11", quantity=1), StockUpdate("TEE-S", "20/21", quantity=2)])
    orders = [order for page in woo.fetch_orders(datetime(2026, 11, 1, tzinfo=UTC)) for order in page.orders]
    woo.order_statuses()
    woo.webhooks_subscribe("https://hub.example/webhooks/1/abc/")
    woo.confirm_despatch(OrderRef("501"), Shipment(tracking_number="RM1", carrier="Royal Mail"))
    woo.cancel_order(OrderRef("501"), "Out of stock")

    calls = [operation for operation, _ in shop]
    assert {"products_batch", "product_variations_batch", "webhook_update", "webhook_create", "tracking_create",
            "order_note_create", "order_update"} <= set(calls)
    assert all(parts["headers"]["authorization"].startswith("Basic ") and "oauth_signature" not in parts["query"]
               for _, parts in shop if _ != "tracking_providers_list")
    assert [listing.channel_sku for listing in listings] == ["MUG", "TEE-S"]
    order, = orders
    assert (order.shipping_tag, order.buyer_email, order.shipping_address.city) == (
        "Royal Mail 1st Class", "jo@example.com", "York")
    assert order.items[0].unit_price == Decimal("10.00") and order.shipping_cost == Decimal("3.00")


def test_a_push_reports_each_listing_as_woocommerce_answered(shop):
    results = connector().push_listings([StockUpdate("MUG", "10", quantity=4), StockUpdate("CUP", "11", quantity=1),
                                        StockUpdate("LOST", "", quantity=1)])

    assert [(r.channel_sku, r.accepted) for r in results] == [("MUG", True), ("CUP", False), ("LOST", False)]
    assert "not managed" in results[1].message and "download the listings" in results[2].message


@pytest.mark.parametrize(("status", "page", "error", "words"), [
    (200, "<!DOCTYPE html><html><head><title>Log In &lsaquo; Shop</title></head>", ChannelPayloadError, "Log In"),
    (403, "<html><head><title>Access denied | Wordfence</title>", ChannelRejected, "security plugin"),
    (500, "<html><body><h1>There has been a critical error on this website.</h1>", ChannelTransientError,
     "critical error"),
    (404, "<html><title>Page not found</title></html>", ChannelRejected, "permalinks"),
])
def test_a_shop_answering_an_html_page_is_a_clear_error_naming_the_page(status, page, error, words):
    with responses.RequestsMock() as mock:
        mock.add("GET", f"{SHOP}/wp-json/wc/v3/system_status", body=page, status=status,
                 content_type="text/html; charset=UTF-8")
        with pytest.raises(error, match=words) as raised:
            connector().test_connection()
    assert "HTML page" in str(raised.value) and SECRET not in str(raised.value)


def test_a_shop_stripping_the_pagination_headers_is_read_until_a_short_page():
    full = [{**PRODUCT, "id": n, "sku": f"S{n}"} for n in range(1, 101)]
    with responses.RequestsMock() as mock:
        mock.add("GET", f"{SHOP}/wp-json/wc/v3/products", json=full)
        mock.add("GET", f"{SHOP}/wp-json/wc/v3/products", json=[PRODUCT])
        pages = list(connector().fetch_listings())

    assert [len(page.listings) for page in pages] == [100, 1]
