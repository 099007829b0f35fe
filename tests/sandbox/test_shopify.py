"""Shopify's GraphQL Admin API in the sandbox: the client credentials token, documents validated against the 2026-04
schema, Shopify's cost-based throttling, and inventorySetQuantities' compare-and-set and idempotency keys."""

import pytest
import requests

from channels.connectors.shopify.schema import GRAPHQL_PATH, document
from sandbox.control import default_credentials
from tests.sandbox.conftest import make_account

LOCATION = "gid://shopify/Location/1"


def login(account) -> str:
    credentials = account.credentials
    answer = account.session.post(f"{account.url}/admin/oauth/access_token", data={
        "grant_type": "client_credentials", "client_id": credentials["client_id"],
        "client_secret": credentials["client_secret"]}, timeout=5)
    answer.raise_for_status()
    token = answer.json()["access_token"]
    account.session.headers["X-Shopify-Access-Token"] = token
    return token


@pytest.fixture
def shop(sandbox):
    account = make_account(sandbox, "shopify", "teapots")
    sandbox.listings("shopify", "teapots", [{"sku": "MUG", "quantity": 5}, {"sku": "LAMP", "quantity": 2}])
    login(account)
    return account


def gql(account, query, variables=None, name=None):
    answer = account.session.post(f"{account.url}{GRAPHQL_PATH}", json={
        "query": query, "variables": variables or {}, "operationName": name}, timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()


def run(account, name, **variables):
    return gql(account, document(name), variables, name)


def set_quantities(account, quantities, key="push-1"):
    return run(account, "InventorySetQuantities", idempotencyKey=key, input={
        "name": "available", "reason": "correction",
        "quantities": [{"inventoryItemId": f"gid://shopify/InventoryItem/{item}", "locationId": LOCATION,
                        "quantity": quantity, "changeFromQuantity": seen} for item, quantity, seen in quantities]})


def quantities(sandbox):
    return {sku: row["quantity"] for sku, row in sandbox.received("shopify", "teapots")["stock"].items()}


def test_the_token_is_a_24_hour_client_credentials_grant(sandbox):
    account = make_account(sandbox, "shopify", "teapots")
    answer = account.session.post(f"{account.url}/admin/oauth/access_token", data={
        "grant_type": "client_credentials", **{k: account.credentials[k] for k in ("client_id", "client_secret")}})

    assert answer.status_code == 200
    assert answer.json()["expires_in"] == 86399 and "refresh_token" not in answer.json()


def test_a_wrong_client_secret_gets_no_token(sandbox):
    account = make_account(sandbox, "shopify", "teapots")
    answer = account.session.post(f"{account.url}/admin/oauth/access_token", data={
        "grant_type": "client_credentials", "client_id": account.credentials["client_id"], "client_secret": "guess"})

    assert answer.status_code == 400 and answer.json()["error"] == "invalid_client"


def test_a_call_without_a_valid_token_is_refused_as_shopify_does(sandbox):
    account = make_account(sandbox, "shopify", "teapots")
    answer = requests.post(f"{account.url}{GRAPHQL_PATH}", json={"query": "{ shop { name } }"},
                           headers={"X-Shopify-Access-Token": "shpat_forged"}, timeout=5)

    assert answer.status_code == 401
    assert answer.json()["errors"].startswith("[API] Invalid API key or access token")


def test_a_document_outside_the_schema_is_answered_with_its_errors(shop):
    answer = gql(shop, "{ shop { name planName } }")

    assert "data" not in answer
    assert answer["errors"][0]["message"].startswith("Cannot query field 'planName' on type 'Shop'.")


def test_the_answer_has_the_schemas_shape_and_its_cost(shop):
    answer = run(shop, "ShopInformation")

    assert answer["data"]["shop"]["myshopifyDomain"] == "teapots.myshopify.com"
    assert answer["data"]["shop"]["plan"] == {"displayName": "Basic", "partnerDevelopment": False,
                                              "shopifyPlus": False}
    cost = answer["extensions"]["cost"]
    assert cost["requestedQueryCost"] == 2 and cost["throttleStatus"]["maximumAvailable"] == 1000


def test_a_connection_costs_its_page_size_until_it_answers_fewer(shop):
    answer = run(shop, "ProductVariants", first=100, locationId=LOCATION)

    cost = answer["extensions"]["cost"]
    assert cost["requestedQueryCost"] > 500
    assert cost["actualQueryCost"] < 30, "two variants were answered, not a hundred"


def test_a_request_the_bucket_cannot_pay_for_is_throttled(sandbox, shop):
    sandbox.rate_limits("shopify", "teapots", {"points": {"rate": 0.1, "burst": 5}})

    answers = [run(shop, "ShopInformation") for _ in range(3)]

    assert ["errors" in answer for answer in answers] == [False, False, True]
    assert answers[2]["errors"][0] == {"message": "Throttled", "extensions": {
        "code": "THROTTLED", "documentation": "https://shopify.dev/api/usage/limits"}}
    assert "data" not in answers[2]
    assert answers[2]["extensions"]["cost"]["throttleStatus"]["currentlyAvailable"] == 1


def test_a_compare_and_set_on_a_stale_value_applies_nothing(sandbox, shop):
    answer = set_quantities(shop, [(1, 3, 5), (2, 9, 7)])

    errors = answer["data"]["inventorySetQuantities"]["userErrors"]
    assert errors == [{"code": "CHANGE_FROM_QUANTITY_STALE", "message": "The specified compare quantity is stale.",
                       "field": ["input", "quantities", "1", "changeFromQuantity"]}]
    assert quantities(sandbox) == {}, "nothing of the input was applied, the good quantity neither"


def test_a_retried_push_with_the_same_key_is_applied_once(sandbox, shop):
    first = set_quantities(shop, [(1, 3, 5)], key="push-7")
    sandbox.listings("shopify", "teapots", [{"sku": "MUG", "quantity": 8}])

    again = set_quantities(shop, [(1, 3, 5)], key="push-7")

    assert again["data"] == first["data"]
    assert sandbox.received("shopify", "teapots")["stock"]["MUG"]["updates"] == 1
    assert [row["quantity"] for row in sandbox.listings("shopify", "teapots") if row["sku"] == "MUG"] == [8]


def test_a_key_reused_with_other_input_is_refused(shop):
    set_quantities(shop, [(1, 3, 5)], key="push-8")

    answer = set_quantities(shop, [(1, 2, 3)], key="push-8")

    assert answer["data"]["inventorySetQuantities"]["userErrors"][0]["code"] == "IDEMPOTENCY_KEY_PARAMETER_MISMATCH"


def test_the_stock_mutation_without_an_idempotency_key_is_refused_from_2026_04(sandbox, shop):
    query = document("InventorySetQuantities").replace(" @idempotent(key: $idempotencyKey)", "").replace(
        ", $idempotencyKey: String!", "")

    answer = gql(shop, query, {"input": {"name": "available", "reason": "correction", "quantities": [{
        "inventoryItemId": "gid://shopify/InventoryItem/1", "locationId": LOCATION, "quantity": 1,
        "changeFromQuantity": None}]}}, "InventorySetQuantities")

    assert answer["data"]["inventorySetQuantities"] is None
    assert "@idempotent directive is required" in answer["errors"][0]["message"]
    assert quantities(sandbox) == {}


def test_a_quantity_must_say_what_it_changes_from_even_if_null(sandbox, shop):
    answer = run(shop, "InventorySetQuantities", idempotencyKey="k", input={
        "name": "available", "reason": "correction",
        "quantities": [{"inventoryItemId": "gid://shopify/InventoryItem/1", "locationId": LOCATION, "quantity": 1}]})

    assert answer["data"]["inventorySetQuantities"]["userErrors"][0]["field"][-1] == "changeFromQuantity"


def test_default_credentials_hold_no_refresh_token():
    assert set(default_credentials("shopify", "x")) == {"client_id", "client_secret"}
