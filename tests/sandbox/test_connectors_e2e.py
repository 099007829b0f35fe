"""Each connector against a running sandbox: the real clients, over HTTP, through faults."""

import threading
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from channels.connectors import connector_class
from channels.connectors.base import ConnectorConfig, OrderLineRef, OrderRef, Shipment, StockUpdate
from channels.connectors.ratelimit import InProcessLimiter
from sandbox.control import RAKUTEN_IMPORT_PROFILE_ID, default_credentials

SINCE = datetime(2026, 1, 1, tzinfo=UTC)


class MemoryCredentials:
    """A CredentialStore in memory: what the connector saved is what it loads next."""

    def __init__(self, values):
        self.values = dict(values)
        self._lock = threading.Lock()

    def load(self):
        return dict(self.values)

    def save(self, credentials):
        self.values = {**self.values, **credentials}

    @contextmanager
    def locked(self):
        with self._lock:
            yield


def connector_for(sandbox, kind, name="main"):
    sandbox.account(kind, name)
    credentials = default_credentials(kind, name)
    base_url = sandbox.channel_url(kind, name)
    described = sandbox._call("GET", f"/{kind}/{name}")
    seller_id = credentials["login"] if kind == "rakuten" else described["seller_id"]
    config = ConnectorConfig(channel_id=1, kind=kind, name=name, api_base_url=base_url, auth_base_url=base_url,
                             seller_id=seller_id, marketplace_id=described["marketplace_id"],
                             currency="EUR" if kind == "rakuten" else "GBP", allowed_hosts=frozenset({"127.0.0.1"}),
                             extra={"import_profile_id": RAKUTEN_IMPORT_PROFILE_ID} if kind == "rakuten" else {})
    stored = {"token": credentials["token"]} if kind == "rakuten" else credentials
    connector = connector_class(kind)(config, MemoryCredentials(stored), InProcessLimiter())
    # Feed, report and import polls wait seconds between polls on the real channel, not here.
    connector.sleep = lambda seconds: None
    return connector


def all_orders(connector, since=SINCE):
    orders, errors = [], []
    for page in connector.fetch_orders(since):
        orders += page.orders
        errors += page.errors
    return orders, errors


def all_listings(connector):
    listings = []
    for page in connector.fetch_listings():
        listings += page.listings
    return listings


def order_ref(order):
    return OrderRef(order.channel_order_id, tuple(OrderLineRef(item.line_id, item.sku, item.quantity)
                                                  for item in order.items))


KINDS = ["amazon", "ekm", "rakuten"]


@pytest.mark.parametrize("kind", KINDS)
def test_test_connection(sandbox, kind):
    assert connector_for(sandbox, kind).test_connection().ok


@pytest.mark.parametrize("kind", KINDS)
def test_fetch_orders_reads_every_page(sandbox, kind):
    connector = connector_for(sandbox, kind)
    sandbox.listings(kind, "main", [{"sku": "A", "quantity": 10, "price": "12.50"}, {"sku": "B", "quantity": 5}])
    created = sandbox.orders(kind, "main", generate=45 if kind == "ekm" else 130, skus=["A", "B"])
    orders, errors = all_orders(connector)
    assert errors == []
    assert sorted(order.channel_order_id for order in orders) == sorted(created)
    assert all(order.items and order.is_paid and not order.is_cancelled for order in orders)
    assert {item.sku for order in orders for item in order.items} <= {"A", "B"}


@pytest.mark.parametrize("kind", KINDS)
def test_fetch_orders_waits_out_a_429_with_retry_after(sandbox, kind):
    connector = connector_for(sandbox, kind)
    sandbox.listings(kind, "main", [{"sku": "A", "quantity": 10}])
    created = sandbox.orders(kind, "main", generate=3, skus=["A"])
    path = {"amazon": "/orders/2026-01-01/orders", "ekm": "/orders/search", "rakuten": "getcurrentsales"}[kind]
    sandbox.faults(kind, "main", [{"path": path, "type": "429", "retry_after": 1}])
    orders, _ = all_orders(connector)
    assert sorted(order.channel_order_id for order in orders) == sorted(created)
    assert sandbox._call("GET", f"/{kind}/main/faults") == []


@pytest.mark.parametrize("kind", ["amazon", "ekm"])
def test_token_expiring_mid_download_is_refreshed(sandbox, kind):
    connector = connector_for(sandbox, kind)
    sandbox.listings(kind, "main", [{"sku": "A", "quantity": 10}])
    created = sandbox.orders(kind, "main", generate=130 if kind == "amazon" else 30, skus=["A"])
    second_page = "paginationToken=" if kind == "amazon" else "page=2"
    sandbox.faults(kind, "main", [{"path": second_page, "type": "expire_token"}])
    orders, errors = all_orders(connector)
    assert errors == []
    assert sorted(order.channel_order_id for order in orders) == sorted(created)
    assert sandbox.received(kind, "main")["refresh_tokens_used"] == 2


@pytest.mark.parametrize("kind", KINDS)
def test_a_malformed_order_among_good_ones_is_a_record_error(sandbox, kind):
    connector = connector_for(sandbox, kind)
    sandbox.listings(kind, "main", [{"sku": "A", "quantity": 10}])
    created = sandbox.orders(kind, "main", [{"items": [{"sku": "A", "quantity": 1}]} for _ in range(3)])
    path = {"amazon": "/orders/2026-01-01/orders", "ekm": "/orders/search", "rakuten": "getcurrentsales"}[kind]
    sandbox.faults(kind, "main", [{"path": path, "type": "malformed", "index": 1, "corrupt": "quantity"}])
    orders, errors = all_orders(connector)
    assert len(orders) == 2 and len(errors) == 1
    assert {order.channel_order_id for order in orders} == {created[0], created[2]}


@pytest.mark.parametrize("kind", KINDS)
def test_fetch_listings(sandbox, kind):
    connector = connector_for(sandbox, kind)
    sandbox.listings(kind, "main", [{"sku": "A", "title": "Mug", "quantity": 3, "price": "4.50"},
                                    {"sku": "B", "quantity": 0, "price": "2.00"}])
    listings = {listing.channel_sku: listing for listing in all_listings(connector)}
    assert set(listings) == {"A", "B"}
    assert listings["A"].quantity == 3 and listings["A"].price == Decimal("4.50")
    expected_ids = {listing["sku"]: listing["external_id"] for listing in sandbox.listings(kind, "main")}
    assert {sku: listing.external_id for sku, listing in listings.items()} == expected_ids


def test_fetch_ekm_listings_with_variants(sandbox):
    connector = connector_for(sandbox, "ekm")
    sandbox.listings("ekm", "main", [{"sku": "TEE", "quantity": 0}, {"sku": "TEE-M", "variant_of": "TEE",
                                                                      "quantity": 4}])
    listings = {listing.channel_sku: listing for listing in all_listings(connector)}
    expected = {listing["sku"]: listing["external_id"] for listing in sandbox.listings("ekm", "main")}
    assert listings["TEE-M"].external_id == expected["TEE-M"] and "/" in expected["TEE-M"]


@pytest.mark.parametrize(("kind", "count"), [("amazon", 3), ("amazon", 25), ("ekm", 3), ("rakuten", 3)])
def test_push_listings_reaches_the_channel(sandbox, kind, count):
    connector = connector_for(sandbox, kind)
    skus = [f"S{index:02d}" for index in range(count)]
    created = sandbox.listings(kind, "main", [{"sku": sku, "quantity": 1, "price": "5.00"} for sku in skus])
    updates = [StockUpdate(listing["sku"], listing["external_id"], quantity=index + 2,
                           latency_days=2 if kind == "amazon" else None,
                           price=Decimal("6.50") if index == 0 else None, currency="GBP")
               for index, listing in enumerate(created)]
    updates.append(StockUpdate("GHOST", "999999", quantity=1))
    results = {result.channel_sku: result for result in connector.push_listings(updates)}
    assert all(results[sku].accepted for sku in skus), [results[sku].message for sku in skus]
    assert not results["GHOST"].accepted
    stock = sandbox.received(kind, "main")["stock"]
    assert {sku: stock[sku]["quantity"] for sku in skus} == {sku: index + 2 for index, sku in enumerate(skus)}
    assert stock["S00"]["price"] == "6.50"


@pytest.mark.parametrize("kind", KINDS)
def test_confirm_despatch(sandbox, kind):
    connector = connector_for(sandbox, kind)
    sandbox.listings(kind, "main", [{"sku": "A", "quantity": 10}])
    sandbox.orders(kind, "main", [{"items": [{"sku": "A", "quantity": 2}]}])
    (order,), _ = all_orders(connector)
    connector.confirm_despatch(order_ref(order), Shipment(tracking_number="TRK1", carrier="Royal Mail",
                                                          shipping_method="Standard",
                                                          tracking_url="https://track/TRK1"))
    shipments = sandbox.received(kind, "main")["shipments"]
    # Rakuten takes tracking item by item, and each of its items is one unit: two units, two shipments.
    assert len(shipments) == (2 if kind == "rakuten" else 1)
    shipment = shipments[0]
    assert (shipment["order_id"], shipment["tracking_number"], shipment["carrier"]) == (
        order.channel_order_id, "TRK1", "Royal Mail")
    assert [item["sku"] for item in shipment["items"]] == ["A"]


@pytest.mark.parametrize("kind", KINDS)
def test_cancel_order(sandbox, kind):
    connector = connector_for(sandbox, kind)
    sandbox.listings(kind, "main", [{"sku": "A", "quantity": 10}])
    sandbox.orders(kind, "main", [{"items": [{"sku": "A", "quantity": 1}]}])
    (order,), _ = all_orders(connector)
    connector.cancel_order(order_ref(order), "NoInventory")
    (cancellation,) = sandbox.received(kind, "main")["cancellations"]
    assert cancellation["order_id"] == order.channel_order_id
    (cancelled,), _ = all_orders(connector)
    # EKM has no built-in cancelled status: the hub's status mapping reads the shop's own one.
    assert cancelled.channel_status == "CANCELLED" if kind == "ekm" else cancelled.is_cancelled


@pytest.mark.parametrize("kind", ["amazon", "ekm"])
def test_reauthorise_with_and_without_a_code(sandbox, kind):
    connector = connector_for(sandbox, kind)
    first_refresh = connector.credentials.load()["refresh_token"]
    assert connector.reauthorise().ok
    assert connector.reauthorise(authorization_code="consent-code-1").ok
    assert connector.credentials.load()["refresh_token"] != first_refresh
    assert connector.test_connection().ok


def test_rakuten_reauthorise_with_a_new_token(sandbox):
    connector = connector_for(sandbox, "rakuten")
    assert connector.reauthorise().ok
    sandbox.account("rakuten", "main", credentials={"login": "main-login", "token": "rotated"})
    assert connector.reauthorise(authorization_code="rotated").ok
    assert connector.credentials.load()["token"] == "rotated"
    assert connector.test_connection().ok
