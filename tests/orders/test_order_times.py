"""An order's received time is the instant the buyer ordered: orders of every channel sort on it and the download's
watermark moves to it; the channel's UTC offset setting only says which clock the order's "received (channel time)"
is read on; every time shown to staff is in the one configured zone (STOCKLINE_TIME_ZONE)."""

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone

from channels.connectors.base import ExternalAddress, ExternalOrder, ExternalOrderItem, OrderPage, WatermarkPolicy
from channels.dashboard import activity_by_day
from channels.sync.order_download import orders_download, orders_store_page
from orders.models import Order
from tests.channels.factories import AmazonChannelFactory, ChannelFactory, OrderStatusMappingFactory
from tests.inventory.factories import LocationFactory
from tests.orders.factories import OrderFactory

pytestmark = pytest.mark.django_db

# Winter: London reads UTC, so the staff's zone and an offset-0 channel agree and Amazon's clock is an hour on.
AMAZON_ORDERED = datetime(2026, 12, 2, 14, 30, tzinfo=UTC)
EKM_ORDERED = datetime(2026, 12, 2, 15, 0, tzinfo=UTC)


def external(order_id: str, *, created_at: datetime) -> ExternalOrder:
    return ExternalOrder(
        channel_order_id=order_id, channel_status="PAID", is_paid=True, is_cancelled=False,
        created_at=created_at, updated_at=created_at,
        items=(ExternalOrderItem(line_id="1", sku="MUG", title="Mug", quantity=1, unit_price=Decimal("12.00")),),
        buyer_name="Ann Buyer", buyer_email="ann@example.com",
        shipping_address=ExternalAddress(name="Ann Buyer", line1="1 High St", city="Leeds", country="GB"),
        subtotal=Decimal("12.00"), total=Decimal("12.00"),
    )


@pytest.fixture
def amazon():
    LocationFactory(name="Main", is_default=True)
    return AmazonChannelFactory(name="Amazon UK", utc_offset_hours=Decimal("1"))


@pytest.fixture
def ekm():
    return ChannelFactory(name="EKM shop", utc_offset_hours=Decimal("0"))


@pytest.fixture
def downloaded(amazon, ekm):
    """An Amazon order placed at 14:30 UTC and an EKM order placed later, at 15:00 UTC."""
    for channel, order_id, at in ((amazon, "AMZ-1", AMAZON_ORDERED), (ekm, "EKM-1", EKM_ORDERED)):
        OrderStatusMappingFactory(channel=channel, channel_status="PAID", hub_status=Order.Status.PAID)
        orders_store_page(channel=channel, page=OrderPage(orders=(external(order_id, created_at=at),)))
    return {"amazon": Order.objects.get(channel_order_id="AMZ-1"), "ekm": Order.objects.get(channel_order_id="EKM-1")}


def listed_order_numbers(client, query: str = "") -> list[str]:
    page = client.get(reverse("admin:orders_order_changelist") + query).content.decode()
    return re.findall(r'class="field-channel_order_id"><a [^>]*>([^<]+)</a>', page)


def test_orders_of_every_channel_sort_on_the_instant_the_buyer_ordered(admin_client, downloaded):
    assert downloaded["amazon"].received_at == AMAZON_ORDERED
    # Newest first, and sorted by the column both ways: the later EKM order is above Amazon's.
    assert listed_order_numbers(admin_client) == ["EKM-1", "AMZ-1"]
    assert listed_order_numbers(admin_client, "?o=5") == ["AMZ-1", "EKM-1"]
    assert listed_order_numbers(admin_client, "?o=-5") == ["EKM-1", "AMZ-1"]


class OneOrderConnector:
    watermark_policy = WatermarkPolicy.LATEST_ORDER
    order_overlap = timedelta(minutes=5)
    reads_order_details_apart = False

    def fetch_orders(self, since, until=None):
        yield OrderPage(orders=(external("AMZ-2", created_at=AMAZON_ORDERED),))


def test_the_watermark_moves_to_the_instant_of_the_latest_order(amazon, monkeypatch):
    OrderStatusMappingFactory(channel=amazon, channel_status="PAID", hub_status=Order.Status.PAID)
    monkeypatch.setattr("channels.sync.order_download.channel_connector", lambda channel: OneOrderConnector())

    orders_download(channel_id=amazon.pk)

    amazon.refresh_from_db()
    assert amazon.last_order_sync == AMAZON_ORDERED


@override_settings(TIME_ZONE="Europe/London")
def test_the_order_page_and_list_show_the_received_time_on_the_channels_clock_too(admin_client, downloaded):
    page = admin_client.get(reverse("admin:orders_order_change", args=(downloaded["amazon"].pk,))).content.decode()
    assert "Received (channel time)" in page
    assert "2 Dec 2026, 3:30 p.m. (UTC+1)" in page
    listed = admin_client.get(reverse("admin:orders_order_changelist")).content.decode()
    assert "2 Dec 2026, 2:30 p.m.<br><span class=\"quiet\">2 Dec 2026, 3:30 p.m. (UTC+1) channel time" in listed
    # The EKM order's clock reads as the staff's: said once.
    assert "2 Dec 2026, 3 p.m.</td>" in listed


@override_settings(TIME_ZONE="America/New_York")
def test_times_are_shown_in_the_configured_time_zone(admin_client, downloaded):
    page = admin_client.get(reverse("admin:orders_order_change", args=(downloaded["ekm"].pk,))).content.decode()
    # 15:00 UTC is 10 a.m. in New York in December; the EKM shop's clock (offset 0) still reads 3 p.m.
    assert re.search(r'field-received_at.*?<div class="readonly">2 Dec 2026, 10 a\.m\.</div>', page, re.S)
    assert "2 Dec 2026, 3 p.m. (UTC+0)" in page


@override_settings(TIME_ZONE="Pacific/Kiritimati")
def test_the_dashboards_days_are_the_staffs_days(ekm):
    # Kiritimati is 14 hours ahead of UTC: its day starts while the UTC day before is still going.
    start_of_today = timezone.make_aware(datetime.combine(timezone.localdate(), datetime.min.time()))
    for at in (start_of_today + timedelta(minutes=1), start_of_today - timedelta(minutes=1)):
        Order.objects.filter(pk=OrderFactory(channel=ekm).pk).update(created_at=at)

    *_, yesterday, today = activity_by_day(days=2)

    assert (today.day, today.orders) == (timezone.localdate(), 1)
    assert (yesterday.day, yesterday.orders) == (timezone.localdate() - timedelta(days=1), 1)


@pytest.mark.django_db(transaction=True)
def test_the_migration_takes_each_channels_offset_off_stored_orders_and_puts_it_back():
    executor = MigrationExecutor(connection)
    latest = executor.loader.graph.leaf_nodes()
    executor.migrate([("orders", "0010_channel_told_from_history")])
    apps = MigrationExecutor(connection).loader.project_state([("orders", "0010_channel_told_from_history")]).apps
    channel_model, order_model = apps.get_model("channels", "Channel"), apps.get_model("orders", "Order")
    shifted = {"amazon": Decimal("1"), "ekm": Decimal("0"), "west": Decimal("-2.5")}
    for name, hours in shifted.items():
        channel = channel_model.objects.create(name=name, kind="ekm", utc_offset_hours=hours)
        # Stored as the download used to: the instant plus the channel's offset.
        order_model.objects.create(channel=channel, channel_order_id=name,
                                   received_at=AMAZON_ORDERED + timedelta(hours=float(hours)))

    def received() -> dict[str, datetime]:
        return dict(Order.objects.values_list("channel_order_id", "received_at"))

    try:
        MigrationExecutor(connection).migrate(latest)
        assert received() == dict.fromkeys(shifted, AMAZON_ORDERED)

        MigrationExecutor(connection).migrate([("orders", "0010_channel_told_from_history")])
        assert received() == {name: AMAZON_ORDERED + timedelta(hours=float(h)) for name, h in shifted.items()}
    finally:
        MigrationExecutor(connection).migrate(latest)
