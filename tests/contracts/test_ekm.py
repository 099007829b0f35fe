"""The EKM connector and sandbox against channels/connectors/ekm/contract/*.json (written from EKM's swagger).

Every request the connector sends validates against its operation's request schema; answers valid per the
response schemas, with optional fields absent or null, map to the hub values a seller expects; and the
sandbox sends no field the contract does not declare.
"""

import json
import re
from datetime import UTC, datetime
from decimal import Decimal
from urllib.parse import urlsplit

import pytest
import requests
import responses

from channels.connectors.base import OrderRef, Shipment, StockUpdate
from channels.connectors.contracts import contract_load
from channels.connectors.ekm.client import SCOPES
from channels.connectors.ekm.connector import EkmConnector
from channels.connectors.ekm.mapper import (
    currency_from_settings,
    listings_from_products,
    order_from_ekm,
    statuses_from_settings,
)
from channels.connectors.ratelimit import InProcessLimiter
from tests.channels.connectors.conftest import EKM_BASE, MemoryStore, ekm_config, fixture_json
from tests.contracts.helpers import answer_undeclared, request_parts
from tests.sandbox.conftest import ekm_login, make_account

CONTRACT = contract_load("ekm")
WRAP = {"meta": {}, "links": [], "validation_result": None, "errors": None}
ORDERS = {1: fixture_json("ekm_orders_page1.json"), 2: fixture_json("ekm_orders_page2.json")}
PRODUCTS = {1: fixture_json("ekm_products_page1.json"), 2: fixture_json("ekm_products_page2.json")}
MUG = PRODUCTS[1]["data"][0]
TEE_M = PRODUCTS[1]["data"][1]["variants"][0]
ANSWERS = {
    "token": {"access_token": "access-2", "expires_in": 3600, "token_type": "Bearer", "refresh_token": "r2",
              "scope": SCOPES},
    "ShopInformation_Get": {**WRAP, "data": {"shop_name": "Teapots Ltd", "country": "GB", "email": None}},
    "OrderStatuses_GetOrderStatuses": {**WRAP, "data": {"statuses": [
        {"name": "PENDING", "colour": "#000099", "show_in_quick_stats": True},
        {"name": "DISPATCHED", "colour": "#FF00FF", "show_in_quick_stats": True}]}},
    "Currency_GetCurrency": {**WRAP, "data": {"currency_code": "GBP", "country_code": None, "currency_symbol": "£",
                                              "current_html_symbol": "&pound;"}},
    "Orders_GetItems": fixture_json("ekm_order_123_items.json"),
    "Products_Get": {**WRAP, "data": MUG},
    "Products_Update": {**WRAP, "data": MUG},
    "ProductStock_Update": {**WRAP, "data": {"id": 55, "stock": 4, "total_product_stock": 4}},
    "ProductVariants_GetProductVariant": {**WRAP, "data": TEE_M},
    "ProductVariants_Update": {**WRAP, "data": TEE_M},
    "ProductVariantStock_Update": {**WRAP, "data": {"id": 7, "parent_product_id": 56, "stock": 2}},
    "Orders_UpdateDeliveryTracking": {**WRAP, "data": ORDERS[1]["data"][0]},
    "Orders_UpdateStatus": {**WRAP, "data": ORDERS[1]["data"][0]},
}
PAGED = {"Orders_Search": ORDERS, "Products_GetAll": PRODUCTS}


@pytest.fixture
def ekm_channel():
    """EKM as `responses`: each request checked against the contract, answered with a contract-valid answer."""
    seen: list[tuple[str, list[str]]] = []

    def answer(request):
        path, parts = urlsplit(request.url).path, request_parts(request)
        matched = CONTRACT.match(request.method, path)
        if matched is None:
            seen.append((f"{request.method} {path}", ["no such operation in the contract"]))
            return 404, {}, ""
        operation, _ = matched
        seen.append((operation.operation_id, operation.request_errors(**parts)))
        paged = PAGED.get(operation.operation_id)
        body = paged[int(parts["query"]["page"])] if paged else ANSWERS[operation.operation_id]
        assert operation.response_errors(200, body) == [], operation.operation_id
        return 200, {}, json.dumps(body)

    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        for method in ("GET", "PUT", "POST", "DELETE"):
            mock.add_callback(method, re.compile(re.escape(EKM_BASE) + "/.*"), callback=answer)
        yield seen


def test_every_request_the_connector_sends_holds_to_the_contract(ekm_channel):
    ekm = EkmConnector(ekm_config(), MemoryStore(client_id="c", client_secret="s", refresh_token="r1"),
                       InProcessLimiter(sleep=lambda seconds: None))
    ekm.sleep = lambda seconds: None

    assert ekm.test_connection().ok
    assert ekm.order_statuses() == ["PENDING", "DISPATCHED"]
    orders = [order for page in ekm.fetch_orders(datetime(2026, 11, 29, tzinfo=UTC), datetime.now(UTC))
              for order in page.orders]
    assert [order.channel_order_id for order in orders] == ["123", "124", "125"]
    assert len([listing for page in ekm.fetch_listings() for listing in page.listings]) == 4
    results = ekm.push_listings([StockUpdate("MUG-RED", "55", 4, price=Decimal("13.99")),
                                 StockUpdate("TEE-M", "56/7", 2, price=Decimal("9.99")),
                                 StockUpdate("TEE-L", "56/8", 0)])
    assert all(result.accepted for result in results), [result.message for result in results]
    ekm.confirm_despatch(OrderRef("123"), Shipment("RM1", "Royal Mail", tracking_url="https://track/RM1",
                                                   channel_status="DISPATCHED"))
    ekm.cancel_order(OrderRef("124", channel_status="CANCELLED"), "out of stock")
    assert ekm.reauthorise(authorization_code="consent-1").ok

    assert [(operation, problems) for operation, problems in ekm_channel if problems] == []
    assert {operation for operation, _ in ekm_channel} == {
        "token", "ShopInformation_Get", "OrderStatuses_GetOrderStatuses", "Currency_GetCurrency", "Orders_Search",
        "Orders_GetItems", "Products_GetAll", "ProductStock_Update", "Products_Get", "Products_Update",
        "ProductVariantStock_Update", "ProductVariants_GetProductVariant", "ProductVariants_Update",
        "Orders_UpdateDeliveryTracking", "Orders_UpdateStatus"}


def test_the_connectors_fixtures_hold_to_the_contract():
    for number, page in ORDERS.items():
        assert CONTRACT.operation("Orders_Search").response_errors(200, page) == [], number
    for number, page in PRODUCTS.items():
        assert CONTRACT.operation("Products_GetAll").response_errors(200, page) == [], number
    assert CONTRACT.operation("Orders_GetItems").response_errors(200, ANSWERS["Orders_GetItems"]) == []


def valid_order(order):
    assert CONTRACT.operation("Orders_GetById").response_errors(200, {**WRAP, "data": order}) == []
    return order


def valid_items(items):
    assert CONTRACT.operation("Orders_GetItems").response_errors(200, {**WRAP, "data": items}) == []
    return items


def test_an_order_with_only_its_required_fields_maps_to_empty_values():
    order = order_from_ekm(valid_order({"id": 7, "order_date": "2026-11-29T10:00:00Z", "order_number": "10007",
                                        "order_type": ""}), [])
    assert (order.channel_order_id, order.channel_status, order.is_paid) == ("7", "", False)
    assert order.updated_at == order.created_at == datetime(2026, 11, 29, 10, tzinfo=UTC)
    assert (order.subtotal, order.shipping_cost, order.tax, order.total) == (Decimal(0), Decimal(0), None, Decimal(0))
    assert (order.buyer_name, order.buyer_email, order.shipping_address.line1, order.currency) == ("", None, "", None)


def test_an_order_with_every_nullable_field_null_maps_to_empty_values():
    nullable = {"status": None, "payment_status": None, "delivery_method": None, "shipping_company": None,
                "last_updated": None, "internal_notes": None, "delivery_tracking_number": None}
    order = order_from_ekm(valid_order({
        "id": 8, "order_date": "2026-11-29T10:00:00Z", "order_number": "10008", "order_type": "", **nullable,
        "total_cost": 10.0,
        "customer_details": {key: None for key in ("email_address", "first_name", "last_name", "telephone")},
        "shipping_address": {"first_name": "Jo", "last_name": "Bloggs", "address": "1 High Street", "town": "York",
                             "post_code": "YO1 7HH", "country": "GB", "address2": None, "county": None,
                             "telephone": None, "company": None}}), [])
    assert (order.channel_status, order.shipping_tag, order.buyer_name, order.buyer_email) == ("", "", "", None)
    address = order.shipping_address
    assert (address.name, address.line1, address.line2, address.region, address.phone) == (
        "Jo Bloggs", "1 High Street", "", "", "")
    assert order.total == Decimal("10.0")


def test_an_order_line_with_its_nullable_fields_null_maps_to_empty_values():
    (line,) = order_from_ekm(valid_order(ORDERS[1]["data"][0]), valid_items([
        {"id": 1, "order_id": 123, "order_number": "10123", "product_code": "MUG-RED", "quantity": 2,
         "item_price": 4.5, "item_name": None, "item_options": None, "item_order_note": None}])).items
    assert (line.sku, line.title, line.quantity, line.unit_price, line.tax, line.external_product_id) == (
        "MUG-RED", "", 2, Decimal("4.5"), None, "")


def test_products_and_settings_with_nullable_fields_null():
    products = [{"id": 60, "name": "Loose tea", "product_code": None, "variants": None},
                {"id": 61, "name": "Cups", "product_code": None,
                 "variants": [{"id": 1, "product_code": None}, {"id": 2, "product_code": "CUP-2"}]}]
    assert CONTRACT.operation("Products_GetAll").response_errors(200, {**WRAP, "data": products}) == []
    listings, errors = listings_from_products(products)
    assert [(listing.channel_sku, listing.external_id, listing.quantity, listing.price) for listing in listings] == [
        ("CUP-2", "61/2", None, None)]
    assert [error.record_id for error in errors] == ["60"]
    statuses = {**WRAP, "data": {"statuses": None}}
    assert CONTRACT.operation("OrderStatuses_GetOrderStatuses").response_errors(200, statuses) == []
    assert statuses_from_settings(statuses["data"]) == []
    currency = {**WRAP, "data": {"currency_code": None}}
    assert CONTRACT.operation("Currency_GetCurrency").response_errors(200, currency) == []
    assert currency_from_settings(currency["data"]) is None


def test_the_webhook_delivery_is_unsigned_and_names_the_order():
    delivery = CONTRACT.operation("webhook_delivery")
    headers = {"content-type": "application/json"}
    assert delivery.request_errors(headers=headers, body={"username": "teapots", "topic": "order.created",
                                                          "entity_id": "123"}) == []
    assert delivery.request_errors(headers=headers, body={"username": "teapots", "topic": "order.updated",
                                                          "entity_id": 123}) == []
    assert delivery.request_errors(headers=headers, body={"username": "teapots", "topic": "order.created"})
    subscribe = CONTRACT.operation("Webhooks_Post")
    assert (subscribe.method, subscribe.path) == ("POST", "/api/v2/Webhooks")
    assert {CONTRACT.operation(name).method for name in ("Webhooks_GetAll", "Webhooks_Delete")} == {"GET", "DELETE"}


# --- The sandbox sends nothing the contract does not declare ---


def test_the_sandbox_answers_with_no_field_the_contract_lacks(sandbox):
    account = make_account(sandbox, "ekm", "shop")
    token = ekm_login(account)
    created = sandbox.listings("ekm", "shop", [{"sku": "TEE", "quantity": 1}, {"sku": "TEE-M", "variant_of": "TEE"}])
    product_id, variant_id = created[1]["external_id"].split("/")
    (order_id,) = sandbox.orders("ekm", "shop", [{"items": [{"sku": "TEE-M"}, {"sku": "GONE"}]}])
    get, put = account.session.get, account.session.put
    account.session.post(f"{account.url}/api/v2/Webhooks", json={"topic": "order.updated",
                                                                  "endpoint": "https://hub.example/ekm"})
    answers = {
        "token": (200, token),
        "ShopInformation_Get": get(f"{account.url}/api/v1/settings/shop_information"),
        "Domains_GetPrimaryDomain": get(f"{account.url}/api/v1/settings/domains"),
        "Currency_GetCurrency": get(f"{account.url}/api/v1/settings/currency"),
        "OrderStatuses_GetOrderStatuses": get(f"{account.url}/api/v1/settings/orderstatuses"),
        "Orders_Search": get(f"{account.url}/api/v2/orders/search", params={"query": ""}),
        "Orders_GetAll": get(f"{account.url}/api/v2/orders"),
        "Orders_GetItems": get(f"{account.url}/api/v2/orders/{order_id}/items"),
        "Orders_UpdateDeliveryTracking": put(f"{account.url}/api/v2/orders/{order_id}/deliveryTracking",
                                             json={"delivery_tracking_number": "RM1"}),
        "Orders_UpdateStatus": put(f"{account.url}/api/v2/orders/{order_id}/status", json={"status": "DISPATCHED"}),
        "Orders_GetById": get(f"{account.url}/api/v2/orders/999"),
        "Products_GetAll": get(f"{account.url}/api/v1/products"),
        "Products_Get": get(f"{account.url}/api/v1/products/{product_id}"),
        "Products_Update": put(f"{account.url}/api/v1/products/{product_id}", json={"name": "T", "price": 3}),
        "ProductStock_Update": put(f"{account.url}/api/v1/products/{product_id}/stock", json={"stock": 2}),
        "ProductVariants_GetProductVariant": get(f"{account.url}/api/v1/products/{product_id}/variants/{variant_id}"),
        "ProductVariants_Update": put(f"{account.url}/api/v1/products/{product_id}/variants/{variant_id}",
                                      json={"price": 4}),
        "ProductVariantStock_Update": put(f"{account.url}/api/v1/products/{product_id}/variants/{variant_id}/stock",
                                          json={"stock": 1}),
        "Webhooks_GetAll": get(f"{account.url}/api/v2/Webhooks/webhooks"),
    }
    for operation_id, answer in answers.items():
        status, body = answer if isinstance(answer, tuple) else (answer.status_code, answer.json())
        assert status in (200, 404), (operation_id, body)
        operation = CONTRACT.operation(operation_id)
        assert operation.response_errors(status, body) == [], operation_id
        assert answer_undeclared(operation, status, body) == [], operation_id


def test_the_sandbox_refuses_what_the_contract_refuses_in_ekms_words(sandbox):
    account = make_account(sandbox, "ekm", "shop")
    ekm_login(account)
    (created,) = sandbox.listings("ekm", "shop", [{"sku": "MUG", "quantity": 1}])
    answer = account.session.put(f"{account.url}/api/v1/products/{created['external_id']}",
                                 json={"name": "Mug", "price": -1, "variants": []})
    assert answer.status_code == 400
    assert CONTRACT.operation("Products_Update").response_errors(400, answer.json()) == []
    assert {tuple(problem["member_names"] or ()) for problem in answer.json()["validation_result"]} == {
        ("price",), ("variants",)}
    not_json = requests.put(f"{account.url}/api/v1/products/{created['external_id']}/stock", data="stock=1",
                            headers={**account.session.headers, "Content-Type": "text/plain"}, timeout=5)
    assert not_json.status_code == 400 and not_json.json()["validation_result"]
