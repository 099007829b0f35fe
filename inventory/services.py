"""The single stock-write path.

Every change of physical stock or of the open-orders counter goes through these functions. They lock
the stock levels they touch in primary-key order (so two writers never deadlock), never leave
physical stock negative, write one StockMovement per change of physical stock, and announce the
changed stock items on commit with `inventory.signals.stock_changed`.

A kit (a stock item with components) holds no stock of its own at a warehouse: a line for a kit there
reserves, releases and despatches its components (quantity per kit times the kit's quantity) together with
the kit's own open-orders counter, which says how many kits open orders hold at that warehouse (so a change
of the kit's components moves what they hold). At an external centre a kit is what the fulfiller stocks,
packed, like any item. The stock items of the lines are held (FOR KEY SHARE) before their components are
read, and a change of a kit's components locks the kit (FOR UPDATE): locks go orders, stock items, stock
levels, each in pk order.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone

from config.batching import chunks, id_batch_size
from inventory.models import KitComponent, Location, StockItem, StockLevel, StockMovement
from inventory.selectors import KitParts, kit_parts, kits_containing, stock_on_hand, warehouse_ids
from inventory.signals import stock_changed

# (stock_item_id, location_id, quantity)
Line = tuple[int, int, int]
# Rows per UPDATE ... FROM (VALUES ...) statement and per bulk_create batch.
BATCH = 5000
IMPORT_COLUMNS = ("sku", "location", "quantity")
KIT_IMPORT_COLUMNS = ("sku", "component_sku", "quantity")
# A stock level's quantity is a 32-bit integer column in every database the hub runs on.
MAX_QUANTITY = 2**31 - 1
# Why staff cannot count or change an external centre's stock by hand: its next sync would overwrite it.
EXTERNAL_BY_HAND = (
    "{location} is a fulfilment centre run by a channel: its stock is what the channel counts, set by its sync."
)
KIT_STOCK = "{sku} is a kit: it has no stock of its own at a warehouse; change its components' stock instead."


class InsufficientStock(ValidationError):
    """Despatch would take more than is physically at the location."""


def stock_changed_announce(*, stock_item_ids: Iterable[int], price_changed: bool = False) -> None:
    """Tell listeners, once the current transaction commits, which stock items changed."""
    ids = frozenset(stock_item_ids)
    if not ids:
        return
    if not price_changed:
        # What a kit can be sold of follows its components' stock.
        ids = ids | frozenset(kits_containing(component_ids=ids))
    transaction.on_commit(
        lambda: stock_changed.send(sender=StockItem, stock_item_ids=ids, price_changed=price_changed)
    )


def _items_hold(item_ids: Iterable[int]) -> None:
    """Hold these stock items (FOR KEY SHARE) until the transaction ends: their components cannot change
    meanwhile (a kit's change locks it FOR UPDATE), while prices and other writers carry on. SQLite writes
    one transaction at a time."""
    if connection.vendor != "postgresql":
        return
    table = StockItem._meta.db_table
    with connection.cursor() as cursor:
        for chunk in chunks(sorted(set(item_ids)), id_batch_size()):
            cursor.execute(
                f"SELECT id FROM {table} WHERE id = ANY(%s) ORDER BY id FOR KEY SHARE", [list(chunk)]
            )


@dataclass(frozen=True)
class _KitLines:
    """Lines as given, with the component lines the kits among them stand for at warehouses."""

    lines: tuple[Line, ...]
    # (component, location, quantity, kit)
    parts: tuple[tuple[int, int, int, int], ...]
    # (kit, location): a counter of kits held, never physical stock
    kit_keys: frozenset[tuple[int, int]]

    @property
    def all_lines(self) -> list[Line]:
        return [*self.lines, *((item_id, location_id, qty) for item_id, location_id, qty, _ in self.parts)]


def _kit_lines(lines: Iterable[Line]) -> _KitLines:
    lines = tuple(lines)
    _items_hold(item_id for item_id, _, _ in lines)
    kits = kit_parts(kit_ids={item_id for item_id, _, _ in lines})
    if not kits:
        return _KitLines(lines=lines, parts=(), kit_keys=frozenset())
    warehouses = warehouse_ids()
    parts = tuple(
        (component_id, location_id, quantity * per_kit, item_id)
        for item_id, location_id, quantity in lines
        if item_id in kits and location_id in warehouses
        for component_id, per_kit in kits[item_id]
    )
    kit_keys = frozenset(
        (item_id, location_id) for item_id, location_id, _ in lines if item_id in kits and location_id in warehouses
    )
    return _KitLines(lines=lines, parts=parts, kit_keys=kit_keys)


def _kits_at_warehouses_refuse(keys: Iterable[tuple[int, int]]) -> None:
    """Physical stock of a kit at a warehouse is its components': setting it there would count it twice."""
    keys = set(keys)
    kits = kit_parts(kit_ids={item_id for item_id, _ in keys})
    if not kits:
        return
    warehouses = warehouse_ids()
    refused = sorted(item_id for item_id, location_id in keys if item_id in kits and location_id in warehouses)
    if refused:
        sku = StockItem.objects.values_list("sku", flat=True).get(pk=refused[0])
        raise ValidationError(KIT_STOCK.format(sku=sku), code="kit_stock")


def _levels_lock(pairs: Iterable[tuple[int, int]]) -> dict[tuple[int, int], StockLevel]:
    """Create the missing levels at 0 and lock every level of these (item, location) pairs in pk order."""
    wanted = sorted(set(pairs))
    if not wanted:
        return {}
    item_ids = sorted({item_id for item_id, _ in wanted})
    _items_hold(item_ids)
    location_ids = sorted({location_id for _, location_id in wanted})
    existing: set[tuple[int, int]] = set()
    for chunk in chunks(item_ids, id_batch_size()):
        existing.update(
            StockLevel.objects.filter(stock_item_id__in=chunk, location_id__in=location_ids).values_list(
                "stock_item_id", "location_id"
            )
        )
    missing = [StockLevel(stock_item_id=i, location_id=loc) for i, loc in wanted if (i, loc) not in existing]
    if missing:
        # A concurrent writer may create the same row first: the unique constraint keeps one.
        StockLevel.objects.bulk_create(missing, ignore_conflicts=True, batch_size=BATCH)
    wanted_set = set(wanted)
    locked: dict[tuple[int, int], StockLevel] = {}
    for chunk in chunks(item_ids, id_batch_size()):
        rows = (
            StockLevel.objects.select_for_update(of=("self",))
            .filter(stock_item_id__in=chunk, location_id__in=location_ids)
            .order_by("pk")
        )
        for level in rows:
            key = (level.stock_item_id, level.location_id)
            if key in wanted_set:
                locked[key] = level
    return locked


def stock_levels_lock(*, lines: Sequence[Line]) -> None:
    """Lock the levels of these lines at once, in pk order, for a caller about to make several stock changes
    in one transaction (a reservation moving from one level to another): each change locking its own levels
    in turn would take them out of pk order, and two such callers could deadlock."""
    _levels_lock((item_id, location_id) for item_id, location_id, _quantity in _kit_lines(lines).all_lines)


def _levels_update(*, rows: Sequence[tuple], columns: Sequence[str], assignments: str) -> None:
    """One UPDATE ... FROM (VALUES ...) per batch: `rows` are (level_id, *values) named `v.<columns>`."""
    table = StockLevel._meta.db_table
    now = timezone.now()
    names = ", ".join(["id", *columns])
    width = len(columns) + 1
    for chunk in chunks(rows, BATCH):
        values = ", ".join(["(" + ", ".join(["%s"] * width) + ")"] * len(chunk))
        params = [value for row in chunk for value in row]
        with connection.cursor() as cursor:
            cursor.execute(
                f"WITH v({names}) AS (VALUES {values}) "
                f"UPDATE {table} AS l SET {assignments}, updated_at = %s FROM v WHERE l.id = v.id",
                [*params, now],
            )


def _merge(lines: Iterable[Line]) -> dict[tuple[int, int], int]:
    totals: dict[tuple[int, int], int] = defaultdict(int)
    for item_id, location_id, quantity in lines:
        if quantity < 0:
            raise ValidationError(f"A reserved or despatched quantity cannot be negative (got {quantity}).")
        totals[(item_id, location_id)] += quantity
    return {key: qty for key, qty in totals.items() if qty}


def _movements_write(movements: list[StockMovement]) -> None:
    StockMovement.objects.bulk_create(movements, batch_size=BATCH)


@transaction.atomic
def stock_level_adjust(
    *, stock_item_id: int, location_id: int, delta: int, reason: str, reference: str = "", user=None
) -> StockLevel:
    """Add `delta` (negative to remove) to the physical stock at a location."""
    level = _levels_lock([(stock_item_id, location_id)])[(stock_item_id, location_id)]
    if delta:
        _kits_at_warehouses_refuse([(stock_item_id, location_id)])
    after = level.quantity + delta
    if after < 0:
        raise ValidationError(
            f"Cannot remove {-delta} of {level.stock_item.sku} at {level.location.name}: "
            f"only {level.quantity} in stock. Physical stock cannot go below zero."
        )
    if delta == 0:
        return level
    level.quantity = after
    level.save(update_fields=["quantity", "updated_at"])
    StockMovement.objects.create(
        stock_item_id=stock_item_id, location_id=location_id, delta=delta, quantity_after=after,
        reason=reason, reference=reference[:255], user=user,
    )
    stock_changed_announce(stock_item_ids=[stock_item_id])
    return level


@transaction.atomic
def stock_level_set(
    *, stock_item_id: int, location_id: int, quantity: int, reason: str, reference: str = "", user=None
) -> StockLevel:
    """Set the physical stock at a location, e.g. after a stock count."""
    if quantity < 0:
        raise ValidationError("Physical stock cannot go below zero.")
    level = _levels_lock([(stock_item_id, location_id)])[(stock_item_id, location_id)]
    return stock_level_adjust(
        stock_item_id=stock_item_id, location_id=location_id, delta=quantity - level.quantity,
        reason=reason, reference=reference, user=user,
    )


def _levels_set(changes: Sequence[tuple[StockLevel, int]], *, reason: str, reference: str, user) -> None:
    """Write these (locked level, new quantity) pairs with one movement each, and announce the items."""
    _levels_update(
        rows=[(level.pk, quantity) for level, quantity in changes],
        columns=["quantity"],
        assignments="quantity = v.quantity",
    )
    _movements_write(
        [
            StockMovement(
                stock_item_id=level.stock_item_id, location_id=level.location_id, delta=quantity - level.quantity,
                quantity_after=quantity, reason=reason, reference=reference[:255], user=user,
            )
            for level, quantity in changes
        ]
    )
    stock_changed_announce(stock_item_ids={level.stock_item_id for level, _ in changes})


@transaction.atomic
def stock_levels_set_bulk(*, rows: Sequence[Line], reason: str, reference: str = "", user=None) -> int:
    """Set many levels at once (imports, FBA sync); returns how many changed. A later row for the same
    item and location wins. Only changed levels are written and get a movement."""
    wanted: dict[tuple[int, int], int] = {}
    for item_id, location_id, quantity in rows:
        if quantity < 0:
            raise ValidationError("Physical stock cannot go below zero.")
        wanted[(item_id, location_id)] = quantity
    levels = _levels_lock(wanted)
    changes = [
        (levels[key], quantity) for key, quantity in sorted(wanted.items()) if levels[key].quantity != quantity
    ]
    _kits_at_warehouses_refuse((level.stock_item_id, level.location_id) for level, _ in changes)
    if changes:
        _levels_set(changes, reason=reason, reference=reference, user=user)
    return len(changes)


@dataclass(frozen=True)
class StockLevelChange:
    """One level changed by hand, as staff are told about it."""

    sku: str
    location: str
    before: int
    after: int
    in_open_orders: int

    @property
    def available(self) -> int:
        return self.after - self.in_open_orders


@transaction.atomic
def stock_level_change(
    *, stock_item_id: int, location_id: int, note: str, add: int | None = None, set_to: int | None = None, user=None
) -> StockLevelChange:
    """Staff add to (negative: remove from) or set one level by hand, saying why; the reason is the movement's
    reference in the ledger.

    On hand may be set below what open orders hold, as Linnworks allows: the goods are not on the shelf
    whatever the orders say, so available goes negative (oversold) and the channels get 0. Only physical
    stock below zero is refused.
    """
    if (add is None) == (set_to is None):
        raise ValueError("Give either add or set_to.")
    note = note.strip()
    if not note:
        raise ValidationError({"note": "Say why the stock changes: the reason is kept in the stock movements."})
    location = Location.objects.get(pk=location_id)
    if location.kind == Location.Kind.EXTERNAL:
        raise ValidationError({"location": EXTERNAL_BY_HAND.format(location=location.name)})
    level = _levels_lock([(stock_item_id, location_id)])[(stock_item_id, location_id)]
    before = level.quantity
    after = set_to if set_to is not None else before + add
    sku = StockItem.objects.values_list("sku", flat=True).get(pk=stock_item_id)
    if after < 0:
        raise ValidationError(
            {"change": f"Cannot remove {before - after} of {sku} at {location.name}: only {before} in stock. "
                       "Physical stock cannot go below zero."}
        )
    if after > MAX_QUANTITY:
        raise ValidationError({"change": f"{after} is more than a stock level can hold."})
    if after != before:
        try:
            _kits_at_warehouses_refuse([(stock_item_id, location_id)])
        except ValidationError as exc:
            raise ValidationError({"change": exc.messages}) from None
        _levels_set([(level, after)], reason=StockMovement.Reason.ADJUSTMENT, reference=note, user=user)
    return StockLevelChange(
        sku=sku, location=location.name, before=before, after=after, in_open_orders=level.in_open_orders
    )


@dataclass(frozen=True)
class StockPlanLine:
    """One level to set, with the on hand the preview showed."""

    stock_item_id: int
    location_id: int
    sku: str
    location: str
    on_hand: int
    quantity: int

    @property
    def difference(self) -> int:
        return self.quantity - self.on_hand


@dataclass(frozen=True)
class StockPlan:
    """What a stock count or an import would change, previewed before it is applied as one ledger batch."""

    changes: tuple[StockPlanLine, ...]
    unchanged: int
    reason: str
    reference: str


@dataclass(frozen=True)
class StockPlanApplied:
    changed: int
    # The lines left as they are because their level moved after the preview, each with its on hand now.
    moved: tuple[tuple[StockPlanLine, int], ...]


@transaction.atomic
def stock_plan_apply(*, plan: StockPlan, user=None) -> StockPlanApplied:
    """Apply a previewed count or import, compare-and-set: a level whose on hand is no longer what the preview
    showed (an order despatched meanwhile, another count) is left alone and reported, never overwritten with
    a figure that did not see the change. The rest is written as one batch under the plan's reference."""
    lines = {(line.stock_item_id, line.location_id): line for line in plan.changes}
    levels = _levels_lock(lines)
    changes: list[tuple[StockLevel, int]] = []
    moved: list[tuple[StockPlanLine, int]] = []
    for key, line in sorted(lines.items()):
        level = levels[key]
        if level.quantity != line.on_hand:
            moved.append((line, level.quantity))
        elif line.quantity != line.on_hand:
            changes.append((level, line.quantity))
    _kits_at_warehouses_refuse((level.stock_item_id, level.location_id) for level, _ in changes)
    if changes:
        _levels_set(changes, reason=plan.reason, reference=plan.reference, user=user)
    return StockPlanApplied(changed=len(changes), moved=tuple(moved))


@transaction.atomic
def stock_reserve(*, lines: Sequence[Line]) -> None:
    """Open orders hold stock: in_open_orders += quantity. Never refused: an order the channel has
    already sold must be recorded, so available may go negative (oversold) and channels then get 0. A kit's
    line holds its components."""
    totals = _merge(_kit_lines(lines).all_lines)
    if not totals:
        return
    levels = _levels_lock(totals)
    _levels_update(
        rows=[(levels[key].pk, qty) for key, qty in sorted(totals.items())],
        columns=["qty"],
        assignments="in_open_orders = l.in_open_orders + v.qty",
    )
    stock_changed_announce(stock_item_ids={item_id for item_id, _ in totals})


@transaction.atomic
def stock_release(*, lines: Sequence[Line]) -> None:
    """A cancelled order gives its stock back: in_open_orders -= quantity, never below 0; a kit's line gives
    back its components."""
    totals = _merge(_kit_lines(lines).all_lines)
    if not totals:
        return
    levels = _levels_lock(totals)
    rows = [(levels[key].pk, qty) for key, qty in sorted(totals.items()) if levels[key].in_open_orders]
    if not rows:
        return
    _levels_update(
        rows=rows,
        columns=["qty"],
        assignments="in_open_orders = CASE WHEN l.in_open_orders > v.qty THEN l.in_open_orders - v.qty ELSE 0 END",
    )
    stock_changed_announce(stock_item_ids={item_id for item_id, _ in totals})


@dataclass(frozen=True)
class OpenOrdersDifference:
    """A level whose open-orders counter disagreed with the open orders themselves."""

    stock_item_id: int
    location_id: int
    recorded: int
    counted: int


@transaction.atomic
def stock_open_orders_correct(
    *, stock_item_ids: Sequence[int], count_open_orders, correct: bool = True
) -> list[OpenOrdersDifference]:
    """Make in_open_orders of these stock items' levels what their open orders hold.

    The levels are locked first, in pk order as every writer locks them, and only then is
    `count_open_orders(stock_item_ids)` asked for {(stock item, location): quantity held by lines of that
    item}: an order committed before the lock is counted, one committed after it reserves on top of the
    corrected value. A component's count adds what open orders for its kits hold of it at warehouses (the
    components of a kit asked for are corrected with it). With `correct` False the differences are reported
    and nothing is written.
    """
    ids = set(stock_item_ids)
    _items_hold(ids)
    for parts in kit_parts(kit_ids=ids).values():
        ids.update(component_id for component_id, _ in parts)
    kits = kits_containing(component_ids=ids)
    levels: dict[tuple[int, int], StockLevel] = {}
    for chunk in chunks(sorted(ids), id_batch_size()):
        for level in StockLevel.objects.select_for_update(of=("self",)).filter(stock_item_id__in=chunk).order_by("pk"):
            levels[(level.stock_item_id, level.location_id)] = level
    counted = _kit_counts(dict(count_open_orders(sorted(ids | set(kits)))), kits=kits, wanted=ids)
    missing = [key for key, quantity in counted.items() if quantity and key not in levels]
    if missing and correct:
        levels.update(_levels_lock(missing))
    differences = []
    for key in sorted(set(levels) | set(missing)):
        recorded = levels[key].in_open_orders if key in levels else 0
        if recorded != counted.get(key, 0):
            differences.append(OpenOrdersDifference(*key, recorded=recorded, counted=counted.get(key, 0)))
    if differences and correct:
        _levels_update(
            rows=[(levels[(d.stock_item_id, d.location_id)].pk, d.counted) for d in differences],
            columns=["qty"], assignments="in_open_orders = v.qty",
        )
        stock_changed_announce(stock_item_ids={d.stock_item_id for d in differences})
    return differences


def _kit_counts(
    direct: dict[tuple[int, int], int], *, kits: Mapping[int, KitParts], wanted: set[int]
) -> dict[tuple[int, int], int]:
    """What open orders hold of the wanted items: their own lines, and their kits' lines at warehouses times the
    quantity per kit."""
    warehouses = warehouse_ids() if kits else frozenset()
    counted: dict[tuple[int, int], int] = defaultdict(int)
    for (item_id, location_id), quantity in direct.items():
        if item_id in wanted:
            counted[(item_id, location_id)] += quantity
        if item_id in kits and location_id in warehouses:
            for component_id, per_kit in kits[item_id]:
                if component_id in wanted:
                    counted[(component_id, location_id)] += quantity * per_kit
    return dict(counted)


@transaction.atomic
def stock_consume(*, lines: Sequence[Line], reference: str = "", user=None) -> None:
    """Despatch: the goods leave the building. Physical stock and open orders both drop by the
    quantity, so available does not change; one DESPATCH movement per line. A kit's line takes its
    components, each movement naming the kit, and ends the kit's own hold."""
    kit_lines = _kit_lines(lines)
    totals = _merge(kit_lines.all_lines)
    if not totals:
        return
    levels = _levels_lock(totals)
    physical = {key: qty for key, qty in totals.items() if key not in kit_lines.kit_keys}
    short = [(key, qty) for key, qty in sorted(physical.items()) if levels[key].quantity < qty]
    if short:
        (item_id, location_id), qty = short[0]
        level = levels[(item_id, location_id)]
        sku = StockItem.objects.values_list("sku", flat=True).get(pk=item_id)
        location = Location.objects.values_list("name", flat=True).get(pk=location_id)
        raise InsufficientStock(
            f"Cannot despatch {qty} of {sku} from {location}: only {level.quantity} in stock.",
            code="insufficient_stock",
        )
    released = "CASE WHEN l.in_open_orders > v.qty THEN l.in_open_orders - v.qty ELSE 0 END"
    _levels_update(
        rows=[(levels[key].pk, qty) for key, qty in sorted(physical.items())],
        columns=["qty"],
        assignments=f"quantity = l.quantity - v.qty, in_open_orders = {released}",
    )
    if kit_lines.kit_keys:
        _levels_update(
            rows=[(levels[key].pk, totals[key]) for key in sorted(kit_lines.kit_keys)],
            columns=["qty"], assignments=f"in_open_orders = {released}",
        )
    # One movement per level and kit (None: sold as itself), the level's stock after each in turn.
    taken: dict[tuple[int, int, int | None], int] = defaultdict(int)
    for item_id, location_id, qty in kit_lines.lines:
        if (item_id, location_id) not in kit_lines.kit_keys:
            taken[(item_id, location_id, None)] += qty
    for item_id, location_id, qty, kit_id in kit_lines.parts:
        taken[(item_id, location_id, kit_id)] += qty
    after = {key: levels[key].quantity for key in physical}
    movements = []
    for (item_id, location_id, kit_id), qty in sorted(taken.items(), key=lambda row: (row[0][:2], row[0][2] or 0)):
        if not qty:
            continue
        after[(item_id, location_id)] -= qty
        movements.append(StockMovement(
            stock_item_id=item_id, location_id=location_id, delta=-qty, quantity_after=after[(item_id, location_id)],
            reason=StockMovement.Reason.DESPATCH, reference=reference[:255], user=user, kit_id=kit_id,
        ))
    _movements_write(movements)
    stock_changed_announce(stock_item_ids={item_id for item_id, _ in totals})


@transaction.atomic
def stock_item_price_set(*, stock_item_id: int, retail_price: Decimal) -> bool:
    """Change the retail price; returns whether it changed. Channels with Price Change on get it."""
    if retail_price < 0:
        raise ValidationError({"retail_price": "The retail price cannot be negative."})
    changed = (
        StockItem.objects.filter(pk=stock_item_id)
        .exclude(retail_price=retail_price)
        .update(retail_price=retail_price, updated_at=timezone.now())
    )
    if changed:
        stock_changed_announce(stock_item_ids=[stock_item_id], price_changed=True)
    return bool(changed)


@transaction.atomic
def stock_item_save(*, stock_item: StockItem, changed_fields: Iterable[str] = ()) -> StockItem:
    """Save a stock item edited as a whole (the admin form) and announce a price change."""
    is_new = stock_item.pk is None
    stock_item.full_clean()
    stock_item.save()
    if not is_new and "retail_price" in set(changed_fields):
        stock_changed_announce(stock_item_ids=[stock_item.pk], price_changed=True)
    return stock_item


def kit_components_problems(*, kit: StockItem, components: Sequence[tuple[StockItem, int]]) -> list[str]:
    """Why these components (stock item, quantity per kit) cannot make `kit`, in sentences for staff; none when
    they can."""
    return [problem for _, problem in kits_problems(kits=[(kit, components)])]


def kits_problems(
    *, kits: Sequence[tuple[StockItem, Sequence[tuple[StockItem, int]]]]
) -> list[tuple[int | None, str]]:
    """Why these kits (kit, [(component, quantity per kit)]) cannot be made, as (kit id, sentence); none when
    they can. A kit's parts are stocked items: no kit of kits, and a kit never contains itself; a kit holds no
    stock of its own at a warehouse. The kits given count as kits, and what they are made of now does not. A
    few queries whatever the number of kits."""
    problems: list[tuple[int | None, str]] = []
    making = {kit.pk for kit, parts in kits if parts and kit.pk is not None}
    component_ids: set[int] = set()
    for kit, parts in kits:
        seen: set[int] = set()
        for component, quantity in parts:
            if component.pk == kit.pk:
                problems.append((kit.pk, f"A kit cannot contain itself: remove {kit.sku} from its components."))
            elif component.pk in seen:
                problems.append((kit.pk, f"{component.sku} is listed twice in {kit.sku}: give it once, with the "
                                         "quantity per kit."))
            if not isinstance(quantity, int) or quantity < 1:
                problems.append((kit.pk, f"{component.sku}: the quantity per kit must be a whole number, at least 1."))
            seen.add(component.pk)
        component_ids |= seen - {kit.pk}
    kit_ids = making | set(_ids_where(KitComponent.objects.all(), "kit_id", "kit_id", component_ids))
    containing: dict[int, set[str]] = defaultdict(set)
    for component_id, sku in _ids_where(
        KitComponent.objects.exclude(kit_id__in=sorted(making)), "component_id", ("component_id", "kit__sku"), making,
    ):
        containing[component_id].add(sku)
    stocked: dict[int, list[str]] = defaultdict(list)
    levels = StockLevel.objects.filter(location_id__in=warehouse_ids(), quantity__gt=0).order_by("location__name")
    for item_id, quantity, location in _ids_where(
        levels, "stock_item_id", ("stock_item_id", "quantity", "location__name"), making,
    ):
        stocked[item_id].append(f"{quantity} in stock at {location}")
    for kit, parts in kits:
        for component, _ in parts:
            if component.pk in kit_ids and component.pk != kit.pk:
                problems.append((kit.pk, f"{component.sku} is itself a kit: a kit is made of items stocked on their "
                                         f"own; list {component.sku}'s components instead."))
        if kit.pk in making and containing.get(kit.pk):
            problems.append((kit.pk, f"{kit.sku} is a component of the kit {', '.join(sorted(containing[kit.pk]))}: "
                                     "a kit cannot be part of another kit."))
        if kit.pk in making and stocked.get(kit.pk):
            problems.append((kit.pk, f"{kit.sku} has {', '.join(stocked[kit.pk])}: a kit has no stock of its own at "
                                     "a warehouse (its components are the stock); set it to 0 first."))
    return problems


def _ids_where(queryset, column: str, values, ids: Iterable[int]) -> list:
    """`values` (one column name, or a tuple of them) of the rows whose `column` is among `ids`, in batches."""
    flat = isinstance(values, str)
    rows: list = []
    for chunk in chunks(sorted(set(ids)), id_batch_size()):
        chosen = queryset.filter(**{f"{column}__in": chunk})
        rows += chosen.values_list(values, flat=True) if flat else chosen.values_list(*values)
    return rows


def kit_components_set(*, kit_id: int, components: Sequence[tuple[int, int]]) -> bool:
    """Make a stock item a kit of these (component, quantity per kit), or with none an item of its own again;
    returns whether anything changed (see kits_components_set)."""
    return bool(kits_components_set(kits={kit_id: components}))


@transaction.atomic
def kits_components_set(*, kits: Mapping[int, Sequence[tuple[int, int]]]) -> int:
    """Give each of these kits exactly these (component, quantity per kit), none making it an item of its own
    again; returns how many kits changed. All or nothing: one ValidationError lists every problem.

    What open orders hold of a kit at each warehouse (its open-orders counter) moves to its new components in
    the same transaction, so the components' "in open orders" stays what the open orders hold. The kits and
    their components are locked first (FOR UPDATE, in pk order): no two changes can make a kit of kits between
    them, and no reservation reads the components while they change.
    """
    wanted = {kit_id: [(int(c), quantity) for c, quantity in parts] for kit_id, parts in kits.items()}
    ids = sorted({*wanted, *(c for parts in wanted.values() for c, _ in parts)})
    items: dict[int, StockItem] = {}
    for chunk in chunks(ids, id_batch_size()):
        items.update((item.pk, item) for item in StockItem.objects.select_for_update(of=("self",))
                     .filter(pk__in=chunk).order_by("pk"))
    if len(items) < len(ids):
        raise ValidationError("A stock item of these kits no longer exists: reload the page.")
    problems = kits_problems(
        kits=[(items[kit_id], [(items[c], q) for c, q in parts]) for kit_id, parts in sorted(wanted.items())]
    )
    if problems:
        raise ValidationError([problem for _, problem in problems], code="kit")
    before = kit_parts(kit_ids=wanted)
    changed = {
        kit_id: dict(parts) for kit_id, parts in wanted.items() if dict(before.get(kit_id, ())) != dict(parts)
    }
    if not changed:
        return 0
    moved = _kit_holds_move(
        changes={kit_id: (dict(before.get(kit_id, ())), after) for kit_id, after in changed.items()}
    )
    for chunk in chunks(sorted(changed), id_batch_size()):
        KitComponent.objects.filter(kit_id__in=chunk).delete()
    KitComponent.objects.bulk_create(
        [KitComponent(kit_id=kit_id, component_id=component_id, quantity=quantity)
         for kit_id, after in sorted(changed.items()) for component_id, quantity in sorted(after.items())],
        batch_size=BATCH,
    )
    stock_changed_announce(stock_item_ids={*changed, *moved})
    return len(changed)


def _kit_holds_move(*, changes: Mapping[int, tuple[Mapping[int, int], Mapping[int, int]]]) -> set[int]:
    """Move what open orders hold of each kit at each warehouse from its old components to its new ones
    (`changes`: kit -> (before, after)); returns the components whose "in open orders" changed."""
    warehouses = warehouse_ids()
    held: list[tuple[int, int, int]] = []
    for chunk in chunks(sorted(changes), id_batch_size()):
        held += StockLevel.objects.filter(
            stock_item_id__in=chunk, location_id__in=warehouses, in_open_orders__gt=0
        ).values_list("stock_item_id", "location_id", "in_open_orders")
    deltas: dict[tuple[int, int], int] = defaultdict(int)
    for kit_id, location_id, kits in held:
        before, after = changes[kit_id]
        for component_id in set(before) | set(after):
            deltas[(component_id, location_id)] += kits * (after.get(component_id, 0) - before.get(component_id, 0))
    deltas = {key: delta for key, delta in deltas.items() if delta}
    if not deltas:
        return set()
    levels = _levels_lock([*deltas, *((kit_id, location_id) for kit_id, location_id, _ in held)])
    _levels_update(
        rows=[(levels[key].pk, delta) for key, delta in sorted(deltas.items())],
        columns=["qty"],
        assignments="in_open_orders = CASE WHEN l.in_open_orders + v.qty > 0 THEN l.in_open_orders + v.qty ELSE 0 END",
    )
    return {component_id for component_id, _ in deltas}


# Bad lines listed on the screen: past this many, the rest are counted (a file of the wrong shape would
# otherwise fill the page with one message per line).
BAD_LINES_LISTED = 500


def _bad_lines(field: str, problems: Sequence[tuple[int, str]]) -> ValidationError:
    """Every bad line at once, in line order, under one field."""
    problems = sorted(problems)
    messages = [f"Line {line}: {problem}" for line, problem in problems[:BAD_LINES_LISTED]]
    if len(problems) > BAD_LINES_LISTED:
        messages.append(f"… and {len(problems) - BAD_LINES_LISTED} more bad lines.")
    return ValidationError({field: [ValidationError(message, code="invalid_row") for message in messages]})


def _import_error(line: int, problem: str) -> ValidationError:
    return _bad_lines("file", [(line, problem)])


def _quantity_read(text: str, *, name: str = "quantity") -> tuple[int | None, str]:
    """The quantity in a cell, or None and why it is not one."""
    try:
        number = int(text)
    except ValueError:
        return None, f"the {name} {text!r} is not a whole number."
    if number < 0:
        return None, f"the {name} {number} is negative; physical stock cannot go below zero."
    if number > MAX_QUANTITY:
        return None, f"the {name} {number} is larger than the most a stock level holds."
    return number, ""


def _item_ids_by_sku(skus: Iterable[str]) -> dict[str, int]:
    wanted = sorted(set(skus))
    found: dict[str, int] = {}
    for chunk in chunks(wanted, id_batch_size()):
        found.update(StockItem.objects.filter(sku__in=chunk).values_list("sku", "pk"))
    return found


def _import_rows(
    text: str, columns: Sequence[str] = IMPORT_COLUMNS
) -> tuple[list[tuple[int, str, str, str]], list[tuple[int, str]]]:
    """The data rows as (line number, *columns), e.g. (line, sku, location, quantity), and the lines that cannot
    be read."""
    # newline="": a bare carriage return ends a line, as in the spreadsheet that saved the file.
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
    except csv.Error as exc:
        raise _import_error(reader.line_num or 1, f"unreadable CSV ({exc}).") from None
    if header is None:
        raise _import_error(1, f"the file is empty; it needs a header row: {','.join(columns)}.")
    names = [name.strip().lower() for name in header]
    missing = [column for column in columns if column not in names]
    if missing:
        raise _import_error(
            1, f"the header lacks {', '.join(missing)}; it must name the columns {', '.join(columns)}."
        )
    index = {column: names.index(column) for column in columns}
    rows = []
    problems = []
    while True:
        read_up_to = reader.line_num
        try:
            cells = next(reader, None)
        except csv.Error as exc:
            problems.append((reader.line_num, f"unreadable CSV ({exc})."))
            if reader.line_num == read_up_to:
                break
            continue
        if cells is None:
            break
        if not any(cell.strip() for cell in cells):
            continue
        if any("\x00" in cell for cell in cells):
            # PostgreSQL refuses NUL in text: caught here, the error names the line instead of failing the import.
            problems.append((reader.line_num, "the row contains a NUL character; is this a CSV text file?"))
        elif len(cells) < len(names):
            problems.append((reader.line_num, f"expected {len(names)} columns, found {len(cells)}."))
        else:
            rows.append((reader.line_num, *(cells[index[column]].strip() for column in columns)))
    return rows, problems


@dataclass(frozen=True)
class _ImportLine:
    stock_item_id: int
    location_id: int
    quantity: int
    sku: str
    location: str


def _import_text(file) -> str:
    raw = file.read()
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise ValidationError({"file": "The file is not UTF-8 text: save the CSV as UTF-8."}) from exc
    return raw.lstrip("\ufeff")


def _import_lines(file) -> list[_ImportLine]:
    """The file's levels, every line checked: one ValidationError lists every bad line, so nothing is applied
    until the whole file is right."""
    rows, problems = _import_rows(_import_text(file))
    if not rows and not problems:
        raise ValidationError({"file": "The file has a header but no rows."})
    item_by_sku = _item_ids_by_sku(sku for _, sku, _, _ in rows if sku)
    location_by_name = {name.lower(): (pk, name) for name, pk in Location.objects.values_list("name", "pk")}
    seen: dict[tuple[int, int], int] = {}
    lines: list[_ImportLine] = []
    for line, sku, location, quantity in rows:
        if not sku:
            problems.append((line, "the SKU is empty."))
            continue
        if sku not in item_by_sku:
            problems.append((line, f"no stock item has the SKU {sku!r}."))
            continue
        if location.lower() not in location_by_name:
            problems.append((line, f"no location is called {location!r}."))
            continue
        number, problem = _quantity_read(quantity)
        if number is None:
            problems.append((line, problem))
            continue
        location_id, location_name = location_by_name[location.lower()]
        key = (item_by_sku[sku], location_id)
        if key in seen:
            problems.append((line, f"{sku} at {location} is already set on line {seen[key]}."))
            continue
        seen[key] = line
        lines.append(_ImportLine(*key, quantity=number, sku=sku, location=location_name))
    if problems:
        raise _bad_lines("file", problems)
    return lines


def _import_reference(file) -> str:
    return f"CSV import {getattr(file, 'name', '') or 'upload'}"[:255]


def stock_import_csv(*, file, user=None) -> int:
    """Set stock levels from a CSV with the columns sku, location, quantity (header required).

    All or nothing: a ValidationError names every bad line, and nothing of the file is applied. Returns how
    many stock levels changed.
    """
    lines = _import_lines(file)
    return stock_levels_set_bulk(
        rows=[(line.stock_item_id, line.location_id, line.quantity) for line in lines],
        reason=StockMovement.Reason.IMPORT, reference=_import_reference(file), user=user,
    )


def _plan(wanted: Sequence[_ImportLine], *, reason: str, reference: str) -> StockPlan:
    on_hand = stock_on_hand(pairs=[(line.stock_item_id, line.location_id) for line in wanted])
    changes = []
    for line in wanted:
        now = on_hand.get((line.stock_item_id, line.location_id), 0)
        if now != line.quantity:
            changes.append(StockPlanLine(
                stock_item_id=line.stock_item_id, location_id=line.location_id, sku=line.sku,
                location=line.location, on_hand=now, quantity=line.quantity,
            ))
    return StockPlan(
        changes=tuple(changes), unchanged=len(wanted) - len(changes), reason=reason, reference=reference
    )


def stock_import_preview(*, file) -> StockPlan:
    """What the CSV would change, for staff to check before `stock_plan_apply`; every bad line raised at once."""
    return _plan(_import_lines(file), reason=StockMovement.Reason.IMPORT, reference=_import_reference(file))


def _count_cells(text: str) -> list[str]:
    # Pasted from a spreadsheet the columns come tab-separated; typed, comma-separated.
    if "\t" in text:
        return [cell.strip() for cell in text.split("\t")]
    return [cell.strip() for cell in next(csv.reader([text]), [])]


def stock_count_preview(*, location_id: int, counted: str, counted_at=None) -> StockPlan:
    """A stock count of one location: `counted` holds one `sku,counted` line per SKU counted (a header line
    `sku,counted` may come first). SKUs not listed keep their level. Every bad line is raised at once."""
    location = Location.objects.get(pk=location_id)
    if location.kind == Location.Kind.EXTERNAL:
        raise ValidationError({"location": EXTERNAL_BY_HAND.format(location=location.name)})
    rows: list[tuple[int, str, str]] = []
    problems: list[tuple[int, str]] = []
    for number, text in enumerate(counted.splitlines(), start=1):
        if not text.strip():
            continue
        if "\x00" in text:
            problems.append((number, "the line contains a NUL character."))
            continue
        cells = _count_cells(text)
        if not rows and not problems and [cell.lower() for cell in cells] == ["sku", "counted"]:
            continue
        if len(cells) != 2:
            problems.append((number, f"expected two columns, sku,counted; found {len(cells)}."))
        elif not cells[0]:
            problems.append((number, "the SKU is empty."))
        else:
            rows.append((number, cells[0], cells[1]))
    if not rows and not problems:
        raise ValidationError({"counted": "Enter one line per SKU counted: sku,counted."})
    item_by_sku = _item_ids_by_sku(sku for _, sku, _ in rows)
    seen: dict[str, int] = {}
    lines: list[_ImportLine] = []
    for number, sku, quantity in rows:
        if sku not in item_by_sku:
            problems.append((number, f"no stock item has the SKU {sku!r}."))
            continue
        value, problem = _quantity_read(quantity, name="count")
        if value is None:
            problems.append((number, problem))
            continue
        if sku in seen:
            problems.append((number, f"{sku} is already counted on line {seen[sku]}."))
            continue
        seen[sku] = number
        lines.append(_ImportLine(item_by_sku[sku], location.pk, quantity=value, sku=sku, location=location.name))
    if problems:
        raise _bad_lines("counted", problems)
    when = timezone.localtime(counted_at or timezone.now())
    return _plan(
        lines, reason=StockMovement.Reason.STOCK_COUNT, reference=f"Stock count {location.name} {when:%Y-%m-%d %H:%M}"
    )


def kits_import_csv(*, file) -> int:
    """Make kits from a CSV with the columns sku, component_sku, quantity (header required): one line per
    component, `quantity` of it in each kit `sku`. Each kit in the file gets exactly the components the file
    lists for it. All or nothing: a ValidationError names every bad line, and nothing of the file is applied.
    Returns how many kits changed."""
    rows, problems = _import_rows(_import_text(file), KIT_IMPORT_COLUMNS)
    if not rows and not problems:
        raise ValidationError({"file": "The file has a header but no rows."})
    item_by_sku = _item_ids_by_sku(sku for _, kit_sku, component_sku, _ in rows for sku in (kit_sku, component_sku))
    kits: dict[int, dict[int, int]] = defaultdict(dict)
    line_of: dict[tuple[int, int], int] = {}
    first_line: dict[int, int] = {}
    for line, kit_sku, component_sku, quantity in rows:
        missing = [sku for sku in (kit_sku, component_sku) if sku not in item_by_sku]
        if not kit_sku or not component_sku:
            problems.append((line, "the SKU or the component SKU is empty."))
            continue
        if missing:
            problems.append((line, f"no stock item has the SKU {missing[0]!r}."))
            continue
        number, _ = _quantity_read(quantity)
        if number is None or number < 1:
            problems.append((line, f"the quantity per kit {quantity!r} is not a whole number of at least 1."))
            continue
        key = (item_by_sku[kit_sku], item_by_sku[component_sku])
        if key in line_of:
            problems.append((line, f"{component_sku} in {kit_sku} is already given on line {line_of[key]}."))
            continue
        line_of[key] = line
        first_line.setdefault(key[0], line)
        kits[key[0]][key[1]] = number
    items = StockItem.objects.in_bulk([*kits, *(c for parts in kits.values() for c in parts)])
    checked = kits_problems(
        kits=[(items[kit_id], [(items[c], q) for c, q in parts.items()]) for kit_id, parts in kits.items()]
    )
    problems += [(first_line[kit_id], problem) for kit_id, problem in checked]
    if problems:
        raise _bad_lines("file", problems)
    return kits_components_set(kits={kit_id: list(parts.items()) for kit_id, parts in kits.items()})
