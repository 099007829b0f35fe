"""The staff's screens: Channel Integration list, Test before Save, mapping pages, listings, orders, dashboard."""

import json
from datetime import timedelta
from unittest import mock
from urllib.parse import parse_qs

import pytest
import responses
from django.contrib.admin.models import LogEntry
from django.contrib.messages import get_messages
from django.urls import reverse
from django.utils import timezone

from channels.connectors.base import ChannelAuthError, ConnectionResult
from channels.models import Channel, OrderStatusMapping, ShippingMapping, SyncRun
from orders.models import Order
from tests.channels.factories import (
    ChannelFactory,
    ChannelListingFactory,
    OrderStatusMappingFactory,
    RakutenChannelFactory,
    ShippingMappingFactory,
    SyncRunFactory,
    waiting_for_push,
)
from tests.inventory.factories import LocationFactory, StockItemFactory, StockLevelFactory
from tests.orders.factories import OrderFactory, OrderItemFactory, PostalServiceFactory

pytestmark = pytest.mark.django_db

EKM = "http://127.0.0.1:8100/ekm/demo"
WRAP = {"meta": {"pages_total": 1, "items_total": 0}, "links": {}, "validation_result": [], "errors": []}


def messages_of(response):
    return [str(m) for m in get_messages(response.wsgi_request)]


def test_the_list_shows_last_runs_health_and_buttons(admin_client):
    ok = ChannelFactory(name="Shop OK")
    SyncRunFactory(channel=ok, kind=SyncRun.Kind.ORDERS, status=SyncRun.Status.SUCCESS, processed=12)
    broken = ChannelFactory(name="Shop errors")
    SyncRunFactory(channel=broken, kind=SyncRun.Kind.INVENTORY, status=SyncRun.Status.FAILED, failed=3)
    ChannelFactory(name="Shop reauth", needs_reauthorisation=True)

    page = admin_client.get(reverse("admin:channels_channel_changelist")).content.decode()

    assert "health-ok" in page and "health-errors" in page and "health-reauthorise" in page
    assert "(12 done)" in page and "3 failed" in page
    assert page.count(">Config</a>") == 3 and page.count(">Test</button>") == 3
    assert page.count(">Reauthorise</a>") == 3


def test_test_from_the_list_comes_back_to_the_list(admin_client):
    channel = ChannelFactory()
    with mock.patch("channels.admin.channel_views.channel_test", return_value=ConnectionResult(True, "Connected")):
        response = admin_client.post(reverse("admin:channels_channel_test", args=(channel.pk,)) + "?next=list")
    assert response["Location"] == reverse("admin:channels_channel_changelist")
    assert any("Connected" in m for m in messages_of(response))


@responses.activate
def test_test_before_save_uses_the_form_and_the_save_keeps_the_rotated_token(admin_client):
    def refresh(request):
        token = parse_qs(request.body)["refresh_token"][0]
        return 200, {}, json.dumps({"access_token": "a", "expires_in": 3600, "refresh_token": f"{token}-next"})

    responses.add_callback(responses.POST, f"{EKM}/connect/token", callback=refresh)
    responses.add(responses.GET, f"{EKM}/api/v1/settings/shop_information",
                  json={**WRAP, "data": {"shop_name": "Teapots Ltd"}})
    form = {
        "name": "EKM", "kind": "ekm", "api_base_url": EKM, "currency": "GBP", "utc_offset_hours": "0",
        "last_order_sync_0": "0001-01-01", "last_order_sync_1": "00:00:00", "end_when_quantity": "0",
        "latency_days": "0", "latency_property_name": "Latency", "enabled": "on", "inventory_sync": "on",
        "credential_client_id": "id", "credential_client_secret": "secret", "credential_refresh_token": "typed",
    }

    answer = admin_client.post(reverse("admin:channels_channel_test_unsaved") + "?kind=ekm", form).json()

    assert answer["ok"] and "Teapots Ltd" in answer["message"]
    assert not Channel.objects.exists()
    response = admin_client.post(
        reverse("admin:channels_channel_add") + "?kind=ekm",
        {**form, "tested_credentials": answer["tested_credentials"]},
    )
    assert response.status_code == 302
    assert Channel.objects.get().credentials["refresh_token"] == "typed-next"


def test_test_before_save_names_the_missing_account_details(admin_client):
    answer = admin_client.post(reverse("admin:channels_channel_test_unsaved") + "?kind=ekm", {"name": "x"}).json()
    assert not answer["ok"] and "Client secret" in answer["message"]


def test_location_mapping_ticks_need_the_switch_and_saving_is_audited(admin_client):
    channel = ChannelFactory()
    main, _ = LocationFactory(name="Main"), LocationFactory(name="Overflow")
    url = reverse("admin:channels_channel_location_mapping", args=(channel.pk,))

    page = admin_client.get(url).content.decode()
    assert 'name="locations"' in page and "disabled" in page

    refused = admin_client.post(url, {"update_inventory_from_locations": "on"})
    assert "Tick at least one location" in refused.content.decode()

    response = admin_client.post(url, {"update_inventory_from_locations": "on", "locations": [main.pk]})
    assert response.status_code == 302
    channel.refresh_from_db()
    assert channel.update_inventory_from_locations and list(channel.inventory_locations.all()) == [main]
    assert any("Location mapping saved" in m for m in messages_of(response))
    assert "from Main" in LogEntry.objects.get(object_id=str(channel.pk)).get_change_message()


def test_status_mapping_offers_seen_and_connector_statuses(admin_client):
    channel = RakutenChannelFactory()
    OrderFactory(channel=channel, channel_status="SEEN_ONLY_HERE")
    url = reverse("admin:channels_channel_status_mapping", args=(channel.pk,))

    form = admin_client.get(url).context["form"]
    # Rakuten's item statuses (channels/connectors/rakuten/contract) include ACCEPTED and CLOSED.
    assert "SEEN_ONLY_HERE" in form.statuses and "ACCEPTED" in form.statuses and "CLOSED" in form.statuses

    data = {f"status_{i}": "unmapped" for i in range(len(form.statuses))}
    data[f"status_{form.statuses.index('CLOSED')}"] = Order.Status.PROCESSED
    response = admin_client.post(url, data)

    assert response.status_code == 302
    assert OrderStatusMapping.objects.get(channel=channel, channel_status="CLOSED").hub_status == "processed"
    assert "CLOSED → Processed (shipped)" in LogEntry.objects.get(object_id=str(channel.pk)).get_change_message()


def test_the_config_page_counts_the_statuses_the_mapping_page_shows(admin_client):
    channel = RakutenChannelFactory()
    OrderStatusMappingFactory(channel=channel, channel_status="ACCEPTED", hub_status=Order.Status.PAID)
    shown = admin_client.get(reverse("admin:channels_channel_status_mapping", args=(channel.pk,))).context["form"]

    config = admin_client.get(reverse("admin:channels_channel_change", args=(channel.pk,))).content.decode()

    assert f"{len(shown.statuses)} statuses, {len(shown.statuses) - 1} unmapped." in config


def test_status_mapping_when_the_channel_refuses_the_credentials_shows_the_seen_statuses_and_flags_it(
    admin_client, monkeypatch
):
    channel = ChannelFactory()
    OrderFactory(channel=channel, channel_status="SEEN_ONLY_HERE")

    class Refusing:
        def order_statuses(self):
            raise ChannelAuthError("EKM: the access token was refused")

    monkeypatch.setattr("channels.sync.connections.channel_connector", lambda channel: Refusing())
    response = admin_client.get(reverse("admin:channels_channel_status_mapping", args=(channel.pk,)))

    assert response.status_code == 200 and "SEEN_ONLY_HERE" in response.context["form"].statuses
    assert "could not be fetched" in response.content.decode()
    channel.refresh_from_db()
    assert channel.needs_reauthorisation and "refused" in channel.reauthorisation_reason


def test_shipping_mapping_lists_every_tag_seen_and_adds_one(admin_client):
    channel = ChannelFactory()
    service = PostalServiceFactory(name="DPD Next Day")
    OrderFactory(channel=channel, channel_shipping_tag="Next Day Courier")
    ShippingMappingFactory(channel=channel, tag="Standard")
    url = reverse("admin:channels_channel_shipping_mapping", args=(channel.pk,))
    form = admin_client.get(url).context["form"]
    assert form.tags == ["Next Day Courier", "Standard"]

    response = admin_client.post(url, {"tag_0": service.pk, "tag_1": "", "new_tag": "Express",
                                       "new_tag_service": service.pk})

    assert response.status_code == 302
    mapped = dict(ShippingMapping.objects.filter(channel=channel).values_list("tag", "postal_service_id"))
    assert mapped == {"Next Day Courier": service.pk, "Standard": None, "Express": service.pk}
    assert LogEntry.objects.filter(object_id=str(channel.pk)).count() == 1


def test_download_status_reports_progress_while_running(admin_client):
    channel = ChannelFactory(
        listing_download_in_progress=True, listing_download_started_at=timezone.now(),
        listing_download_done=50, listing_download_total=200,
        listing_download_estimated_completion=timezone.now(),
    )
    state = admin_client.get(reverse("admin:channels_channel_download_status", args=(channel.pk,))).json()
    assert state["running"] and state["percent"] == 25 and state["started"] and state["estimated_completion"]

    listings = admin_client.get(
        reverse("admin:channels_channellisting_changelist") + f"?channel__id__exact={channel.pk}"
    )
    assert 'class="download-progress"' in listings.content.decode()


def test_listing_filters_and_auto_link_by_sku(admin_client):
    channel = ChannelFactory()
    item = StockItemFactory(sku="MUG")
    unlinked = ChannelListingFactory(channel=channel, stock_item=None, channel_sku="MUG")
    ChannelListingFactory(channel=channel, stock_item=None, channel_sku="NO-SUCH-ITEM")
    pushed_at = timezone.now() - timedelta(hours=1)
    drifting = ChannelListingFactory(channel=channel, channel_quantity=5, downloaded_at=timezone.now(),
                                     last_pushed_quantity=3, last_pushed_at=pushed_at)
    # Read from the channel before the hub's push: the push since is what the channel holds, no drift.
    ChannelListingFactory(channel=channel, channel_quantity=5, downloaded_at=pushed_at - timedelta(minutes=1),
                          last_pushed_quantity=3, last_pushed_at=pushed_at)
    url = reverse("admin:channels_channellisting_changelist")

    assert list(admin_client.get(url + "?drift=yes").context["cl"].result_list) == [drifting]
    assert len(admin_client.get(url + "?linked=no").context["cl"].result_list) == 2

    response = admin_client.post(url, {"action": "auto_link_by_sku", "_selected_action": [unlinked.pk]})

    assert any("1 listing(s) linked by SKU" in m for m in messages_of(response))
    unlinked.refresh_from_db()
    assert unlinked.stock_item == item and waiting_for_push(unlinked)


def test_stock_item_page_shows_levels_listings_with_explanation_and_ledger(admin_client):
    level = StockLevelFactory(quantity=10, in_open_orders=2)
    ChannelListingFactory(stock_item=level.stock_item)
    page = admin_client.get(reverse("admin:inventory_stockitem_change", args=(level.stock_item.pk,))).content.decode()
    assert "What each channel gets" in page and "Available" in page and "Stock movements" in page


def test_an_order_is_processed_from_its_own_page(admin_client):
    level = StockLevelFactory(quantity=5, in_open_orders=1)
    order = OrderItemFactory(stock_item=level.stock_item, order__fulfilment_location=level.location).order
    # EKM is told of a despatch through the shipped status it is mapped to.
    OrderStatusMappingFactory(channel=order.channel, channel_status="DISPATCHED", hub_status=Order.Status.PROCESSED)
    service = PostalServiceFactory()
    change = admin_client.get(reverse("admin:orders_order_change", args=(order.pk,))).content.decode()
    assert ">Process</a>" in change and ">Cancel order</a>" in change

    url = reverse("admin:orders_order_process", args=(order.pk,))
    assert "Process orders" in admin_client.get(url).content.decode()
    response = admin_client.post(url, {"apply": "1", "postal_service": service.pk, "tracking_number": "TRK1"})

    assert response["Location"] == reverse("admin:orders_order_change", args=(order.pk,))
    order.refresh_from_db()
    assert order.status == Order.Status.PROCESSED and order.tracking_number == "TRK1"


def test_order_list_shows_items_status_on_both_sides_and_the_unlinked_flag(admin_client):
    OrderItemFactory(order__has_unlinked_items=True, order__channel_status="Awaiting dispatch", quantity=2)
    OrderItemFactory(order__has_unlinked_items=False)
    response = admin_client.get(reverse("admin:orders_order_changelist") + "?open=yes")
    page = response.content.decode()
    assert response.status_code == 200 and "column-items_count" in page
    assert page.count("unlinked item</span>") == 1
    assert "Awaiting dispatch on the channel" in page


def test_dashboard_shows_runs_errors_oversold_and_chart(admin_client):
    channel = ChannelFactory(name="EKM shop")
    SyncRunFactory(channel=channel, kind=SyncRun.Kind.INVENTORY, status=SyncRun.Status.FAILED, error="boom",
                   processed=7)
    waiting = ChannelListingFactory(channel=channel, push_pending=True)
    oversold = StockLevelFactory(quantity=1, in_open_orders=3)
    OrderFactory(channel=channel)
    refused = OrderFactory(channel=channel, status=Order.Status.PROCESSED, channel_told=Order.ChannelTold.REFUSED,
                           despatch_error="No tracking number")

    page = admin_client.get(reverse("admin:channels_channel_dashboard")).content.decode()

    assert "EKM shop" in page and "boom" in page and oversold.stock_item.sku in page
    assert "<svg" in page and "7 quantities pushed" in page and "2 orders downloaded" in page
    assert reverse("admin:channels_channel_dashboard") in admin_client.get(reverse("admin:index")).content.decode()
    assert "<th>Pending push</th><td><a" in page and ">1</a>" in page
    waiting_list = admin_client.get(reverse("admin:channels_channellisting_changelist") + "?waiting=yes")
    assert list(waiting_list.context["cl"].result_list) == [waiting]
    assert "<th>Channel not told</th>" in page
    not_told = admin_client.get(reverse("admin:orders_order_changelist")
                                + f"?channel__id__exact={channel.pk}&channel_told=not_told")
    assert list(not_told.context["cl"].result_list) == [refused]
