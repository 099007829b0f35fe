"""A member of staff's round of the admin in a real browser, against the sandbox's channel APIs.

Tasks run inline (tests/conftest.py), so a listing download or a despatch confirmation happens within
the request that starts it, in the live server's thread. Screenshots land in docs/screenshots/.
"""

import re

import pytest
from django.contrib.auth.models import User

from channels.models import Channel, ChannelListing, OrderStatusMapping, ShippingMapping
from channels.sync.order_download import orders_download
from inventory.models import Location, StockItem, StockLevel
from orders.models import Order, PostalService
from sandbox.control import RAKUTEN_IMPORT_PROFILE_ID, default_credentials

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]

PASSWORD = "browser-test-pw"


def connect(sandbox, kind: str, name: str) -> Channel:
    account = f"{kind}-shop"
    credentials = default_credentials(kind, account)
    created = sandbox.account(kind, account, credentials=credentials, rate_limits={"profile": "off"})
    url = sandbox.channel_url(kind, account)
    return Channel.objects.create(**{
        **Channel.defaults_for(kind), "name": name, "kind": kind, "api_base_url": url,
        "auth_base_url": url if kind != "rakuten" else "", "seller_id": credentials.get("login", created["seller_id"]),
        "credentials": {key: value for key, value in credentials.items() if key != "login"},
        "import_profile_id": RAKUTEN_IMPORT_PROFILE_ID if kind == "rakuten" else "",
    })


@pytest.fixture
def shop(sandbox):
    """A demo-like shop: two warehouses, a mug and a lamp, EKM and Rakuten channels, one EKM order."""
    main = Location.objects.create(name="Main Warehouse", is_default=True)
    Location.objects.create(name="Overflow Store")
    for sku, quantity in (("MUG", 10), ("LAMP", 4)):
        StockLevel.objects.create(stock_item=StockItem.objects.create(sku=sku, title=sku.title()), location=main,
                                  quantity=quantity)
    PostalService.objects.create(name="Royal Mail 1st Class", carrier_code="Royal Mail")
    PostalService.objects.create(name="DPD Next Day", carrier_code="DPD")
    ekm = connect(sandbox, "ekm", "EKM Shop")
    connect(sandbox, "rakuten", "Rakuten France")
    for status, hub in (("PENDING", "paid"), ("DISPATCHED", "processed"), ("CANCELLED", "cancelled")):
        OrderStatusMapping.objects.create(channel=ekm, channel_status=status, hub_status=hub)
    sandbox.listings("ekm", "ekm-shop", [{"sku": "MUG", "title": "Mug", "quantity": 3, "price": "9.99"},
                                         {"sku": "LAMP", "title": "Lamp", "quantity": 1, "price": "19.99"}])
    sandbox.orders("ekm", "ekm-shop", [{"items": [{"sku": "LAMP", "quantity": 1, "price": "19.99"}], "paid": True,
                                        "shipping_tag": "Next Day Courier"}])
    orders_download(channel_id=ekm.pk)
    User.objects.create_superuser("staff", "staff@example.com", PASSWORD)
    return ekm


def select_by_label(page, label: str, option: str) -> None:
    field_id = page.locator(f'label:text-is("{label}:")').get_attribute("for")
    page.select_option(f"#{field_id}", label=option)


def test_a_round_of_the_staff_screens(page, live_server, sandbox, shop, screenshot):
    admin = f"{live_server.url}/admin"
    page.goto(f"{admin}/login/")
    page.fill("#id_username", "staff")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(f"{admin}/")

    # Channel Integration: toggle Inventory Sync in place.
    page.goto(f"{admin}/channels/channel/")
    screenshot("channel-integration")
    row = page.locator("tr", has_text="EKM Shop")
    row.locator("input[name$='-inventory_sync']").uncheck()
    page.click("input[name=_save]")
    page.wait_for_selector("text=was changed successfully")
    shop.refresh_from_db()
    assert not shop.inventory_sync

    # Config: a bad percentage is refused next to the field.
    page.locator("tr", has_text="EKM Shop").locator("a", has_text="Config").click()
    screenshot("channel-config")
    page.fill("#id_max_listed_percentage", "150")
    page.click("input[name=_continue]")
    error = page.locator(".field-max_listed_percentage .errorlist")
    assert error.inner_text() == "A percentage cannot be above 100."
    screenshot("channel-config-validation")

    # Order Status Mapping: every EKM status, COMPLETE mapped to Processed.
    page.locator("a:text-is('Order Status Mapping')").first.click()
    select_by_label(page, "COMPLETE", "Processed (shipped)")
    screenshot("order-status-mapping")
    page.click("input[value=Save]")
    page.wait_for_selector("text=Order status mapping saved")
    assert OrderStatusMapping.objects.get(channel=shop, channel_status="COMPLETE").hub_status == "processed"

    # Shipping Mapping: the tag seen on the downloaded order.
    page.goto(f"{admin}/channels/channel/{shop.pk}/shipping-mapping/")
    select_by_label(page, "Next Day Courier", "DPD Next Day")
    page.click("input[value=Save]")
    page.wait_for_selector("text=Shipping mapping saved")
    screenshot("shipping-mapping")
    assert ShippingMapping.objects.get(channel=shop, tag="Next Day Courier").postal_service.name == "DPD Next Day"

    # Location Mapping: the ticks wait for the switch.
    page.goto(f"{admin}/channels/channel/{shop.pk}/location-mapping/")
    assert page.locator("input[name=locations]").first.is_disabled()
    page.check("#id_update_inventory_from_locations")
    assert page.locator("input[name=locations]").first.is_enabled()
    screenshot("location-mapping")

    # Listings: download them and watch the bar reach 100%.
    page.goto(f"{admin}/channels/channellisting/?channel__id__exact={shop.pk}")
    page.click("button:has-text('Download listings')")
    page.wait_for_selector("text=listing download queued")
    page.wait_for_function("(document.querySelector('.download-percent') || {}).textContent === '100%'")
    assert page.locator(".download-progress progress").get_attribute("value") == "100"
    page.wait_for_selector("text=last download completed")
    assert ChannelListing.objects.filter(channel=shop, stock_item__isnull=False).count() == 2
    screenshot("listings")

    # An order processed from its page; the sandbox confirms the despatch.
    order = Order.objects.get(channel=shop)
    page.goto(f"{admin}/orders/order/{order.pk}/change/")
    page.click("a:has-text('Process')")
    page.select_option("#id_postal_service", label="Royal Mail 1st Class")
    page.fill("#id_tracking_number", "RM123456789GB")
    page.click("input[name=apply]")
    page.wait_for_selector("text=The channel confirmed the despatch")
    screenshot("order-processed")
    shipments = sandbox.received("ekm", "ekm-shop")["shipments"]
    assert [s["tracking_number"] for s in shipments] == ["RM123456789GB"]

    page.goto(f"{admin}/orders/order/")
    screenshot("orders")
    page.goto(f"{admin}/inventory/stockitem/{StockItem.objects.get(sku='MUG').pk}/change/")
    screenshot("stock-item")
    page.goto(f"{admin}/channels/channel/dashboard/")
    assert page.locator("svg.activity-chart").count() == 1
    screenshot("dashboard")


def test_adding_a_channel_tests_before_saving(page, live_server, sandbox, shop, screenshot):
    credentials = default_credentials("ekm", "new-shop")
    sandbox.account("ekm", "new-shop", credentials=credentials, rate_limits={"profile": "off"})
    admin = f"{live_server.url}/admin"
    page.goto(f"{admin}/login/?next=/admin/channels/channel/add/")
    page.fill("#id_username", "staff")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    screenshot("add-channel-kind")
    page.click("a:has-text('EKM')")
    page.fill("#id_name", "New EKM shop")
    page.fill("#id_api_base_url", sandbox.channel_url("ekm", "new-shop"))
    page.fill("#id_credential_client_id", credentials["client_id"])
    page.fill("#id_credential_client_secret", credentials["client_secret"])
    page.fill("#id_credential_refresh_token", credentials["refresh_token"])
    page.click("button:has-text('Test')")
    page.wait_for_selector("#test-unsaved-result.test-ok")
    assert re.search("Connected", page.inner_text("#test-unsaved-result"))
    assert not Channel.objects.filter(name="New EKM shop").exists()
    screenshot("add-channel-test")
    page.click("input[name=_save]")
    page.wait_for_selector("text=was added successfully")
    channel = Channel.objects.get(name="New EKM shop")
    # The test used up the typed refresh token; the saved channel holds the one EKM issued, and works.
    assert channel.credentials["refresh_token"] != credentials["refresh_token"]
    page.goto(f"{admin}/channels/channel/{channel.pk}/change/")
    page.click("button:has-text('Test')")
    page.wait_for_selector("text=Connected")
