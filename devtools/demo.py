"""Demo data: a small shop on three channels, all talking to the local sandbox.

Everything goes through the same services staff and sync use (stock through the ledger, listings by a
real listing download, orders by a real order download from the sandbox), so the demo shows the product
working, not rows typed into tables. Running it again changes nothing.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.db import transaction

from channels.models import Channel, OrderStatusMapping, ShippingMapping
from channels.scheduling import channel_beat_schedule_update
from channels.sync.listings_download import listings_download
from channels.sync.order_download import orders_download
from inventory.models import Location, StockItem, StockItemProperty, StockLevel, StockMovement
from inventory.services import stock_levels_set_bulk
from orders.models import Order, PostalService
from sandbox.control import RAKUTEN_IMPORT_PROFILE_ID, SandboxControl

DEMO_USERNAME = "demo"
DEMO_PASSWORD = "stockline-demo"
CATALOGUE_SIZE = 300
MAIN_WAREHOUSE = "Main Warehouse"
OVERFLOW_STORE = "Overflow Store"

ADJECTIVES = ["Classic", "Organic", "Vintage", "Compact", "Deluxe", "Eco", "Travel", "Pro", "Mini", "Giant"]
NOUNS = ["Mug", "Teapot", "Notebook", "Lamp", "Backpack", "Candle", "Scarf", "Speaker", "Bottle", "Planter",
         "Apron", "Blanket", "Clock", "Frame", "Jigsaw"]

POSTAL_SERVICES = [
    ("Royal Mail 1st Class", "Royal Mail",
     "https://www.royalmail.com/track-your-item#/tracking-results/{tracking_number}"),
    ("Royal Mail 2nd Class", "Royal Mail",
     "https://www.royalmail.com/track-your-item#/tracking-results/{tracking_number}"),
    ("DPD Next Day", "DPD", "https://track.dpd.co.uk/parcels/{tracking_number}"),
    ("Colissimo", "Colissimo", "https://www.laposte.fr/outils/suivre-vos-envois?code={tracking_number}"),
]


@dataclass(frozen=True)
class DemoChannel:
    name: str
    kind: str
    account: str
    credentials: dict
    seller_id: str
    marketplace_id: str
    statuses: dict[str, str]
    shipping: dict[str, str]
    skus: range
    orders: int


DEMO_AMAZON_APPLICATION = "amzn1.sp.solution.00000000-0000-4000-8000-000000000001"

DEMO_CHANNELS = [
    DemoChannel(
        name="Amazon UK (demo)", kind=Channel.Kind.AMAZON, account="demo-amazon",
        credentials={"client_id": "amzn1.application-oa2-client.demo", "client_secret": "demo-lwa-secret",
                     "refresh_token": "Atzr|demo-refresh-token", "application_id": DEMO_AMAZON_APPLICATION},
        seller_id="A2DEMOSELLER", marketplace_id="A1F83G8C2ARO7P",
        statuses={"PENDING": Order.Status.UNPAID, "UNSHIPPED": Order.Status.PAID,
                  "PARTIALLY_SHIPPED": Order.Status.PAID, "SHIPPED": Order.Status.PROCESSED,
                  "CANCELLED": Order.Status.CANCELLED},
        shipping={"Standard": "Royal Mail 1st Class", "Expedited": "DPD Next Day"},
        skus=range(1, 241), orders=4,
    ),
    DemoChannel(
        name="EKM Shop (demo)", kind=Channel.Kind.EKM, account="demo-ekm",
        credentials={"client_id": "demo-ekm-client", "client_secret": "demo-ekm-secret",
                     "refresh_token": "demo-ekm-refresh-1"},
        seller_id="", marketplace_id="",
        statuses={"PENDING": Order.Status.PAID, "PROCESSING": Order.Status.PAID,
                  "DISPATCHED": Order.Status.PROCESSED, "COMPLETE": Order.Status.PROCESSED,
                  "CANCELLED": Order.Status.CANCELLED},
        shipping={"Royal Mail 1st Class": "Royal Mail 1st Class", "Next Day Courier": "DPD Next Day"},
        skus=range(1, 301), orders=4,
    ),
    DemoChannel(
        name="eBay UK (demo)", kind=Channel.Kind.EBAY, account="demo-ebay",
        credentials={"client_id": "Demo-Stockline-PRD-0123456789", "client_secret": "PRD-demo-cert-id",
                     "ru_name": "Demo-Stockline-PRD-runame", "refresh_token": "v^1.1#i^1#r^1#demo-refresh",
                     "deletion_verification_token": "demo_account_deletion_verification_token_0123"},
        seller_id="", marketplace_id="EBAY_GB",
        statuses={"PENDING": Order.Status.UNPAID, "NOT_STARTED": Order.Status.PAID, "IN_PROGRESS": Order.Status.PAID,
                  "FULFILLED": Order.Status.PROCESSED, "CANCELED": Order.Status.CANCELLED,
                  "FULLY_REFUNDED": Order.Status.CANCELLED},
        shipping={"UK_RoyalMailSecondClassStandard": "Royal Mail 2nd Class", "UK_DPDNextDay": "DPD Next Day"},
        skus=range(1, 181), orders=3,
    ),
    DemoChannel(
        name="Rakuten France (demo)", kind=Channel.Kind.RAKUTEN, account="demo-rakuten",
        credentials={"login": "demo-rakuten-login", "token": "demo-rakuten-token"},
        seller_id="demo-rakuten-login", marketplace_id="",
        statuses={"REQUESTED": Order.Status.PENDING, "ACCEPTED": Order.Status.PAID,
                  "SHIPPED": Order.Status.PROCESSED, "CANCELLED": Order.Status.CANCELLED,
                  "REFUSED": Order.Status.CANCELLED},
        shipping={"Normal": "Colissimo"},
        skus=range(61, 301), orders=3,
    ),
    DemoChannel(
        name="WooCommerce shop (demo)", kind=Channel.Kind.WOOCOMMERCE, account="demo-woocommerce",
        credentials={"consumer_key": "ck_demowoocommerce", "consumer_secret": "cs_demo-woocommerce-secret"},
        seller_id="", marketplace_id="",
        statuses={"pending": Order.Status.UNPAID, "on-hold": Order.Status.UNPAID, "processing": Order.Status.PAID,
                  "completed": Order.Status.PROCESSED, "cancelled": Order.Status.CANCELLED},
        shipping={"Flat rate": "Royal Mail 1st Class"},
        skus=range(1, 201), orders=3,
    ),
    DemoChannel(
        name="Shopify Shop (demo)", kind=Channel.Kind.SHOPIFY, account="demo-shopify",
        credentials={"client_id": "demo-shopify-client", "client_secret": "demo-shopify-secret"},
        seller_id="", marketplace_id="",
        statuses={"PENDING": Order.Status.UNPAID, "UNFULFILLED": Order.Status.PAID,
                  "PARTIALLY_FULFILLED": Order.Status.PAID, "FULFILLED": Order.Status.PROCESSED,
                  "CANCELLED": Order.Status.CANCELLED},
        shipping={"Standard Shipping": "Royal Mail 1st Class", "Express": "DPD Next Day"},
        skus=range(1, 201), orders=3,
    ),
]


def demo_sku(number: int) -> str:
    return f"DEMO-{number:04d}"


def _catalogue(*, rng: random.Random) -> list[StockItem]:
    items = [
        StockItem(
            sku=demo_sku(n),
            title=f"{ADJECTIVES[n % len(ADJECTIVES)]} {NOUNS[n % len(NOUNS)]} #{n}",
            barcode=f"50{n:011d}",
            retail_price=Decimal(rng.randrange(299, 8999)) / 100,
        )
        for n in range(1, CATALOGUE_SIZE + 1)
    ]
    StockItem.objects.bulk_create(items, ignore_conflicts=True)
    return list(StockItem.objects.filter(sku__in=[item.sku for item in items]))


@transaction.atomic
def _load_stock(*, rng: random.Random) -> tuple[Location, Location]:
    main, _ = Location.objects.get_or_create(name=MAIN_WAREHOUSE, defaults={"is_default": True})
    overflow, _ = Location.objects.get_or_create(name=OVERFLOW_STORE)
    for name, carrier, template in POSTAL_SERVICES:
        PostalService.objects.get_or_create(
            name=name, defaults={"carrier_code": carrier, "tracking_url_template": template}
        )
    items = _catalogue(rng=rng)
    # Stock only items that have no stock level yet, so a second run leaves staff's changes alone.
    stocked = set(StockLevel.objects.filter(stock_item__in=items).values_list("stock_item_id", flat=True))
    rows = []
    for item in items:
        if item.pk in stocked:
            continue
        # A level at 0 is still written: the item is known at the main warehouse, and it marks the item stocked.
        rows.append((item.pk, main.pk, rng.choice([0, 1, 2, 3, 5, 8, 12, 20, 35, 60])))
        if rng.random() < 0.3:
            rows.append((item.pk, overflow.pk, rng.randrange(1, 40)))
    if rows:
        stock_levels_set_bulk(rows=rows, reason=StockMovement.Reason.DEMO, reference="Demo data")
    StockItemProperty.objects.bulk_create(
        [StockItemProperty(stock_item=item, name="Latency", value=str(rng.choice([1, 2, 3])))
         for item in items if item.pk % 7 == 0],
        ignore_conflicts=True,
    )
    return main, overflow


def _channel(
    *, demo: DemoChannel, sandbox_url: str, control: SandboxControl, rng: random.Random
) -> tuple[Channel, bool]:
    """The hub's channel and the sandbox account it talks to; created together, never reset by a rerun."""
    base_url = f"{sandbox_url.rstrip('/')}/{demo.kind}/{demo.account}"
    channel = Channel.objects.filter(name=demo.name).first()
    if channel is not None and control.account_exists(demo.kind, demo.account):
        return channel, False
    control.account(demo.kind, demo.account, credentials=demo.credentials, seller_id=demo.seller_id,
                    marketplace_id=demo.marketplace_id)
    control.listings(demo.kind, demo.account, [
        {"sku": demo_sku(n), "title": f"{ADJECTIVES[n % len(ADJECTIVES)]} {NOUNS[n % len(NOUNS)]} #{n}",
         "quantity": rng.randrange(0, 30), "price": f"{rng.randrange(299, 8999) / 100:.2f}"}
        for n in demo.skus
    ])
    fields = {
        **Channel.defaults_for(demo.kind),
        "kind": demo.kind, "api_base_url": base_url,
        "auth_base_url": base_url if demo.kind in ("amazon", "ekm") else "",
        "seller_id": demo.seller_id, "marketplace_id": demo.marketplace_id,
        # The sandbox account registers the application (its consent page refuses another); the channel keeps
        # the id as an account setting, not as a secret.
        "credentials": {key: value for key, value in demo.credentials.items()
                        if key not in ("login", "application_id")},
        "application_id": demo.credentials.get("application_id", ""),
        "needs_reauthorisation": False, "last_order_sync": Channel.defaults_for(demo.kind)["last_order_sync"],
        # The stock import profile every sandbox Rakuten account has.
        "import_profile_id": RAKUTEN_IMPORT_PROFILE_ID if demo.kind == Channel.Kind.RAKUTEN else "",
    }
    if demo.kind == Channel.Kind.EKM:
        fields["shop_url"] = "https://demo-shop.example"
    channel, _ = Channel.objects.update_or_create(name=demo.name, defaults=fields)
    postal = dict(PostalService.objects.values_list("name", "pk"))
    OrderStatusMapping.objects.bulk_create(
        [OrderStatusMapping(channel=channel, channel_status=s, hub_status=h) for s, h in demo.statuses.items()],
        ignore_conflicts=True,
    )
    ShippingMapping.objects.bulk_create(
        [ShippingMapping(channel=channel, tag=tag, postal_service_id=postal[name])
         for tag, name in demo.shipping.items()],
        ignore_conflicts=True,
    )
    tags = list(demo.shipping)
    control.orders(demo.kind, demo.account, [
        {"items": [{"sku": demo_sku(rng.choice(demo.skus)), "quantity": rng.randrange(1, 3),
                    "price": f"{rng.randrange(299, 4999) / 100:.2f}"}],
         "shipping_tag": rng.choice(tags), "paid": True}
        for _ in range(demo.orders)
    ])
    return channel, True


def demo_user() -> tuple[str, bool]:
    user, created = get_user_model().objects.get_or_create(
        username=DEMO_USERNAME, defaults={"is_staff": True, "is_superuser": True, "email": "demo@example.com"}
    )
    if created:
        user.set_password(DEMO_PASSWORD)
        user.save(update_fields=["password"])
    return user.username, created


def demo_load(*, sandbox_url: str) -> list[str]:
    """Load the demo and return what was done, one line per step."""
    rng = random.Random(20261129)
    control = SandboxControl(sandbox_url)
    report = []
    main, overflow = _load_stock(rng=rng)
    report.append(f"Stock: {StockItem.objects.count()} items in {MAIN_WAREHOUSE} and {OVERFLOW_STORE}")
    for demo in DEMO_CHANNELS:
        channel, _ = _channel(demo=demo, sandbox_url=sandbox_url, control=control, rng=rng)
        channel_beat_schedule_update(channel=channel)
        # Each step runs until it has happened once, so a run cut short is completed by the next one.
        done = []
        if not channel.listings.exists():
            run = listings_download(channel_id=channel.pk)
            done.append(f"{run.processed} listings downloaded")
        if not channel.orders.exists():
            run = orders_download(channel_id=channel.pk)
            done.append(f"{run.processed} orders downloaded")
        report.append(f"{channel.name}: {', '.join(done) or 'already set up'}")
    return report
