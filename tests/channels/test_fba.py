"""Amazon FBA as a seller sees it: the FBA location, FBA stock from Amazon, AFN orders, and orders of
any channel fulfilled from FBA stock. Channels talk to the sandbox; tasks run inline (tests/conftest.py)."""

import io

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse
from django_celery_beat.models import PeriodicTask

from channels.models import Channel, FulfilmentLocation, FulfilmentOrder
from channels.services import channel_create, channel_settings_update
from channels.sync.fba.outbound import fba_outbound_follow
from channels.sync.fba.stock import fba_inventory_sync
from channels.sync.inventory_push import inventory_push
from channels.sync.listings_download import listings_download
from channels.sync.order_download import orders_download
from inventory.models import Location, StockLevel, StockMovement
from orders.models import Order
from orders.services import order_cancel, order_process, order_reallocate
from sandbox.control import RAKUTEN_IMPORT_PROFILE_ID, default_credentials
from tests.admin.pages import change_form_data
from tests.inventory.factories import LocationFactory, StockItemFactory, StockLevelFactory

pytestmark = pytest.mark.django_db

PAID = {"amazon": "UNSHIPPED", "ekm": "PENDING", "rakuten": "ACCEPTED"}
SHIPPED = {"amazon": "SHIPPED", "ekm": "DISPATCHED", "rakuten": "SHIPPED"}


def connect(sandbox, kind: str, account: str, name: str, seller_id: str = "", **settings) -> Channel:
    """A sandbox account and the hub channel that talks to it, as a seller would set it up."""
    credentials = default_credentials(kind, account)
    created = sandbox.account(kind, account, credentials=credentials, rate_limits={"profile": "off"},
                              seller_id=seller_id, marketplace_id=settings.get("marketplace_id", ""))
    url = sandbox.channel_url(kind, account)
    channel = channel_create(channel=Channel(**{
        **Channel.defaults_for(kind), "name": name, "kind": kind, "api_base_url": url,
        "auth_base_url": url if kind != "rakuten" else "",
        "seller_id": credentials.get("login", created["seller_id"]),
        "credentials": {key: value for key, value in credentials.items() if key != "login"},
        "import_profile_id": RAKUTEN_IMPORT_PROFILE_ID if kind == "rakuten" else "", **settings,
    }))
    channel.status_mappings.create(channel_status=PAID[kind], hub_status="paid")
    channel.status_mappings.create(channel_status=SHIPPED[kind], hub_status="processed")
    return channel


@pytest.fixture
def warehouse():
    return LocationFactory(name="Main warehouse", is_default=True)


@pytest.fixture
def mug(warehouse):
    item = StockItemFactory(sku="MUG")
    StockLevelFactory(stock_item=item, location=warehouse, quantity=10)
    return item


@pytest.fixture
def amazon(sandbox):
    return connect(sandbox, "amazon", "uk", "Amazon UK", fba_enabled=True, fba_sync_inventory=True)


def fba_of(channel) -> Location:
    return Location.objects.get(kind=Location.Kind.EXTERNAL, fulfilment__channel=channel)


def sent(order) -> FulfilmentOrder:
    return FulfilmentOrder.objects.get(order=order)


def level(item, location) -> StockLevel:
    return StockLevel.objects.get(stock_item=item, location=location)


def beat(channel, key) -> PeriodicTask:
    return PeriodicTask.objects.get(name=f"channel-{channel.pk}-{key}")


# --- The FBA location --------------------------------------------------------------------------


def test_turning_fba_on_creates_the_channels_fba_location_once():
    channel = channel_create(channel=Channel(name="Amazon UK", kind=Channel.Kind.AMAZON,
                                             marketplace_id="A1F83G8C2ARO7P",
                                             api_base_url="http://127.0.0.1:8100/amazon/uk"))
    assert not Location.objects.filter(kind=Location.Kind.EXTERNAL).exists()

    channel.fba_enabled = True
    channel_settings_update(channel=channel, changed_fields=["fba_enabled"])
    channel_settings_update(channel=channel, changed_fields=["fba_enabled"])

    location = Location.objects.get(kind=Location.Kind.EXTERNAL)
    assert (location.name, location.fulfilment.channel) == ("FBA – Amazon UK", channel)
    assert not location.is_default


def test_only_an_external_fulfilment_centre_belongs_to_a_channel(amazon):
    link = FulfilmentLocation(channel=amazon, location=LocationFactory(name="Shop floor"))

    with pytest.raises(ValidationError) as refused:
        link.full_clean()

    assert refused.value.message_dict["location"] == ["Only an external fulfilment centre belongs to a channel."]


def test_turning_fba_off_keeps_the_location_and_its_stock_but_stops_its_sync(sandbox, amazon, mug):
    sandbox.fba_inventory("uk", [{"sku": "MUG", "fulfillable": 6}])
    fba_inventory_sync(channel_id=amazon.pk)

    amazon.fba_enabled = False
    channel_settings_update(channel=amazon, changed_fields=["fba_enabled"])

    assert level(mug, fba_of(amazon)).quantity == 6
    assert StockMovement.objects.filter(location=fba_of(amazon)).count() == 1
    assert not beat(amazon, "fba").enabled and not beat(amazon, "fba_outbound").enabled
    with pytest.raises(ValidationError, match="FBA sync is off for Amazon UK"):
        fba_inventory_sync(channel_id=amazon.pk)


# --- FBA stock sync ----------------------------------------------------------------------------


def test_fba_sync_sets_the_fba_location_through_the_ledger_and_reports_unknown_skus(sandbox, amazon, mug, warehouse):
    lamp = StockItemFactory(sku="LAMP")
    amazon.listings.create(channel_sku="LAMP-FBA", stock_item=lamp, fulfilled_by_channel=True)
    sandbox.fba_inventory("uk", [{"sku": "MUG", "fulfillable": 7}, {"sku": "LAMP-FBA", "fulfillable": 2},
                                 {"sku": "MYSTERY", "fulfillable": 1}])

    run = fba_inventory_sync(channel_id=amazon.pk)

    fba = fba_of(amazon)
    assert (level(mug, fba).quantity, level(lamp, fba).quantity) == (7, 2)
    assert level(mug, warehouse).quantity == 10
    movements = StockMovement.objects.filter(location=fba)
    assert sorted((m.stock_item.sku, m.delta, m.reason) for m in movements) == [
        ("LAMP", 2, StockMovement.Reason.FBA_SYNC), ("MUG", 7, StockMovement.Reason.FBA_SYNC)]
    assert run.status == "partial" and [e["record_id"] for e in run.errors] == ["MYSTERY"]


def test_a_second_fba_sync_writes_only_the_levels_that_changed(sandbox, amazon, mug):
    lamp = StockItemFactory(sku="LAMP")
    sandbox.fba_inventory("uk", [{"sku": "MUG", "fulfillable": 7}, {"sku": "LAMP", "fulfillable": 2}])
    fba_inventory_sync(channel_id=amazon.pk)
    sandbox.fba_inventory("uk", [{"sku": "MUG", "fulfillable": 4}])

    out = io.StringIO()
    call_command("sync_fba", "Amazon UK", stdout=out)

    movements = StockMovement.objects.filter(location=fba_of(amazon)).order_by("pk")
    assert [(m.stock_item.sku, m.delta, m.quantity_after) for m in movements][2:] == [("MUG", -3, 4)]
    assert level(lamp, fba_of(amazon)).quantity == 2
    assert out.getvalue() == "Amazon UK: 1 FBA stock level(s) changed, 1 already right (success)\n"


def test_sync_fba_refuses_in_one_readable_line(sandbox):
    connect(sandbox, "amazon", "uk", "Amazon UK", fba_enabled=True)

    with pytest.raises(CommandError) as refused:
        call_command("sync_fba", "Amazon UK")
    with pytest.raises(CommandError, match="No channel is named 'Nope'"):
        call_command("sync_fba", "Nope")

    assert str(refused.value) == (
        "FBA sync is off for Amazon UK: it needs Enabled, FBA enabled and FBA sync inventory ticked."
    )


def test_only_fba_syncing_amazon_channels_get_an_enabled_fba_beat_row(sandbox, amazon):
    ekm = connect(sandbox, "ekm", "shop", "EKM shop")
    plain = connect(sandbox, "amazon", "de", "Amazon DE")

    assert beat(amazon, "fba").enabled and beat(amazon, "fba").task == "channels.tasks.inventory_fba_sync_task"
    assert not beat(plain, "fba").enabled
    assert not PeriodicTask.objects.filter(name=f"channel-{ekm.pk}-fba").exists()


# --- Unified accounts --------------------------------------------------------------------------


def test_a_unified_account_syncs_only_from_its_controlling_channel(sandbox, amazon, mug):
    germany = connect(sandbox, "amazon", "de", "Amazon DE", seller_id=amazon.seller_id, fba_enabled=True,
                      marketplace_id="A1PA6795UKMFR9")
    sandbox.fba_inventory("uk", [{"sku": "MUG", "fulfillable": 5}])

    with pytest.raises(ValidationError, match="FBA sync is off for Amazon DE"):
        fba_inventory_sync(channel_id=germany.pk)
    germany.fba_sync_inventory = True
    germany.save()
    with pytest.raises(ValidationError) as refused:
        fba_inventory_sync(channel_id=amazon.pk)

    assert "Amazon UK and Amazon DE both have FBA Sync Inventory on" in refused.value.messages[0]
    assert "tick FBA Sync Inventory on the one channel that controls the FBA location" in refused.value.messages[0]
    assert not StockMovement.objects.filter(reason=StockMovement.Reason.FBA_SYNC).exists()


def test_the_config_form_refuses_a_second_fba_syncing_channel_for_one_seller(sandbox, amazon):
    germany = connect(sandbox, "amazon", "de", "Amazon DE", seller_id=amazon.seller_id, fba_enabled=True,
                      marketplace_id="A1PA6795UKMFR9")
    germany.fba_sync_inventory = True

    with pytest.raises(ValidationError) as refused:
        germany.full_clean()

    assert "Amazon UK already syncs this seller's FBA stock" in refused.value.message_dict["fba_sync_inventory"][0]


def test_a_unified_accounts_afn_orders_go_to_the_controlling_channels_fba_location(sandbox, amazon, mug):
    germany = connect(sandbox, "amazon", "de", "Amazon DE", seller_id=amazon.seller_id, fba_enabled=True,
                      marketplace_id="A1PA6795UKMFR9")
    sandbox.orders("amazon", "de", [{"fulfilled_by_channel": True, "currency": "EUR",
                                     "items": [{"sku": "MUG", "quantity": 1, "price": "12.00"}]}])

    orders_download(channel_id=germany.pk)

    assert Order.objects.get().fulfilment_location == fba_of(amazon)
    assert level(mug, fba_of(amazon)).in_open_orders == 1


# --- AFN orders --------------------------------------------------------------------------------


def test_afn_orders_are_recorded_at_fba_never_despatched_and_never_touch_the_warehouse(
    sandbox, amazon, mug, warehouse, django_capture_on_commit_callbacks
):
    sandbox.fba_inventory("uk", [{"sku": "MUG", "fulfillable": 4}])
    fba_inventory_sync(channel_id=amazon.pk)
    [order_id] = sandbox.orders("amazon", "uk", [{"fulfilled_by_channel": True,
                                                  "items": [{"sku": "MUG", "quantity": 2, "price": "9.99"}]}])
    with django_capture_on_commit_callbacks(execute=True):
        orders_download(channel_id=amazon.pk)
    order = Order.objects.get()

    assert order.fulfilled_by_channel and order.fulfilment_location == fba_of(amazon)
    assert (level(mug, warehouse).available, level(mug, fba_of(amazon)).in_open_orders) == (10, 2)
    with pytest.raises(ValidationError, match="fulfilled by Amazon"):
        order_process(order_id=order.pk, tracking_number="X")

    sandbox.order_status("amazon", "uk", order_id, "SHIPPED")
    with django_capture_on_commit_callbacks(execute=True):
        orders_download(channel_id=amazon.pk)

    order.refresh_from_db()
    assert order.status == Order.Status.PROCESSED and order.processed_at
    assert not order.despatch_sent_at
    assert sandbox.received("amazon", "uk")["shipments"] == []
    # Released, not consumed: FBA stock is Amazon's count, and the next sync brings the drop.
    fba_level = level(mug, fba_of(amazon))
    assert (fba_level.quantity, fba_level.in_open_orders) == (4, 0)
    assert level(mug, warehouse).quantity == 10


def test_fba_stock_is_never_sent_to_merchant_fulfilled_listings(sandbox, amazon, mug):
    ekm = connect(sandbox, "ekm", "shop", "EKM shop")
    sandbox.listings("ekm", "shop", [{"sku": "MUG", "title": "Mug", "quantity": 0, "price": "9.99"}])
    listings_download(channel_id=ekm.pk)
    sandbox.fba_inventory("uk", [{"sku": "MUG", "fulfillable": 50}])

    fba_inventory_sync(channel_id=amazon.pk)
    inventory_push(channel_id=ekm.pk, full=True)

    assert level(mug, fba_of(amazon)).quantity == 50
    assert sandbox.received("ekm", "shop")["stock"]["MUG"]["quantity"] == 10


# --- Reallocation and multi-channel fulfilment -------------------------------------------------


@pytest.fixture
def ekm_order(sandbox, mug, django_capture_on_commit_callbacks):
    ekm = connect(sandbox, "ekm", "shop", "EKM shop")
    sandbox.orders("ekm", "shop", [{"items": [{"sku": "MUG", "quantity": 2, "price": "9.99"}], "paid": True,
                                    "address": {"first_name": "Jo", "last_name": "Bloggs", "line1": "1 High Street",
                                                "city": "York", "postcode": "YO1 7HH"}}])
    with django_capture_on_commit_callbacks(execute=True):
        orders_download(channel_id=ekm.pk)
    return Order.objects.get(channel=ekm)


def test_an_ekm_order_fulfilled_from_fba_is_confirmed_on_ekm_with_amazons_tracking(
    sandbox, amazon, mug, warehouse, ekm_order, django_capture_on_commit_callbacks
):
    sandbox.fba_inventory("uk", [{"sku": "MUG", "fulfillable": 5}])
    fba_inventory_sync(channel_id=amazon.pk)
    assert level(mug, warehouse).available == 8

    with django_capture_on_commit_callbacks(execute=True):
        order_reallocate(order_id=ekm_order.pk, location_id=fba_of(amazon).pk)

    [to_amazon] = sandbox.received("amazon", "uk")["fulfillment_orders"]
    assert (to_amazon["displayable_order_id"], to_amazon["address"]["name"], to_amazon["items"][0]["quantity"]) == (
        ekm_order.channel_order_id, "Jo Bloggs", 2)
    ekm_order.refresh_from_db()
    assert sent(ekm_order).status == FulfilmentOrder.Status.RECEIVED
    assert level(mug, warehouse).available == 10 and level(mug, fba_of(amazon)).in_open_orders == 2

    # Amazon's fulfillable count leaves out what the order holds, and a sync may read it before Amazon ships.
    fba_inventory_sync(channel_id=amazon.pk)
    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(3):
            fba_outbound_follow(channel_id=amazon.pk)

    tracking = sandbox.received("amazon", "uk")["fulfillment_orders"][0]["tracking_number"]
    shipments = sandbox.received("ekm", "shop")["shipments"]
    assert [s["tracking_number"] for s in shipments] == [tracking]
    ekm_order.refresh_from_db()
    assert ekm_order.status == Order.Status.PROCESSED and ekm_order.tracking_number == tracking
    assert sent(ekm_order).status == FulfilmentOrder.Status.COMPLETE and ekm_order.despatch_sent_at
    assert level(mug, warehouse).quantity == 10
    # Shipping ends the reservation without taking the mugs off again: FBA stock is Amazon's count.
    fba_level = level(mug, fba_of(amazon))
    assert (fba_level.quantity, fba_level.in_open_orders) == (3, 0)


def test_an_order_with_amazon_cannot_be_processed_cancelled_or_moved_here(
    sandbox, amazon, warehouse, ekm_order, django_capture_on_commit_callbacks
):
    sandbox.fba_inventory("uk", [{"sku": "MUG", "fulfillable": 5}])
    with django_capture_on_commit_callbacks(execute=True):
        order_reallocate(order_id=ekm_order.pk, location_id=fba_of(amazon).pk)

    for attempt in (lambda: order_process(order_id=ekm_order.pk, tracking_number="RM1"),
                    lambda: order_cancel(order_id=ekm_order.pk),
                    lambda: order_reallocate(order_id=ekm_order.pk, location_id=warehouse.pk)):
        with pytest.raises(ValidationError, match="Amazon"):
            attempt()


def test_amazons_refusal_is_kept_on_the_order_and_says_what_to_do(
    sandbox, amazon, mug, ekm_order, django_capture_on_commit_callbacks
):
    sandbox.fba_inventory("uk", [{"sku": "MUG", "fulfillable": 1}])

    with django_capture_on_commit_callbacks(execute=True):
        order_reallocate(order_id=ekm_order.pk, location_id=fba_of(amazon).pk)

    ekm_order.refresh_from_db()
    assert sent(ekm_order).status == FulfilmentOrder.Status.REFUSED
    assert "1 fulfillable, 2 requested" in sent(ekm_order).error
    assert sandbox.received("amazon", "uk")["fulfillment_orders"] == []

    sandbox.fba_inventory("uk", [{"sku": "MUG", "fulfillable": 3}])
    with django_capture_on_commit_callbacks(execute=True):
        order_reallocate(order_id=ekm_order.pk, location_id=fba_of(amazon).pk)

    ekm_order.refresh_from_db()
    assert sent(ekm_order).status == FulfilmentOrder.Status.RECEIVED and not sent(ekm_order).error


def test_a_euro_order_needs_convert_currency_to_be_fulfilled_from_uk_fba(
    sandbox, amazon, mug, django_capture_on_commit_callbacks
):
    rakuten = connect(sandbox, "rakuten", "fr", "Rakuten FR")
    sandbox.orders("rakuten", "fr", [{"items": [{"sku": "MUG", "quantity": 1, "price": "12.50"}]}])
    with django_capture_on_commit_callbacks(execute=True):
        orders_download(channel_id=rakuten.pk)
    order = Order.objects.get(channel=rakuten)
    sandbox.fba_inventory("uk", [{"sku": "MUG", "fulfillable": 5}])

    with django_capture_on_commit_callbacks(execute=True):
        order_reallocate(order_id=order.pk, location_id=fba_of(amazon).pk)
    order.refresh_from_db()
    assert sent(order).status == FulfilmentOrder.Status.REFUSED
    assert "tick FBA Convert Currency on Amazon UK" in sent(order).error

    amazon.fba_convert_currency = True
    amazon.save()
    with django_capture_on_commit_callbacks(execute=True):
        order_reallocate(order_id=order.pk, location_id=fba_of(amazon).pk)

    [to_amazon] = sandbox.received("amazon", "uk")["fulfillment_orders"]
    assert (to_amazon["items"][0]["declared_value"], to_amazon["items"][0]["currency"]) == ("12.50", "GBP")


def test_reallocation_moves_the_reservation_and_refuses_closed_orders(mug, warehouse):
    second = LocationFactory(name="Overflow")
    StockLevelFactory(stock_item=mug, location=second, quantity=3)
    from tests.orders.factories import OrderFactory, OrderItemFactory

    # A channel that is not told of despatches: what this test processes is the stock, not the channel's rules.
    order = OrderFactory(fulfilment_location=warehouse, channel__mark_as_despatched=False)
    OrderItemFactory(order=order, stock_item=mug, quantity=2)
    StockLevel.objects.filter(stock_item=mug, location=warehouse).update(in_open_orders=2)

    order_reallocate(order_id=order.pk, location_id=second.pk)

    assert (level(mug, warehouse).in_open_orders, level(mug, second).in_open_orders) == (0, 2)
    order_process(order_id=order.pk, tracking_number="RM1")
    assert level(mug, second).quantity == 1
    with pytest.raises(ValidationError, match="already processed"):
        order_reallocate(order_id=order.pk, location_id=warehouse.pk)


def test_staff_send_an_order_to_amazon_by_choosing_the_fba_location_on_its_page(
    admin_client, sandbox, amazon, mug, warehouse, ekm_order, django_capture_on_commit_callbacks
):
    sandbox.fba_inventory("uk", [{"sku": "MUG", "fulfillable": 5}])
    fba_inventory_sync(channel_id=amazon.pk)
    url = reverse("admin:orders_order_change", args=(ekm_order.pk,))

    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(url, change_form_data(admin_client, url, fulfilment_location=fba_of(amazon).pk))

    [to_amazon] = sandbox.received("amazon", "uk")["fulfillment_orders"]
    assert to_amazon["displayable_order_id"] == ekm_order.channel_order_id
    ekm_order.refresh_from_db()
    assert sent(ekm_order).status == FulfilmentOrder.Status.RECEIVED
    assert level(mug, warehouse).in_open_orders == 0 and level(mug, fba_of(amazon)).in_open_orders == 2
