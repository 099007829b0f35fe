"""A shop on three sandbox channels, and the one check every fault test ends with: the hub converged.

Converged means what a seller would check after an outage: every order the channels hold is in the hub
exactly once, the stock held by open orders is exactly what those orders need, every channel shows the
quantity the hub computes for it, and a despatch was confirmed once.
"""

from __future__ import annotations

from collections import Counter

import pytest
import redis
from django.conf import settings
from django.db.models import Count, Sum

from channels.models import Channel, ListingPushMark
from channels.selectors import listing_quantities
from channels.sync.inventory_push import inventory_push
from channels.sync.listings_download import listings_download
from inventory.models import StockLevel
from orders.models import Order, OrderItem
from sandbox.control import RAKUTEN_IMPORT_PROFILE_ID, default_credentials
from tests.inventory.factories import LocationFactory, StockItemFactory, StockLevelFactory

KINDS = ("amazon", "ekm", "rakuten")
PAID = {"amazon": "UNSHIPPED", "ekm": "PENDING", "rakuten": "ACCEPTED"}
SHIPPED = {"amazon": "SHIPPED", "ekm": "DISPATCHED", "rakuten": "SHIPPED"}
SKUS = [f"SKU-{n:02d}" for n in range(12)]
STOCK = 1000


def account(kind: str) -> str:
    return f"{kind}-faults"


def connect(sandbox, kind: str) -> Channel:
    credentials = default_credentials(kind, account(kind))
    # Quotas off: a fault test injects its own 429s and must not trip over the sandbox's buckets.
    created = sandbox.account(kind, account(kind), credentials=credentials, rate_limits={"profile": "off"})
    url = sandbox.channel_url(kind, account(kind))
    channel = Channel.objects.create(**{
        **Channel.defaults_for(kind), "name": f"{kind} faults", "kind": kind, "api_base_url": url,
        "auth_base_url": url if kind != "rakuten" else "",
        "seller_id": credentials.get("login", created["seller_id"]),
        "marketplace_id": created.get("marketplace_id") or ("A1F83G8C2ARO7P" if kind == "amazon" else ""),
        "credentials": {key: value for key, value in credentials.items() if key != "login"},
        "import_profile_id": RAKUTEN_IMPORT_PROFILE_ID if kind == "rakuten" else "",
    })
    channel.status_mappings.create(channel_status=PAID[kind], hub_status="paid")
    channel.status_mappings.create(channel_status=SHIPPED[kind], hub_status="processed")
    return channel


def build_shop(sandbox) -> dict[str, Channel]:
    """Twelve SKUs with plenty of stock, listed on three channels and pushed once."""
    warehouse = LocationFactory(name="Main warehouse", is_default=True)
    for sku in SKUS:
        StockLevelFactory(stock_item=StockItemFactory(sku=sku), location=warehouse, quantity=STOCK)
    channels = {}
    for kind in KINDS:
        channels[kind] = connect(sandbox, kind)
        sandbox.listings(kind, account(kind), [{"sku": sku, "title": sku, "quantity": 0, "price": "9.99"}
                                               for sku in SKUS])
        listings_download(channel_id=channels[kind].pk)
        inventory_push(channel_id=channels[kind].pk, full=True)
    return channels


@pytest.fixture
def shop(sandbox):
    return build_shop(sandbox)


def generate_orders(sandbox, kind: str, count: int) -> list[str]:
    return [str(order_id) for order_id in sandbox.orders(kind, account(kind), generate=count, skus=SKUS)]


def push_everywhere(channels: dict[str, Channel]) -> None:
    for channel in channels.values():
        inventory_push(channel_id=channel.pk)


def run_like_a_worker(task, *args, attempts: int = 5) -> str:
    """Run a task inline as a worker would, retries included: each Retry runs it again once its
    countdown has passed (simulated by refilling the rate-limit buckets). Returns the final result."""
    from celery.exceptions import Retry

    from channels.connectors.ratelimit import in_process_limiter

    for _ in range(attempts):
        try:
            return task.apply(args=args, throw=True).get()
        except Retry:
            in_process_limiter().reset()
            if settings.REDIS_URL:
                client = redis.Redis.from_url(settings.REDIS_URL)
                client.delete(*client.keys("stockline:ratelimit:*") or ["-"])
    raise AssertionError(f"{task.name}{args} still retrying after {attempts} attempts")


def assert_orders_exactly_once(sandbox, channel: Channel) -> None:
    on_channel = {str(order["order_id"]) for order in sandbox.orders(channel.kind, account(channel.kind))}
    in_hub = Counter(Order.objects.filter(channel=channel).values_list("channel_order_id", flat=True))
    missing, extra = on_channel - set(in_hub), set(in_hub) - on_channel
    assert not missing and not extra, f"{channel.kind}: missing {missing}, extra {extra}"
    assert max(in_hub.values(), default=1) == 1, f"{channel.kind}: duplicated {[k for k, v in in_hub.items() if v > 1]}"
    lines = OrderItem.objects.filter(order__channel=channel).values("order_id", "channel_line_id")
    assert not lines.annotate(n=Count("id")).filter(n__gt=1).exists(), f"{channel.kind}: an order line twice"


def assert_reservations_exact() -> None:
    needed = dict(
        OrderItem.objects.filter(order__status__in=Order.OPEN_STATUSES, stock_item__isnull=False)
        .values_list("stock_item_id").annotate(total=Sum("quantity"))
    )
    held = dict(StockLevel.objects.values_list("stock_item_id").annotate(total=Sum("in_open_orders")))
    assert {k: v for k, v in held.items() if v} == needed


def assert_channels_show_the_hubs_quantities(sandbox, channels: dict[str, Channel]) -> None:
    for kind, channel in channels.items():
        stock = sandbox.received(kind, account(kind))["stock"]
        wanted = {q.channel_sku: q.quantity for q in listing_quantities(channel_id=channel.pk)}
        shown = {sku: stock.get(sku, {}).get("quantity") for sku in wanted}
        assert shown == wanted, f"{kind}: the channel shows {shown}, the hub computes {wanted}"
        assert not ListingPushMark.objects.filter(channel=channel).exists()


def assert_converged(sandbox, channels: dict[str, Channel]) -> None:
    for channel in channels.values():
        assert_orders_exactly_once(sandbox, channel)
    assert_reservations_exact()
    assert_channels_show_the_hubs_quantities(sandbox, channels)
