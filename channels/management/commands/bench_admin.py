"""Time the admin's changelists on a real-sized catalogue in a scratch PostgreSQL database.

Builds 100k stock items at two warehouses, 5 channels listing every item (500k listings), 100k orders
with 1-3 lines, a ledger row per level and a month of sync runs, with set-based SQL; then renders each
changelist of the hub's apps with the test client as a superuser and prints the median server time and
the number of queries per page. The scratch database is dropped at the end unless --keep.
"""

from __future__ import annotations

import statistics
import time

from django.conf import settings
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, reset_queries
from django.test import Client
from django.urls import reverse

from channels.management.commands.bench_inventory import Command as InventoryBench
from channels.management.commands.bench_inventory import _insert_select
from channels.models import Channel, ChannelListing, OrderStatusMapping, ShippingMapping, SyncRun
from inventory.models import Location, StockItem, StockLevel, StockMovement
from orders.models import Order, OrderItem, PostalService

SCRATCH_DB = "stockline_bench_admin"
HUB_APPS = ("channels", "inventory", "orders")
TARGET_MS = 300


class Command(BaseCommand):
    help = "Render every changelist on 100k items / 500k listings / 100k orders (scratch PostgreSQL only)."

    def add_arguments(self, parser):
        parser.add_argument("--skus", type=int, default=100_000)
        parser.add_argument("--channels", type=int, default=5)
        parser.add_argument("--orders", type=int, default=100_000)
        parser.add_argument("--runs", type=int, default=5)
        parser.add_argument("--keep", action="store_true", help="Keep the scratch database afterwards.")

    def handle(self, *args, skus, channels, orders, runs, keep, **options):
        if connection.vendor != "postgresql":
            raise CommandError("bench_admin needs PostgreSQL: set DATABASE_URL to a postgres:// server.")
        # As in production: DEBUG off (no statement log to format), the test client's host allowed.
        settings.DEBUG = False
        settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
        scratch = InventoryBench()
        scratch_settings = connection.settings_dict
        original_name = scratch_settings["NAME"]
        with scratch._server(scratch_settings) as server:
            server.execute(f"DROP DATABASE IF EXISTS {SCRATCH_DB} WITH (FORCE)")
            server.execute(f"CREATE DATABASE {SCRATCH_DB}")
        try:
            scratch._use(SCRATCH_DB)
            call_command("migrate", verbosity=0)
            started = time.perf_counter()
            self._build(skus=skus, channels=channels, orders=orders)
            self.stdout.write(f"built in {time.perf_counter() - started:.1f} s")
            self._measure(runs=runs)
        finally:
            scratch._use(original_name)
            if not keep:
                with scratch._server(scratch_settings) as server:
                    server.execute(f"DROP DATABASE IF EXISTS {SCRATCH_DB} WITH (FORCE)")

    def _build(self, *, skus: int, channels: int, orders: int) -> None:
        warehouses = [Location.objects.create(name=f"Warehouse {n + 1}", is_default=n == 0) for n in range(2)]
        postal = PostalService.objects.create(name="Royal Mail 1st Class")
        _insert_select(
            StockItem,
            {"sku": "'SKU-' || lpad(g::text, 7, '0')", "title": "'Bench item ' || g", "retail_price": "9.99"},
            "FROM generate_series(1, %s) AS g", [skus],
        )
        _insert_select(
            StockLevel,
            {"stock_item_id": "i.id", "location_id": "w.id", "quantity": "(i.id * 7 + w.id * 13) %% 60"},
            f"FROM {StockItem._meta.db_table} AS i CROSS JOIN {Location._meta.db_table} AS w",
        )
        _insert_select(
            StockMovement,
            {"stock_item_id": "l.stock_item_id", "location_id": "l.location_id", "delta": "l.quantity + 1",
             "quantity_after": "l.quantity + 1", "reason": "'import'", "reference": "'bench'"},
            f"FROM {StockLevel._meta.db_table} AS l",
        )
        for n in range(channels):
            kind = ("amazon", "ekm", "rakuten")[n % 3]
            channel = Channel.objects.create(
                name=f"Bench {kind} {n + 1}", kind=kind, api_base_url="http://127.0.0.1:8100/bench",
                **Channel.defaults_for(kind),
            )
            _insert_select(
                ChannelListing,
                {"channel_id": str(channel.pk), "channel_sku": "i.sku", "external_id": "'L' || i.id",
                 "title": "i.title", "stock_item_id": "CASE WHEN i.id %% 20 = 0 THEN NULL ELSE i.id END",
                 "channel_quantity": "i.id %% 30", "last_pushed_quantity": "i.id %% 29",
                 "push_pending": "i.id %% 7 = 0"},
                f"FROM {StockItem._meta.db_table} AS i",
            )
            _insert_select(
                SyncRun,
                {"channel_id": str(channel.pk), "kind": "(ARRAY['orders','inventory'])[1 + g %% 2]",
                 "status": "'success'", "started_at": "now() - g * interval '15 minutes'", "processed": "g %% 40"},
                "FROM generate_series(1, 2880) AS g",
            )
            OrderStatusMapping.objects.create(channel=channel, channel_status="PAID", hub_status="paid")
            ShippingMapping.objects.create(channel=channel, tag="Standard", postal_service=postal)
        first = Channel.objects.order_by("pk").first()
        _insert_select(
            Order,
            {"channel_id": str(first.pk), "channel_order_id": "'BENCH-' || g",
             "received_at": "now() - g * interval '1 minute'", "fulfilment_location_id": str(warehouses[0].pk),
             "status": "(ARRAY['paid','processed','cancelled'])[1 + g %% 3]", "is_paid": "true",
             "has_unlinked_items": "g %% 50 = 0"},
            "FROM generate_series(1, %s) AS g", [orders],
        )
        _insert_select(
            OrderItem,
            {"order_id": "o.id", "stock_item_id": f"1 + (o.id * 31 + n * 17) %% {skus}", "channel_line_id": "n::text",
             "channel_sku": "'SKU'", "quantity": "1 + n"},
            f"FROM {Order._meta.db_table} AS o CROSS JOIN generate_series(0, 2) AS n WHERE n <= o.id %% 3",
        )
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
        self.stdout.write(
            f"catalogue: {StockItem.objects.count()} stock items, {ChannelListing.objects.count()} listings, "
            f"{Order.objects.count()} orders, {StockMovement.objects.count()} movements, "
            f"{SyncRun.objects.count()} sync runs"
        )

    def _measure(self, *, runs: int) -> None:
        user = get_user_model().objects.create_superuser("bench", "bench@example.com", "bench")
        client = Client()
        client.force_login(user)
        names = sorted(
            f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist"
            for model in admin.site._registry if model._meta.app_label in HUB_APPS
        )
        pages = [(name, reverse(name)) for name in names]
        pages.append(("admin:channels_channel_dashboard", reverse("admin:channels_channel_dashboard")))
        slow = 0
        for name, url in pages:
            timings, queries = [], 0
            for _ in range(runs + 1):
                settings.DEBUG = True  # for the query count only; timing runs below are without it
                reset_queries()
                response = client.get(url, secure=True)
                queries = len(connection.queries)
                settings.DEBUG = False
                started = time.perf_counter()
                response = client.get(url, secure=True)
                timings.append((time.perf_counter() - started) * 1000)
                if response.status_code != 200:
                    raise CommandError(f"{url} answered {response.status_code}")
            median = statistics.median(timings[1:])
            slow += median >= TARGET_MS
            flag = "" if median < TARGET_MS else f"  over {TARGET_MS} ms"
            self.stdout.write(f"{name.removeprefix('admin:'):40} {median:7.1f} ms  {queries:3d} queries{flag}")
        self.stdout.write(f"{len(pages) - slow} of {len(pages)} pages under {TARGET_MS} ms (median of {runs})")
