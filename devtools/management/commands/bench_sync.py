"""End-to-end sync latency: from an order placed on one channel to the other channels holding the new quantity.

Builds a scratch shop (SKUs `BENCH-…`, channels `bench-…`) against a sandbox started in this process, starts a
Celery worker and beat on the Redis broker, then places orders (one distinct SKU each) on the sandbox at a steady
pace across the channels. Nothing here downloads them: beat polls each channel at its quota's interval (the
follow-ups after activity at the quota's pace), or, with --webhooks, EKM, Shopify and WooCommerce tell a hub web
server started here and the worker reads the order each names. Each latency runs from the sandbox's own time of the
order to the time each other channel's account received the SKU's new quantity, both on the sandbox's clock in whole
seconds.
Prints p50 / p95 / max per channel ordered on and overall, beside each channel's target; removes the scratch data.
"""

import socket
import sys
import tempfile
import time
from datetime import datetime

import requests
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.test.utils import override_settings
from django_celery_beat.models import PeriodicTask

from channels.models import Channel, SyncRun
from channels.scheduling import channel_beat_schedule_update
from channels.sync.inventory_push import inventory_push
from channels.sync.listings_download import listings_download
from channels.sync.order_hints import channel_webhooks_follow
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
    workers_ready_or_error,
)
from inventory.models import Location, StockItem, StockMovement
from inventory.services import stock_levels_set_bulk
from orders.models import Order
from sandbox.control import RAKUTEN_IMPORT_PROFILE_ID, SandboxControl, default_credentials
from sandbox.testing import running_sandbox

KINDS = ("amazon", "ebay", "ekm", "rakuten", "shopify", "woocommerce")
PAID = {"amazon": "UNSHIPPED", "ebay": "NOT_STARTED", "ekm": "PENDING", "rakuten": "ACCEPTED",
        "shopify": "UNFULFILLED", "woocommerce": "processing"}
MARKETPLACES = {"amazon": "A1F83G8C2ARO7P", "ebay": "EBAY_GB"}
# The kinds whose orders --webhooks brings in by webhook (EKM's unsigned hints, Shopify's and WooCommerce's signed).
WEBHOOK_KINDS = ("ekm", "shopify", "woocommerce")
# The sandbox's own throttles are lifted: the connectors keep to the quotas when --published-limits says so.
SANDBOX_LIMITS = {"*": {"rate": 10000, "burst": 10000}}
STOCK_PER_SKU = 5
# The targets: a webhook channel's p95, and what a polled channel may add to its poll interval.
WEBHOOK_TARGET_SECONDS = 5
POLLED_MARGIN_SECONDS = 5
# Waited after the last order beyond the slowest channel's poll interval, for the pushes that follow it.
PUSH_ALLOWANCE_SECONDS = 60
WATCH_EVERY_SECONDS = 1


def sandbox_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def figures(latencies: list[float]) -> str:
    return (f"p50 {percentile(latencies, 0.5):.0f} s, p95 {percentile(latencies, 0.95):.0f} s, "
            f"max {max(latencies, default=0):.0f} s")


class Command(BaseCommand):
    help = ("Measure how long an order placed on one channel takes to reach the other channels as a new quantity, "
            "with a live worker and beat; --webhooks has EKM's, Shopify's and WooCommerce's orders arrive by webhook.")

    def add_arguments(self, parser):
        parser.add_argument("--webhooks", action="store_true",
                            help="EKM's, Shopify's and WooCommerce's orders arrive by webhook at a hub web server "
                                 "started here (their periodic download is switched off for the run, so the figure "
                                 "is the webhook's); without "
                                 "it every channel's orders are polled at its quota's interval.")
        parser.add_argument("--duration", type=float, default=120, help="Seconds over which orders are placed.")
        parser.add_argument("--every", type=float, default=1.5, help="Seconds between two orders (any channel).")
        parser.add_argument("--place-on", default=",".join(KINDS), metavar="KINDS",
                            help="The channels orders are placed on, comma-separated (all by default); "
                                 "every channel receives the new quantities.")
        parser.add_argument("--timeout", type=float, default=None,
                            help="Seconds to wait after the last order for every channel's new quantity; by "
                                 f"default the slowest poll interval of the channels ordered on plus "
                                 f"{PUSH_ALLOWANCE_SECONDS} s.")
        parser.add_argument("--concurrency", type=int, default=2, help="Worker processes.")
        add_quota_argument(parser)

    def handle(self, *args, published_limits, webhooks, duration, every, place_on, timeout, concurrency, **options):
        origins = [kind.strip() for kind in place_on.split(",") if kind.strip()]
        unknown = sorted(set(origins) - set(KINDS))
        if unknown or not origins:
            raise CommandError(f"--place-on takes channel kinds among {', '.join(KINDS)}: "
                               f"{', '.join(unknown) or 'none given'}.")
        if duration <= 0 or every <= 0 or every > duration:
            raise CommandError("--duration and --every are seconds above 0, --every no longer than --duration.")
        if timeout is not None and timeout <= 0:
            raise CommandError("--timeout is seconds above 0.")
        if concurrency < 1:
            raise CommandError("--concurrency is at least 1 worker process.")
        if webhooks and not set(WEBHOOK_KINDS) & set(origins):
            raise CommandError(f"--webhooks measures the orders of {', '.join(WEBHOOK_KINDS)}: include one of them "
                               "in --place-on.")
        if webhooks and not settings.DEBUG:
            raise CommandError("--webhooks needs DEBUG on: the hub web server here listens on plain http.")
        database_migrated_or_error()
        if not settings.REDIS_URL:
            raise CommandError("bench_sync needs a live worker on Redis: set REDIS_URL (and DATABASE_URL).")
        if Channel.objects.filter(name__startswith="bench-").exists():
            raise CommandError("Scratch channels bench-… already exist: another run is going, or remove them.")
        with connector_quotas(published=published_limits):
            self.stdout.write(f"Connector rate limits: {settings.CHANNEL_RATE_LIMITS}")
            try:
                with running_sandbox() as sandbox_url:
                    self._measure(sandbox_url=sandbox_url, webhooks=webhooks, origins=origins,
                                  orders=max(1, int(duration / every)), every=every, timeout=timeout,
                                  concurrency=concurrency)
            finally:
                scratch_shop_delete(prefix="bench")

    def _measure(self, *, sandbox_url, webhooks, origins, orders, every, timeout, concurrency) -> None:
        control = SandboxControl(sandbox_url)
        skus = [f"BENCH-{n:05d}" for n in range(orders)]
        # The shop is built with the quotas lifted: its baseline push is set-up, not what is measured.
        with connector_quotas(published=False):
            channels = self._shop(control=control, skus=skus)
        arrival = self._schedule(channels=channels, webhooks=webhooks)
        self.stdout.write(f"Shop ready: {len(skus)} SKUs listed on {len(channels)} channels, baseline pushed.")
        if timeout is None:
            timeout = max(arrival[f"bench-{kind}"][1] for kind in origins) + PUSH_ALLOWANCE_SECONDS
        processes = []
        # Everything started here is stopped before the sandbox is, so no task meets it closed.
        try:
            with tempfile.TemporaryDirectory(prefix="bench-beat-") as scratch:
                env = hub_env()
                if webhooks:
                    hub_url = self._web_server_start(processes)
                    env = hub_env(STOCKLINE_PUBLIC_URL=hub_url)
                    for kind in WEBHOOK_KINDS:
                        with override_settings(STOCKLINE_PUBLIC_URL=hub_url):
                            done = channel_webhooks_follow(channel_id=channels[f"bench-{kind}"].pk)
                        self.stdout.write(f"Hub web server at {hub_url}; bench-{kind}: {done}.")
                processes.append(hub_process_start(worker_command(hostname="bench", concurrency=concurrency),
                                                   env=env))
                workers_ready_or_error(processes)
                processes.append(hub_process_start(beat_command(scratch=scratch), env=env))
                self.stdout.write(f"Placing {orders} orders, one every {every:g} s, on {', '.join(origins)}; "
                                  f"then waiting up to {timeout:.0f} s for the last quantities.")
                placed = self._place(control=control, channels=channels, origins=origins, skus=skus, every=every)
                received = self._watch(control=control, channels=channels, placed=placed, timeout=timeout)
        finally:
            if killed := hub_processes_stop(processes):
                self.stderr.write(f"{killed} of the hub processes started here did not stop within 30 s: killed.")
        self._calls_report(control=control, channels=channels)
        self._report(channels=channels, origins=origins, arrival=arrival, placed=placed, received=received)

    def _shop(self, *, control: SandboxControl, skus: list[str]) -> dict[str, Channel]:
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
                            marketplace_id=MARKETPLACES.get(kind, ""), rate_limits=SANDBOX_LIMITS)
            control.listings(kind, account, [{"sku": s, "title": s, "quantity": 0, "price": "9.99"} for s in skus])
            base_url = control.channel_url(kind, account)
            channel = Channel.objects.create(
                **{**Channel.defaults_for(kind), "name": account, "kind": kind, "api_base_url": base_url,
                   "auth_base_url": base_url if kind != "rakuten" else "",
                   "seller_id": credentials.get("login", "BENCH"),
                   "marketplace_id": MARKETPLACES.get(kind, ""),
                   "credentials": {k: v for k, v in credentials.items() if k != "login"},
                   "import_profile_id": RAKUTEN_IMPORT_PROFILE_ID if kind == "rakuten" else ""},
            )
            channel.status_mappings.create(channel_status=PAID[kind], hub_status="paid")
            listings_download(channel_id=channel.pk)
            inventory_push(channel_id=channel.pk, full=True)
            channels[account] = channel
        return channels

    def _schedule(self, *, channels: dict[str, Channel], webhooks: bool) -> dict[str, tuple[str, float]]:
        """Each channel's beat rows as a new channel gets them; per channel, how its orders arrive and the
        interval its target allows (the beat row's, or 0 for the webhook)."""
        arrival = {}
        for name, channel in channels.items():
            channel_beat_schedule_update(channel=channel)
            row = PeriodicTask.objects.select_related("interval").get(name=f"channel-{channel.pk}-orders")
            if webhooks and channel.kind in WEBHOOK_KINDS:
                # Its 1-second poll would otherwise race the webhook, and the figure would be the poll's.
                PeriodicTask.objects.filter(pk=row.pk).update(enabled=False)
                arrival[name] = ("by webhook (its periodic download off for this run)", 0)
                continue
            interval = row.interval.schedule.run_every.total_seconds()
            pace = channel.connector_class.order_download_quota_seconds()
            arrival[name] = (f"polled every {interval:.0f} s (every {pace} s while orders come)", interval)
        return arrival

    def _web_server_start(self, processes: list) -> str:
        """The hub's web server on a free port of this machine, where the sandbox delivers the webhooks."""
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        hub_url = f"http://127.0.0.1:{port}"
        manage = [sys.executable, str(settings.BASE_DIR / "manage.py")]
        server = hub_process_start([*manage, "runserver", f"127.0.0.1:{port}", "--noreload", "--skip-checks"],
                                   env=hub_env(STOCKLINE_PUBLIC_URL=hub_url))
        processes.append(server)
        deadline = time.monotonic() + 60
        while True:
            try:
                requests.get(f"{hub_url}/admin/login/", timeout=2)
                return hub_url
            except requests.ConnectionError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise CommandError(f"The hub web server did not start on port {port}.") from None
                time.sleep(0.3)

    def _place(self, *, control, channels, origins: list[str], skus: list[str], every: float) -> dict[str, tuple]:
        """Place one order per SKU, one every `every` s, round the channels; per SKU, its channel's name and the
        sandbox's time of the order."""
        started = time.monotonic()
        ids: dict[str, dict[str, str]] = {f"bench-{kind}": {} for kind in origins}
        for index, sku in enumerate(skus):
            kind = origins[index % len(origins)]
            [order_id] = control.orders(kind, f"bench-{kind}", [{"items": [{"sku": sku, "quantity": 1,
                                                                             "price": "9.99"}]}])
            ids[f"bench-{kind}"][str(order_id)] = sku
            time.sleep(max(0.0, started + (index + 1) * every - time.monotonic()))
        placed = {}
        for name, ordered in ids.items():
            for order in control.orders(channels[name].kind, name):
                if order["order_id"] in ordered:
                    placed[ordered[order["order_id"]]] = (name, sandbox_time(order["created_at"]))
        return placed

    def _watch(self, *, control, channels, placed: dict[str, tuple], timeout: float) -> dict[tuple, float]:
        """Seconds from each order's placement to each other channel's account holding that SKU's new quantity,
        by (SKU, channel name); what has not arrived by the deadline is missing."""
        wanted = STOCK_PER_SKU - 1
        received: dict[tuple[str, str], float] = {}
        expected = len(placed) * (len(channels) - 1)
        deadline = time.monotonic() + timeout
        while len(received) < expected and time.monotonic() < deadline:
            for name, channel in channels.items():
                stock = control.received(channel.kind, name)["stock"]
                for sku, (origin, ordered_at) in placed.items():
                    seen = stock.get(sku)
                    if origin == name or (sku, name) in received or not seen or seen["quantity"] != wanted:
                        continue
                    received[(sku, name)] = (sandbox_time(seen["updated_at"]) - ordered_at).total_seconds()
            time.sleep(WATCH_EVERY_SECONDS)
        return received

    def _calls_report(self, *, control, channels) -> None:
        """Where each channel's quota went: the calls its account received by operation (set-up included), and
        how long its order downloads and pushes took."""
        self.stdout.write("Calls each channel received (set-up included), and its runs:")
        for name, channel in channels.items():
            calls = control.received(channel.kind, name)["calls"]
            counted = ", ".join(f"{operation} {count}" for operation, count in sorted(calls.items()))
            self.stdout.write(f"  {name}: {counted or 'none'}")
            for kind in (SyncRun.Kind.ORDERS, SyncRun.Kind.INVENTORY):
                runs = SyncRun.objects.filter(channel=channel, kind=kind, finished_at__isnull=False)
                seconds = [(run.finished_at - run.started_at).total_seconds() for run in runs]
                self.stdout.write(f"    {SyncRun.Kind(kind).label.lower()}: {len(seconds)} runs lasting "
                                  f"{figures(seconds)}")

    def _report(self, *, channels, origins, arrival, placed, received) -> None:
        imported = dict(Order.objects.filter(channel__name__startswith="bench-")
                        .values_list("items__channel_sku", "created_at"))
        expected = len(placed) * (len(channels) - 1)
        self.stdout.write(f"From placement on the sandbox to each other channel holding the new quantity "
                          f"({len(received)} of {expected} seen; sandbox clock, whole seconds):")
        for kind in origins:
            origin = f"bench-{kind}"
            skus = {sku for sku, (name, _) in placed.items() if name == origin}
            to: dict[str, list[float]] = {name: [] for name in channels if name != origin}
            for (sku, name), seconds in received.items():
                if sku in skus:
                    to[name].append(seconds)
            latencies = [seconds for each in to.values() for seconds in each]
            in_hub = [(imported[sku] - placed[sku][1]).total_seconds() for sku in skus if sku in imported]
            how, interval = arrival[origin]
            target = interval + POLLED_MARGIN_SECONDS if interval else WEBHOOK_TARGET_SECONDS
            met = "met" if latencies and percentile(latencies, 0.95) <= target else "not met"
            per_channel = "; ".join(f"{name} p95 {percentile(each, 0.95):.0f} s" for name, each in to.items())
            self.stdout.write(
                f"  {origin}: {len(skus)} orders, {how}\n"
                f"    in the hub: {len(in_hub)} orders, {figures(in_hub)}\n"
                f"    on the other channels: {len(latencies)} quantities, {figures(latencies)} ({per_channel})\n"
                f"    target p95 <= {target:.0f} s: {met}"
            )
        self.stdout.write(f"  All channels: {figures(list(received.values()))}")
        if len(received) < expected:
            raise CommandError(f"{expected - len(received)} new quantities did not reach their channel in time: "
                               "see the figures above (a longer --timeout, or is the worker consuming?).")
