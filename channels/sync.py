"""The sync services: order download, inventory push, despatch and cancellation sent to channels.

Each is a plain function taking ids, called alike by Celery tasks, management commands and admin
actions. Each run writes a SyncRun row with its counts and per-record errors.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import DataError, IntegrityError, transaction
from django.utils import timezone

from channels.connections import channel_connector
from channels.connectors.base import (
    ChannelAuthError,
    ChannelError,
    ChannelRateLimited,
    ChannelRejected,
    ChannelTransientError,
    ExternalOrder,
    OrderLineRef,
    OrderPage,
    OrderRef,
    PushResult,
    RecordError,
    Shipment,
    StockUpdate,
    WatermarkPolicy,
)
from channels.models import NEVER_SYNCED, Channel, ChannelListing, OrderStatusMapping, ShippingMapping, SyncRun
from channels.order_checks import channel_sends_tracking
from channels.selectors import listings_push_plan
from channels.services import (
    listings_pending_settle,
    listings_record_pushed,
    listings_record_rejected,
    sync_runs_interrupted_close,
)
from inventory.models import Location, StockItem
from orders.models import Order
from orders.services import ImportResult, OrderData, OrderLineData, order_import
from orders.validators import validate_currency

logger = logging.getLogger(__name__)

CENT = Decimal("0.01")
# What the order columns hold: identifiers of 100 characters, 12-digit money, 32-bit quantities.
MAX_IDENTIFIER = 100
# The shipping mapping's tag column.
MAX_TAG = 255
MAX_AMOUNT = Decimal(10) ** 10
MAX_QUANTITY = 2**31 - 1
# How far back the downloads keep asking again for an order the channel sent unreadable.
UNREADABLE_RETRY_WINDOW = timedelta(hours=24)
# A listing the channel did not answer for is left pending rather than assumed sent.
REJECTED_UNANSWERED = PushResult(channel_sku="", accepted=False, message="The channel gave no answer for this listing.")


class OrderSkipped(Exception):
    """An order the channel's settings say not to download (unpaid, unmapped and unpaid)."""


class OrderUnreadable(ValidationError):
    """An order as the channel sent it cannot be stored (an id the database cannot hold, a line twice).

    Like an order the connector could not read, it holds the watermark back for a while: the channel may
    send it corrected."""


# What PostgreSQL text cannot hold (NUL) and what UTF-8 cannot encode (a surrogate without its pair).
UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def _storable(value: str) -> bool:
    return not UNSTORABLE.search(value)


def _text(value: str) -> str:
    """Free text (a name, an address, a title) the database can store: NUL dropped, a lone surrogate shown as �."""
    return UNSTORABLE.sub(lambda match: "" if match.group() == "\x00" else "\ufffd", value)


@dataclass
class PageOutcome:
    stored: int = 0
    skipped: int = 0
    errors: list[RecordError] = field(default_factory=list)
    oldest_imported: datetime | None = None
    latest_order: datetime | None = None
    unreadable: int = 0


def run_finish(run: SyncRun, *, processed: int, skipped: int, errors: list[RecordError], error: str = "") -> SyncRun:
    run.processed = processed
    run.skipped = skipped
    run.failed = len(errors)
    # JSON in PostgreSQL holds no NUL either, and the channel's ids and messages may carry one.
    run.errors = [{"record_id": _text(e.record_id), "reason": _text(e.reason)} for e in errors[:500]]
    run.error = _text(error)
    if error:
        run.status = SyncRun.Status.FAILED if not processed else SyncRun.Status.PARTIAL
    else:
        run.status = SyncRun.Status.PARTIAL if errors else SyncRun.Status.SUCCESS
    run.finished_at = timezone.now()
    run.save()
    return run


def channel_flag_reauthorisation(*, channel_id: int, reason: str) -> None:
    Channel.objects.filter(pk=channel_id).update(needs_reauthorisation=True, reauthorisation_reason=reason[:255])


def hub_tax(*, gross: Decimal, country: str) -> Decimal:
    """Tax included in a gross amount at the hub's rate for the destination country."""
    rates = settings.HUB_TAX_RATES
    rate = Decimal(str(rates.get(country.upper(), rates["default"])))
    return (gross * rate / (100 + rate)).quantize(CENT, ROUND_HALF_UP)


def _hub_status(*, channel: Channel, external: ExternalOrder, mapped: str) -> str:
    if external.is_cancelled or mapped == Order.Status.CANCELLED:
        return Order.Status.CANCELLED
    if external.fulfilled_by_channel and external.is_shipped:
        # Amazon shipped an order it fulfils itself: done, whatever the status mapping says.
        return Order.Status.PROCESSED
    if mapped == OrderStatusMapping.UNMAPPED:
        if not external.is_paid:
            raise OrderSkipped(f"status {external.channel_status!r} is unmapped and the order is not paid")
        return Order.Status.PAID
    if not external.is_paid and not channel.download_unpaid_orders:
        raise OrderSkipped("unpaid, and Download unpaid orders is off")
    return mapped


def _buyer_email(*, channel: Channel, external: ExternalOrder) -> str:
    if external.buyer_email:
        return external.buyer_email
    if channel.default_email:
        return channel.default_email
    return channel.connector_class.withheld_email_placeholder


@dataclass(frozen=True)
class PageContext:
    """Everything an order page needs from the database, read once per page."""

    channel: Channel
    status_map: dict[str, str]
    postal_by_tag: dict[str, int | None]
    item_by_sku: dict[str, int]
    warehouse_id: int | None
    fba_location_id: int | None


def _page_context(*, channel: Channel, orders: Iterable[ExternalOrder]) -> PageContext:
    orders = list(orders)
    # A status or tag too long for its mapping column is that order's error (order_data_from_external),
    # not a failed insert of every mapping on the page.
    # So is one the database cannot store at all.
    statuses = {o.channel_status for o in orders if 0 < len(o.channel_status) <= MAX_IDENTIFIER
                and _storable(o.channel_status)}
    tags = {o.shipping_tag for o in orders if 0 < len(o.shipping_tag) <= MAX_TAG and _storable(o.shipping_tag)}
    skus = {item.sku for o in orders for item in o.items if _storable(item.sku)}
    # First sight of a status or tag adds it unmapped, so staff can map it.
    OrderStatusMapping.objects.bulk_create(
        [OrderStatusMapping(channel=channel, channel_status=s) for s in sorted(statuses)], ignore_conflicts=True
    )
    ShippingMapping.objects.bulk_create(
        [ShippingMapping(channel=channel, tag=t) for t in sorted(tags)], ignore_conflicts=True
    )
    status_map = dict(
        OrderStatusMapping.objects.filter(channel=channel, channel_status__in=statuses).values_list(
            "channel_status", "hub_status"
        )
    )
    postal_by_tag = dict(
        ShippingMapping.objects.filter(channel=channel, tag__in=tags).values_list("tag", "postal_service_id")
    )
    item_by_sku = dict(StockItem.objects.filter(sku__in=skus).values_list("sku", "id"))
    # A listing's link beats a SKU match: the channel's SKU may differ from the stock item's.
    item_by_sku |= dict(
        ChannelListing.objects.filter(channel=channel, channel_sku__in=skus, stock_item__isnull=False).values_list(
            "channel_sku", "stock_item_id"
        )
    )
    # Orders go to the default warehouse; with none marked, the first warehouse, so stock is always held.
    warehouse_id = (
        Location.objects.filter(kind=Location.Kind.WAREHOUSE)
        .order_by("-is_default", "pk")
        .values_list("id", flat=True)
        .first()
    )
    # Imported here: channels.fba builds on this module. A unified account's AFN orders all go to the FBA
    # location of the channel that controls the shared pool.
    from channels.fba import fba_location_for_afn_orders

    fba = fba_location_for_afn_orders(channel=channel)
    return PageContext(
        channel=channel,
        status_map=status_map,
        postal_by_tag=postal_by_tag,
        item_by_sku=item_by_sku,
        warehouse_id=warehouse_id,
        fba_location_id=fba,
    )


def _money(value: Decimal | None, what: str) -> Decimal:
    value = Decimal(value or 0)
    # Money columns hold 12 digits, 2 after the point; a larger amount would fail the whole page's insert.
    if value.is_finite() and abs(value) >= MAX_AMOUNT:
        raise ValidationError(f"{what} is too large ({value:.2E})")
    amount = value.quantize(CENT, ROUND_HALF_UP)
    if amount < 0:
        raise ValidationError(f"{what} is negative ({amount})")
    return amount


def _identifier(value: str, what: str) -> str:
    if len(value) > MAX_IDENTIFIER:
        raise ValidationError(f"{what} is longer than {MAX_IDENTIFIER} characters")
    _matchable(value, what)
    return value


def _matchable(value: str, what: str) -> None:
    # An id, SKU, status or service is matched, not read: cleaned, it could match another order or item.
    if not _storable(value):
        raise OrderUnreadable(f"{what} holds a character the database cannot store ({_text(value)!r})")


def order_data_from_external(*, context: PageContext, external: ExternalOrder) -> OrderData:
    """Apply the channel's settings to one downloaded order. Raises OrderSkipped or ValidationError."""
    channel = context.channel
    _identifier(external.channel_status, "the channel's order status")
    if len(external.shipping_tag) > MAX_TAG:
        raise ValidationError(f"the shipping service is longer than {MAX_TAG} characters")
    _matchable(external.shipping_tag, "the shipping service")
    status = _hub_status(
        channel=channel, external=external,
        mapped=context.status_map.get(external.channel_status, OrderStatusMapping.UNMAPPED),
    )
    currency = (external.currency or channel.currency).upper()
    validate_currency(currency)
    if not external.items:
        raise ValidationError("the order has no items")
    country = _text(external.shipping_address.country)
    lines = []
    line_ids = set()
    for item in external.items:
        if not 0 < item.quantity <= MAX_QUANTITY:
            raise ValidationError(f"line {item.line_id} has quantity {item.quantity}")
        _identifier(item.line_id, "a line id")
        _identifier(item.sku, f"line {item.line_id}'s SKU")
        # A line without an id is known by its SKU (see channel_line_id): two such lines are one line twice.
        line_id = item.line_id or item.sku
        if line_id in line_ids:
            what = f"line id {item.line_id}" if item.line_id else f"SKU {item.sku} (on lines without an id)"
            raise OrderUnreadable(f"{what} appears twice in the order")
        line_ids.add(line_id)
        unit_price = _money(item.unit_price, f"line {item.line_id} price")
        if channel.use_channel_tax:
            line_tax = _money(item.tax, f"line {item.line_id} tax")
        else:
            line_tax = hub_tax(gross=unit_price * item.quantity, country=country)
        lines.append(
            OrderLineData(
                channel_line_id=line_id,
                channel_sku=item.sku,
                title=_text(item.title)[:255],
                quantity=item.quantity,
                unit_price=unit_price,
                tax=line_tax,
                stock_item_id=context.item_by_sku.get(item.sku),
            )
        )
    subtotal = _money(external.subtotal, "subtotal")
    shipping_cost = _money(external.shipping_cost, "shipping")
    if channel.use_channel_tax:
        tax = _money(external.tax if external.tax is not None else sum(line.tax for line in lines), "tax")
    else:
        tax = hub_tax(gross=subtotal + shipping_cost, country=country)
    address = external.shipping_address
    return OrderData(
        channel_order_id=_identifier(external.channel_order_id, "the order id"),
        status=status,
        channel_status=external.channel_status,
        is_paid=external.is_paid,
        received_at=external.created_at + channel.utc_offset,
        channel_updated_at=external.updated_at,
        currency=currency,
        lines=tuple(lines),
        fulfilled_by_channel=external.fulfilled_by_channel,
        fulfilment_location_id=context.fba_location_id if external.fulfilled_by_channel else context.warehouse_id,
        buyer_name=_text(external.buyer_name)[:255],
        buyer_email=_text(_buyer_email(channel=channel, external=external))[:255],
        address={
            # Cut to their columns: an over-long address part is the channel's, and staff can correct it.
            "ship_name": _text(address.name)[:255], "ship_line1": _text(address.line1)[:255],
            "ship_line2": _text(address.line2)[:255], "ship_city": _text(address.city)[:100],
            "ship_region": _text(address.region)[:100], "ship_postcode": _text(address.postcode)[:20],
            "ship_country": country[:2].upper(), "ship_phone": _text(address.phone)[:50],
        },
        channel_shipping_tag=external.shipping_tag,
        postal_service_id=context.postal_by_tag.get(external.shipping_tag),
        subtotal=subtotal,
        shipping_cost=shipping_cost,
        tax=tax,
        total=_money(external.total, "total"),
    )


def _orders_import(
    *, channel: Channel, orders: list[OrderData], outcome: PageOutcome
) -> tuple[ImportResult, list[OrderData]]:
    """Import the page's orders in one go; if the database refuses one (a value no check above foresaw), each
    alone, so that one is the order's error and the rest are stored. Returns the result and the orders stored."""
    try:
        with transaction.atomic():
            return order_import(channel_id=channel.pk, orders=orders), orders
    except (DataError, IntegrityError):
        result, stored = ImportResult(), []
        for data in orders:
            try:
                with transaction.atomic():
                    alone = order_import(channel_id=channel.pk, orders=[data])
            except (DataError, IntegrityError) as exc:
                logger.warning("channels.orders.refused channel=%s order=%s", channel.pk, _text(data.channel_order_id))
                outcome.errors.append(RecordError(data.channel_order_id, f"the database refused the order: {exc}"))
                outcome.unreadable += 1
                continue
            stored.append(data)
            for name in ("created", "updated", "cancelled", "unchanged"):
                getattr(result, name).extend(getattr(alone, name))
        return result, stored


def orders_store_page(*, channel: Channel, page: OrderPage) -> PageOutcome:
    """Store one page: map every order, import the good ones, report the bad ones by order id."""
    outcome = PageOutcome(errors=list(page.errors), unreadable=len(page.errors))
    context = _page_context(channel=channel, orders=page.orders)
    ready: list[OrderData] = []
    for external in page.orders:
        try:
            ready.append(order_data_from_external(context=context, external=external))
        except OrderSkipped:
            outcome.skipped += 1
        except ValidationError as exc:
            outcome.errors.append(RecordError(external.channel_order_id, "; ".join(exc.messages)))
            outcome.unreadable += isinstance(exc, OrderUnreadable)
    result, ready = _orders_import(channel=channel, orders=ready, outcome=outcome)
    outcome.stored = len(ready)
    changed = set(result.created) | set(result.updated)
    imported_times = [e.updated_at for e in page.orders if e.channel_order_id in changed]
    outcome.oldest_imported = min(imported_times, default=None)
    outcome.latest_order = max((d.received_at - channel.utc_offset for d in ready), default=None)
    for order_id in changed:
        logger.info("channels.orders.stored channel=%s order=%s", channel.pk, _text(order_id))
    return outcome


def _next_watermark(*, policy: WatermarkPolicy, current: datetime, until: datetime, outcomes: list[PageOutcome]):
    if policy is WatermarkPolicy.OLDEST_IMPORTED:
        oldest = min((o.oldest_imported for o in outcomes if o.oldest_imported), default=None)
        moved = max(current, min(oldest, until)) if oldest else until
    else:
        latest = max((o.latest_order for o in outcomes if o.latest_order), default=None)
        moved = max(current, latest) if latest else current
    if any(o.unreadable for o in outcomes):
        # An order the channel sent unreadable (its time unknown) may have been a glitch: the watermark
        # stays, so the next downloads ask for it again, but for UNREADABLE_RETRY_WINDOW at most, so one
        # record broken for good cannot hold every download back.
        return min(moved, max(current, until - UNREADABLE_RETRY_WINDOW))
    return moved


def orders_download(*, channel_id: int) -> SyncRun | None:
    """Download and store every order changed since Last Order Sync, then move the watermark.

    Each page is stored in its own transaction. If a page fails to arrive the watermark stays where
    it was and the error propagates (the task retries): pages already stored are found again by the
    next run and left as they are. Callers hold the channel's "orders" lock (the task and the command do).
    """
    channel = Channel.objects.get(pk=channel_id)
    if not channel.enabled:
        return None
    sync_runs_interrupted_close(channel_id=channel.pk, kind=SyncRun.Kind.ORDERS)
    run = SyncRun.objects.create(channel=channel, kind=SyncRun.Kind.ORDERS)
    connector = channel_connector(channel=channel)
    # Channels filter by whole seconds: round up so an order stamped this very second is included.
    until = (timezone.now() + timedelta(seconds=1)).replace(microsecond=0)
    since = channel.last_order_sync
    if since > NEVER_SYNCED + connector.order_overlap:
        since -= connector.order_overlap
    outcomes: list[PageOutcome] = []
    try:
        for page in connector.fetch_orders(since, until):
            with transaction.atomic():
                outcomes.append(orders_store_page(channel=channel, page=page))
    # Any failure, not only the channel's (the database, Redis), closes the run, so none stays "running".
    except Exception as exc:
        if isinstance(exc, ChannelAuthError):
            channel_flag_reauthorisation(channel_id=channel.pk, reason=str(exc))
        run_finish(
            run, processed=sum(o.stored for o in outcomes), skipped=sum(o.skipped for o in outcomes),
            errors=[e for o in outcomes for e in o.errors], error=f"{type(exc).__name__}: {exc}",
        )
        raise
    watermark = _next_watermark(
        policy=connector.watermark_policy, current=channel.last_order_sync, until=until, outcomes=outcomes
    )
    Channel.objects.filter(pk=channel.pk).update(last_order_sync=watermark)
    return run_finish(
        run, processed=sum(o.stored for o in outcomes), skipped=sum(o.skipped for o in outcomes),
        errors=[e for o in outcomes for e in o.errors],
    )


# --- Inventory push ------------------------------------------------------------------------------


def _batches(items: list, size: int):
    for start in range(0, len(items), size):
        yield items[start:start + size]


def inventory_push(*, channel_id: int, full: bool = False) -> SyncRun | None:
    """Send the channel the quantity, latency and price of every listing whose values changed.

    Only what the channel accepted is recorded as pushed; a rejected listing stays pending with the
    channel's message. Batches already accepted stay recorded if a later batch fails, so a retry sends
    only the rest. `full` resends every linked listing, overwriting values edited on the channel.
    Callers hold the channel's "push" lock (the task and the command do).
    """
    channel = Channel.objects.get(pk=channel_id)
    if not channel.syncs_inventory:
        return None
    sync_runs_interrupted_close(channel_id=channel.pk, kind=SyncRun.Kind.INVENTORY)
    run = SyncRun.objects.create(channel=channel, kind=SyncRun.Kind.INVENTORY)
    plan = listings_push_plan(channel_id=channel.pk, full=full)
    connector = channel_connector(channel=channel)
    accepted_count, errors = 0, []
    try:
        for batch in _batches(plan, connector.max_batch_size):
            updates = [
                StockUpdate(
                    channel_sku=push.channel_sku, external_id=push.external_id, quantity=push.quantity,
                    latency_days=push.latency_days, price=push.price, currency=channel.currency,
                )
                for push in batch
            ]
            results = {result.channel_sku: result for result in connector.push_listings(updates)}
            accepted = [push for push in batch if results.get(push.channel_sku, REJECTED_UNANSWERED).accepted]
            rejected = [
                (push.listing_id, results.get(push.channel_sku, REJECTED_UNANSWERED).message)
                for push in batch if not results.get(push.channel_sku, REJECTED_UNANSWERED).accepted
            ]
            listings_record_pushed(pushes=accepted, at=timezone.now())
            if rejected:
                listings_record_rejected(rejected=rejected)
            accepted_count += len(accepted)
            by_listing = {push.listing_id: push.channel_sku for push in batch}
            errors.extend(RecordError(by_listing[listing_id], message) for listing_id, message in rejected)
    except ChannelError as exc:
        if isinstance(exc, ChannelAuthError):
            channel_flag_reauthorisation(channel_id=channel.pk, reason=str(exc))
        run_finish(run, processed=accepted_count, skipped=0, errors=errors, error=f"{type(exc).__name__}: {exc}")
        raise
    listings_pending_settle(channel_id=channel.pk)
    Channel.objects.filter(pk=channel.pk).update(last_inventory_sync=timezone.now())
    return run_finish(run, processed=accepted_count, skipped=0, errors=errors)


# --- Despatch and cancellation -------------------------------------------------------------------


def _order_ref(order: Order) -> OrderRef:
    return OrderRef(
        channel_order_id=order.channel_order_id,
        lines=tuple(
            OrderLineRef(line_id=item.channel_line_id, sku=item.channel_sku, quantity=item.quantity)
            for item in order.items.all()
        ),
    )


def _shipment(order: Order) -> Shipment:
    channel = order.channel
    shipped_status = (
        OrderStatusMapping.objects.filter(channel=channel, hub_status=Order.Status.PROCESSED)
        .values_list("channel_status", flat=True)
        .first()
    )
    connector = channel.connector_class
    if connector.despatch_needs_status_mapping and not shipped_status:
        raise ChannelRejected(
            f"Map the hub's “Processed (shipped)” status to one of {connector.label}'s statuses in Order Status "
            f"Mapping: {connector.label} cannot be sent despatch notes without it."
        )
    postal = order.postal_service
    # The reverse of the shipping mapping: the channel's own name for the service the order went by.
    tag = ShippingMapping.objects.filter(channel=channel, postal_service=postal).values_list("tag", flat=True).first()
    notes = channel_sends_tracking(channel)
    return Shipment(
        tracking_number=order.tracking_number if notes else "",
        carrier=(postal.carrier_code or postal.name) if postal else "Other",
        shipping_method=tag or (postal.name if postal else order.channel_shipping_tag),
        tracking_url=postal.tracking_url(order.tracking_number) if postal and notes else "",
        shipped_at=order.processed_at,
        channel_status=shipped_status or "",
    )


def _confirm(*, order: Order, send, sent_field: str, error_field: str) -> str:
    run = SyncRun.objects.create(channel=order.channel, kind=SyncRun.Kind.DESPATCH)
    try:
        send()
    except (ChannelRateLimited, ChannelTransientError) as exc:
        Order.objects.filter(pk=order.pk).update(**{error_field: f"Will retry: {exc}"})
        run_finish(run, processed=0, skipped=0, errors=[], error=f"{type(exc).__name__}: {exc}")
        raise
    except ChannelError as exc:
        if isinstance(exc, ChannelAuthError):
            channel_flag_reauthorisation(channel_id=order.channel_id, reason=str(exc))
        Order.objects.filter(pk=order.pk).update(**{error_field: str(exc)})
        run_finish(run, processed=0, skipped=0, errors=[RecordError(order.channel_order_id, str(exc))])
        return "failed"
    Order.objects.filter(pk=order.pk).update(**{sent_field: timezone.now(), error_field: ""})
    run_finish(run, processed=1, skipped=0, errors=[])
    return "sent"


def order_despatch_confirm(*, order_id: int) -> str:
    """Tell the order's channel it has shipped, with tracking. Safe to repeat: sent once."""
    order = Order.objects.select_related("channel", "postal_service").filter(pk=order_id).first()
    if order is None or order.status != Order.Status.PROCESSED or order.despatch_sent_at:
        return "nothing to send"
    channel = order.channel
    if order.fulfilled_by_channel or not channel.enabled or not channel.mark_as_despatched:
        return "not sent: the channel is not told of despatches"
    connector = channel_connector(channel=channel)
    return _confirm(
        order=order,
        send=lambda: connector.confirm_despatch(_order_ref(order), _shipment(order)),
        sent_field="despatch_sent_at",
        error_field="despatch_error",
    )


def order_cancellation_confirm(*, order_id: int, reason: str = "Cancelled by the seller") -> str:
    """Send the channel a cancellation note when the channel wants them. Safe to repeat: sent once."""
    order = Order.objects.select_related("channel").filter(pk=order_id).first()
    if order is None or order.status != Order.Status.CANCELLED or order.cancellation_sent_at:
        return "nothing to send"
    channel = order.channel
    if order.fulfilled_by_channel or not channel.enabled or not channel.send_cancellation_notes:
        return "not sent: cancellation notes are off"
    connector = channel_connector(channel=channel)
    return _confirm(
        order=order,
        send=lambda: connector.cancel_order(_order_ref(order), reason),
        sent_field="cancellation_sent_at",
        error_field="cancellation_error",
    )
