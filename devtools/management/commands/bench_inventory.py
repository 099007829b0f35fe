"""Measure the inventory engine on a large catalogue in a scratch PostgreSQL database.

Builds N stock items at L warehouses, C channels with a listing of every item each (different rules
per channel), and open orders reserving stock, with set-based SQL (generate_series); then times the
push planning the product does and prints the median of several runs. The scratch database is
dropped at the end.
"""

from __future__ import annotations

import itertools
import resource
import statistics
import time
from collections.abc import Callable

import psycopg
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, connections, transaction
from django.db.models import Model
from django.utils import timezone

from channels import scheduling
from channels.models import Channel, ChannelListing, ListingPushState
from channels.selectors import LATENCY_PATTERN, MAX_LATENCY, listing_quantities, listings_push_plan
from channels.services import (
    channel_listings_mark_all,
    listings_mark_for_push,
    listings_pending_settle,
    listings_push_claim,
    listings_record_pushed,
)
from inventory.models import KitComponent, Location, StockItem, StockLevel, StockMovement
from inventory.services import stock_levels_set_bulk, stock_reserve
from orders.models import Order, OrderItem

# The scratch database is named after the one configured, so that runs against different databases on one
# server (several developers) never drop each other's.
SCRATCH_SUFFIX = "_bench"
# Per channel: (kind, settings) so that every rule is exercised at scale.
CHANNEL_RULES = [
    ("amazon", {"latency_days": 2, "product_based_latency": True}),
    ("ekm", {"max_listed_quantity": 10}),
    ("rakuten", {"max_listed_percentage": 50, "price_change": True}),
    ("amazon", {"update_inventory_from_locations": True, "end_when_quantity": 2}),
    ("ekm", {"max_listed_quantity": 25, "max_listed_percentage": 80, "end_when_quantity": 1}),
]


def _insert_select(model: type[Model], exprs: dict[str, str], tail: str, params: list | None = None) -> int:
    """INSERT INTO model SELECT ...: the given columns as SQL expressions, every other column its
    Python default, so the scratch rows look like rows the ORM would write."""
    columns, values, defaults = [], [], []
    now = timezone.now()
    for field in model._meta.concrete_fields:
        if field.primary_key and field.column not in exprs:
            continue
        columns.append(field.column)
        if field.column in exprs:
            values.append(exprs[field.column])
        else:
            values.append("%s")
            auto = getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False)
            defaults.append(now if auto else field.get_db_prep_save(field.get_default(), connection))
    sql = f"INSERT INTO {model._meta.db_table} ({', '.join(columns)}) SELECT {', '.join(values)} {tail}"
    with connection.cursor() as cursor:
        cursor.execute(sql, [*defaults, *(params or [])])
        return cursor.rowcount


class Command(BaseCommand):
    help = "Benchmark quantity computation and push planning on a large catalogue (PostgreSQL only)."
    _run_ids = itertools.count(1)

    def add_arguments(self, parser):
        parser.add_argument("--skus", type=int, default=100_000)
        parser.add_argument("--channels", type=int, default=5)
        parser.add_argument("--locations", type=int, default=3)
        parser.add_argument("--runs", type=int, default=5)
        parser.add_argument("--orders", type=int, default=20_000, help="Open orders (1-3 lines each).")
        parser.add_argument(
            "--kits", type=int, default=0,
            help="Percentage of the SKUs that are kits of 2-5 other SKUs (1-3 of each), 0-50; their orders hold "
            "their components.",
        )
        parser.add_argument("--keep", action="store_true", help="Keep the scratch database afterwards.")

    def handle(self, *args, skus, channels, locations, runs, orders, kits, keep, **options):
        if connection.vendor != "postgresql":
            raise CommandError("bench_inventory needs PostgreSQL: set DATABASE_URL to a postgres:// server.")
        if not 1 <= channels <= len(CHANNEL_RULES):
            raise CommandError(f"--channels must be between 1 and {len(CHANNEL_RULES)}.")
        if not 0 <= kits <= 50:
            raise CommandError("--kits is a percentage of the SKUs, between 0 and 50.")
        self.kits = kits
        # As in production: with DEBUG on, Django keeps and formats every statement it runs, which
        # costs more than the statements themselves at this size.
        settings.DEBUG = False
        settings_dict = connection.settings_dict
        original_name = settings_dict["NAME"]
        self.scratch = f"{original_name}{SCRATCH_SUFFIX}"
        self._recreate(settings_dict)
        pushes_sent: list[int] = []
        original_schedule = scheduling.inventory_push_schedule
        # Count the pushes that would be queued instead of sending tasks to a broker.
        scheduling.inventory_push_schedule = lambda *, channel_ids: pushes_sent.extend(channel_ids) or []
        try:
            self._use(self.scratch)
            call_command("migrate", verbosity=0)
            started = time.perf_counter()
            self._build(skus=skus, channels=channels, locations=locations, orders=orders, kits=kits)
            self.stdout.write(f"built in {time.perf_counter() - started:.1f} s")
            self._measure(runs=runs, skus=skus)
        finally:
            scheduling.inventory_push_schedule = original_schedule
            self._use(original_name)
            if not keep:
                self._drop(settings_dict)

    # --- scratch database -----------------------------------------------------------------------

    def _server(self, settings_dict) -> psycopg.Connection:
        return psycopg.connect(
            dbname="postgres", user=settings_dict["USER"], password=settings_dict["PASSWORD"] or None,
            host=settings_dict["HOST"] or None, port=settings_dict["PORT"] or None, autocommit=True,
        )

    def _recreate(self, settings_dict) -> None:
        with self._server(settings_dict) as server:
            server.execute(f"DROP DATABASE IF EXISTS {self.scratch} WITH (FORCE)")
            server.execute(f"CREATE DATABASE {self.scratch}")

    def _drop(self, settings_dict) -> None:
        with self._server(settings_dict) as server:
            server.execute(f"DROP DATABASE IF EXISTS {self.scratch} WITH (FORCE)")

    def _use(self, name: str) -> None:
        connections["default"].close()
        connections["default"].settings_dict["NAME"] = name

    # --- catalogue ------------------------------------------------------------------------------

    def _kits_build(self, *, skus: int, kits: int) -> int:
        """The SKUs whose id modulo 100 is below `kits` become kits of 2-5 other SKUs, 1-3 of each; their own
        warehouse stock goes (a kit's stock is its components'). Returns how many kit components were made."""
        item, level, kit = StockItem._meta.db_table, StockLevel._meta.db_table, KitComponent._meta.db_table
        with connection.cursor() as cursor:
            cursor.execute(
                f"""INSERT INTO {kit} (kit_id, component_id, quantity)
                    SELECT DISTINCT ON (k.id, c.id) k.id, c.id, 1 + (k.id + n) %% 3
                    FROM {item} AS k CROSS JOIN generate_series(0, 4) AS n
                    JOIN {item} AS c ON c.id = 1 + (k.id * 31 + n * 997) %% %s
                    WHERE k.id %% 100 < %s AND n <= 1 + k.id %% 4 AND c.id %% 100 >= %s
                    ON CONFLICT DO NOTHING""",
                [skus, kits, kits],
            )
            made = cursor.rowcount
            cursor.execute(f"UPDATE {level} SET quantity = 0 WHERE stock_item_id IN (SELECT kit_id FROM {kit})")
        return made

    def _build(self, *, skus: int, channels: int, locations: int, orders: int, kits: int) -> None:
        warehouses = [Location.objects.create(name=f"Warehouse {n + 1}", is_default=n == 0) for n in range(locations)]
        _insert_select(
            StockItem,
            {
                "sku": "'SKU-' || lpad(g::text, 7, '0')", "title": "'Bench item ' || g",
                "retail_price": "(g %% 90) + 0.99",
            },
            "FROM generate_series(1, %s) AS g",
            [skus],
        )
        _insert_select(
            StockLevel,
            {"stock_item_id": "i.id", "location_id": "w.id", "quantity": "(i.id * 7 + w.id * 13) %% 60"},
            f"FROM {StockItem._meta.db_table} AS i CROSS JOIN {Location._meta.db_table} AS w",
        )
        components = self._kits_build(skus=skus, kits=kits) if kits else 0
        for n in range(channels):
            kind, rules = CHANNEL_RULES[n]
            channel = Channel.objects.create(
                name=f"Bench {kind} {n + 1}", kind=kind, api_base_url="http://127.0.0.1:8100/bench",
                **{**Channel.defaults_for(kind), **rules},
            )
            if channel.update_inventory_from_locations:
                channel.inventory_locations.set(warehouses[:2])
            _insert_select(
                ChannelListing,
                {
                    "channel_id": str(channel.pk), "channel_sku": "i.sku", "external_id": "'L' || i.id",
                    "stock_item_id": "i.id",
                    # Every 50th listing has its own max listed quantity, as sellers set on a few.
                    "max_listed_quantity": "CASE WHEN i.id %% 50 = 0 THEN 5 END",
                },
                f"FROM {StockItem._meta.db_table} AS i",
            )
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO inventory_stockitemproperty (stock_item_id, name, value) "
                f"SELECT id, 'Latency', (id % 5)::text FROM {StockItem._meta.db_table} WHERE id % 10 = 0"
            )
        first_channel = Channel.objects.order_by("pk").first()
        _insert_select(
            Order,
            {
                "channel_id": str(first_channel.pk), "channel_order_id": "'BENCH-' || g",
                "received_at": "'2026-11-01T00:00:00+00:00'::timestamptz",
                "fulfilment_location_id": str(warehouses[0].pk), "status": "'paid'", "is_paid": "true",
            },
            "FROM generate_series(1, %s) AS g",
            [orders],
        )
        _insert_select(
            OrderItem,
            {
                "order_id": "o.id", "stock_item_id": f"1 + (o.id * 31 + n * 17) %% {skus}",
                "channel_line_id": "n::text", "channel_sku": "'SKU'", "quantity": "1 + n",
            },
            f"FROM {Order._meta.db_table} AS o CROSS JOIN generate_series(0, 2) AS n WHERE n <= o.id %% 3",
        )
        # The counter the reservation services keep, set once from the open order lines: a kit's line holds
        # the kit (its count of kits held) and its components (every order is at a warehouse here).
        with connection.cursor() as cursor:
            cursor.execute(
                f"""UPDATE {StockLevel._meta.db_table} AS l SET in_open_orders = t.held
                    FROM (SELECT h.stock_item_id, h.location_id, SUM(h.quantity) AS held FROM (
                              SELECT oi.stock_item_id, o.fulfilment_location_id AS location_id, oi.quantity
                              FROM {OrderItem._meta.db_table} AS oi JOIN {Order._meta.db_table} AS o
                                   ON o.id = oi.order_id AND o.status IN ('unpaid', 'paid', 'pending')
                              UNION ALL
                              SELECT kc.component_id, o.fulfilment_location_id, oi.quantity * kc.quantity
                              FROM {OrderItem._meta.db_table} AS oi JOIN {Order._meta.db_table} AS o
                                   ON o.id = oi.order_id AND o.status IN ('unpaid', 'paid', 'pending')
                              JOIN {KitComponent._meta.db_table} AS kc ON kc.kit_id = oi.stock_item_id
                          ) AS h GROUP BY 1, 2) AS t
                    WHERE l.stock_item_id = t.stock_item_id AND l.location_id = t.location_id"""
            )
            cursor.execute("ANALYZE")
            cursor.execute(f"SELECT count(*) FROM {OrderItem._meta.db_table}")
            lines = cursor.fetchone()[0]
        self.stdout.write(
            f"catalogue: {skus} SKUs x {len(warehouses)} locations, {channels} channels, "
            f"{ChannelListing.objects.count()} listings, {orders} open orders with {lines} lines"
            + (f", {KitComponent.objects.values('kit').distinct().count()} kits ({kits}% of the SKUs) "
               f"with {components} components" if kits else "")
        )
        # Start steady: every listing pushed once (a full resync), nothing pending.
        started = time.perf_counter()
        for channel_id in self._channel_ids():
            self._push_recorded(channel_id, full=True)
        self.stdout.write(f"initial full resync planned and recorded in {time.perf_counter() - started:.1f} s")
        with connection.cursor() as cursor:
            # What autovacuum does after such a bulk load; not timed.
            cursor.execute("VACUUM ANALYZE")

    def _channel_ids(self) -> list[int]:
        return list(Channel.objects.order_by("pk").values_list("pk", flat=True))

    # --- measurements ---------------------------------------------------------------------------

    def _plan_all(self) -> int:
        return sum(len(listings_push_plan(channel_id=channel_id)) for channel_id in self._channel_ids())

    def _push_recorded(self, channel_id: int, *, full: bool = False) -> None:
        """What a push run does around the channel's answer: claim, plan, record all accepted, settle."""
        run_id = next(self._run_ids)
        listings_push_claim(channel_id=channel_id, run_id=run_id)
        listings_record_pushed(pushes=listings_push_plan(channel_id=channel_id, full=full), at=timezone.now())
        listings_pending_settle(channel_id=channel_id, run_id=run_id)

    def _settle(self) -> None:
        for channel_id in self._channel_ids():
            self._push_recorded(channel_id)

    def _timed(self, label: str, runs: int, prepare: Callable[[int], None], run: Callable[[], int]) -> None:
        times, sizes = [], []
        for n in range(runs):
            prepare(n)
            started = time.perf_counter()
            sizes.append(run())
            times.append(time.perf_counter() - started)
            self._settle()
        median = statistics.median(times)
        shown = f"{median * 1000:.1f} ms" if median < 1 else f"{median:.2f} s"
        per_channel = median * 1000 / len(self._channel_ids())
        self.stdout.write(
            f"{label}: median {shown} for all channels ({per_channel:.1f} ms per channel) over {runs} runs "
            f"(min {min(times) * 1000:.1f} ms, max {max(times) * 1000:.1f} ms), "
            f"{statistics.median(sizes):.0f} listings planned"
        )

    def _measure(self, *, runs: int, skus: int) -> None:
        warehouse = Location.objects.order_by("pk").first()
        channel_ids = self._channel_ids()
        table = ChannelListing._meta.db_table

        def mark_everything_and_move_some_stock(n: int) -> None:
            # As after a change of every channel's rules; 1% of the levels move, so the diff finds some.
            for channel_id in channel_ids:
                channel_listings_mark_all(channel_id=channel_id)
            with connection.cursor() as cursor:
                cursor.execute(
                    f"UPDATE {StockLevel._meta.db_table} SET quantity = quantity + 1 WHERE stock_item_id %% 100 = %s "
                    f"AND stock_item_id NOT IN (SELECT kit_id FROM {KitComponent._meta.db_table})",
                    [(n + self.kits) % 100],
                )
                # What autovacuum does between such rare mass updates; not timed.
                cursor.execute(f"VACUUM ANALYZE {table}")

        reserve_times: list[float] = []

        def one_order(n: int) -> None:
            started = time.perf_counter()
            with transaction.atomic():
                stock_reserve(lines=[(1 + (n * 7919) % skus, warehouse.pk, 1)])
            reserve_times.append(time.perf_counter() - started)

        self._timed("push planning after one order for one SKU", runs, one_order, self._plan_all)
        reserve_ms = statistics.median(reserve_times) * 1000
        self.stdout.write(f"  (reserving it and marking its listings: median {reserve_ms:.1f} ms)")

        import_times: list[float] = []

        def import_1000(n: int) -> None:
            first = 1 + (n * 1000) % max(skus - 1000, 1)
            # A kit has no stock of its own at a warehouse: the import sets its components'.
            rows = [(item_id, warehouse.pk, (item_id * 3 + n) % 40) for item_id in range(first, first + 1000)
                    if item_id % 100 >= self.kits]
            started = time.perf_counter()
            stock_levels_set_bulk(rows=rows, reason=StockMovement.Reason.IMPORT, reference="bench")
            import_times.append(time.perf_counter() - started)

        self._timed("push planning after a 1,000-SKU stock import", runs, import_1000, self._plan_all)
        import_ms = statistics.median(import_times) * 1000
        self.stdout.write(f"  (the import itself, with its ledger and marking: median {import_ms:.1f} ms)")
        self._timed(
            f"full recompute-and-diff of every listing ({len(channel_ids)} channels)", runs,
            mark_everything_and_move_some_stock, self._plan_all,
        )
        self._timed(
            "full resync plan (--full, every listing planned)", runs, lambda n: None,
            lambda: sum(len(listings_push_plan(channel_id=c, full=True)) for c in channel_ids),
        )

        self._floor(runs=runs, mark=mark_everything_and_move_some_stock)
        self._bookkeeping(runs=runs)

        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        self.stdout.write(f"peak memory (process maximum resident set): {peak_mb:.0f} MB")

    # --- the floor: one hand-written statement for every listing of every channel ---------------

    def _floor_sql(self, *, diff: bool) -> str:
        """Quantity, ended, latency and price of every linked merchant listing of every channel, written
        by hand for these tables as one statement: available over all warehouses once per item, and per
        channel only for the channels that count their own locations; for a kit, the fewest whole kits its
        components make at each of those warehouses, summed."""
        channel, listing = Channel._meta.db_table, ChannelListing._meta.db_table
        level, location = StockLevel._meta.db_table, Location._meta.db_table
        mapped = Channel.inventory_locations.through._meta.db_table
        state, item = ListingPushState._meta.db_table, StockItem._meta.db_table
        kit = KitComponent._meta.db_table
        warehouse = Location.Kind.WAREHOUSE
        kits = "MIN(floor(COALESCE(sl.quantity - sl.in_open_orders, 0)::numeric / kc.quantity)::integer)"
        sql = f"""
            WITH kits_everywhere AS (
                SELECT k.kit_id, SUM(k.available) AS available FROM (
                    SELECT kc.kit_id, {kits} AS available
                    FROM {kit} AS kc JOIN {location} AS w ON w.kind = '{warehouse}'
                    LEFT JOIN {level} AS sl ON sl.stock_item_id = kc.component_id AND sl.location_id = w.id
                    GROUP BY kc.kit_id, w.id
                ) AS k GROUP BY k.kit_id
            ), kits_chosen AS (
                SELECT k.channel_id, k.kit_id, SUM(k.available) AS available FROM (
                    SELECT m.channel_id, kc.kit_id, {kits} AS available
                    FROM {mapped} AS m
                    JOIN {channel} AS c ON c.id = m.channel_id AND c.update_inventory_from_locations
                    JOIN {location} AS w ON w.id = m.location_id AND w.kind = '{warehouse}'
                    CROSS JOIN {kit} AS kc
                    LEFT JOIN {level} AS sl ON sl.stock_item_id = kc.component_id AND sl.location_id = m.location_id
                    GROUP BY m.channel_id, kc.kit_id, m.location_id
                ) AS k GROUP BY k.channel_id, k.kit_id
            ), everywhere AS (
                SELECT sl.stock_item_id, SUM(sl.quantity - sl.in_open_orders) AS available
                FROM {level} AS sl JOIN {location} AS w ON w.id = sl.location_id AND w.kind = '{warehouse}'
                GROUP BY sl.stock_item_id
            ), chosen AS (
                SELECT m.channel_id, sl.stock_item_id, SUM(sl.quantity - sl.in_open_orders) AS available
                FROM {mapped} AS m
                JOIN {channel} AS c ON c.id = m.channel_id AND c.update_inventory_from_locations
                JOIN {location} AS w ON w.id = m.location_id AND w.kind = '{warehouse}'
                JOIN {level} AS sl ON sl.location_id = m.location_id
                GROUP BY m.channel_id, sl.stock_item_id
            ), figures AS (
                SELECT l.id AS listing_id, c.price_change,
                       CASE WHEN c.update_inventory_from_locations THEN COALESCE(kch.available, ch.available, 0)
                            ELSE COALESCE(ke.available, e.available, 0) END AS available,
                       COALESCE(l.end_when_quantity, c.end_when_quantity) AS end_when,
                       COALESCE(l.max_listed_quantity, c.max_listed_quantity) AS max_listed,
                       COALESCE(l.max_listed_percentage, c.max_listed_percentage) AS percentage,
                       NULLIF(COALESCE(l.latency_days,
                           CASE WHEN c.product_based_latency AND p.value ~ '{LATENCY_PATTERN}'
                                     AND CAST(TRIM(p.value) AS integer) <= {MAX_LATENCY}
                                THEN CAST(TRIM(p.value) AS integer) END,
                           c.latency_days), 0) AS latency,
                       CASE WHEN c.price_change THEN COALESCE(l.price_override, si.retail_price) END AS price,
                       ps.last_pushed_quantity, ps.last_pushed_latency, ps.last_pushed_price, ps.last_pushed_at,
                       COALESCE(ps.is_ended, false) AS was_ended
                FROM {listing} AS l
                JOIN {channel} AS c ON c.id = l.channel_id
                JOIN {item} AS si ON si.id = l.stock_item_id
                LEFT JOIN everywhere AS e ON e.stock_item_id = l.stock_item_id AND NOT c.update_inventory_from_locations
                LEFT JOIN chosen AS ch ON ch.channel_id = l.channel_id AND ch.stock_item_id = l.stock_item_id
                LEFT JOIN kits_everywhere AS ke ON ke.kit_id = l.stock_item_id AND NOT c.update_inventory_from_locations
                LEFT JOIN kits_chosen AS kch ON kch.channel_id = l.channel_id AND kch.kit_id = l.stock_item_id
                LEFT JOIN inventory_stockitemproperty AS p
                       ON c.product_based_latency AND p.stock_item_id = l.stock_item_id
                          AND p.name = c.latency_property_name
                LEFT JOIN {state} AS ps ON ps.listing_id = l.id
                WHERE NOT l.fulfilled_by_channel
            ), sent AS (
                SELECT f.*, CASE WHEN f.available <= f.end_when THEN 0
                                 ELSE LEAST(f.available, COALESCE(f.max_listed, f.available))
                                      * COALESCE(f.percentage, 100) / 100 END AS quantity,
                            f.available <= f.end_when AS ended
                FROM figures AS f
            )
            SELECT listing_id, quantity, ended, latency, price FROM sent
        """
        if diff:
            sql += """WHERE last_pushed_at IS NULL OR last_pushed_quantity IS NULL OR quantity <> last_pushed_quantity
                      OR ended <> was_ended OR COALESCE(latency, -1) <> COALESCE(last_pushed_latency, -1)
                      OR (price_change AND COALESCE(price, -1) <> COALESCE(last_pushed_price, -1))"""
        return sql

    def _floor_check(self) -> int:
        """The floor gives every listing the quantity, ended flag and latency the product computes (and
        the price where Price Change sends it); returns how many listings were compared."""
        with connection.cursor() as cursor:
            cursor.execute(self._floor_sql(diff=False))
            floor = {row[0]: row[1:] for row in cursor.fetchall()}
        compared = 0
        for channel_id in self._channel_ids():
            price_change = Channel.objects.get(pk=channel_id).price_change
            for row in listing_quantities(channel_id=channel_id):
                quantity, ended, latency, price = floor.pop(row.listing_id)
                ours = (row.quantity, row.is_ended, row.latency_days, row.price if price_change else None)
                if ours != (quantity, ended, latency, price):
                    raise CommandError(f"listing {row.listing_id}: the product computes {ours}, the floor "
                                       f"{(quantity, ended, latency, price)}")
                compared += 1
        if floor:
            raise CommandError(f"the floor computes {len(floor)} listings the product does not")
        return compared

    def _floor(self, *, runs: int, mark: Callable[[int], None]) -> None:
        compared = self._floor_check()
        product, floor = [], []
        for n in range(runs):
            mark(n)
            started = time.perf_counter()
            planned = self._plan_all()
            product.append(time.perf_counter() - started)
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute("SET LOCAL jit = off")
                started = time.perf_counter()
                cursor.execute(self._floor_sql(diff=True))
                differing = len(cursor.fetchall())
                floor.append(time.perf_counter() - started)
            if differing != planned:
                raise CommandError(f"the floor finds {differing} listings to push, the product plans {planned}")
            self._settle()
        ours, best = statistics.median(product), statistics.median(floor)
        self.stdout.write(
            f"recompute-and-diff against the floor: product median {ours * 1000:.0f} ms, hand-written statement "
            f"median {best * 1000:.0f} ms over {runs} runs: {ours / best:.2f}x the floor "
            f"(same values for all {compared} listings, same {planned} listings to push)"
        )

    # --- push bookkeeping on the first channel ----------------------------------------------------

    def _bookkeeping(self, *, runs: int) -> None:
        channel_id = self._channel_ids()[0]
        size = ChannelListing.objects.filter(channel_id=channel_id).count()
        state = ListingPushState._meta.db_table
        figures: dict[str, list[float]] = {}
        planned: list[int] = []
        item_ids = list(ChannelListing.objects.filter(channel_id=channel_id).values_list("stock_item_id", flat=True))

        def timed(label: str, body: Callable[[], object]) -> object:
            started = time.perf_counter()
            result = body()
            figures.setdefault(label, []).append(time.perf_counter() - started)
            return result

        with connection.cursor() as cursor:
            cursor.execute(f"SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables WHERE relname = '{state}'")
            updates_before, hot_before = cursor.fetchone()
        for n in range(runs):
            # 6% of the channel's items move, as after a busy hour; every listing of the channel marked.
            with connection.cursor() as cursor:
                cursor.execute(
                    f"UPDATE {StockLevel._meta.db_table} SET quantity = quantity + 1 WHERE stock_item_id %% 17 = %s "
                    f"AND stock_item_id NOT IN (SELECT kit_id FROM {KitComponent._meta.db_table})",
                    [n % 17],
                )
            run_id = next(self._run_ids)
            timed("marking every listing of the channel (a rule change: one channel mark)",
                  lambda: channel_listings_mark_all(channel_id=channel_id))
            timed("marking every listing of the channel one by one (a stock change on every item)",
                  lambda: listings_mark_for_push(stock_item_ids=item_ids))
            listings_push_claim(channel_id=channel_id, run_id=run_id)
            plan = timed("planning the push", lambda: listings_push_plan(channel_id=channel_id))
            planned.append(len(plan))
            timed("recording the planned pushes",
                  lambda plan=plan: listings_record_pushed(pushes=plan, at=timezone.now()))
            timed("settling after the push",
                  lambda run_id=run_id: listings_pending_settle(channel_id=channel_id, run_id=run_id))
            full = listings_push_plan(channel_id=channel_id, full=True)
            timed(f"recording a full push ({len(full)} listings)",
                  lambda full=full: listings_record_pushed(pushes=full, at=timezone.now()))
        # The statistics collector reports asynchronously; wait for what this process sent.
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_stat_force_next_flush()")
        time.sleep(1)
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables WHERE relname = '{state}'")
            updates_after, hot_after = cursor.fetchone()
        self.stdout.write(f"push bookkeeping on one channel of {size} listings, median of {runs} runs "
                          f"({statistics.median(planned):.0f} listings planned each time):")
        for label, times in figures.items():
            median = statistics.median(times)
            shown = f"{median * 1000:.1f} ms" if median < 1 else f"{median:.2f} s"
            self.stdout.write(f"  {label}: {shown}")
        updates = updates_after - updates_before
        hot = hot_after - hot_before
        self.stdout.write(f"  push state updates in place (heap-only): {hot} of {updates}"
                          f" ({hot / max(updates, 1):.0%})")
