"""A working day on the channel and order screens, in a real browser against the sandbox: orders downloaded and
stock pushed from the channel page's buttons, an Amazon order cancelled with one of Amazon's reasons, orders of
two channels listed in the order the buyers placed them, and Reauthorise by the channel's consent page.

Tasks run inline (tests/conftest.py), so a button's task has run when its page comes back."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from channels.connectors.base import OrderPage
from channels.sync.inventory_push import inventory_push
from channels.sync.listings_download import listings_download
from channels.sync.order_download import orders_store_page
from orders.models import Order
from sandbox.control import default_credentials
from tests.channels.factories import AmazonChannelFactory, ChannelFactory, OrderStatusMappingFactory
from tests.channels.test_sync_e2e import quantity_on
from tests.inventory.factories import LocationFactory, StockItemFactory, StockLevelFactory
from tests.orders.test_cancellation_form import cancellations
from tests.orders.test_despatch_retry import sandbox_channel
from tests.orders.test_order_times import external

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]


@pytest.fixture
def mugs():
    warehouse = LocationFactory(name="Main warehouse", is_default=True)
    StockLevelFactory(stock_item=StockItemFactory(sku="MUG"), location=warehouse, quantity=10)


def test_download_orders_now_and_push_stock_now_from_the_channel_page(page, staff_admin, sandbox, mugs):
    ekm = sandbox_channel(sandbox, "ekm")
    sandbox.listings("ekm", "ekm-shop", [{"sku": "MUG", "title": "Mug", "quantity": 3, "price": "9.99"}])
    listings_download(channel_id=ekm.pk)
    inventory_push(channel_id=ekm.pk, full=True)
    [order_id] = sandbox.orders("ekm", "ekm-shop", [{"items": [{"sku": "MUG", "quantity": 2, "price": "9.99"}],
                                                      "paid": True}])

    page.goto(f"{staff_admin}/channels/channel/{ekm.pk}/change/")
    page.click("button:text-is('Download orders now')")

    page.wait_for_selector("text=ekm shop: order download queued")
    page.goto(f"{staff_admin}/orders/order/")
    assert order_id in page.locator("#result_list").inner_text()
    # The order holds two of the ten mugs; the change went out with the order's own push.
    assert quantity_on(sandbox, "ekm", "MUG") == 8

    # Someone typed 30 on the shop itself: Push all stock sends every listing again, the hub's figure wins.
    sandbox.listings("ekm", "ekm-shop", [{"sku": "MUG", "title": "Mug", "quantity": 30, "price": "9.99"}])
    page.goto(f"{staff_admin}/channels/channel/{ekm.pk}/change/")
    page.click("button:text-is('Push all stock')")

    page.wait_for_selector("text=ekm shop: push of every listing's stock queued")
    assert quantity_on(sandbox, "ekm", "MUG") == 8


def test_cancelling_an_amazon_order_tells_amazon_the_reason_chosen_in_the_sellers_words(page, staff_admin, sandbox):
    amazon = sandbox_channel(sandbox, "amazon", send_cancellation_notes=True)
    [order_id] = sandbox.orders("amazon", "amazon-shop", [{"items": [{"sku": "MUG", "quantity": 1, "price": "12.50"}],
                                                            "paid": True}])
    page.goto(f"{staff_admin}/channels/channel/{amazon.pk}/change/")
    page.click("button:text-is('Download orders now')")
    page.wait_for_selector("text=amazon shop: order download queued")
    order = Order.objects.get(channel=amazon, channel_order_id=order_id)

    page.goto(f"{staff_admin}/orders/order/{order.pk}/change/")
    page.click("a:text-is('Cancel order')")
    assert "Amazon will be told" in page.locator("#content").inner_text()
    page.select_option("#id_reason", label="Out of stock")
    page.click("input[name=apply]")

    page.wait_for_selector(f"text=Order {order_id} cancelled")
    assert cancellations(sandbox, "amazon") == [(order_id, "NoInventory")]
    page.goto(f"{staff_admin}/orders/order/{order.pk}/change/")
    assert "The channel confirmed the cancellation" in page.locator("#content").inner_text()


def test_with_cancellation_notes_off_the_cancel_page_says_amazon_will_not_be_told(page, staff_admin):
    amazon = AmazonChannelFactory(name="Amazon UK", send_cancellation_notes=False)
    LocationFactory(name="Main", is_default=True)
    OrderStatusMappingFactory(channel=amazon, channel_status="PAID", hub_status=Order.Status.PAID)
    orders_store_page(channel=amazon, page=OrderPage(orders=(external("AMZ-9", created_at=datetime.now(UTC)),)))
    order = Order.objects.get(channel_order_id="AMZ-9")

    page.goto(f"{staff_admin}/orders/order/{order.pk}/change/")
    page.click("a:text-is('Cancel order')")

    warning = page.locator("#content").inner_text()
    assert "Amazon will not be told: Send cancellation notes is off on this channel" in warning
    page.click("a:has-text('change it on the channel')")
    page.wait_for_url(f"{staff_admin}/channels/channel/{amazon.pk}/change/")


def test_orders_of_two_channels_are_listed_as_the_buyers_placed_them(page, staff_admin, settings):
    settings.TIME_ZONE = "Europe/London"
    LocationFactory(name="Main", is_default=True)
    # Amazon's clock is an hour on (seed 002's UTC offset 1): its order, placed first, reads later.
    amazon = AmazonChannelFactory(name="Amazon UK", utc_offset_hours=Decimal("1"))
    ekm = ChannelFactory(name="EKM shop", utc_offset_hours=Decimal("0"))
    for channel, order_id, at in ((amazon, "AMZ-1", datetime(2026, 12, 2, 14, 30, tzinfo=UTC)),
                                  (ekm, "EKM-1", datetime(2026, 12, 2, 15, 0, tzinfo=UTC))):
        OrderStatusMappingFactory(channel=channel, channel_status="PAID", hub_status=Order.Status.PAID)
        orders_store_page(channel=channel, page=OrderPage(orders=(external(order_id, created_at=at),)))

    page.goto(f"{staff_admin}/orders/order/")

    rows = page.locator("#result_list tbody tr")
    assert [rows.nth(n).locator(".field-channel_order_id").inner_text() for n in range(2)] == ["EKM-1", "AMZ-1"]
    amazon_row = rows.nth(1).inner_text()
    assert "2 Dec 2026, 2:30 p.m." in amazon_row and "3:30 p.m. (UTC+1) channel time" in amazon_row


def test_reauthorise_by_amazons_consent_page_comes_back_reauthorised(page, staff_admin, sandbox, live_server):
    credentials = {**default_credentials("amazon", "amazon-oauth"),
                   "application_id": "amzn1.sp.solution.browser",
                   "redirect_uris": [f"{live_server.url}/admin/channels/oauth/callback/"]}
    created = sandbox.account("amazon", "amazon-oauth", credentials=credentials, rate_limits={"profile": "off"})
    url = sandbox.channel_url("amazon", "amazon-oauth")
    amazon = AmazonChannelFactory(
        name="Amazon UK", api_base_url=url, auth_base_url=url, seller_id=created["seller_id"],
        application_id="amzn1.sp.solution.browser", needs_reauthorisation=True,
        reauthorisation_reason="HTTP 400 invalid_grant",
        credentials={key: credentials[key] for key in ("client_id", "client_secret", "refresh_token")},
    )

    page.goto(f"{staff_admin}/channels/channel/{amazon.pk}/reauthorise/")
    with page.expect_popup() as consent:
        page.click("a:text-is(\"Open Amazon's consent page\")")
    seller = consent.value
    seller.wait_for_url(f"{staff_admin}/channels/channel/{amazon.pk}/change/")

    assert "Amazon UK: Reauthorised" in seller.locator("ul.messagelist").inner_text()
    amazon.refresh_from_db()
    assert not amazon.needs_reauthorisation
    assert amazon.credentials["refresh_token"] != credentials["refresh_token"]
