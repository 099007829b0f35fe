"""The single stock-write path.

Every change of physical stock or of the open-orders counter goes through these functions. They lock
the stock levels they touch in primary-key order (so two writers never deadlock), never leave
physical stock negative, write one StockMovement per change of physical stock, and announce the
changed stock items on commit with `inventory.signals.stock_changed`.
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
from inventory.models import Location, StockItem, StockLevel, StockMovement
from inventory.signals import stock_changed

# (stock_item_id, location_id, quantity)
Line = tuple[int, int, int]
# Rows per UPDATE ... FROM (VALUES ...) statement and per bulk_create batch.
BATCH = 5000
IMPORT_COLUMNS = ("sku", "location", "quantity")
# A stock level's quantity is a 32-bit integer column in every database the hub runs on.
MAX_QUANTITY = 2**31 - 1


class InsufficientStock(ValidationError):
    """Despatch would take more than is physically at the location."""


def stock_changed_announce(*, stock_item_ids: Iterable[int], price_changed: bool = False) -> None:
    """Tell listeners, once the current transaction commits, which stock items changed."""
    ids = frozenset(stock_item_ids)
    if not ids:
        return
    transaction.on_commit(
        lambda: stock_changed.send(sender=StockItem, stock_item_ids=ids, price_changed=price_changed)
    )




def _levels_lock(pairs: Iterable[tuple[int, int]]) -> dict[tuple[int, int], StockLevel]:
    """Create the missing levels at 0 and lock every level of these (item, location) pairs in pk order."""
    wanted = sorted(set(pairs))
    if not wanted:
        return {}
    item_ids = sorted({item_id for item_id, _ in wanted})
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
    _levels_lock((item_id, location_id) for item_id, location_id, _quantity in lines)


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
    if not changes:
        return 0
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
    return len(changes)


@transaction.atomic
def stock_reserve(*, lines: Sequence[Line]) -> None:
    """Open orders hold stock: in_open_orders += quantity. Never refused: an order the channel has
    already sold must be recorded, so available may go negative (oversold) and channels then get 0."""
    totals = _merge(lines)
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
    """A cancelled order gives its stock back: in_open_orders -= quantity, never below 0."""
    totals = _merge(lines)
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
    `count_open_orders(stock_item_ids)` asked for {(stock item, location): quantity held}: an order
    committed before the lock is counted, one committed after it reserves on top of the corrected value.
    With `correct` False the differences are reported and nothing is written.
    """
    levels: dict[tuple[int, int], StockLevel] = {}
    for chunk in chunks(sorted(set(stock_item_ids)), id_batch_size()):
        for level in StockLevel.objects.select_for_update(of=("self",)).filter(stock_item_id__in=chunk).order_by("pk"):
            levels[(level.stock_item_id, level.location_id)] = level
    counted: Mapping[tuple[int, int], int] = count_open_orders(stock_item_ids)
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


@transaction.atomic
def stock_consume(*, lines: Sequence[Line], reference: str = "", user=None) -> None:
    """Despatch: the goods leave the building. Physical stock and open orders both drop by the
    quantity, so available does not change; one DESPATCH movement per line."""
    totals = _merge(lines)
    if not totals:
        return
    levels = _levels_lock(totals)
    short = [(key, qty) for key, qty in sorted(totals.items()) if levels[key].quantity < qty]
    if short:
        (item_id, location_id), qty = short[0]
        level = levels[(item_id, location_id)]
        sku = StockItem.objects.values_list("sku", flat=True).get(pk=item_id)
        location = Location.objects.values_list("name", flat=True).get(pk=location_id)
        raise InsufficientStock(
            f"Cannot despatch {qty} of {sku} from {location}: only {level.quantity} in stock.",
            code="insufficient_stock",
        )
    _levels_update(
        rows=[(levels[key].pk, qty) for key, qty in sorted(totals.items())],
        columns=["qty"],
        assignments=(
            "quantity = l.quantity - v.qty, "
            "in_open_orders = CASE WHEN l.in_open_orders > v.qty THEN l.in_open_orders - v.qty ELSE 0 END"
        ),
    )
    _movements_write(
        [
            StockMovement(
                stock_item_id=item_id, location_id=location_id, delta=-qty,
                quantity_after=levels[(item_id, location_id)].quantity - qty,
                reason=StockMovement.Reason.DESPATCH, reference=reference[:255], user=user,
            )
            for (item_id, location_id), qty in sorted(totals.items())
        ]
    )
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


def _import_error(line: int, problem: str, field: str = "file") -> ValidationError:
    return ValidationError({field: f"Line {line}: {problem}"}, code="invalid_row")


def _import_rows(text: str) -> list[tuple[int, str, str, str]]:
    """The data rows as (line number, sku, location, quantity)."""
    # newline="": a bare carriage return ends a line, as in the spreadsheet that saved the file.
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
    except csv.Error as exc:
        raise _import_error(reader.line_num or 1, f"unreadable CSV ({exc}).") from None
    if header is None:
        raise _import_error(1, "the file is empty; it needs a header row: sku,location,quantity.")
    names = [name.strip().lower() for name in header]
    missing = [column for column in IMPORT_COLUMNS if column not in names]
    if missing:
        raise _import_error(
            1, f"the header lacks {', '.join(missing)}; it must name the columns sku, location, quantity."
        )
    index = {column: names.index(column) for column in IMPORT_COLUMNS}
    rows = []
    while True:
        try:
            cells = next(reader, None)
        except csv.Error as exc:
            raise _import_error(reader.line_num, f"unreadable CSV ({exc}).") from None
        if cells is None:
            break
        if not any(cell.strip() for cell in cells):
            continue
        if any("\x00" in cell for cell in cells):
            # PostgreSQL refuses NUL in text: caught here, the error names the line instead of failing the import.
            raise _import_error(reader.line_num, "the row contains a NUL character; is this a CSV text file?")
        if len(cells) < len(names):
            raise _import_error(reader.line_num, f"expected {len(names)} columns, found {len(cells)}.")
        rows.append((reader.line_num, *(cells[index[column]].strip() for column in IMPORT_COLUMNS)))
    return rows


def stock_import_csv(*, file, user=None) -> int:
    """Set stock levels from a CSV with the columns sku, location, quantity (header required).

    All or nothing: the first bad row raises a ValidationError naming its line, and nothing of the file
    is applied. Returns how many stock levels changed.
    """
    raw = file.read()
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise ValidationError({"file": "The file is not UTF-8 text: save the CSV as UTF-8."}) from exc
    rows = _import_rows(raw.lstrip("\ufeff"))
    if not rows:
        raise ValidationError({"file": "The file has a header but no rows."})
    skus = sorted({sku for _, sku, _, _ in rows if sku})
    item_by_sku: dict[str, int] = {}
    for chunk in chunks(skus, id_batch_size()):
        item_by_sku.update(StockItem.objects.filter(sku__in=chunk).values_list("sku", "pk"))
    location_by_name = {name.lower(): pk for name, pk in Location.objects.values_list("name", "pk")}
    seen: dict[tuple[int, int], int] = {}
    levels: list[Line] = []
    for line, sku, location, quantity in rows:
        if not sku:
            raise _import_error(line, "the SKU is empty.")
        if sku not in item_by_sku:
            raise _import_error(line, f"no stock item has the SKU {sku!r}.")
        if location.lower() not in location_by_name:
            raise _import_error(line, f"no location is called {location!r}.")
        try:
            number = int(quantity)
        except ValueError:
            raise _import_error(line, f"the quantity {quantity!r} is not a whole number.") from None
        if number < 0:
            raise _import_error(line, f"the quantity {number} is negative; physical stock cannot go below zero.")
        if number > MAX_QUANTITY:
            raise _import_error(line, f"the quantity {number} is larger than the most a stock level holds.")
        key = (item_by_sku[sku], location_by_name[location.lower()])
        if key in seen:
            raise _import_error(line, f"{sku} at {location} is already set on line {seen[key]}.")
        seen[key] = line
        levels.append((*key, number))
    name = getattr(file, "name", "") or "upload"
    return stock_levels_set_bulk(
        rows=levels, reason=StockMovement.Reason.IMPORT, reference=f"CSV import {name}"[:255], user=user
    )
