"""The Channel Integration list and the order list fit a 1366 x 768 laptop screen: nothing to scroll sideways
to, so the row's buttons, an order's total, postal service and location are on screen."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.contrib.auth.models import User

from channels.models import SyncRun
from tests.channels.factories import AmazonChannelFactory, ChannelFactory, RakutenChannelFactory, SyncRunFactory
from tests.inventory.factories import LocationFactory
from tests.orders.factories import OrderFactory, PostalServiceFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]

PASSWORD = "laptop-pw"
LAPTOP = {"width": 1366, "height": 768}


@pytest.fixture(params=["first visit", "sidebar closed"])
def laptop(request, browser, live_server):
    """A superuser's page at laptop size (every button of a row shown): on a first visit, and with the
    navigation sidebar closed by hand. Its own browser context, not conftest's page and staff_admin, whose
    page is wider and always has the sidebar closed."""
    User.objects.create_superuser("staff", "staff@example.com", PASSWORD)
    context = browser.new_context(viewport=LAPTOP)
    if request.param == "sidebar closed":
        context.add_init_script("window.localStorage.setItem('django.admin.navSidebarIsOpen', 'false')")
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", "staff")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(f"{live_server.url}/admin/")
    yield page
    context.close()


def overflow(page) -> int:
    """How many pixels the page, or the list inside its own scroll box, is wider than the window."""
    return page.evaluate("""() => {
        const results = document.querySelector("#changelist-form .results");
        const right = Math.max(...[...document.querySelectorAll("#result_list th, #result_list td")]
            .map(cell => cell.getBoundingClientRect().right));
        return Math.max(document.scrollingElement.scrollWidth - window.innerWidth,
                        results.scrollWidth - results.clientWidth, Math.ceil(right) - window.innerWidth);
    }""")


def test_the_channel_list_fits_a_laptop(laptop, live_server):
    started = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
    for factory, name in ((ChannelFactory, "EKM Homeware Shop"), (AmazonChannelFactory, "Amazon UK Marketplace"),
                          (RakutenChannelFactory, "Rakuten France Boutique")):
        channel = factory(name=name, needs_reauthorisation=name.startswith("Amazon"))
        for kind in (SyncRun.Kind.ORDERS, SyncRun.Kind.INVENTORY):
            SyncRunFactory(channel=channel, kind=kind, status=SyncRun.Status.PARTIAL, started_at=started,
                           processed=1234, failed=56)

    laptop.goto(f"{live_server.url}/admin/channels/channel/")

    assert laptop.locator("#result_list tbody tr").count() == 3
    assert overflow(laptop) <= 0
    row = laptop.locator("#result_list tr", has_text="Amazon UK Marketplace")
    for button in ("Config", "Test", "Reauthorise", "Download listings"):
        assert row.get_by_text(button, exact=True).is_visible()


def test_the_order_list_fits_a_laptop(laptop, live_server):
    channel = AmazonChannelFactory(name="Amazon UK Marketplace")
    service = PostalServiceFactory(name="Royal Mail Tracked 48")
    location = LocationFactory(name="Main Warehouse")
    for number in range(5):
        OrderFactory(channel=channel, channel_order_id=f"203-1234567-{number:07d}", channel_status="Unshipped",
                     postal_service=service, fulfilment_location=location, total=Decimal("1234.56"))

    laptop.goto(f"{live_server.url}/admin/orders/order/")

    assert laptop.locator("#result_list tbody tr").count() == 5
    assert overflow(laptop) <= 0
    row = laptop.locator("#result_list tr", has_text="203-1234567-0000001")
    for shown in ("1234.56", "Royal Mail Tracked 48", "Main Warehouse"):
        assert row.get_by_text(shown, exact=False).first.is_visible()
