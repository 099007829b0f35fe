"""The whole flow against the sandbox: an order in on one channel, new quantities out on the others,
then despatch and cancellation confirmed back to the channel. Tasks run inline (see tests/conftest.py)."""

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from channels.models import Channel, ChannelListing
from channels.sync.inventory_push import inventory_push
from channels.sync.listings_download import listings_download
from channels.sync.order_download import orders_download
from channels.sync.order_hints import order_hint_import
from inventory.models import StockLevel
from orders.models import Order
from orders.services import order_cancel, order_process
from sandbox.control import RAKUTEN_IMPORT_PROFILE_ID, default_credentials
from tests.inventory.factories import LocationFactory, StockItemFactory, StockLevelFactory
from tests.orders.factories import PostalServiceFactory

pytestmark = pytest.mark.django_db

PAID = {"amazon": "UNSHIPPED", "ekm": "PENDING", "rakuten": "ACCEPTED"}
SHIPPED = {"amazon": "SHIPPED", "ekm": "DISPATCHED", "rakuten": "SHIPPED"}
CANCELLED = {"amazon": "CANCELLED", "ekm": "CANCELLED", "rakuten": "CANCELLED"}


def connect(sandbox, kind: str, **settings) -> Channel:
    """A sandbox account and the hub channel that talks to it, as a seller would set it up."""
    account = f"{kind}-shop"
    credentials = default_credentials(kind, account)
    # The sandbox's quotas are lifted: tasks run inline here, where a countdown cannot wait.
    created = sandbox.account(kind, account, credentials=credentials, rate_limits={"profile": "off"})
    url = sandbox.channel_url(kind, account)
    channel = Channel.objects.create(**{
        **Channel.defaults_for(kind), "name": f"{kind} shop", "kind": kind, "api_base_url": url,
        "auth_base_url": url if kind != "rakuten" else "",
        "seller_id": credentials.get("login", created["seller_id"]),
        "credentials": {key: value for key, value in credentials.items() if key != "login"},
        "send_cancellation_notes": True,
        "import_profile_id": RAKUTEN_IMPORT_PROFILE_ID if kind == "rakuten" else "", **settings,
    })
    for hub_status, statuses in (("paid", PAID), ("processed", SHIPPED), ("cancelled", CANCELLED)):
        channel.status_mappings.create(channel_status=statuses[kind], hub_status=hub_status)
    return channel


@pytest.fixture
def shop(sandbox, django_capture_on_commit_callbacks):
    """Three channels listing the same mug and lamp, 10 and 4 in the warehouse, everything pushed once."""
    warehouse = LocationFactory(name="Main warehouse", is_default=True)
    for sku, quantity in (("MUG", 10), ("LAMP", 4)):
        StockLevelFactory(stock_item=StockItemFactory(sku=sku), location=warehouse, quantity=quantity)
    channels = {kind: connect(sandbox, kind) for kind in ("amazon", "ekm", "rakuten")}
    for kind, channel in channels.items():
        account = f"{kind}-shop"
        sandbox.listings(kind, account, [{"sku": "MUG", "title": "Mug", "quantity": 3, "price": "9.99"},
                                         {"sku": "LAMP", "title": "Lamp", "quantity": 1, "price": "19.99"}])
        listings_download(channel_id=channel.pk)
        inventory_push(channel_id=channel.pk, full=True)
    return channels


def received(sandbox, kind: str) -> dict:
    return sandbox.received(kind, f"{kind}-shop")


def quantity_on(sandbox, kind: str, sku: str) -> int:
    return received(sandbox, kind)["stock"][sku]["quantity"]


def test_the_first_push_overwrites_what_the_channels_showed(sandbox, shop):
    assert ChannelListing.objects.filter(stock_item__isnull=False).count() == 6
    for kind in shop:
        assert (quantity_on(sandbox, kind, "MUG"), quantity_on(sandbox, kind, "LAMP")) == (10, 4)


def test_an_order_on_ekm_reserves_stock_and_every_channel_gets_the_new_quantity(
    sandbox, shop, django_capture_on_commit_callbacks
):
    sandbox.orders("ekm", "ekm-shop", [{"items": [{"sku": "MUG", "quantity": 3, "price": "9.99"}], "paid": True}])

    with django_capture_on_commit_callbacks(execute=True):
        run = orders_download(channel_id=shop["ekm"].pk)

    assert run.processed == 1
    assert StockLevel.objects.get(stock_item__sku="MUG").available == 7
    for kind in ("amazon", "rakuten", "ekm"):
        assert quantity_on(sandbox, kind, "MUG") == 7
        assert received(sandbox, kind)["stock"]["LAMP"]["updates"] == 1, "the lamp did not change"


def test_processing_sends_ekm_the_tracking_number_and_the_shipped_status(
    sandbox, shop, django_capture_on_commit_callbacks
):
    royal_mail = PostalServiceFactory(name="Royal Mail", carrier_code="Royal Mail")
    sandbox.orders("ekm", "ekm-shop", [{"items": [{"sku": "LAMP", "quantity": 1, "price": "19.99"}], "paid": True}])
    with django_capture_on_commit_callbacks(execute=True):
        orders_download(channel_id=shop["ekm"].pk)
    order = Order.objects.get()

    with django_capture_on_commit_callbacks(execute=True):
        order_process(order_id=order.pk, tracking_number="RM123456789GB", postal_service_id=royal_mail.pk)

    shipments = received(sandbox, "ekm")["shipments"]
    assert [s["tracking_number"] for s in shipments] == ["RM123456789GB"]
    order.refresh_from_db()
    assert order.despatch_sent_at and not order.despatch_error
    assert StockLevel.objects.get(stock_item__sku="LAMP").quantity == 3
    assert quantity_on(sandbox, "amazon", "LAMP") == 3


def test_despatch_to_amazon_carries_the_tracking_and_amazon_shows_it_shipped(
    sandbox, shop, django_capture_on_commit_callbacks
):
    sandbox.orders("amazon", "amazon-shop", [{"items": [{"sku": "MUG", "quantity": 2, "price": "9.99"}],
                                              "paid": True, "shipping_tag": "Standard"}])
    with django_capture_on_commit_callbacks(execute=True):
        orders_download(channel_id=shop["amazon"].pk)
    order = Order.objects.get()
    dpd = PostalServiceFactory(name="DPD Next Day", carrier_code="DPD")

    with django_capture_on_commit_callbacks(execute=True):
        order_process(order_id=order.pk, tracking_number="DPD-42", postal_service_id=dpd.pk)

    shipment = received(sandbox, "amazon")["shipments"][0]
    assert shipment["order_id"] == order.channel_order_id and shipment["tracking_number"] == "DPD-42"
    assert shipment["carrier"] == "DPD"
    assert sandbox.orders("amazon", "amazon-shop")[0]["status"] == "SHIPPED"


def test_cancelling_here_releases_stock_and_tells_rakuten(sandbox, shop, django_capture_on_commit_callbacks):
    sandbox.orders("rakuten", "rakuten-shop", [{"items": [{"sku": "MUG", "quantity": 1, "price": "12.50"}]}])
    with django_capture_on_commit_callbacks(execute=True):
        orders_download(channel_id=shop["rakuten"].pk)
    order = Order.objects.get()
    assert quantity_on(sandbox, "ekm", "MUG") == 9

    with django_capture_on_commit_callbacks(execute=True):
        order_cancel(order_id=order.pk, reason="Out of stock")

    assert [c["order_id"] for c in received(sandbox, "rakuten")["cancellations"]] == [order.channel_order_id]
    order.refresh_from_db()
    assert order.cancellation_sent_at
    assert quantity_on(sandbox, "ekm", "MUG") == 10


def test_an_order_cancelled_on_the_channel_releases_its_stock_at_the_next_download(
    sandbox, shop, django_capture_on_commit_callbacks
):
    [order_id] = sandbox.orders("amazon", "amazon-shop", [{"items": [{"sku": "LAMP", "quantity": 2,
                                                                      "price": "19.99"}], "paid": True}])
    with django_capture_on_commit_callbacks(execute=True):
        orders_download(channel_id=shop["amazon"].pk)
    assert quantity_on(sandbox, "rakuten", "LAMP") == 2

    sandbox.order_status("amazon", "amazon-shop", order_id, "CANCELLED")
    with django_capture_on_commit_callbacks(execute=True):
        orders_download(channel_id=shop["amazon"].pk)

    assert Order.objects.get().status == Order.Status.CANCELLED
    assert quantity_on(sandbox, "rakuten", "LAMP") == 4


def test_sync_commands_report_per_channel_and_fail_with_one_line(sandbox, shop, capsys):
    sandbox.orders("ekm", "ekm-shop", [{"items": [{"sku": "MUG", "quantity": 1, "price": "9.99"}], "paid": True}])

    call_command("sync_orders", "ekm shop")
    call_command("sync_inventory", "amazon shop", "--full")

    out = capsys.readouterr().out
    assert "ekm shop: 1 orders stored, 0 skipped, 0 failed (success)" in out
    assert "amazon shop: 2 listings updated, 0 rejected (success)" in out
    assert quantity_on(sandbox, "amazon", "MUG") == 9
    with pytest.raises(CommandError, match="No channel named 'Nope'"):
        call_command("sync_orders", "Nope")


def test_a_download_reads_the_items_of_ekm_orders_new_or_changed_only_not_of_those_it_finds_again(
    sandbox, shop, django_capture_on_commit_callbacks
):
    mug, lamp = ({"items": [{"sku": sku, "quantity": 1, "price": "9.99"}], "paid": True} for sku in ("MUG", "LAMP"))
    cancelled, kept = sandbox.orders("ekm", "ekm-shop", [mug, lamp])
    with django_capture_on_commit_callbacks(execute=True):
        orders_download(channel_id=shop["ekm"].pk)
    items_read = received(sandbox, "ekm")["calls"]["Orders_GetItems"]

    sandbox.order_status("ekm", "ekm-shop", cancelled, "CANCELLED")
    [new] = sandbox.orders("ekm", "ekm-shop", [lamp])
    with django_capture_on_commit_callbacks(execute=True):
        run = orders_download(channel_id=shop["ekm"].pk)

    assert received(sandbox, "ekm")["calls"]["Orders_GetItems"] - items_read == 2, (
        "the order it finds again unchanged costs no items call")
    statuses = dict(Order.objects.values_list("channel_order_id", "status"))
    assert statuses == {cancelled: Order.Status.CANCELLED, kept: Order.Status.PAID, new: Order.Status.PAID}
    assert (run.processed, run.failed) == (2, 0)
    assert StockLevel.objects.get(stock_item__sku="LAMP").available == 2


def test_a_download_that_finds_only_ekm_orders_a_webhook_brought_still_moves_last_order_sync_past_them(
    sandbox, shop, django_capture_on_commit_callbacks
):
    [order_id] = sandbox.orders("ekm", "ekm-shop", [{"items": [{"sku": "MUG", "quantity": 1, "price": "9.99"}],
                                                     "paid": True}])
    with django_capture_on_commit_callbacks(execute=True):
        order_hint_import(channel_id=shop["ekm"].pk, order_ids=[order_id])
        run = orders_download(channel_id=shop["ekm"].pk)

    assert run.processed == 0, "the order is held as EKM has it"
    shop["ekm"].refresh_from_db()
    assert shop["ekm"].last_order_sync == Order.objects.get(channel_order_id=order_id).channel_updated_at
