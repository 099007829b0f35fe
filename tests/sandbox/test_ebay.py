"""The eBay connector against the sandbox's eBay: OAuth, listings, the 25-SKU bulk push with its 207, the daily
revision cap, orders by lastmodifieddate, despatch."""

from datetime import UTC, datetime
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from channels.connectors.base import (
    ChannelAuthError,
    ChannelRateLimited,
    ChannelRejected,
    ConnectorConfig,
    OrderLineRef,
    OrderRef,
    Shipment,
    StockUpdate,
)
from channels.connectors.ebay.connector import EbayConnector
from channels.connectors.ebay.mapper import NOT_MANAGEABLE
from channels.connectors.ratelimit import InProcessLimiter
from sandbox.control import default_credentials
from tests.sandbox.test_connectors_e2e import MemoryCredentials, all_listings, all_orders

RU_NAME = "Stockline-Stocklin-PRD-abc"
CALLBACK = "https://hub.example/admin/channels/oauth/callback/"


def connector_for(sandbox, *, credentials=None, **settings):
    """A sandbox eBay account with these settings, and the connector the hub would build for it."""
    credentials = {**default_credentials("ebay", "main"), **(credentials or {})}
    sandbox.account("ebay", "main", credentials=credentials, marketplace_id="EBAY_GB", **settings)
    url = sandbox.channel_url("ebay", "main")
    config = ConnectorConfig(channel_id=1, kind="ebay", name="main", api_base_url=url, auth_base_url=url,
                             marketplace_id="EBAY_GB", allowed_hosts=frozenset({"127.0.0.1"}))
    stored = {key: value for key, value in credentials.items() if key != "accept_url"}
    return EbayConnector(config, MemoryCredentials(stored), InProcessLimiter())


@pytest.fixture
def ebay(sandbox):
    return sandbox, connector_for(sandbox)


def listed(sandbox, skus, quantity=5):
    sandbox.listings("ebay", "main", [{"sku": sku, "title": f"Item {sku}", "quantity": quantity, "price": "9.99"}
                                      for sku in skus])


def updates_for(connector, quantities, price=None):
    by_sku = {listing.channel_sku: listing for listing in all_listings(connector)}
    return [StockUpdate(sku, by_sku[sku].external_id, quantity, price=price, currency="GBP")
            for sku, quantity in quantities.items()]


def test_test_refreshes_the_user_token_with_basic_client_auth(ebay):
    sandbox, connector = ebay
    result = connector.test_connection()

    assert result.ok and "EBAY_GB" in result.message
    assert connector.credentials.values["access_token"].startswith("v^1.1")
    # The refresh token is reusable: eBay issues no new one on a refresh.
    assert connector.credentials.values["refresh_token"] == "ebay-main-refresh-0"


def test_a_wrong_cert_id_is_an_auth_error(sandbox):
    connector = connector_for(sandbox)
    connector.credentials.values["client_secret"] = "not-the-cert-id"

    with pytest.raises(ChannelAuthError):
        connector.test_connection()


def test_an_expired_access_token_is_renewed_once(ebay):
    sandbox, connector = ebay
    connector.test_connection()
    first = connector.credentials.values["access_token"]
    sandbox.faults("ebay", "main", [{"type": "expire_token", "path": "inventory_item"}])

    assert connector.test_connection().ok
    assert connector.credentials.values["access_token"] != first


def test_consent_page_and_code_exchange_use_the_runame(sandbox):
    connector = connector_for(sandbox, credentials={"ru_name": RU_NAME, "accept_url": CALLBACK})

    page = connector.consent_url("https://hub.example/ignored/", "signed-state")
    query = parse_qs(urlsplit(page).query)
    assert query["redirect_uri"] == [RU_NAME]
    assert "https://api.ebay.com/oauth/api_scope/sell.inventory" in query["scope"][0].split()
    back = requests.get(page, allow_redirects=False, timeout=5).headers["Location"]
    callback = parse_qs(urlsplit(back).query)
    assert back.startswith(CALLBACK)
    assert callback["state"] == ["signed-state"]

    result = connector.reauthorise(authorization_code=callback["code"][0], redirect_uri="https://hub.example/cb/")

    assert result.ok
    assert connector.credentials.values["refresh_token"].startswith("v^1.1#i^1#r^1#")
    assert connector.test_connection().ok


def test_consent_page_needs_the_runame(ebay):
    _, connector = ebay
    assert connector.consent_url("https://hub.example/cb/", "state") is None


def test_listings_page_with_offer_listing_and_price(ebay):
    sandbox, connector = ebay
    listed(sandbox, [f"SKU-{n:03d}" for n in range(130)])
    sandbox.listings("ebay", "main", [{"sku": "ENDED", "quantity": 0, "price": "4.50", "live": False}])

    pages = list(connector.fetch_listings())
    listings = {listing.channel_sku: listing for page in pages for listing in page.listings}

    assert [page.done for page in pages] == [100, 131]
    assert pages[-1].total == 131
    first = listings["SKU-000"]
    listing_id, offer_ids = first.external_id.split("/")
    assert listing_id.startswith("11") and offer_ids.startswith("5")
    assert (first.quantity, first.price, first.is_active) == (5, Decimal("9.99"), True)
    assert listings["ENDED"].is_active is False and listings["ENDED"].external_id == ""


def test_trading_api_listings_are_reported_not_skipped(sandbox):
    connector = connector_for(sandbox, trading_listings=[{"sku": "OLD-LAMP", "listing_id": "123456789012"}])
    listed(sandbox, ["MUG"])
    sandbox.orders("ebay", "main", [{"items": [{"sku": "OLD-LAMP", "quantity": 1, "price": "15.00"},
                                               {"sku": "MUG", "quantity": 1}]}])

    pages = list(connector.fetch_listings())
    errors = [error for page in pages for error in page.errors]

    assert [listing.channel_sku for page in pages for listing in page.listings] == ["MUG"]
    assert [(error.record_id, NOT_MANAGEABLE in error.reason, "123456789012" in error.reason)
            for error in errors] == [("OLD-LAMP", True, True)]


def test_push_goes_in_calls_of_25_and_sets_stock_and_price(ebay):
    sandbox, connector = ebay
    skus = [f"SKU-{n:02d}" for n in range(60)]
    listed(sandbox, skus)

    results = connector.push_listings(updates_for(connector, {sku: 7 for sku in skus}, price=Decimal("12.5")))

    assert all(result.accepted for result in results) and len(results) == 60
    received = sandbox.received("ebay", "main")
    assert received["calls"]["bulkUpdatePriceQuantity"] == 3
    assert received["stock"]["SKU-42"]["quantity"] == 7
    assert received["stock"]["SKU-42"]["price"] == "12.50"


def test_a_207_refuses_only_the_failing_sku(ebay):
    sandbox, connector = ebay
    listed(sandbox, ["MUG", "LAMP"])
    updates = updates_for(connector, {"MUG": 3, "LAMP": 2})
    # The lamp's offer was withdrawn on eBay since the listings were downloaded.
    sandbox.listings("ebay", "main", [{"sku": "LAMP", "quantity": 1, "live": False}])

    results = {result.channel_sku: result for result in connector.push_listings(updates)}

    assert results["MUG"].accepted
    assert not results["LAMP"].accepted and "25725" in results["LAMP"].message
    assert sandbox.received("ebay", "main")["stock"]["MUG"]["quantity"] == 3


def test_the_daily_revision_cap_refuses_the_listing(sandbox):
    connector = connector_for(sandbox, revisions_per_day=2)
    listed(sandbox, ["MUG"])
    updates = updates_for(connector, {"MUG": 3})

    outcomes = [connector.push_listings(updates)[0] for _ in range(3)]

    assert [outcome.accepted for outcome in outcomes] == [True, True, False]
    assert "revised 2 times today" in outcomes[2].message


def test_a_spent_quota_is_a_429(sandbox):
    connector = connector_for(sandbox, rate_limits={"fulfillment": {"rate": 0.0001, "burst": 1}})
    connector.client.apis["fulfillment"].max_wait = 0
    all_orders(connector)

    with pytest.raises(ChannelRateLimited):
        all_orders(connector)


def test_orders_by_last_modified_date_with_paging(ebay):
    sandbox, connector = ebay
    listed(sandbox, ["MUG"])
    ids = sandbox.orders("ebay", "main", [
        {"items": [{"sku": "MUG", "quantity": 2, "price": "9.99"}], "created_at": f"2026-03-01T10:{n:02d}:00Z"}
        for n in range(3)] + [{"items": [{"sku": "MUG"}], "created_at": "2025-06-01T10:00:00Z"},
                               {"items": [{"sku": "MUG"}], "paid": False}])

    orders, errors = all_orders(connector, since=datetime(2026, 1, 1, tzinfo=UTC))

    assert errors == []
    assert sorted(order.channel_order_id for order in orders) == sorted(ids[:3] + ids[4:])
    order = next(order for order in orders if order.channel_order_id == ids[0])
    assert (order.channel_status, order.is_paid, order.currency) == ("NOT_STARTED", True, "GBP")
    assert order.items[0].quantity == 2 and order.items[0].unit_price == Decimal("9.99")
    assert order.shipping_tag == "UK_RoyalMailSecondClassStandard"
    assert order.total == Decimal("22.83") and order.tax == Decimal("3.81")
    unpaid = next(order for order in orders if order.channel_order_id == ids[4])
    assert (unpaid.channel_status, unpaid.is_paid) == ("PENDING", False)


def test_a_malformed_order_is_a_record_error_and_the_rest_arrive(ebay):
    sandbox, connector = ebay
    listed(sandbox, ["MUG"])
    ids = sandbox.orders("ebay", "main", [{"items": [{"sku": "MUG"}]}, {"items": [{"sku": "MUG"}]}])
    sandbox.faults("ebay", "main", [{"type": "malformed", "path": "order", "index": 1, "corrupt": "quantity"}])

    orders, errors = all_orders(connector)

    assert [order.channel_order_id for order in orders] == [ids[0]]
    assert [error.record_id for error in errors] == [ids[1]]


def test_despatch_sends_line_items_carrier_and_tracking(ebay):
    sandbox, connector = ebay
    listed(sandbox, ["MUG"])
    sandbox.orders("ebay", "main", [{"items": [{"sku": "MUG", "quantity": 2}]}])
    order = all_orders(connector)[0][0]
    ref = OrderRef(order.channel_order_id, tuple(OrderLineRef(i.line_id, i.sku, i.quantity) for i in order.items))

    connector.confirm_despatch(ref, Shipment(tracking_number="RM123456785GB", carrier="Royal Mail",
                                             shipped_at=datetime(2026, 12, 2, 9, 30, tzinfo=UTC)))

    shipment = sandbox.received("ebay", "main")["shipments"][0]
    assert (shipment["carrier"], shipment["tracking_number"]) == ("RoyalMail", "RM123456785GB")
    assert shipment["shipped_date"] == "2026-12-02T09:30:00.000Z"
    assert shipment["items"] == [{"line_id": order.items[0].line_id, "sku": "MUG", "quantity": 2}]
    assert connector.order_get([order.channel_order_id]).orders[0].channel_status == "FULFILLED"
    with pytest.raises(ChannelRejected):
        connector.confirm_despatch(ref, Shipment(tracking_number="RM123456785GB", carrier="Royal Mail"))


def test_cancellation_says_the_seller_cancels_in_seller_hub(ebay):
    _, connector = ebay
    with pytest.raises(ChannelRejected, match="Seller Hub"):
        connector.cancel_order(OrderRef("12-34567-00001"), "out of stock")
