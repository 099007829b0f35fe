"""The write paths for orders: idempotent import, despatch (process), cancellation, reallocation and
linking a line to a stock item.

The channels app resolves everything that needs channel knowledge (status and shipping mapping,
currency, tax, email, SKU links, fulfilment location) and hands over `OrderData`; this module
upserts by (channel, channel_order_id) with conflict handling and reserves, releases or consumes
stock through inventory's services. It announces processed and cancelled orders on commit
(`orders.signals`) so the channels app can tell the marketplace without orders importing channels.

Stock at an external fulfilment centre (e.g. Amazon FBA) is the fulfiller's count: the channels app sets
it from the fulfiller's figures, which already leave out what it has shipped. So an order fulfilled there
(an AFN order, or one sent to the fulfiller, see orders.external_fulfilment) only ends its reservation when
it ships; consuming the stock too would take the shipped units off a second time whenever a sync ran
before the order was processed.
"""

from __future__ import annotations

import csv
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from functools import partial

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from inventory.models import Location, StockLevel
from inventory.services import (
    OpenOrdersDifference,
    stock_consume,
    stock_levels_lock,
    stock_open_orders_correct,
    stock_release,
    stock_reserve,
)
from orders import external_fulfilment
from orders.channel_checks import cancellation_notice, cancellation_problems, despatch_notice, despatch_problems
from orders.external_fulfilment import Stage, order_hold
from orders.models import Order, OrderItem, PostalService
from orders.selectors import order_channel_not_told
from orders.signals import order_cancelled, order_processed


@dataclass(frozen=True)
class OrderLineData:
    channel_line_id: str
    channel_sku: str
    title: str
    quantity: int
    unit_price: Decimal
    tax: Decimal
    stock_item_id: int | None


@dataclass(frozen=True)
class OrderData:
    channel_order_id: str
    status: str
    channel_status: str
    is_paid: bool
    received_at: datetime
    channel_updated_at: datetime
    currency: str
    lines: tuple[OrderLineData, ...]
    fulfilled_by_channel: bool = False
    fulfilment_location_id: int | None = None
    buyer_name: str = ""
    buyer_email: str = ""
    address: dict[str, str] = field(default_factory=dict)
    channel_shipping_tag: str = ""
    postal_service_id: int | None = None
    subtotal: Decimal = Decimal("0")
    shipping_cost: Decimal = Decimal("0")
    tax: Decimal = Decimal("0")
    total: Decimal = Decimal("0")


@dataclass
class ImportResult:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)


ADDRESS_FIELDS = ("ship_name", "ship_line1", "ship_line2", "ship_city", "ship_region", "ship_postcode",
                  "ship_country", "ship_phone")


def _new_order(*, channel_id: int, data: OrderData, batch: uuid.UUID) -> Order:
    return Order(
        channel_id=channel_id,
        channel_order_id=data.channel_order_id,
        status=data.status,
        channel_status=data.channel_status,
        is_paid=data.is_paid,
        fulfilled_by_channel=data.fulfilled_by_channel,
        currency=data.currency,
        received_at=data.received_at,
        channel_updated_at=data.channel_updated_at,
        buyer_name=data.buyer_name,
        buyer_email=data.buyer_email,
        channel_shipping_tag=data.channel_shipping_tag,
        postal_service_id=data.postal_service_id,
        fulfilment_location_id=data.fulfilment_location_id,
        subtotal=data.subtotal,
        shipping_cost=data.shipping_cost,
        tax=data.tax,
        total=data.total,
        has_unlinked_items=any(line.stock_item_id is None for line in data.lines),
        cancelled_at=timezone.now() if data.status == Order.Status.CANCELLED else None,
        processed_at=timezone.now() if data.status == Order.Status.PROCESSED else None,
        import_batch=batch,
        **{name: data.address.get(name, "") for name in ADDRESS_FIELDS},
    )


def _reservation_lines(orders: list[Order], items_by_order: dict[int, list[OrderItem]]):
    """Linked quantities per (stock item, location) for orders that hold stock."""
    totals: dict[tuple[int, int], int] = defaultdict(int)
    for order in orders:
        if order.fulfilment_location_id is None:
            continue
        for item in items_by_order.get(order.pk, ()):
            if item.stock_item_id is not None:
                totals[(item.stock_item_id, order.fulfilment_location_id)] += item.quantity
    return [(item_id, location_id, qty) for (item_id, location_id), qty in sorted(totals.items())]


# What `_channel_update` reads and writes of a stored order.
CHANNEL_UPDATE_FIELDS = ("channel_order_id", "channel_status", "channel_updated_at", "is_paid", "status",
                         "fulfilled_by_channel", "cancelled_at", "processed_at", "updated_at")


@transaction.atomic
def order_import(*, channel_id: int, orders: list[OrderData]) -> ImportResult:
    """Create new orders and reserve their stock; update known ones, releasing stock when cancelled.

    Safe to run twice and from several workers at once: rows are inserted with ON CONFLICT DO NOTHING
    in a fixed order, and only the orders this call inserted (found by its batch token) get items and
    reservations. Locks are taken as every order service takes them: the orders first (the inserted ones,
    then the known ones in pk order), then every stock level the import changes, at once in pk order. A
    download taking a level first would deadlock with the despatch of one of its known orders.

    A known order the channel sends as the hub holds it already is left alone, without a lock: every download
    reads its last minutes again, and under load those are most of its page. Nothing can make such an order
    need the update later (orders do not reopen, and payment is never taken back), so the unlocked read is safe.
    """
    result = ImportResult()
    if not orders:
        return result
    by_id = {data.channel_order_id: data for data in orders}
    ids = sorted(by_id)
    now = timezone.now()
    stored = Order.objects.filter(channel_id=channel_id, channel_order_id__in=ids).only(*CHANNEL_UPDATE_FIELDS)
    held = {order.channel_order_id for order in stored}
    result.unchanged = [order.channel_order_id for order in stored
                        if _channel_update(order, by_id[order.channel_order_id], now=now) is None]
    batch = uuid.uuid4()
    Order.objects.bulk_create(
        [_new_order(channel_id=channel_id, data=by_id[order_id], batch=batch) for order_id in ids
         if order_id not in held],
        ignore_conflicts=True,
    )
    created = list(Order.objects.filter(channel_id=channel_id, channel_order_id__in=ids, import_batch=batch))
    result.created = [order.channel_order_id for order in created]
    settled = set(result.created) | set(result.unchanged)
    known = list(
        Order.objects.select_for_update(of=("self",))
        .filter(channel_id=channel_id, channel_order_id__in=[i for i in ids if i not in settled])
        .order_by("pk")
    )
    items = OrderItem.objects.bulk_create(
        [
            OrderItem(
                order=order,
                stock_item_id=line.stock_item_id,
                channel_line_id=line.channel_line_id,
                channel_sku=line.channel_sku,
                title=line.title,
                quantity=line.quantity,
                unit_price=line.unit_price,
                tax=line.tax,
            )
            for order in created
            for line in by_id[order.channel_order_id].lines
        ]
    )
    items_by_order: dict[int, list[OrderItem]] = defaultdict(list)
    for item in items:
        items_by_order[item.order_id].append(item)
    holding_stock = [order for order in created if order.status in Order.OPEN_STATUSES]
    reserve = _reservation_lines(holding_stock, items_by_order)
    release = _apply_channel_updates(known=known, by_id=by_id, result=result, now=now)
    stock_levels_lock(lines=reserve + release)
    if reserve:
        stock_reserve(lines=reserve)
    if release:
        stock_release(lines=release)
    return result


def _channel_update(order: Order, data: OrderData, *, now: datetime) -> str | None:
    """Follow the channel's status, payment and cancellation on `order` (not saved). Returns what changed:
    "cancelled", "shipped" (Amazon shipped an order it fulfils), "changed", or None for nothing."""
    before = (order.channel_status, order.is_paid, order.status)
    order.channel_status = data.channel_status
    order.channel_updated_at = data.channel_updated_at
    order.is_paid = order.is_paid or data.is_paid
    change = "changed"
    if order.is_open:
        if data.status == Order.Status.CANCELLED:
            order.status = Order.Status.CANCELLED
            order.cancelled_at = now
            change = "cancelled"
        elif order.fulfilled_by_channel and data.status == Order.Status.PROCESSED:
            # Amazon shipped an order it fulfils (AFN): it is done here too, and nothing is despatched.
            order.status = Order.Status.PROCESSED
            order.processed_at = now
            change = "shipped"
        elif order.status == Order.Status.UNPAID and data.status in (Order.Status.PAID, Order.Status.PENDING):
            order.status = data.status
    if (order.channel_status, order.is_paid, order.status) == before:
        return None
    order.updated_at = now
    return change


def _apply_channel_updates(
    *, known: list[Order], by_id: dict[str, OrderData], result: ImportResult, now: datetime
) -> list[tuple[int, int, int]]:
    """A later download of a known order: follow the channel's status, payment and cancellation.
    Returns the stock its changes release, for the caller to release with its other stock changes."""
    changes = {order.pk: _channel_update(order, by_id[order.channel_order_id], now=now) for order in known}
    changed = [order for order in known if changes[order.pk] is not None]
    result.unchanged.extend(order.channel_order_id for order in known if changes[order.pk] is None)
    if not changed:
        return []
    Order.objects.bulk_update(
        changed,
        ["channel_status", "channel_updated_at", "is_paid", "status", "cancelled_at", "processed_at", "updated_at"],
    )
    result.updated = [order.channel_order_id for order in changed]
    result.cancelled = [order.channel_order_id for order in changed if changes[order.pk] == "cancelled"]
    # Cancelled orders give their stock back; AFN orders Amazon shipped end their hold on its FBA stock
    # (released, not consumed: see the module's docstring).
    releasing = [order for order in changed if changes[order.pk] in ("cancelled", "shipped")]
    items_by_order: dict[int, list[OrderItem]] = defaultdict(list)
    for item in OrderItem.objects.filter(order__in=releasing, stock_item__isnull=False):
        items_by_order[item.order_id].append(item)
    return _reservation_lines(releasing, items_by_order)


RETRY_ACTION = "Retry telling the channel"


def _already_closed(order: Order) -> str:
    """Why a processed or cancelled order cannot be processed or cancelled again, with the way on if its channel
    was not told."""
    problem = f"Order {order.channel_order_id} is already {order.get_status_display().lower()}."
    if order_channel_not_told(order):
        notice = (despatch_notice if order.status == Order.Status.PROCESSED else cancellation_notice)(order=order)
        problem += f" {notice.channel} was not told: use “{RETRY_ACTION}”."
    return problem


def _locked_open_order(order_id: int, *, doing: str) -> Order:
    order = Order.objects.select_for_update(of=("self",)).select_related("channel").get(pk=order_id)
    if not order.is_open:
        raise ValidationError(_already_closed(order))
    if order.fulfilled_by_channel:
        raise ValidationError(
            f"Order {order.channel_order_id} is fulfilled by {order.channel.get_kind_display()}: "
            f"it cannot be {doing} here."
        )
    return order


def _order_lines(order: Order) -> list[tuple[int, int, int]]:
    items = list(order.items.filter(stock_item__isnull=False))
    return _reservation_lines([order], {order.pk: items})


def _held_refuse(order: Order, *, doing: str) -> None:
    if hold := order_hold(order):
        raise ValidationError(
            f"Order {order.channel_order_id} is being fulfilled by {hold.fulfiller} ({hold.status.lower()}): "
            f"it cannot be {doing} here; it is processed when {hold.fulfiller} ships it."
        )


def _sending_or_held_problem(order: Order, *, doing: str) -> str:
    """Why the order may not be cancelled or moved while its fulfiller is being sent it or has it; "" if it may."""
    hold = order_hold(order)
    if hold is None or hold.stage == Stage.QUEUED:
        return ""
    if hold.stage == Stage.SENDING:
        # Asked with no lock held: until the fulfiller answers, the order may not change here, or it could
        # ship an order cancelled or moved a moment before.
        return (f"Order {order.channel_order_id} is being sent to {hold.fulfiller} right now: try again in a "
                f"minute, once {hold.fulfiller} has answered.")
    return (f"Order {order.channel_order_id} is with {hold.fulfiller} ({hold.status.lower()}): "
            f"{hold.how_to_stop} {doing}.")


def _at_external_centre(location_id: int | None) -> bool:
    return location_id is not None and Location.objects.filter(pk=location_id, kind=Location.Kind.EXTERNAL).exists()


@transaction.atomic
def order_process(*, order_id: int, tracking_number: str = "", postal_service_id: int | None = None,
                  user=None, check_despatch: bool = True) -> Order:
    """Despatch an open order: its stock leaves the shelf and its reservation ends, so available is unchanged.

    The channel is told afterwards (on commit) by the channels app, when Mark as Despatched is on; with
    `check_despatch` what that channel would refuse (no tracking number, a carrier it does not know) is
    refused here first, by field, before anything changes.
    """
    order = _locked_open_order(order_id, doing="processed")
    _held_refuse(order, doing="processed")
    if order.status == Order.Status.UNPAID:
        raise ValidationError(f"Order {order.channel_order_id} is not paid yet.")
    postal_service = PostalService.objects.filter(pk=postal_service_id).first() if postal_service_id else None
    if postal_service_id is not None and postal_service is None:
        raise ValidationError("That postal service no longer exists.")
    if check_despatch and (problems := despatch_problems(
        order=order, tracking_number=tracking_number.strip(), postal_service=postal_service,
    )):
        raise ValidationError(problems)
    lines = _order_lines(order)
    if lines and _at_external_centre(order.fulfilment_location_id):
        stock_release(lines=lines)
    elif lines:
        stock_consume(lines=lines, reference=f"{order.channel.name} order {order.channel_order_id}", user=user)
    order.status = Order.Status.PROCESSED
    order.processed_at = timezone.now()
    order.tracking_number = tracking_number.strip()
    order.postal_service_id = postal_service_id
    order.despatch_error = ""
    _channel_told_set(order, told=despatch_notice(order=order).told)
    order.save(update_fields=[
        "status", "processed_at", "tracking_number", "postal_service", "despatch_error", "channel_told",
        "channel_told_at", "updated_at",
    ])
    transaction.on_commit(lambda: order_processed.send(sender=Order, order_ids=[order.pk]))
    return order


def _channel_told_set(order: Order, *, told: bool) -> None:
    order.channel_told = Order.ChannelTold.TELLING if told else Order.ChannelTold.NOT_NEEDED
    order.channel_told_at = timezone.now()


@transaction.atomic
def order_channel_retell(*, order_id: int, tracking_number: str = "", postal_service_id: int | None = None,
                         user=None) -> Order:
    """Tell the channel again of a despatch or cancellation it refused or never heard of, after staff fixed the
    tracking number or the carrier (left empty: the order's own are kept).

    The same checks as processing and cancelling, then the same announcement, so the channels app sends it the
    one way it sends every despatch and cancellation."""
    order = Order.objects.select_for_update(of=("self",)).select_related("channel", "postal_service").get(
        pk=order_id)
    processed = order.status == Order.Status.PROCESSED
    notice = (despatch_notice if processed else cancellation_notice)(order=order)
    if not order_channel_not_told(order):
        state = order.get_channel_told_display().lower()
        raise ValidationError(f"Order {order.channel_order_id}: nothing to retry ({notice.channel}: {state}).")
    if not notice.told:
        raise ValidationError(f"Order {order.channel_order_id}: {notice.channel} is not told: {notice.why_not}.")
    if processed:
        postal_service = order.postal_service
        if postal_service_id:
            postal_service = PostalService.objects.filter(pk=postal_service_id).first()
            if postal_service is None:
                raise ValidationError("That postal service no longer exists.")
        tracking_number = tracking_number.strip() or order.tracking_number
        if problems := despatch_problems(order=order, tracking_number=tracking_number,
                                         postal_service=postal_service):
            raise ValidationError(problems)
        order.tracking_number, order.postal_service = tracking_number, postal_service
        order.despatch_error = ""
        announce = partial(order_processed.send, sender=Order, order_ids=[order.pk])
    else:
        if problems := cancellation_problems(order=order, reason=order.cancellation_reason):
            raise ValidationError(problems)
        order.cancellation_error = ""
        announce = partial(order_cancelled.send, sender=Order, order_ids=[order.pk],
                           reason=order.cancellation_reason)
    _channel_told_set(order, told=True)
    order.save(update_fields=["tracking_number", "postal_service", "despatch_error", "cancellation_error",
                              "channel_told", "channel_told_at", "updated_at"])
    transaction.on_commit(announce)
    return order


@transaction.atomic
def order_cancel(*, order_id: int, reason: str = "", user=None) -> Order:
    """Cancel an open order here: its reservation is released and the channel is told when it wants to be.

    What the channel would refuse of the cancellation (a reason it does not know) is refused here first."""
    order = _locked_open_order(order_id, doing="cancelled")
    if problems := cancellation_problems(order=order, reason=reason.strip()):
        raise ValidationError(problems)
    if problem := _sending_or_held_problem(order, doing="first"):
        raise ValidationError(problem)
    lines = _order_lines(order)
    if lines:
        stock_release(lines=lines)
    order.status = Order.Status.CANCELLED
    order.cancelled_at = timezone.now()
    order.cancellation_error = ""
    order.cancellation_reason = reason.strip()
    _channel_told_set(order, told=cancellation_notice(order=order).told)
    order.save(update_fields=["status", "cancelled_at", "cancellation_error", "cancellation_reason", "channel_told",
                              "channel_told_at", "updated_at"])
    # Not yet sent to its fulfiller: now it never will be.
    external_fulfilment.order_cancelled(order=order)
    transaction.on_commit(lambda: order_cancelled.send(sender=Order, order_ids=[order.pk], reason=reason))
    return order


def order_reallocation_problem(*, order: Order, location: Location | None) -> str:
    """Why this order's stock cannot move to `location`, in a sentence for staff; "" when it can."""
    if not order.is_open:
        return f"Order {order.channel_order_id} is already {order.get_status_display().lower()}."
    if order.fulfilled_by_channel:
        return (f"Order {order.channel_order_id} is fulfilled by {order.channel.get_kind_display()}: "
                "it cannot be reallocated here.")
    if problem := _sending_or_held_problem(order, doing="before moving it"):
        return problem
    if location is None:
        return "Choose a location: an open order holds its stock at one."
    if (fulfiller := external_fulfilment.location_fulfiller(location)) and order.status == Order.Status.UNPAID:
        return f"Order {order.channel_order_id} is not paid yet: {fulfiller} would ship it unpaid."
    return ""


@transaction.atomic
def order_reallocate(*, order_id: int, location_id: int, user=None) -> Order:
    """Move an open order's reservation to another location: released at the old one, reserved at the new.

    Reallocated to an external fulfilment centre (e.g. an FBA location, from any channel), the order is
    handed to its fulfiller (the channels app sends it to Amazon's multi-channel fulfilment); reallocating it
    there again after the fulfiller refused or could not fulfil it sends it again. An order the fulfiller
    already holds cannot be moved.
    """
    order = _locked_open_order(order_id, doing="reallocated")
    location = Location.objects.filter(pk=location_id).first()
    if location is None:
        raise ValidationError("That location no longer exists.")
    if problem := order_reallocation_problem(order=order, location=location):
        raise ValidationError(problem)
    if location.pk == order.fulfilment_location_id and not external_fulfilment.reallocation_resends(
        order=order, location=location
    ):
        return order
    items = list(order.items.filter(stock_item__isnull=False))
    held = _reservation_lines([order], {order.pk: items})
    order.fulfilment_location = location
    wanted = _reservation_lines([order], {order.pk: items})
    # Both locations' levels at once, in pk order: two orders moving opposite ways must not deadlock.
    stock_levels_lock(lines=held + wanted)
    if held:
        stock_release(lines=held)
    if wanted:
        stock_reserve(lines=wanted)
    order.save(update_fields=["fulfilment_location", "updated_at"])
    external_fulfilment.order_moved(order=order, location=location)
    return order


@transaction.atomic
def order_item_link(*, order_item_id: int, stock_item_id: int | None, user=None) -> OrderItem:
    """Link an open order's line to a stock item (or relink, or unlink it): the line's reservation moves
    with it, so stock sold before its SKU was known is held from now on, and released if unlinked."""
    item = OrderItem.objects.get(pk=order_item_id)
    order = _locked_open_order(item.order_id, doing="changed")
    _held_refuse(order, doing="changed")
    if item.stock_item_id == stock_item_id:
        return item
    held = _reservation_lines([order], {order.pk: [item]})
    item.stock_item_id = stock_item_id
    wanted = _reservation_lines([order], {order.pk: [item]})
    # Both stock items' levels at once, in pk order, as order_reallocate does.
    stock_levels_lock(lines=held + wanted)
    if held:
        stock_release(lines=held)
    if wanted:
        stock_reserve(lines=wanted)
    item.save(update_fields=["stock_item"])
    order.has_unlinked_items = order.items.filter(stock_item__isnull=True).exists()
    order.save(update_fields=["has_unlinked_items", "updated_at"])
    return item


# Stock items per transaction: each locks its items' levels only for as long as their count takes.
RECOUNT_CHUNK = 500


def _open_orders_held(stock_item_ids: list[int]) -> dict[tuple[int, int], int]:
    """What open orders hold per (stock item, location): the rule the reservations follow."""
    rows = (
        OrderItem.objects.filter(
            stock_item_id__in=stock_item_ids, order__status__in=Order.OPEN_STATUSES,
            order__fulfilment_location__isnull=False,
        )
        .values_list("stock_item_id", "order__fulfilment_location_id")
        .annotate(held=Sum("quantity"))
        .order_by()
    )
    return {(item_id, location_id): held for item_id, location_id, held in rows}


def open_orders_recount(*, correct: bool = True) -> list[OpenOrdersDifference]:
    """Recount what open orders hold and set each level's "in open orders" to it where it differs.

    Every reservation, release and despatch keeps the counter; this checks it still adds up after
    anything that bypassed them (a database restore, a hand-made SQL fix, a bug) and corrects it, so
    channels are sent the right available quantity again. Returns the differences found.
    """
    stock_item_ids = sorted(
        set(StockLevel.objects.exclude(in_open_orders=0).values_list("stock_item_id", flat=True))
        | set(OrderItem.objects.filter(order__status__in=Order.OPEN_STATUSES, order__fulfilment_location__isnull=False,
                                       stock_item__isnull=False).values_list("stock_item_id", flat=True).distinct())
    )
    differences: list[OpenOrdersDifference] = []
    for start in range(0, len(stock_item_ids), RECOUNT_CHUNK):
        differences += stock_open_orders_correct(
            stock_item_ids=stock_item_ids[start:start + RECOUNT_CHUNK], count_open_orders=_open_orders_held,
            correct=correct,
        )
    return differences


def orders_tracking_number_problem(*, order_count: int, tracking_number: str) -> str:
    """Why a tracking number cannot be given to these orders at once; "" when it can."""
    if order_count > 1 and tracking_number:
        return "A tracking number belongs to one order: select one order, or leave it empty."
    return ""


def order_process_keeping_details(
    *, order: Order, tracking_number: str = "", postal_service_id: int | None = None, user=None,
) -> Order:
    """Process an order from the order screens: a tracking number or postal service left empty keeps the one
    the order already has (from the channel, or typed earlier)."""
    return order_process(
        order_id=order.pk,
        tracking_number=tracking_number or order.tracking_number,
        postal_service_id=postal_service_id or order.postal_service_id,
        user=user,
    )


# --- Processing many orders from tracking lines ----------------------------------------------------------

# The file's first line, when it names its columns rather than an order.
TRACKING_HEADER_WORDS = {"order", "order number", "order id", "order no", "channel order id"}
TRACKING_LINES_MAX = 5000


@dataclass(frozen=True)
class TrackingRow:
    """One line as read: its number in the text, and its two or three values."""

    line: int
    order_number: str
    tracking_number: str
    carrier: str


@dataclass(frozen=True)
class TrackingLine:
    """One line checked: the order it processes, with its tracking number and postal service (None: its own)."""

    line: int
    order: Order
    tracking_number: str
    postal_service: PostalService | None


# (line number, message): the problems of a tracking file, in the order of its lines.
LineProblems = list[tuple[int, str]]


def tracking_lines_read(*, text: str) -> tuple[list[TrackingRow], LineProblems]:
    """The lines of `order number, tracking number[, carrier]` (commas, semicolons or tabs; a header line is
    skipped), and every line that cannot be read."""
    lines = text.splitlines()
    # Tabs when pasted from a spreadsheet; semicolons from a spreadsheet saving CSV in a French locale.
    first = next((line for line in lines if line.strip()), "")
    delimiter = next((d for d in ("\t", ";") if d in first), ",")
    rows: list[TrackingRow] = []
    errors: LineProblems = []
    for number, values in enumerate(csv.reader(lines, delimiter=delimiter, skipinitialspace=True), start=1):
        values = [value.strip() for value in values]
        while values and not values[-1]:
            values.pop()
        if not values:
            continue
        if not rows and not errors and values[0].casefold() in TRACKING_HEADER_WORDS:
            continue
        if problem := _tracking_values_problem(values):
            errors.append((number, f"Line {number}{problem}"))
            continue
        rows.append(TrackingRow(number, values[0], values[1], values[2] if len(values) == 3 else ""))
    if len(rows) > TRACKING_LINES_MAX:
        errors.insert(0, (0, f"{len(rows)} lines: process at most {TRACKING_LINES_MAX} orders at a time."))
    return rows, errors


def _tracking_values_problem(values: list[str]) -> str:
    """What is wrong with a line's values, after "Line N"; "" when they read as a line."""
    if len(values) > 3:
        return (f": expected “order number, tracking number[, carrier]”, found {len(values)} values: "
                f"“{' | '.join(values)}”.")
    if not values[0]:
        return ": no order number."
    if len(values) < 2 or not values[1]:
        return f" (order {values[0]}): no tracking number."
    return ""


def _postal_service_named(services: list[PostalService], carrier: str) -> PostalService | None:
    wanted = carrier.casefold()
    return (next((s for s in services if s.name.casefold() == wanted), None)
            or next((s for s in services if s.carrier_code.casefold() == wanted), None))


def order_process_problem(*, order: Order) -> str:
    """Why this order cannot be processed here, in a sentence; "" when it can (its channel's rules aside)."""
    if not order.is_open:
        return _already_closed(order)
    if order.fulfilled_by_channel:
        return (f"Order {order.channel_order_id} is fulfilled by {order.channel.get_kind_display()}: it cannot be "
                "processed here.")
    if order.status == Order.Status.UNPAID:
        return f"Order {order.channel_order_id} is not paid yet."
    return ""


def tracking_lines_check(*, rows: list[TrackingRow]) -> tuple[list[TrackingLine], LineProblems]:
    """Every row checked as processing would check it (the order exists and is open, the carrier is a postal
    service here, the channel's rules), with every problem by line number. The orders and postal services are
    read in one query each, whatever the number of lines."""
    numbers = {row.order_number for row in rows}
    # The channel is prefetched, not joined: its rows are shared, so its status mappings are read once per channel.
    found: dict[str, list[Order]] = defaultdict(list)
    for order in (Order.objects.filter(channel_order_id__in=numbers).select_related("postal_service")
                  .prefetch_related("channel", "channel__status_mappings")):
        found[order.channel_order_id].append(order)
    services = list(PostalService.objects.all())
    lines: list[TrackingLine] = []
    errors: LineProblems = []
    first_line: dict[str, int] = {}
    for row in rows:
        problems, line = _tracking_row_check(row, found=found, services=services, first_line=first_line)
        errors += [(row.line, f"Line {row.line} (order {row.order_number}): {problem}") for problem in problems]
        if line is not None:
            lines.append(line)
    return lines, errors


def _tracking_row_check(row: TrackingRow, *, found: dict[str, list[Order]], services: list[PostalService],
                        first_line: dict[str, int]) -> tuple[list[str], TrackingLine | None]:
    if row.order_number in first_line:
        return [f"the order is already on line {first_line[row.order_number]}."], None
    first_line[row.order_number] = row.line
    orders = found.get(row.order_number, [])
    if not orders:
        return ["no order has this number."], None
    if len(orders) > 1:
        channels = ", ".join(sorted(order.channel.name for order in orders))
        return [f"orders on several channels have this number ({channels}): process them one at a time from "
                "their pages."], None
    order = orders[0]
    if problem := order_process_problem(order=order):
        return [problem], None
    postal_service = order.postal_service
    if row.carrier:
        postal_service = _postal_service_named(services, row.carrier)
        if postal_service is None:
            known = ", ".join(service.name for service in services) or "none yet"
            return [f"no postal service is named or has the carrier code “{row.carrier}”: add it under Postal "
                    f"services, or use one of {known}."], None
    problems = despatch_problems(order=order, tracking_number=row.tracking_number, postal_service=postal_service)
    if problems:
        return list(problems.values()), None
    return [], TrackingLine(row.line, order, row.tracking_number, postal_service)


@transaction.atomic
def orders_process_with_tracking(*, lines: list[TrackingLine], user=None) -> list[int]:
    """Process every checked line's order with its tracking number, all or none: one refusal (the order changed
    since it was checked) undoes them all and names its line. Returns the orders' ids.

    The orders are locked first, all at once in pk order, so their stock levels are locked after every order
    this transaction holds, as everywhere else."""
    ids = sorted(line.order.pk for line in lines)
    list(Order.objects.select_for_update(of=("self",)).filter(pk__in=ids).order_by("pk").values_list("pk"))
    for line in sorted(lines, key=lambda line: line.order.pk):
        try:
            order_process(order_id=line.order.pk, tracking_number=line.tracking_number,
                          postal_service_id=line.postal_service.pk if line.postal_service else None, user=user)
        except ValidationError as exc:
            raise ValidationError(f"Line {line.line} (order {line.order.channel_order_id}): "
                                  f"{' '.join(exc.messages)} Nothing was processed.") from exc
    return ids


# The buyer's personal data on an order: what a channel's account deletion notice asks the hub to erase.
BUYER_DATA_FIELDS = ("buyer_name", "buyer_email", "ship_name", "ship_line1", "ship_line2", "ship_city", "ship_region",
                     "ship_postcode", "ship_phone")


@transaction.atomic
def orders_buyer_erase(*, channel_id: int, buyer_name: str) -> int:
    """Erase the personal data of one buyer of a channel from their orders (the lines, amounts and country stay
    for the seller's accounts and stock). Returns how many orders held it. Safe to repeat."""
    orders = Order.objects.filter(channel_id=channel_id, buyer_name=buyer_name)
    return orders.update(**dict.fromkeys(BUYER_DATA_FIELDS, ""))
