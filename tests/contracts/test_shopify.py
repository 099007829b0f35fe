"""The Shopify contract: every GraphQL document the connector sends holds to Shopify's 2026-04 schema and to its cost
limit, the trimmed schema is what the script makes of Shopify's own file, and what the connector sends over HTTP
holds to admin_api.json."""

import gzip
import json
from pathlib import Path

import pytest
import responses
from graphql import build_client_schema, parse, validate

from channels.connectors.base import ConnectorConfig, StockUpdate
from channels.connectors.contracts import contract_load
from channels.connectors.ratelimit import InProcessLimiter
from channels.connectors.shopify import schema
from channels.connectors.shopify.connector import (
    LISTING_PAGE,
    ORDER_LINES,
    ORDER_LINES_ALONE,
    ORDER_PAGE,
    ShopifyConnector,
)
from devtools.shopify_schema import trimmed_sdl
from tests.sandbox.test_connectors_e2e import MemoryCredentials

# ../shared/contracts beside the checkout (or beside the folder of worktrees holding it).
ROOT = Path(__file__).resolve().parents[2]
VENDOR_FILE = next((folder / "shared" / "contracts" / "shopify" / "admin_2026-04.json.gz"
                    for folder in (ROOT.parent, ROOT.parent.parent)
                    if (folder / "shared" / "contracts" / "shopify" / "admin_2026-04.json.gz").exists()), ROOT / "none")
SHOP = "https://teapots.myshopify.com"
# The largest variables each operation is sent with.
VARIABLES = {
    "Locations": {"first": 50}, "ProductVariants": {"first": LISTING_PAGE}, "InventoryLevels": {"first": 250},
    "Orders": {"first": ORDER_PAGE, "lines": ORDER_LINES}, "Order": {"lines": ORDER_LINES_ALONE},
    "WebhookSubscriptions": {"first": 100},
}


@pytest.mark.parametrize("name", sorted(schema.documents()))
def test_every_document_is_valid_against_the_2026_04_schema_and_within_the_cost_limit(name):
    parsed, problems = schema.document_errors(schema.document(name))

    assert problems == []
    cost = schema.requested_cost(parsed, schema.operation_of(parsed, name), VARIABLES.get(name, {}))
    assert cost <= schema.MAX_QUERY_COST, f"{name} would cost {cost} points"


def test_a_document_the_schema_refuses_is_reported():
    _, problems = schema.document_errors("query { shop { name planName } }")

    assert problems[0].startswith("Cannot query field 'planName' on type 'Shop'.")


def test_the_stock_mutation_sends_a_compare_value_and_an_idempotency_key():
    document = schema.document("InventorySetQuantities")

    assert "@idempotent(key: $idempotencyKey)" in document
    input_type = schema.admin_schema().type_map["InventoryQuantityInput"]
    assert "changeFromQuantity" in input_type.fields and "compareQuantity" not in input_type.fields


@pytest.mark.skipif(not VENDOR_FILE.exists(), reason="Shopify's introspection file is not on this machine")
def test_the_trimmed_schema_is_what_the_script_makes_of_shopifys_file():
    with gzip.open(VENDOR_FILE) as introspection:
        vendor = build_client_schema(json.loads(introspection.read())["data"])
    documents = (schema.CONTRACT / "operations.graphql").read_text()
    written = (schema.CONTRACT / "admin_2026-04.graphql").read_text()

    assert validate(vendor, parse(documents)) == []
    assert trimmed_sdl(vendor, documents, date="2026-12-02") == written


@responses.activate
def test_what_the_connector_sends_holds_to_the_http_contract():
    operation = contract_load("shopify").operation("graphql")
    token = contract_load("shopify").operation("token")
    sent = []

    def graphql(request):
        body = json.loads(request.body)
        sent.append(body)
        headers = {k.lower(): v for k, v in request.headers.items()}
        assert operation.request_errors(headers={"content-type": headers["content-type"],
                                                 "x-shopify-access-token": headers["x-shopify-access-token"]},
                                        body=body) == []
        assert schema.document_errors(body["query"])[1] == []
        answer = {"data": {"inventorySetQuantities": {"inventoryAdjustmentGroup": {"id": "gid://shopify/"
                                                      "InventoryAdjustmentGroup/1"}, "userErrors": []}},
                  "extensions": {"cost": {"requestedQueryCost": 12, "actualQueryCost": 12, "throttleStatus": {
                      "maximumAvailable": 1000, "currentlyAvailable": 988, "restoreRate": 100}}}}
        assert operation.response_errors(200, answer) == []
        return 200, {}, json.dumps(answer)

    def grant(request):
        from urllib.parse import parse_qsl

        assert token.request_errors(headers={"content-type": request.headers["Content-Type"]},
                                    form=dict(parse_qsl(request.body))) == []
        return 200, {}, json.dumps({"access_token": "shpat_1", "scope": "write_inventory", "expires_in": 86399})

    responses.add_callback(responses.POST, f"{SHOP}/admin/oauth/access_token", callback=grant)
    responses.add_callback(responses.POST, f"{SHOP}{schema.GRAPHQL_PATH}", callback=graphql)
    config = ConnectorConfig(channel_id=7, kind="shopify", name="Teapots", api_base_url=SHOP, auth_base_url=SHOP,
                             allowed_hosts=frozenset({"*.myshopify.com"}), extra={"channel_location_id": "11"})
    connector = ShopifyConnector(config, MemoryCredentials({"client_id": "id", "client_secret": "secret"}),
                                 InProcessLimiter())

    results = connector.push_listings([StockUpdate("MUG", "1/2/3", 4, channel_quantity=6)])

    assert results[0].accepted
    assert sent[0]["variables"]["input"]["quantities"] == [{
        "inventoryItemId": "gid://shopify/InventoryItem/3", "locationId": "gid://shopify/Location/11", "quantity": 4,
        "changeFromQuantity": 6}]
    assert sent[0]["variables"]["idempotencyKey"]
