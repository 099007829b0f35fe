"""End-to-end sync latency: orders in on one channel, new quantities out on the others, through a live worker.

Builds a scratch shop (SKUs `BENCH-…`, channels `bench-…`) against a sandbox started in this process,
starts a Celery worker on the Redis broker, injects N orders (one distinct SKU each) across three
channels, downloads them here, and watches the sandbox until every other channel has received each
SKU's new quantity. Prints import throughput and the order-to-push latency; removes the scratch data.
"""

import os
import statistics
import subprocess
import sys
import time
from datetime import datetime

from celery import current_app
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from channels.models import Channel
from channels.sync.inventory_push import inventory_push
from channels.sync.listings_download import listings_download
from channels.sync.order_download import orders_download
from devtools.benchmarks import (
    add_quota_argument,
    connector_quotas,
    database_migrated_or_error,
    percentile,
    scratch_shop_delete,
)
from inventory.models import Location, StockItem, StockMovement
from inventory.services import stock_levels_set_bulk
from orders.models import Order
from sandbox.control import RAKUTEN_IMPORT_PROFILE_ID, SandboxControl, default_credentials
from sandbox.testing import running_sandbox

KINDS = ("amazon", "ekm", "rakuten")
QUEUES = "default,orders,inventory,listings,despatch"
# Generous limits: this measures the hub, not the marketplaces' published throttles.
SANDBOX_LIMITS = {"*": {"rate": 10000, "burst": 10000}}
STOCK_PER_SKU = 5



class Command(BaseCommand):
    help = "Measure order import throughput and order-to-push latency across three channels with a live worker."

    def add_arguments(self, parser):
        parser.add_argument("--orders", type=int, default=300, help="Orders to inject, split over three channels.")
        parser.add_argument("--timeout", type=float, default=180, help="Seconds to wait for every push.")
        parser.add_argument("--concurrency", type=int, default=2, help="Worker processes.")
        add_quota_argument(parser)

    def handle(self, *args, published_limits, **options):
        database_migrated_or_error()
        with connector_quotas(published=published_limits):
            self._measure(**options)

    def _measure(self, *, orders, timeout, concurrency, **options):
        if not settings.REDIS_URL:
            raise CommandError("bench_sync needs a live worker on Redis: set REDIS_URL (and DATABASE_URL).")
        if Channel.objects.filter(name__startswith="bench-").exists():
            raise CommandError("Scratch channels bench-… already exist: another run is going, or remove them.")
        self.stdout.write(f"Connector rate limits: {settings.CHANNEL_RATE_LIMITS}")
        worker = self._start_worker(concurrency)
        try:
            with running_sandbox() as sandbox_url:
                self._run(sandbox_url=sandbox_url, orders=orders, timeout=timeout)
        finally:
            worker.terminate()
            worker.wait(timeout=30)
            scratch_shop_delete(prefix="bench")

    def _start_worker(self, concurrency: int) -> subprocess.Popen:
        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", QUEUES, "--concurrency", str(concurrency),
             "--loglevel", "WARNING", "--hostname", "bench@%h"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            env={**os.environ, "CHANNEL_RATE_LIMITS": settings.CHANNEL_RATE_LIMITS},
        )
        deadline = time.monotonic() + 60
        while not current_app.control.ping(timeout=1, destination=None):
            if time.monotonic() > deadline or worker.poll() is not None:
                worker.terminate()
                raise CommandError("The Celery worker did not start within 60 s.")
        return worker

    def _run(self, *, sandbox_url: str, orders: int, timeout: float) -> None:
        control = SandboxControl(sandbox_url)
        skus = [f"BENCH-{n:05d}" for n in range(orders)]
        channels = self._shop(control=control, sandbox_url=sandbox_url, skus=skus)
        self.stdout.write(f"Shop ready: {len(skus)} SKUs listed on {len(channels)} channels, baseline pushed.")

        for index, sku in enumerate(skus):
            kind = KINDS[index % len(KINDS)]
            control.orders(kind, f"bench-{kind}", [{"items": [{"sku": sku, "quantity": 1, "price": "9.99"}]}])

        started = time.monotonic()
        for name, channel in channels.items():
            channel_started = time.monotonic()
            run = orders_download(channel_id=channel.pk)
            seconds = time.monotonic() - channel_started
            self.stdout.write(f"  {name}: {run.processed} orders in {seconds:.2f} s = {run.processed / seconds:.0f}/s")
        import_seconds = time.monotonic() - started
        imported = Order.objects.filter(channel__name__startswith="bench-").count()

        ordered_at = {
            sku: (channel_name, created)
            for sku, channel_name, created in Order.objects.filter(channel__name__startswith="bench-")
            .values_list("items__channel_sku", "channel__name", "created_at")
        }
        latencies = self._watch(control=control, channels=channels, ordered_at=ordered_at, timeout=timeout)

        self.stdout.write(f"Orders imported: {imported} of {orders} in {import_seconds:.2f} s "
                          f"= {imported / import_seconds:.0f} orders/s (one process, sandbox pages of 100)")
        if not latencies:
            raise CommandError("No push reached the sandbox: is the worker consuming the inventory queue?")
        expected = imported * (len(channels) - 1)
        self.stdout.write(
            f"Order to push on the other channels ({len(latencies)} of {expected} pushes seen): "
            f"p50 {statistics.median(latencies):.2f} s, p95 {percentile(latencies, 0.95):.2f} s, "
            f"max {max(latencies):.2f} s"
        )

    def _shop(self, *, control: SandboxControl, sandbox_url: str, skus: list[str]) -> dict[str, Channel]:
        location = Location.objects.filter(is_default=True).first()
        if location is None:
            location = Location.objects.create(name="bench-warehouse", is_default=True)
        items = StockItem.objects.bulk_create([StockItem(sku=sku, title=f"Bench item {sku}") for sku in skus])
        stock_levels_set_bulk(rows=[(item.pk, location.pk, STOCK_PER_SKU) for item in items],
                              reason=StockMovement.Reason.ADJUSTMENT, reference="bench_sync")
        channels = {}
        for kind in KINDS:
            account = f"bench-{kind}"
            credentials = default_credentials(kind, account)
            control.account(kind, account, credentials=credentials, seller_id=credentials.get("login", "BENCH"),
                            marketplace_id="A1F83G8C2ARO7P" if kind == "amazon" else "", rate_limits=SANDBOX_LIMITS)
            control.listings(kind, account, [{"sku": s, "title": s, "quantity": 0, "price": "9.99"} for s in skus])
            base_url = control.channel_url(kind, account)
            channel = Channel.objects.create(
                **{**Channel.defaults_for(kind), "name": account, "kind": kind, "api_base_url": base_url,
                   "auth_base_url": base_url if kind != "rakuten" else "",
                   "seller_id": credentials.get("login", "BENCH"),
                   "marketplace_id": "A1F83G8C2ARO7P" if kind == "amazon" else "",
                   "credentials": {k: v for k, v in credentials.items() if k != "login"},
                   "import_profile_id": RAKUTEN_IMPORT_PROFILE_ID if kind == "rakuten" else ""},
            )
            channel.status_mappings.create(
                channel_status={"amazon": "UNSHIPPED", "ekm": "PENDING", "rakuten": "ACCEPTED"}[kind], hub_status="paid"
            )
            listings_download(channel_id=channel.pk)
            inventory_push(channel_id=channel.pk, full=True)
            channels[account] = channel
        return channels

    def _watch(self, *, control, channels, ordered_at: dict[str, tuple[str, datetime]], timeout: float) -> list[float]:
        """Seconds from each order's import to each other channel receiving that SKU's new quantity."""
        wanted = STOCK_PER_SKU - 1
        latencies: dict[tuple[str, str], float] = {}
        deadline = time.monotonic() + timeout
        expected = len(ordered_at) * (len(channels) - 1)
        while len(latencies) < expected and time.monotonic() < deadline:
            for name, channel in channels.items():
                stock = control.received(channel.kind, name)["stock"]
                for sku, (origin, created) in ordered_at.items():
                    seen = stock.get(sku)
                    if origin == name or (sku, name) in latencies or not seen or seen["quantity"] != wanted:
                        continue
                    received = datetime.fromisoformat(seen["updated_at"].replace("Z", "+00:00"))
                    latencies[(sku, name)] = (received - created).total_seconds()
            time.sleep(0.2)
        return list(latencies.values())
