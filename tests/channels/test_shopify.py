"""A Shopify channel in the hub, against the sandbox's Admin API: the allow-list, Test, listings with drift, stock by
compare-and-set, orders by download and by signed webhook, despatch and cancellation, and an order on Shopify
reaching Amazon, EKM and Rakuten. Tasks run inline (tests/conftest.py)."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core.exceptions import ValidationError

from channels.connectors.base import ChannelHostRefused
from channels.models import Channel, ChannelListing, SyncRun
from channels.sync.connections import channel_connector, channel_test
from channels.sync.inventory_push import inventory_push
from channels.sync.listings_download import listings_download
from channels.sync.order_download import orders_download
from channels.sync.order_hints import channel_webhook_token, channel_webhooks_follow
from inventory.models import StockLevel
from inventory.services import stock_level_adjust
from orders.models import Order
from orders.services import order_cancel, order_process
from sandbox.control import default_credentials
from tests.channels.test_sync_e2e import connect
from tests.inventory.factories import LocationFactory, StockItemFactory, StockLevelFactory
from tests.orders.factories import PostalServiceFactory

pytestmark = pytest.mark.django_db

SHOP = "teapots"


def shopify_channel(sandbox, **settings) -> Channel:
    credentials = default_credentials("shopify", SHOP)
    sandbox.account("shopify", SHOP, credentials=credentials, rate_limits={"profile": "off"})
    return Channel.objects.create(**{
        **Channel.defaults_for("shopify"), "name": "Teapots Shopify", "kind": "shopify",
        "api_base_url": sandbox.channel_url("shopify", SHOP), "credentials": credentials,
        "send_cancellation_notes": True, **settings,
    })


def on_shopify(sandbox, sku) -> int:
    return next(row["quantity"] for row in sandbox.listings("shopify", SHOP) if row["sku"] == sku)


@pytest.fixture
def warehouse():
    warehouse = LocationFactory(name="Main warehouse", is_default=True)
    for sku, quantity in (("MUG", 10), ("LAMP", 4)):
        StockLevelFactory(stock_item=StockItemFactory(sku=sku), location=warehouse, quantity=quantity)
    return warehouse


@pytest.fixture
def shopify(sandbox, warehouse):
    channel = shopify_channel(sandbox)
    sandbox.listings("shopify", SHOP, [{"sku": "MUG", "title": "Mug", "quantity": 3, "price": "9.99"},
                                       {"sku": "LAMP", "title": "Lamp", "quantity": 1, "price": "19.99"}])
    listings_download(channel_id=channel.pk)
    inventory_push(channel_id=channel.pk, full=True)
    return channel


def test_credentials_go_only_to_a_shop_under_myshopify_com(settings):
    settings.CHANNEL_EXTRA_ALLOWED_HOSTS = []
    channel = Channel(name="Shop", kind="shopify", api_base_url="https://teapots.myshopify.com")
    channel.clean()

    for url in ("https://teapots.example.com", "https://myshopify.com", "https://a.b.myshopify.com",
                "http://teapots.myshopify.com"):
        channel.api_base_url = url
        with pytest.raises(ValidationError):
            channel.clean()


def test_a_channel_location_that_is_not_a_location_number_is_refused_where_it_is_typed():
    channel = Channel(name="Shop", kind="shopify", api_base_url="https://teapots.myshopify.com",
                      channel_location_id="Main warehouse")

    with pytest.raises(ValidationError) as refused:
        channel.full_clean(exclude=["credentials"])

    assert refused.value.message_dict["channel_location_id"] == [
        "A location number, digits only: Location Mapping lists the shop's locations to choose from."]


def test_the_client_refuses_a_host_outside_the_allow_list(sandbox, settings):
    channel = shopify_channel(sandbox, api_base_url="https://teapots.myshopify.com.evil.example")
    settings.CHANNEL_EXTRA_ALLOWED_HOSTS = []

    with pytest.raises(ChannelHostRefused):
        channel_connector(channel=channel).client.query("ShopInformation")


def test_test_reads_the_shops_name_and_plan(sandbox, warehouse):
    channel = shopify_channel(sandbox)

    result = channel_test(channel_id=channel.pk)

    assert result.ok and "Connected to Shopify shop teapots (Basic plan)" in result.message
    assert "access_token" in Channel.objects.get(pk=channel.pk).credentials, "the token is kept, sealed"


def test_listings_are_linked_by_sku_with_the_quantity_at_the_location(sandbox, warehouse):
    channel = shopify_channel(sandbox)
    sandbox.listings("shopify", SHOP, [{"sku": "MUG", "quantity": 3}, {"sku": "TEAPOT", "quantity": 1}])

    listings_download(channel_id=channel.pk)

    listings = {listing.channel_sku: listing for listing in ChannelListing.objects.filter(channel=channel)}
    assert {sku: (listing.channel_quantity, listing.stock_item is not None) for sku, listing in listings.items()} == {
        "MUG": (3, True), "TEAPOT": (1, False)}
    channel.refresh_from_db()
    assert (channel.listing_download_done, channel.listing_download_total) == (2, 2)
    assert not channel.listing_download_in_progress


def test_the_first_push_sets_the_hubs_quantity_after_comparing_with_what_shopify_showed(sandbox, shopify):
    assert (on_shopify(sandbox, "MUG"), on_shopify(sandbox, "LAMP")) == (10, 4)


def test_a_quantity_edited_on_shopify_is_recorded_as_drift_and_overwritten(
    sandbox, shopify, django_capture_on_commit_callbacks
):
    sandbox.listings("shopify", SHOP, [{"sku": "MUG", "quantity": 25}])
    level = StockLevel.objects.get(stock_item__sku="MUG")

    with django_capture_on_commit_callbacks(execute=True):
        stock_level_adjust(stock_item_id=level.stock_item_id, location_id=level.location_id, delta=-1,
                           reason="count", reference="recount")

    assert on_shopify(sandbox, "MUG") == 9, "the hub overwrites, as seed 003 says"
    mug = ChannelListing.objects.get(channel=shopify, channel_sku="MUG")
    assert mug.channel_quantity == 25, "what Shopify held instead is kept as the listing's drift"
    assert sandbox.received("shopify", SHOP)["calls"]["graphql:InventoryLevels"] == 1


def test_an_order_on_shopify_reaches_amazon_ekm_and_rakuten(sandbox, shopify, django_capture_on_commit_callbacks):
    others = {kind: connect(sandbox, kind) for kind in ("amazon", "ekm", "rakuten")}
    for kind, channel in others.items():
        sandbox.listings(kind, f"{kind}-shop", [{"sku": "MUG", "title": "Mug", "quantity": 3, "price": "9.99"}])
        listings_download(channel_id=channel.pk)
        inventory_push(channel_id=channel.pk, full=True)
    sandbox.orders("shopify", SHOP, [{"items": [{"sku": "MUG", "quantity": 3, "price": "9.99"}]}])

    with django_capture_on_commit_callbacks(execute=True):
        run = orders_download(channel_id=shopify.pk)

    assert run.processed == 1
    order = Order.objects.get()
    assert (order.channel, order.status, order.channel_shipping_tag) == (shopify, Order.Status.PAID,
                                                                        "Standard Shipping")
    assert StockLevel.objects.get(stock_item__sku="MUG").available == 7
    for kind in others:
        assert sandbox.received(kind, f"{kind}-shop")["stock"]["MUG"]["quantity"] == 7
    assert on_shopify(sandbox, "MUG") == 7


def test_an_unpaid_order_waits_unless_unpaid_orders_are_downloaded(sandbox, shopify):
    sandbox.orders("shopify", SHOP, [{"items": [{"sku": "MUG", "quantity": 1}], "paid": False}])
    shopify.status_mappings.create(channel_status="PENDING", hub_status="paid")

    run = orders_download(channel_id=shopify.pk)

    assert (run.processed, run.skipped, Order.objects.count()) == (0, 1, 0)


class Receiver:
    """Where the sandbox delivers its webhooks: each delivery's headers and raw body, answered 200."""

    def __init__(self) -> None:
        self.deliveries: list[tuple[dict, bytes]] = []
        self.arrived = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with receiver.arrived:
                    receiver.deliveries.append((dict(self.headers), body))
                    receiver.arrived.notify_all()
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def wait_for(self, count: int) -> list[tuple[dict, bytes]]:
        with self.arrived:
            self.arrived.wait_for(lambda: len(self.deliveries) >= count, timeout=10)
        return list(self.deliveries)


@pytest.fixture
def receiver():
    made = Receiver()
    yield made
    made.server.shutdown()
    made.server.server_close()


def replay(client, channel, headers, body):
    """A delivery posted to the hub's webhook endpoint as Shopify posts it."""
    path = f"/webhooks/{channel.pk}/{channel_webhook_token(channel_id=channel.pk)}/"
    extra = {f"HTTP_{name.upper().replace('-', '_')}": value for name, value in headers.items()
             if name.lower().startswith("x-shopify")}
    return client.post(path, body, content_type="application/json", **extra)


def test_a_signed_webhook_is_a_hint_that_reads_the_order(sandbox, shopify, receiver, settings, client):
    settings.STOCKLINE_PUBLIC_URL = receiver.url
    assert channel_webhooks_follow(channel_id=shopify.pk) == "order webhooks subscribed (3 subscriptions)"
    [order_id] = sandbox.orders("shopify", SHOP, [{"items": [{"sku": "LAMP", "quantity": 1}]}])
    [(headers, body)] = receiver.wait_for(1)
    assert headers["X-Shopify-Topic"] == "orders/create"

    answer = replay(client, shopify, headers, body)
    again = replay(client, shopify, headers, body)

    assert (answer.status_code, again.status_code) == (200, 200)
    order = Order.objects.get()
    assert order.channel_order_id == order_id, "stored once, though delivered twice"
    assert StockLevel.objects.get(stock_item__sku="LAMP").available == 3


@pytest.mark.parametrize("forgery", ["body", "signature", "missing"])
def test_a_forged_webhook_is_refused_with_401_and_logged_and_nothing_stored(
    sandbox, shopify, receiver, settings, client, forgery
):
    settings.STOCKLINE_PUBLIC_URL = receiver.url
    channel_webhooks_follow(channel_id=shopify.pk)
    sandbox.orders("shopify", SHOP, [{"items": [{"sku": "LAMP", "quantity": 1}]}])
    [(headers, body)] = receiver.wait_for(1)
    if forgery == "body":
        body = body.replace(b"5000000001", b"5000000002")
    elif forgery == "signature":
        headers["X-Shopify-Hmac-Sha256"] = "c2lnbmVkIGJ5IHNvbWVvbmUgZWxzZQ=="
    else:
        headers.pop("X-Shopify-Hmac-Sha256")

    answer = replay(client, shopify, headers, body)

    assert answer.status_code == 401
    assert "X-Shopify-Hmac-Sha256" in answer.content.decode()
    assert Order.objects.count() == 0
    run = SyncRun.objects.get(channel=shopify, kind=SyncRun.Kind.ORDERS)
    assert run.status == SyncRun.Status.FAILED and "signature" in run.error


def test_processing_fulfils_the_order_on_shopify_with_tracking(sandbox, shopify, django_capture_on_commit_callbacks):
    royal_mail = PostalServiceFactory(name="Royal Mail 24", carrier_code="Royal Mail")
    sandbox.orders("shopify", SHOP, [{"items": [{"sku": "LAMP", "quantity": 1, "price": "19.99"}]}])
    orders_download(channel_id=shopify.pk)
    order = Order.objects.get()

    with django_capture_on_commit_callbacks(execute=True):
        order_process(order_id=order.pk, tracking_number="RM123456789GB", postal_service_id=royal_mail.pk)

    [shipment] = sandbox.received("shopify", SHOP)["shipments"]
    assert (shipment["order_id"], shipment["tracking_number"], shipment["carrier"], shipment["notify_customer"]) == (
        order.channel_order_id, "RM123456789GB", "Royal Mail", True)
    order.refresh_from_db()
    assert order.despatch_sent_at and not order.despatch_error
    assert sandbox.orders("shopify", SHOP)[0]["status"] == "FULFILLED"


def test_cancelling_here_cancels_on_shopify_with_its_reason(sandbox, shopify, django_capture_on_commit_callbacks):
    sandbox.orders("shopify", SHOP, [{"items": [{"sku": "MUG", "quantity": 2}]}])
    orders_download(channel_id=shopify.pk)
    order = Order.objects.get()

    with django_capture_on_commit_callbacks(execute=True):
        order_cancel(order_id=order.pk, reason="INVENTORY")

    [cancellation] = sandbox.received("shopify", SHOP)["cancellations"]
    assert (cancellation["order_id"], cancellation["reason"]) == (order.channel_order_id, "INVENTORY")
    assert on_shopify(sandbox, "MUG") == 10
    assert json.loads(json.dumps(sandbox.orders("shopify", SHOP)[0]["status"])) == "CANCELLED"


def test_the_config_page_shows_the_settings_that_apply_to_shopify_and_no_other(admin_client, sandbox, warehouse):
    from django.urls import reverse

    channel = shopify_channel(sandbox)

    page = admin_client.get(reverse("admin:channels_channel_change", args=(channel.pk,))).content.decode()

    for shown in ("Channel location", "Client secret", "Send despatch notes", "Send cancellation notes",
                  "Download unpaid orders", "Use channel tax", "Default email", "Update inventory from location",
                  "Default max listed quantity", "Default max listed percentage", "Default end when quantity",
                  "Price change", "UTC offset", "Last order sync"):
        assert shown.lower() in page.lower(), shown
    for hidden in ("latency", "FBA", "Refresh token", "import profile", "marketplace id"):
        assert hidden.lower() not in page.lower(), hidden


def test_reauthorise_renews_the_token_and_refuses_a_code(sandbox, warehouse):
    from channels.sync.connections import channel_reauthorise

    channel = shopify_channel(sandbox)

    assert channel_reauthorise(channel_id=channel.pk).message.startswith("The client id and secret work")
    refused = channel_reauthorise(channel_id=channel.pk, authorization_code="abc")
    assert not refused.ok and "takes no authorisation code" in refused.message


def test_a_malformed_order_is_logged_against_it_and_the_rest_of_the_page_is_stored(sandbox, shopify):
    first, second, third = sandbox.orders("shopify", SHOP, [{"items": [{"sku": "MUG", "quantity": 1}]}] * 3)
    sandbox.faults("shopify", SHOP, [{"path": "graphql", "type": "malformed", "index": 1}])

    run = orders_download(channel_id=shopify.pk)

    assert sorted(Order.objects.values_list("channel_order_id", flat=True)) == [first, third]
    assert (run.processed, run.failed) == (2, 1)
    assert run.errors[0]["record_id"] == f"gid://shopify/Order/{second}"
    assert "unreadable order" in run.errors[0]["reason"]


def test_an_order_without_an_email_gets_the_default_and_the_hubs_tax_when_asked(sandbox, shopify, settings):
    settings.HUB_TAX_RATES = {"default": "10"}
    Channel.objects.filter(pk=shopify.pk).update(default_email="orders@teapots.example", use_channel_tax=False)
    sandbox.orders("shopify", SHOP, [{"items": [{"sku": "MUG", "quantity": 1, "price": "12.00"}],
                                      "buyer_email": None, "shipping_cost": "0"}])

    orders_download(channel_id=shopify.pk)

    order = Order.objects.get()
    assert order.buyer_email == "orders@teapots.example"
    assert order.currency == "GBP"
    assert str(order.tax) == "1.09", "the hub's 10 %, not the 20 % Shopify charged"


def test_an_order_cancelled_on_shopify_is_cancelled_here_by_its_webhook(sandbox, shopify, receiver, settings, client):
    settings.STOCKLINE_PUBLIC_URL = receiver.url
    channel_webhooks_follow(channel_id=shopify.pk)
    [order_id] = sandbox.orders("shopify", SHOP, [{"items": [{"sku": "MUG", "quantity": 2}]}])
    replay(client, shopify, *receiver.wait_for(1)[0])
    assert StockLevel.objects.get(stock_item__sku="MUG").available == 8

    sandbox.order_status("shopify", SHOP, order_id, "CANCELLED")
    deliveries = receiver.wait_for(3)[1:]

    assert sorted(headers["X-Shopify-Topic"] for headers, _ in deliveries) == ["orders/cancelled", "orders/updated"]
    for headers, body in deliveries:
        assert replay(client, shopify, headers, body).status_code == 200
    assert Order.objects.get().status == Order.Status.CANCELLED
    assert StockLevel.objects.get(stock_item__sku="MUG").available == 10


def test_with_price_change_on_the_price_goes_by_productVariantsBulkUpdate(sandbox, shopify):  # noqa: N802
    from decimal import Decimal

    from inventory.models import StockItem

    StockItem.objects.filter(sku="LAMP").update(retail_price=Decimal("24.50"))
    Channel.objects.filter(pk=shopify.pk).update(price_change=True)

    inventory_push(channel_id=shopify.pk, full=True)

    prices = {row["sku"]: row["price"] for row in sandbox.listings("shopify", SHOP)}
    assert prices["LAMP"] == "24.50"
    assert sandbox.received("shopify", SHOP)["calls"]["graphql:ProductVariantsBulkUpdate"] == 2, "one per product"


def test_location_mapping_lists_the_shops_locations_and_a_new_one_gets_every_listing(
    admin_client, sandbox, shopify, django_capture_on_commit_callbacks
):
    from django.urls import reverse

    sandbox.account("shopify", SHOP, credentials=default_credentials("shopify", SHOP), rate_limits={"profile": "off"},
                    locations=[{"id": 1, "name": "Shop location"}, {"id": 7, "name": "Leeds warehouse"}])
    sandbox.listings("shopify", SHOP, [{"sku": "MUG", "quantity": 3}, {"sku": "LAMP", "quantity": 1}])
    url = reverse("admin:channels_channel_location_mapping", args=(shopify.pk,))

    page = admin_client.get(url).content.decode()

    assert "Shopify location" in page and "Leeds warehouse" in page and "Shop location" in page
    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(url, {"channel_location_id": "1"})
    shopify.refresh_from_db()
    assert shopify.channel_location_id == "1"
    assert sandbox.received("shopify", SHOP)["stock"]["MUG"]["quantity"] == 10, "every listing sent to the new one"


def test_end_when_max_listed_and_percentage_apply_to_shopify_as_to_every_channel(sandbox, shopify):
    Channel.objects.filter(pk=shopify.pk).update(max_listed_quantity=6, max_listed_percentage=50, end_when_quantity=4)
    ChannelListing.objects.filter(channel=shopify, channel_sku="MUG").update(max_listed_quantity=None)

    inventory_push(channel_id=shopify.pk, full=True)

    # MUG: 10 available, at most 6, half of it: 3. LAMP: 4 available is at End When: 0.
    assert (on_shopify(sandbox, "MUG"), on_shopify(sandbox, "LAMP")) == (3, 0)
