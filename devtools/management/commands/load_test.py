"""Load test: orders pour in on three channels for a few minutes; two workers and beat keep up.

Builds a scratch shop (SKUs `LOAD-…`, channels `load-…`) against a sandbox started in this process, with
a few hot SKUs taking a large share of the orders. Starts two Celery workers and beat (order downloads
every few seconds) on PostgreSQL + Redis, injects the orders at an even pace, waits for every order to be
imported and every listing pushed, and prints what a seller would check: orders imported, duplicates,
oversold units, listings whose channel quantity differs from the hub's computation, pushes per second
and the order-to-push latency. Removes the scratch data at the end.
"""

from __future__ import annotations

import json
import math
import os
import random
import subprocess
import tempfile
import time
from collections import Counter
from datetime import datetime

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from django.db.models import Count, F, Max, Sum
from django.utils import timezone
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from channels.models import Channel, ListingPushMark, SyncRun
from channels.scheduling import channel_beat_schedule_update
from channels.selectors import listing_quantities
from channels.sync.inventory_push import inventory_push
from channels.sync.listings_download import listings_download
from devtools.benchmarks import (
    add_quota_argument,
    beat_command,
    connector_quotas,
    database_migrated_or_error,
    hub_env,
    hub_process_start,
    hub_processes_stop,
    percentile,
    scratch_shop_delete,
    worker_command,
)
from inventory.models import Location, StockItem, StockLevel, StockMovement
from inventory.services import stock_levels_set_bulk
from orders.models import Order
from sandbox.control import RAKUTEN_IMPORT_PROFILE_ID, SandboxControl, default_credentials
from sandbox.testing import running_sandbox

KINDS = ("amazon", "ekm", "rakuten")
PAID = {"amazon": "UNSHIPPED", "ekm": "PENDING", "rakuten": "ACCEPTED"}
# The sandbox's quotas are lifted: this measures the hub (the connectors' own follow --published-limits).
SANDBOX_LIMITS = {"*": {"rate": 10000, "burst": 10000}}
HOT_SKUS_SHARE = 0.01
HOT_ORDERS_SHARE = 0.3
ORDER_QUEUES = "default,orders,listings,despatch"



def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


class Command(BaseCommand):
    help = "Load test: N orders over M minutes on three channels, two workers and beat on PostgreSQL + Redis."

    def add_arguments(self, parser):
        parser.add_argument("--orders", type=int, default=10_000, help="Orders to inject, over three channels.")
        parser.add_argument("--skus", type=int, default=10_000, help="SKUs in the catalogue.")
        parser.add_argument("--minutes", type=float, default=3, help="Minutes over which the orders arrive.")
        parser.add_argument("--download-every", type=int, default=5,
                            help="Seconds between beat's order downloads (with --published-limits, none sooner "
                                 "than the channel's quota allows).")
        parser.add_argument("--timeout", type=float, default=600, help="Seconds to wait, after the last order, "
                                                                          "for every import and push.")
        parser.add_argument("--seed", type=int, default=1)
        add_quota_argument(parser)

    def handle(self, *args, published_limits, **options):
        database_migrated_or_error()
        with connector_quotas(published=published_limits):
            self._measure(**options)

    def _measure(self, *, orders, skus, minutes, download_every, timeout, seed, **options):
        if connection.vendor != "postgresql" or not settings.REDIS_URL:
            raise CommandError("load_test needs PostgreSQL and Redis: set DATABASE_URL and REDIS_URL.")
        self.stdout.write(f"Connector rate limits: {settings.CHANNEL_RATE_LIMITS}")
        if Channel.objects.filter(name__startswith="load-").exists():
            raise CommandError("Scratch channels load-… already exist: another run is going, or remove them.")
        self.random = random.Random(seed)
        processes: list[subprocess.Popen] = []
        try:
            with running_sandbox() as sandbox_url, tempfile.TemporaryDirectory(prefix="load-beat-") as scratch:
                control = SandboxControl(sandbox_url)
                catalogue = [f"LOAD-{n:05d}" for n in range(skus)]
                channels = self._shop(control=control, skus=catalogue, orders=orders, download_every=download_every)
                self.stdout.write(f"Shop ready: {skus} SKUs on {len(channels)} channels, baseline pushed.")
                # Stopped, and waited for, while the sandbox still answers: no task of theirs meets it closed.
                try:
                    processes.extend(self._start(scratch))
                    self._run(control=control, channels=channels, skus=catalogue, orders=orders, minutes=minutes,
                              timeout=timeout)
                finally:
                    if killed := hub_processes_stop(processes):
                        self.stderr.write(f"{killed} of the hub processes started here did not stop within 30 s: "
                                          "killed.")
        finally:
            scratch_shop_delete(prefix="load")

    def _start(self, scratch: str) -> list[subprocess.Popen]:
        """Two workers, split by queue as the README's deployment has them, and one beat: the order downloads
        (and the other queues) on one process, so a push never waits behind a download; the pushes on one
        process per channel, as each channel's pushes go one at a time (its push lock) and an Amazon feed push
        spends most of its time waiting for Amazon to process the feed."""
        commands = [
            worker_command(hostname=f"load-orders-{os.getpid()}", concurrency=1, queues=ORDER_QUEUES),
            worker_command(hostname=f"load-pushes-{os.getpid()}", concurrency=len(KINDS), queues="inventory"),
        ]
        return [hub_process_start(command, env=hub_env())
                for command in [*commands, beat_command(scratch=scratch)]]

    def _shop(self, *, control: SandboxControl, skus: list[str], orders: int, download_every: int):
        location = Location.objects.create(name="load-warehouse")
        items = StockItem.objects.bulk_create([StockItem(sku=sku, title=f"Load item {sku}") for sku in skus])
        self.hot = skus[: max(1, int(len(skus) * HOT_SKUS_SHARE))]
        # Stock allows every order: a hot SKU gets twice its expected share, the rest a few units.
        hot_stock = 2 * int(orders * HOT_ORDERS_SHARE / len(self.hot)) + 5
        stock_levels_set_bulk(rows=[(item.pk, location.pk, hot_stock if item.sku in self.hot else 20)
                                    for item in items], reason=StockMovement.Reason.ADJUSTMENT, reference="load_test")
        every, _ = IntervalSchedule.objects.get_or_create(every=download_every, period=IntervalSchedule.SECONDS)
        # The download task skips a run sooner than the kind's quota allows (Amazon: 179 s) whatever the limits;
        # with them lifted, beat's downloads go every --download-every s as asked.
        paced = json.dumps({} if settings.CHANNEL_RATE_LIMITS == "published" else {"paced": False})
        channels = {}
        for kind in KINDS:
            account = f"load-{kind}"
            credentials = default_credentials(kind, account)
            control.account(kind, account, credentials=credentials, seller_id=credentials.get("login", "LOAD"),
                            marketplace_id="A1F83G8C2ARO7P" if kind == "amazon" else "", rate_limits=SANDBOX_LIMITS)
            for start in range(0, len(skus), 2000):
                control.listings(kind, account, [{"sku": sku, "title": sku, "quantity": 0, "price": "9.99"}
                                                 for sku in skus[start:start + 2000]])
            base_url = control.channel_url(kind, account)
            channel = Channel.objects.create(**{
                **Channel.defaults_for(kind), "name": account, "kind": kind, "api_base_url": base_url,
                "auth_base_url": base_url if kind != "rakuten" else "", "seller_id": credentials.get("login", "LOAD"),
                "marketplace_id": "A1F83G8C2ARO7P" if kind == "amazon" else "",
                "credentials": {k: v for k, v in credentials.items() if k != "login"},
                "import_profile_id": RAKUTEN_IMPORT_PROFILE_ID if kind == "rakuten" else "",
            })
            channel.status_mappings.create(channel_status=PAID[kind], hub_status="paid")
            listings_download(channel_id=channel.pk)
            inventory_push(channel_id=channel.pk, full=True)
            channel_beat_schedule_update(channel=channel)
            PeriodicTask.objects.filter(name=f"channel-{channel.pk}-orders").update(interval=every, kwargs=paced)
            channels[account] = channel
        return channels

    def _order_sku(self, skus: list[str]) -> str:
        return self.random.choice(self.hot if self.random.random() < HOT_ORDERS_SHARE else skus)

    def _run(self, *, control, channels, skus, orders: int, minutes: float, timeout: float) -> None:
        updates_before = self._updates(control, channels)
        injected: dict[tuple[str, str], tuple[str, float]] = {}
        self.injection_started = timezone.now()
        started = time.monotonic()
        ticks = max(1, int(minutes * 60))
        for tick in range(ticks):
            due = orders * (tick + 1) // ticks - orders * tick // ticks
            batches: dict[str, list[dict]] = {kind: [] for kind in KINDS}
            for _ in range(due):
                quantity = 1 if self.random.random() < 0.9 else 2
                batches[self.random.choice(KINDS)].append(
                    {"paid": True, "items": [{"sku": self._order_sku(skus), "quantity": quantity, "price": "9.99"}]})
            for kind, batch in batches.items():
                if batch:
                    at = time.time()
                    for order_id, order in zip(control.orders(kind, f"load-{kind}", batch), batch, strict=True):
                        injected[(f"load-{kind}", str(order_id))] = (order["items"][0]["sku"], at)
            time.sleep(max(0.0, started + tick + 1 - time.monotonic()))
        self.stdout.write(f"Injected {len(injected)} orders in {time.monotonic() - started:.0f} s; waiting for "
                          f"the imports and pushes.")
        deadline = time.monotonic() + timeout
        load = Order.objects.filter(channel__name__startswith="load-")
        while time.monotonic() < deadline:
            pending = ListingPushMark.objects.filter(channel__name__startswith="load-").exists()
            if load.count() >= len(injected) and not pending:
                break
            time.sleep(1)
        elapsed = time.monotonic() - started
        self._report(control=control, channels=channels, injected=injected, updates_before=updates_before,
                     elapsed=elapsed, timed_out=time.monotonic() >= deadline)

    def _worker_time(self, channels) -> str:
        """Where the workers' time went: the seconds of every order download and push run, by channel."""
        runs = (
            SyncRun.objects.filter(channel__in=channels.values(), started_at__gte=self.injection_started,
                                   finished_at__isnull=False, kind__in=(SyncRun.Kind.ORDERS, SyncRun.Kind.INVENTORY))
            .values_list("channel__name", "kind")
            .annotate(n=Count("pk"), seconds=Sum(F("finished_at") - F("started_at")))
        )
        parts = [f"{name} {kind} {n} runs {seconds.total_seconds():.0f} s"
                 for name, kind, n, seconds in sorted(runs)]
        return "Worker time by channel and run: " + "; ".join(parts)

    def _updates(self, control, channels) -> int:
        return sum(s["updates"] for name, channel in channels.items()
                   for s in control.received(channel.kind, name)["stock"].values())

    def _report(self, *, control, channels, injected, updates_before: int, elapsed: float, timed_out: bool) -> None:
        load = Order.objects.filter(channel__name__startswith="load-")
        imported = load.count()
        duplicates = sum(n - 1 for n in Counter(load.values_list("channel_id", "channel_order_id")).values() if n > 1)
        levels = StockLevel.objects.filter(stock_item__sku__startswith="LOAD-")
        oversold = levels.filter(in_open_orders__gt=F("quantity")).aggregate(
            units=Sum(F("in_open_orders") - F("quantity")))["units"] or 0
        held = dict(levels.values_list("stock_item__sku").annotate(n=Sum("in_open_orders")))
        ordered = dict(load.filter(status__in=Order.OPEN_STATUSES).values_list("items__channel_sku")
                       .annotate(n=Sum("items__quantity")))
        reservation_drift = sum(1 for sku in set(held) | set(ordered) if held.get(sku, 0) != ordered.get(sku, 0))
        last_order: dict[str, float] = {}
        for sku, at in injected.values():
            last_order[sku] = max(at, last_order.get(sku, 0.0))
        # The hub's time to the second, as the sandbox stamps what it receives: a push in the same second counts 0.
        last_stored = {sku: math.floor(at.timestamp()) for sku, at in
                       load.values_list("items__channel_sku").annotate(at=Max("created_at"))}
        differing, latencies, after_download = 0, [], []
        after_download_by_channel: dict[str, list[float]] = {}
        for name, channel in channels.items():
            stock = control.received(channel.kind, name)["stock"]
            for computed in listing_quantities(channel_id=channel.pk):
                shown = stock.get(computed.channel_sku) or {}
                if shown.get("quantity") != computed.quantity:
                    differing += 1
                if computed.channel_sku in last_order and shown.get("updated_at"):
                    pushed = parse_time(shown["updated_at"]).timestamp()
                    if pushed >= last_order[computed.channel_sku]:
                        latencies.append(pushed - last_order[computed.channel_sku])
                    if pushed >= last_stored.get(computed.channel_sku, math.inf):
                        after_download.append(pushed - last_stored[computed.channel_sku])
                        after_download_by_channel.setdefault(name, []).append(
                            pushed - last_stored[computed.channel_sku])
        pushes = self._updates(control, channels) - updates_before
        lines = [
            f"Orders injected: {len(injected)}; imported: {imported}" + (" (timed out waiting)" if timed_out else ""),
            f"Duplicates: {duplicates}",
            f"Oversold units: {oversold} (stock allowed every order)",
            f"Reservations differing from open orders: {reservation_drift} SKUs",
            f"Listings whose channel quantity differs from the hub's computation: {differing}",
            f"Pushes: {pushes} listing updates in {elapsed:.0f} s = {pushes / elapsed:.1f} per second",
            f"Order-to-push latency (each SKU's last order to each channel's final quantity, {len(latencies)} pairs):"
            f" p50 {percentile(latencies, 0.5):.1f} s, p95 {percentile(latencies, 0.95):.1f} s,"
            f" max {max(latencies, default=0):.1f} s",
            f"After download (each SKU's last order stored by the hub to each channel's final quantity, "
            f"{len(after_download)} pairs, whole seconds): p50 {percentile(after_download, 0.5):.0f} s, "
            f"p95 {percentile(after_download, 0.95):.0f} s, max {max(after_download, default=0):.0f} s",
        ]
        lines.extend(
            f"  to {name}: p50 {percentile(values, 0.5):.0f} s, p95 {percentile(values, 0.95):.0f} s"
            for name, values in sorted(after_download_by_channel.items()))
        lines.append(self._worker_time(channels))
        for line in lines:
            self.stdout.write(line)
        if timed_out or duplicates or oversold or differing or reservation_drift or imported != len(injected):
            raise CommandError("Load test failed: see the figures above.")
