"""Time the admin's changelists on a real-sized catalogue in a scratch PostgreSQL database.

Builds 100k stock items at two warehouses, 5 channels listing every item (500k listings), 100k orders
with 1-3 lines, a ledger row per level and a month of sync runs, with set-based SQL; then renders each
changelist of the hub's apps with the test client as a superuser and prints the median server time and
the number of queries per page; then every filter choice, sortable column (both ways) and a search of
each list, printing the slowest. The scratch database is dropped at the end unless --keep.
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
from django.test import Client, RequestFactory
from django.urls import resolve, reverse

from channels.models import (
    Channel,
    ChannelListing,
    ListingPushMark,
    ListingPushState,
    OrderStatusMapping,
    ShippingMapping,
    SyncRun,
)
from devtools.management.commands.bench_inventory import Command as InventoryBench
from devtools.management.commands.bench_inventory import _insert_select
from inventory.models import Location, StockItem, StockLevel, StockMovement
from orders.models import Order, OrderItem, PostalService

SCRATCH_DB = "stockline_bench_admin"
HUB_APPS = ("channels", "inventory", "orders")
TARGET_MS = 300
# What staff type in each list's search box: one SKU, a title's words, an order number.
SEARCHES = {
    "orders.Order": ["BENCH-50000", "bench"],
    "*": ["SKU-0050000", "Bench+item+5000"],
}


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
                 "channel_quantity": "i.id %% 30"},
                f"FROM {StockItem._meta.db_table} AS i",
            )
            _insert_select(
                ListingPushState,
                {"listing_id": "l.id", "channel_id": "l.channel_id", "last_pushed_quantity": "l.id %% 29"},
                f"FROM {ChannelListing._meta.db_table} AS l WHERE l.channel_id = %s", [channel.pk],
            )
            _insert_select(
                ListingPushMark, {"listing_id": "l.id", "channel_id": "l.channel_id"},
                f"FROM {ChannelListing._meta.db_table} AS l WHERE l.channel_id = %s AND l.id %% 7 = 0", [channel.pk],
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
            # As autovacuum leaves the tables after a bulk load: statistics current, index pending lists merged.
            cursor.execute("VACUUM ANALYZE")
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
        self.stdout.write("Default pages:")
        slow = []
        defaults = [(name.removeprefix("admin:"), reverse(name)) for name in names]
        defaults.append(("dashboard", reverse("admin:channels_channel_dashboard")))
        for label, url in defaults:
            median, queries = self._time(client, url, runs=runs)
            slow += [url] if median >= TARGET_MS else []
            self.stdout.write(f"  {label:40} {median:7.1f} ms  {queries:3d} queries{self._flag(median)}")

        self.stdout.write("Every filter choice, sortable column (both ways) and a search, per list (slowest shown):")
        views_timed = 0
        for name in names:
            views = self._views(user, name)
            timed = [(self._time(client, url, runs=max(1, runs // 2)), url) for url in views]
            views_timed += len(timed)
            (worst, queries), worst_url = max(timed)
            slow += [url for (median, _), url in timed if median >= TARGET_MS]
            self.stdout.write(f"  {name.removeprefix('admin:'):40} {len(timed):3d} views, slowest {worst:7.1f} ms "
                              f"{queries:3d} queries  {worst_url}{self._flag(worst)}")
        pages = len(defaults) + views_timed
        self.stdout.write(f"{pages - len(slow)} of {pages} pages under {TARGET_MS} ms (median of {runs})")
        for url in slow:
            self.stdout.write(f"  over {TARGET_MS} ms: {url}")

    def _views(self, user, name: str) -> list[str]:
        """The URLs a user reaches from a list's default page: its filters, sortable headers and search."""
        url = reverse(name)
        request = RequestFactory().get(url, secure=True)
        request.user = user
        changelist = resolve(url).func.model_admin.get_changelist_instance(request)
        views = [
            url + choice["query_string"]
            for spec in changelist.filter_specs for choice in spec.choices(changelist)
            if choice["query_string"] not in ("?", "")
        ]
        for position, field in enumerate(changelist.list_display):
            if field == "action_checkbox" or changelist.sortable_by is not None and field not in changelist.sortable_by:
                continue
            if changelist.get_ordering_field(field) is None:
                continue
            views += [f"{url}?o={position}", f"{url}?o=-{position}"]
        if changelist.search_fields:
            views += [f"{url}?q={term}" for term in SEARCHES.get(changelist.model._meta.label, SEARCHES["*"])]
        return list(dict.fromkeys(views))

    @staticmethod
    def _time(client: Client, url: str, *, runs: int) -> tuple[float, int]:
        settings.DEBUG = True  # for the query count only; the timed requests below are without it
        reset_queries()
        response = client.get(url, secure=True)
        queries = len(connection.queries)
        settings.DEBUG = False
        if response.status_code != 200:
            raise CommandError(f"{url} answered {response.status_code}")
        timings = []
        for _ in range(runs):
            started = time.perf_counter()
            client.get(url, secure=True)
            timings.append((time.perf_counter() - started) * 1000)
        return statistics.median(timings), queries

    @staticmethod
    def _flag(median: float) -> str:
        return "" if median < TARGET_MS else f"  over {TARGET_MS} ms"
