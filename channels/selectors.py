"""What each channel may sell, and which listings need a push.

The quantity rules (seed "Inventory Updates" and the Amazon config page) run in SQL, so that one
statement computes every listing of a channel, or a subset, whatever the size of the catalogue:

1. available = physical stock less open orders, summed over the channel's ticked locations when
   "Update inventory from location" is on, else over every warehouse; FBA stock never counts for a
   merchant-fulfilled listing. For a kit, at each of those locations the fewest whole kits its
   components make there (floor of each component's available over its quantity per kit), summed;
2. available <= End When: 0 is sent and the listing counts as ended;
3. otherwise at most Max Listed Quantity, then Percentage of that rounded down; never below 0.

Listing overrides beat the channel defaults. `channel_quantity_compute` is the same rule in Python,
used by the explanation shown to staff; the tests hold the two together.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.db import connection, transaction
from django.db.models import BooleanField, Exists, ExpressionWrapper, F, OuterRef, Q, QuerySet

from channels.models import Channel, ChannelListing, ChannelPushMark, ListingPushMark, ListingPushState, SyncRun
from config.batching import chunks, id_batch_size
from inventory.models import KitComponent, Location, StockItem, StockItemProperty, StockLevel
from inventory.selectors import kit_available_by_location

CENT = Decimal("0.01")
# Rows fetched per round trip while streaming.
FETCH = 2000
# A product's latency property must be a whole number of days Amazon accepts; anything else is ignored.
LATENCY_PATTERN = r"^\s*[0-9]{1,2}\s*$"
MAX_LATENCY = 30


@dataclass(frozen=True, slots=True)
class ListingQuantity:
    listing_id: int
    channel_sku: str
    external_id: str
    stock_item_id: int
    available: int
    quantity: int
    is_ended: bool
    latency_days: int | None  # None: not sent
    price: Decimal | None


@dataclass(frozen=True, slots=True)
class PlannedPush:
    listing_id: int
    channel_sku: str
    external_id: str
    quantity: int
    is_ended: bool
    latency_days: int | None  # None: not sent
    price: Decimal | None  # None: the channel's Price Change is off, the price is not sent


@dataclass(frozen=True, slots=True)
class ExplainStep:
    label: str
    value: str
    note: str = ""


@dataclass(frozen=True)
class ChannelRules:
    """The channel settings the computation needs, read once per call."""

    channel_id: int
    location_ids: tuple[int, ...]
    end_when: int
    max_listed: int | None
    percentage: int | None
    latency_days: int
    product_based_latency: bool
    latency_property_name: str
    price_change: bool


def channel_counted_location_ids(*, channel: Channel) -> tuple[int, ...]:
    """The locations whose stock a channel's merchant listings are sent: the ticked ones when location
    mapping is on, else every warehouse; never an FBA location (that stock is Amazon's)."""
    if channel.update_inventory_from_locations:
        locations = channel.inventory_locations.filter(kind=Location.Kind.WAREHOUSE)
    else:
        locations = Location.objects.filter(kind=Location.Kind.WAREHOUSE)
    return tuple(sorted(locations.values_list("pk", flat=True)))


def channel_rules(*, channel_id: int) -> ChannelRules:
    channel = Channel.objects.get(pk=channel_id)
    return ChannelRules(
        channel_id=channel.pk,
        location_ids=channel_counted_location_ids(channel=channel),
        end_when=channel.end_when_quantity,
        max_listed=channel.max_listed_quantity,
        percentage=channel.max_listed_percentage,
        latency_days=channel.latency_days,
        product_based_latency=channel.product_based_latency,
        latency_property_name=channel.latency_property_name,
        price_change=channel.price_change,
    )


def channel_quantity_compute(
    *, available: int, end_when: int, max_listed: int | None, percentage: int | None
) -> tuple[int, bool]:
    """(quantity sent, listing ended) for one listing; the rule the SQL below implements."""
    if available <= end_when:
        return 0, True
    quantity = available if max_listed is None else min(available, max_listed)
    if percentage is not None:
        quantity = quantity * percentage // 100
    return max(quantity, 0), False


def _placeholders(values: Sequence) -> str:
    return ", ".join(["%s"] * len(values))


def _floor_div(dividend: str, divisor: str) -> str:
    """Integer division rounded down, as Python's `//` (SQL's rounds towards zero): an oversold component
    makes fewer than no kits, not none."""
    return (f"CASE WHEN {dividend} >= 0 THEN {dividend} / {divisor} "
            f"ELSE -(({divisor} - 1 - ({dividend})) / {divisor}) END")


def _regex(column: str) -> str:
    return f"{column} ~ %s" if connection.vendor == "postgresql" else f"{column} REGEXP %s"


# The columns callers read, in this order, from the SELECT that `_computed_sql` builds.
OUTPUT = (
    "c.listing_id, c.channel_sku, c.external_id, c.stock_item_id, c.available, c.quantity, c.ended, c.latency, c.price"
)


def _computed_sql(
    *, rules: ChannelRules, listing_ids: Sequence[int] | None, stock_item_ids: Sequence[int] | None,
    pending_only: bool, with_price: bool, grouped: bool = False,
) -> tuple[str, list]:
    """One SELECT with a row per linked merchant listing of the channel in scope: the computed
    quantity, ended flag, latency and price beside what was last pushed. Callers select from it as
    `c`; without `with_price` the stock items are not joined and the price is NULL."""
    listing = ChannelListing._meta.db_table
    level = StockLevel._meta.db_table
    item = StockItem._meta.db_table
    prop = StockItemProperty._meta.db_table
    state = ListingPushState._meta.db_table
    mark = ListingPushMark._meta.db_table

    scope = ["l.channel_id = %s", "l.stock_item_id IS NOT NULL", "NOT l.fulfilled_by_channel"]
    scope_params: list = [rules.channel_id]
    if listing_ids is not None:
        scope.append(f"l.id IN ({_placeholders(listing_ids) or 'NULL'})")
        scope_params += list(listing_ids)
    if stock_item_ids is not None:
        scope.append(f"l.stock_item_id IN ({_placeholders(stock_item_ids) or 'NULL'})")
        scope_params += list(stock_item_ids)
    if pending_only and not grouped:
        # The marks of one channel are few after an order: the plan reads those, not the channel's listings.
        scope.append(f"l.id IN (SELECT m.listing_id FROM {mark} AS m WHERE m.channel_id = %s)")
        scope_params.append(rules.channel_id)
    where = " AND ".join(scope)

    # For the whole channel one grouped scan of the levels is cheapest; so it is when most of it is marked
    # (`grouped`), and then the plan reads every listing rather than join marks whose statistics lag (the
    # diff leaves out the unchanged ones either way). For a subset (marked listings, some items) each
    # listing looks its levels up by the (item, location) unique index, which holds whatever the planner's
    # estimate of the subset's size: marks come and go faster than statistics.
    in_locations = f"sl.location_id IN ({_placeholders(rules.location_ids) or 'NULL'})"
    location_params = list(rules.location_ids)
    # A kit's own levels at a warehouse only count the kits open orders hold: its components are its stock.
    # Every kit gets a row here when the channel counts any location, so its own levels are never read.
    kits_at = f"""
        SELECT kc.kit_id, w.id AS location_id, MIN({_floor_div("COALESCE(sl.quantity - sl.in_open_orders, 0)",
                                                              "kc.quantity")}) AS available
        FROM {KitComponent._meta.db_table} AS kc
        JOIN {Location._meta.db_table} AS w ON w.id IN ({_placeholders(rules.location_ids) or 'NULL'})
        LEFT JOIN {level} AS sl ON sl.stock_item_id = kc.component_id AND sl.location_id = w.id
    """
    select_params: list = []
    join_available_params: list = []
    state_join = "ps.listing_id = l.id"
    state_params: list = []
    if grouped or (listing_ids is None and stock_item_ids is None and not pending_only):
        # The channel's push states by its index rather than every channel's in a scan (a third of the plan on a
        # 100k-listing channel of five). A subset looks each one up by its listing.
        state_join += " AND ps.channel_id = %s"
        state_params.append(rules.channel_id)
        available = "COALESCE(ka.available, a.available, 0)"
        available_join = f"""LEFT JOIN (
            SELECT sl.stock_item_id, SUM(sl.quantity - sl.in_open_orders) AS available
            FROM {level} AS sl WHERE {in_locations} GROUP BY sl.stock_item_id
        ) AS a ON a.stock_item_id = l.stock_item_id
        LEFT JOIN (
            SELECT k.kit_id, SUM(k.available) AS available
            FROM ({kits_at} GROUP BY kc.kit_id, w.id) AS k GROUP BY k.kit_id
        ) AS ka ON ka.kit_id = l.stock_item_id"""
        join_available_params = location_params + location_params
    else:
        available = f"""COALESCE((
            SELECT SUM(k.available) FROM ({kits_at} WHERE kc.kit_id = l.stock_item_id GROUP BY kc.kit_id, w.id) AS k
        ), (
            SELECT SUM(sl.quantity - sl.in_open_orders) FROM {level} AS sl
            WHERE sl.stock_item_id = l.stock_item_id AND {in_locations}
        ), 0)"""
        available_join = ""
        select_params = location_params + location_params

    latency_sources = ["l.latency_days"]
    latency_join = ""
    latency_params: list = []
    join_params: list = []
    if rules.product_based_latency:
        latency_join = f"LEFT JOIN {prop} AS p ON p.stock_item_id = l.stock_item_id AND p.name = %s"
        join_params.append(rules.latency_property_name)
        # The nested CASE guarantees the cast only sees digits.
        latency_sources.append(
            f"CASE WHEN {_regex('p.value')} THEN CASE WHEN CAST(TRIM(p.value) AS integer) <= {MAX_LATENCY} "
            "THEN CAST(TRIM(p.value) AS integer) END END"
        )
        latency_params.append(LATENCY_PATTERN)
    latency_sources.append("%s")
    latency_params.append(rules.latency_days)

    base = f"""
        SELECT l.id AS listing_id, l.channel_sku, l.external_id, l.stock_item_id,
               {available} AS available,
               COALESCE(l.end_when_quantity, %s) AS end_when,
               COALESCE(l.max_listed_quantity, %s) AS max_listed,
               COALESCE(l.max_listed_percentage, %s) AS percentage,
               NULLIF(COALESCE({", ".join(latency_sources)}), 0) AS latency,
               {"COALESCE(l.price_override, si.retail_price)" if with_price else "NULL"} AS price,
               ps.last_pushed_quantity, ps.last_pushed_latency, ps.last_pushed_price, ps.last_pushed_at,
               COALESCE(ps.is_ended, %s) AS was_ended
        FROM {listing} AS l
        LEFT JOIN {state} AS ps ON {state_join}
        {f"JOIN {item} AS si ON si.id = l.stock_item_id" if with_price else ""}
        {available_join}
        {latency_join}
        WHERE {where}
        {"OFFSET 0" if connection.vendor == "postgresql" else ""}
    """
    # OFFSET 0 keeps PostgreSQL from inlining `available` into each of its uses below (a lookup each).
    base_params = [
        *select_params, rules.end_when, rules.max_listed, rules.percentage, *latency_params, False,
        *state_params, *join_available_params, *join_params, *scope_params,
    ]
    sql = f"""
        SELECT b.listing_id, b.channel_sku, b.external_id, b.stock_item_id, b.available,
               CASE WHEN b.available <= b.end_when THEN 0
                    ELSE (CASE WHEN b.max_listed IS NOT NULL AND b.max_listed < b.available
                               THEN b.max_listed ELSE b.available END) * COALESCE(b.percentage, 100) / 100
               END AS quantity,
               CASE WHEN b.available <= b.end_when THEN 1 ELSE 0 END AS ended,
               b.latency, b.price,
               b.last_pushed_quantity, b.last_pushed_latency, b.last_pushed_price, b.last_pushed_at, b.was_ended
        FROM ({base}) AS b
    """
    return sql, base_params


@contextmanager
def computing_cursor(*, chunked: bool = False) -> Iterator:
    """A cursor for the quantity statements, in a transaction with PostgreSQL's JIT off.

    The planner's row estimates for marked listings lag behind (marks come and go in bursts), which
    can push a sub-millisecond statement over jit_above_cost and add 50 ms of compilation to it.
    """
    options = connection.settings_dict.get("OPTIONS", {}).get("options", "")
    with transaction.atomic():
        # Nothing to do where the connection already runs without JIT ("-c jit=off" in OPTIONS).
        if connection.vendor == "postgresql" and "jit=off" not in options.replace(" ", ""):
            with connection.cursor() as setting:
                setting.execute("SET LOCAL jit = off")
        with connection.chunked_cursor() if chunked else connection.cursor() as cursor:
            yield cursor


def _price(value) -> Decimal | None:
    if value is None:
        return None
    if isinstance(value, Decimal):
        return value
    # SQLite hands back floats for decimal columns in raw SQL.
    return Decimal(str(value)).quantize(CENT)


def _id_chunks(ids: Iterable[int] | None) -> Iterator[list[int] | None]:
    """The ids in batches a statement can bind; None (no filter) stays one batch of None."""
    if ids is None:
        yield None
        return
    yield from chunks(sorted(set(ids)), id_batch_size())


def listing_quantities(
    *, channel_id: int, listing_ids: Iterable[int] | None = None, stock_item_ids: Iterable[int] | None = None
) -> Iterator[ListingQuantity]:
    """What the channel gets for each linked merchant listing (all of them, or those given), streamed
    from one SQL statement (per 16k ids on SQLite, which caps parameters)."""
    rules = channel_rules(channel_id=channel_id)
    item_chunks = list(_id_chunks(stock_item_ids))
    for listing_chunk in _id_chunks(listing_ids):
        for item_chunk in item_chunks:
            if listing_chunk == [] or item_chunk == []:
                continue
            sql, params = _computed_sql(
                rules=rules, listing_ids=listing_chunk, stock_item_ids=item_chunk, pending_only=False, with_price=True
            )
            with computing_cursor(chunked=True) as cursor:
                cursor.execute(f"SELECT {OUTPUT} FROM ({sql}) AS c", params)
                while rows := cursor.fetchmany(FETCH):
                    for row in rows:
                        yield ListingQuantity(
                            listing_id=row[0], channel_sku=row[1], external_id=row[2], stock_item_id=row[3],
                            available=int(row[4]), quantity=int(row[5]), is_ended=bool(row[6]),
                            latency_days=row[7], price=_price(row[8]),
                        )


def _diff_sql(*, price_change: bool) -> str:
    """The computed values differ from what was last pushed (or nothing was ever pushed)."""
    differs = [
        "c.last_pushed_at IS NULL",
        "c.last_pushed_quantity IS NULL",
        "c.quantity <> c.last_pushed_quantity",
        "c.ended <> CASE WHEN c.was_ended THEN 1 ELSE 0 END",
        "COALESCE(c.latency, -1) <> COALESCE(c.last_pushed_latency, -1)",
    ]
    if price_change:
        differs.append("COALESCE(c.price, -1) <> COALESCE(c.last_pushed_price, -1)")
    return " OR ".join(differs)


# Below this many marks the per-listing lookups win whatever the channel's size (after an order, an import).
FEW_MARKS = 1000


def _most_listings_marked(*, channel_id: int) -> bool:
    """The whole channel is marked (a rule change), or a fifth or more of its listings (a large import):
    one grouped scan of the levels then costs less than a lookup per listing."""
    if ChannelPushMark.objects.filter(channel_id=channel_id).exists():
        return True
    marked = ListingPushMark.objects.filter(channel_id=channel_id).count()
    if marked < FEW_MARKS:
        return False
    return marked * 5 >= ChannelListing.objects.filter(channel_id=channel_id).count()


def listings_push_plan(*, channel_id: int, full: bool = False) -> list[PlannedPush]:
    """The listings of a channel to push now, with what to send.

    A normal run looks only at listings marked for a push (or never pushed) and keeps those whose
    quantity, latency or price (price only with Price Change on) differ from what was last pushed:
    the hub overwrites a value edited on the channel only at the next change here, as the seed says.
    `full=True` recomputes every linked listing and plans them all, overwriting channel-side edits.
    """
    rules = channel_rules(channel_id=channel_id)
    sql, params = _computed_sql(
        rules=rules, listing_ids=None, stock_item_ids=None, pending_only=not full, with_price=rules.price_change,
        grouped=not full and _most_listings_marked(channel_id=channel_id),
    )
    sql = f"SELECT {OUTPUT} FROM ({sql}) AS c"
    if not full:
        sql += f" WHERE {_diff_sql(price_change=rules.price_change)}"
    plan: list[PlannedPush] = []
    with computing_cursor() as cursor:
        cursor.execute(sql, params)
        while rows := cursor.fetchmany(FETCH):
            plan.extend(
                PlannedPush(
                    listing_id=row[0], channel_sku=row[1], external_id=row[2], quantity=int(row[5]),
                    is_ended=bool(row[6]), latency_days=row[7],
                    price=_price(row[8]) if rules.price_change else None,
                )
                for row in rows
            )
    return plan


@dataclass(frozen=True)
class RevisionBudget:
    """How a channel that caps each listing's revisions a day (eBay: 250) spreads them: a fifth of the cap at once,
    the rest evenly over the channel's calendar day, so a listing that sells all day is still revised at the end of
    it. A push that ends a listing (0 to sell) goes whenever the cap allows, paced or not."""

    cap: int
    zone: ZoneInfo
    now: datetime

    @property
    def day(self) -> date:
        return self.now.astimezone(self.zone).date()

    @property
    def burst(self) -> int:
        return max(1, self.cap // 5)

    def _day_start(self) -> datetime:
        return datetime.combine(self.day, time.min, tzinfo=self.zone)

    def allowed(self) -> int:
        """The revisions a listing may have had by now today."""
        elapsed = (self.now - self._day_start()) / timedelta(days=1)
        return min(self.cap, self.burst + int((self.cap - self.burst) * elapsed))

    def next_revision_at(self, revisions: int) -> datetime:
        """When a listing revised `revisions` times today may be revised again."""
        if revisions >= self.cap:
            return datetime.combine(self.day + timedelta(days=1), time.min, tzinfo=self.zone)
        share = (revisions + 1 - self.burst) / (self.cap - self.burst)
        return self._day_start() + timedelta(days=1) * share

    def hold_reason(self, revisions: int, push: PlannedPush) -> str:
        """Why this push waits (empty: it goes now)."""
        if revisions < self.allowed() or (push.quantity == 0 and revisions < self.cap):
            return ""
        at = self.next_revision_at(revisions).astimezone(ZoneInfo("UTC"))
        if revisions >= self.cap:
            return (f"Held back: the channel revised this listing {revisions} times today, the most it allows in one "
                    f"day ({self.cap}); it is sent again after {at:%Y-%m-%d %H:%M} UTC.")
        return (f"Held back: revised {revisions} times today of the {self.cap} the channel allows a day, so changes "
                f"are coalesced; the latest quantity goes at the first push after {at:%H:%M} UTC.")


def listings_revision_hold(*, plan: Sequence[PlannedPush], budget: RevisionBudget
                           ) -> tuple[list[PlannedPush], list[tuple[PlannedPush, str]]]:
    """The plan split into what goes now and what waits for the listing's revision budget, with why."""
    revisions: dict[int, int] = {}
    for chunk in chunks([push.listing_id for push in plan], id_batch_size()):
        revisions |= dict(ListingPushState.objects.filter(listing_id__in=chunk, revisions_day=budget.day)
                          .values_list("listing_id", "revisions_today"))
    send, held = [], []
    for push in plan:
        reason = budget.hold_reason(revisions.get(push.listing_id, 0), push)
        if reason:
            held.append((push, reason))
        else:
            send.append(push)
    return send, held


def _source(override) -> str:
    return "listing override" if override is not None else "channel default"


def channel_quantity_explain(listing: ChannelListing) -> list[ExplainStep]:
    """Why the listing's channel is sent the number it is sent, step by step, for staff."""
    channel = listing.channel
    if listing.stock_item_id is None:
        return [ExplainStep("Result", "nothing sent", "The listing is not linked to a stock item.")]
    if listing.fulfilled_by_channel:
        return [ExplainStep("Result", "nothing sent", "Fulfilled by the channel: its stock is the channel's.")]
    counted = set(channel_counted_location_ids(channel=channel))
    scope = "the ticked locations" if channel.update_inventory_from_locations else "all warehouses"
    kit_steps = _kit_steps(stock_item_id=listing.stock_item_id, counted=sorted(counted), scope=scope)
    if kit_steps is not None:
        steps, available = kit_steps
        return steps + _rule_steps(listing, channel, available=available)
    steps: list[ExplainStep] = []
    available = 0
    open_orders = 0
    levels = StockLevel.objects.filter(stock_item_id=listing.stock_item_id).select_related("location")
    for level in levels.order_by("location__name"):
        if level.location_id in counted:
            available += level.quantity - level.in_open_orders
            open_orders += level.in_open_orders
            steps.append(
                ExplainStep(
                    f"Stock at {level.location.name}", str(level.quantity),
                    f"counted; {level.in_open_orders} in open orders",
                )
            )
        elif level.location.kind == Location.Kind.EXTERNAL:
            steps.append(
                ExplainStep(
                    f"Stock at {level.location.name}", str(level.quantity), "not counted: FBA stock is Amazon's"
                )
            )
        else:
            steps.append(
                ExplainStep(
                    f"Stock at {level.location.name}", str(level.quantity),
                    "not counted: not ticked in this channel's Location Mapping",
                )
            )
    steps.append(ExplainStep("In open orders", str(open_orders), f"over {scope}"))
    steps.append(ExplainStep("Available", str(available), f"physical stock less open orders over {scope}"))
    return steps + _rule_steps(listing, channel, available=available)


def _kit_steps(*, stock_item_id: int, counted: Sequence[int], scope: str) -> tuple[list[ExplainStep], int] | None:
    """A kit's available, location by location, through the component that limits it; None for an item that is
    not a kit."""
    if not KitComponent.objects.filter(kit_id=stock_item_id).exists():
        return None
    names = dict(Location.objects.filter(pk__in=counted).values_list("pk", "name"))
    steps: list[ExplainStep] = []
    available = 0
    for at in kit_available_by_location(kit_id=stock_item_id, location_ids=counted):
        available += at.available
        limiting = at.limiting
        others = "; ".join(
            f"{part.sku} makes {part.kits}" for part in at.components if part is not limiting
        )
        steps.append(ExplainStep(
            f"Kits at {names[at.location_id]}", str(at.available),
            f"limited by {limiting.sku}: {limiting.available} available / {limiting.per_kit} per kit"
            + (f"; {others}" if others else ""),
        ))
    steps.append(ExplainStep(
        "Available", str(available),
        f"a kit: the fewest whole kits its components make (physical stock less open orders), per location, "
        f"over {scope}",
    ))
    return steps, available


def _rule_steps(listing: ChannelListing, channel: Channel, *, available: int) -> list[ExplainStep]:
    """End When, Max Listed, Percentage, the result, latency and price: the same for every listing."""
    steps: list[ExplainStep] = []

    end_when = listing.end_when_quantity if listing.end_when_quantity is not None else channel.end_when_quantity
    max_listed = listing.max_listed_quantity if listing.max_listed_quantity is not None else channel.max_listed_quantity
    percentage = (
        listing.max_listed_percentage if listing.max_listed_percentage is not None else channel.max_listed_percentage
    )
    quantity, ended = channel_quantity_compute(
        available=available, end_when=end_when, max_listed=max_listed, percentage=percentage
    )
    end_source = _source(listing.end_when_quantity)
    if ended:
        steps.append(
            ExplainStep("End when", str(end_when), f"{end_source}; {available} <= {end_when}: the listing ends")
        )
    else:
        steps.append(ExplainStep("End when", str(end_when), f"{end_source}; {available} > {end_when}: still listed"))
        capped = available if max_listed is None else min(available, max_listed)
        steps.append(
            ExplainStep(
                "Max listed", "none" if max_listed is None else str(max_listed),
                "no maximum" if max_listed is None
                else f"{_source(listing.max_listed_quantity)}; min({available}, {max_listed}) = {capped}",
            )
        )
        steps.append(
            ExplainStep(
                "Percentage", "none" if percentage is None else f"{percentage}%",
                "everything is sent" if percentage is None
                else f"{_source(listing.max_listed_percentage)}; "
                f"floor({capped} x {percentage} / 100) = {capped * percentage // 100}",
            )
        )
    steps.append(ExplainStep("Result", str(quantity), "the listing is ended" if ended else "sent to the channel"))
    steps.append(_latency_step(listing, channel))
    steps.append(_price_step(listing, channel))
    return steps


def _latency_step(listing: ChannelListing, channel: Channel) -> ExplainStep:
    if listing.latency_days is not None:
        days, source = listing.latency_days, "listing override"
    else:
        days, source = channel.latency_days, "channel default"
        if channel.product_based_latency:
            properties = StockItemProperty.objects.filter(stock_item_id=listing.stock_item_id)
            value = properties.filter(name=channel.latency_property_name).values_list("value", flat=True).first()
            if value is not None and re.match(LATENCY_PATTERN, value) and int(value) <= MAX_LATENCY:
                days, source = int(value), f"product property {channel.latency_property_name!r}"
            elif value is not None:
                source = f"channel default (product property {channel.latency_property_name!r} = {value!r} is not 0-30)"
    return ExplainStep("Latency", f"{days} days" if days else "not sent", source)


def _price_step(listing: ChannelListing, channel: Channel) -> ExplainStep:
    if listing.price_override is not None:
        price, source = listing.price_override, "listing's channel price"
    else:
        price, source = listing.stock_item.retail_price, "stock item's retail price"
    sent = "sent" if channel.price_change else "not sent: Price Change is off"
    return ExplainStep("Price", str(price), f"{source}; {sent}")


def listings_with_drift(listings: QuerySet[ChannelListing] | None = None) -> QuerySet[ChannelListing]:
    """The listings (of `listings`, else all) whose quantity on the channel, read after the hub's last push,
    is not what that push sent: changed there, or lost. A quantity read before the push (or before any
    push) says nothing about the channel since."""
    listings = ChannelListing.objects.all() if listings is None else listings
    return listings.filter(
        channel_quantity__isnull=False, push_state__last_pushed_quantity__isnull=False,
        downloaded_at__gt=F("push_state__last_pushed_at"),
    ).exclude(channel_quantity=F("push_state__last_pushed_quantity"))


def listings_download_summary(*, run: SyncRun) -> str:
    """One line for staff: what the download stored, linked, could not read, and where quantities drifted."""
    listings = ChannelListing.objects.filter(channel_id=run.channel_id)
    unlinked = listings.filter(stock_item__isnull=True).count()
    drift = listings_with_drift(listings).count()
    return (
        f"Downloaded {run.processed} listing(s) for {run.channel.name}: {unlinked} not linked to a stock item, "
        f"{run.failed} unreadable, {drift} with a channel quantity different from the last one sent."
    )


def channel_by_name(*, name: str) -> Channel:
    try:
        return Channel.objects.get(name=name)
    except Channel.DoesNotExist:
        known = ", ".join(Channel.objects.order_by("name").values_list("name", flat=True)[:20]) or "none"
        raise Channel.DoesNotExist(f"No channel is named {name!r} (channels: {known}).") from None


def listing_drift(*, listing: ChannelListing) -> bool | None:
    """The rule of `listings_with_drift` for one listing: None until both quantities are known."""
    last_push = listing.last_push
    if listing.channel_quantity is None or last_push is None or last_push.last_pushed_quantity is None:
        return None
    read_before_push = last_push.last_pushed_at is None or listing.downloaded_at is None or (
        listing.downloaded_at <= last_push.last_pushed_at
    )
    if read_before_push:
        return None
    return listing.channel_quantity != last_push.last_pushed_quantity


def stock_item_listings(*, stock_item_id: int) -> QuerySet[ChannelListing]:
    """The listings of one stock item on every channel, by channel and SKU, for its page."""
    return (
        listings_with_push_state(ChannelListing.objects.filter(stock_item_id=stock_item_id))
        .select_related("channel", "stock_item")
        .order_by("channel__name", "channel_sku")
    )


def _waiting_for_push() -> Q:
    """A listing waits for a push: marked itself, or linked and sent from the warehouses on a channel marked
    as a whole."""
    own = Exists(ListingPushMark.objects.filter(listing_id=OuterRef("pk")))
    channel = Exists(ChannelPushMark.objects.filter(channel_id=OuterRef("channel_id")))
    return Q(own) | (Q(channel) & Q(stock_item__isnull=False, fulfilled_by_channel=False))


def listings_with_push_state(listings: QuerySet[ChannelListing]) -> QuerySet[ChannelListing]:
    """The listings with what was last pushed (`last_push`) and whether one waits (`waiting_for_push`)
    read in the same query."""
    return listings.select_related("push_state").annotate(
        is_waiting_for_push=ExpressionWrapper(_waiting_for_push(), output_field=BooleanField())
    )


def listings_waiting_for_push(listings: QuerySet[ChannelListing], *, waiting: bool = True) -> QuerySet[ChannelListing]:
    return listings.filter(_waiting_for_push() if waiting else ~_waiting_for_push())



def listings_channel_quantity_seen(*, listing_ids: Sequence[int]) -> dict[int, tuple[int | None, datetime | None]]:
    """What the hub last saw each listing's channel hold, and when: the quantity the channel last accepted, or what
    a later listing download found there. (None, None): never seen. One query for the batch."""
    rows = ChannelListing.objects.filter(pk__in=listing_ids).values_list(
        "pk", "channel_quantity", "downloaded_at", "push_state__last_pushed_quantity", "push_state__last_pushed_at")
    seen: dict[int, tuple[int | None, datetime | None]] = {}
    for pk, downloaded, downloaded_at, pushed, pushed_at in rows:
        pushed_later = pushed is not None and (downloaded_at is None or (pushed_at and pushed_at >= downloaded_at))
        seen[pk] = (pushed, pushed_at) if pushed_later else (downloaded, downloaded_at if downloaded is not None
                                                             else None)
    return seen
