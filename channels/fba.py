"""Amazon FBA: the FBA location, FBA stock sync, and multi-channel fulfilment from FBA stock.

- Turning FBA on for an Amazon channel gives it an external fulfilment centre, linked to the channel by a
  FulfilmentLocation (`fba_location_ensure`, called by channel_create and channel_settings_update);
  turning it off keeps the location and its history, and its stock is no longer read.
- Unified accounts: Amazon channels with the same seller id share one FBA pool. The channel with FBA
  Sync Inventory on controls it: only that channel reads Amazon's stock, and the AFN orders of every
  channel of the seller are allocated to its FBA location.
- `fba_inventory_sync` sets the FBA location's levels to Amazon's fulfillable quantities, through the
  stock ledger.
- An order of any channel reallocated to an FBA location (`orders.services.order_reallocate`, which tells
  channels.fulfilment) is queued as a FulfilmentOrder and sent to Amazon as a multi-channel fulfilment order
  (`fba_outbound_submit`); `fba_outbound_track` follows
  it and, once Amazon ships it, processes the order with Amazon's tracking number, so that the order's
  own channel is sent the despatch confirmation.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from channels.connections import channel_connector
from channels.connectors.amazon.mapper import marketplace_currency
from channels.connectors.base import (
    ChannelAuthError,
    ChannelError,
    ChannelRateLimited,
    ChannelRejected,
    ChannelTransientError,
    Connector,
    ExternalAddress,
    FulfilmentLine,
    FulfilmentRequest,
    FulfilmentState,
    RecordError,
)
from channels.connectors.values import chunks
from channels.locks import order_lock
from channels.models import Channel, ChannelListing, FulfilmentLocation, FulfilmentOrder, SyncRun
from channels.services import sync_runs_interrupted_close
from channels.sync import channel_flag_reauthorisation, run_finish
from inventory.models import Location, StockItem, StockLevel, StockMovement
from inventory.services import stock_levels_set_bulk
from orders.models import Order, PostalService
from orders.services import order_process

logger = logging.getLogger(__name__)

SKU_CHUNK = 500
# Amazon's fulfilment order status -> where the hub shows the order stands.
Status = FulfilmentOrder.Status
OUTBOUND_STATUS = {
    "RECEIVED": Status.RECEIVED,
    "PLANNING": Status.PLANNING,
    "PROCESSING": Status.PROCESSING,
    "COMPLETE": Status.COMPLETE,
    "COMPLETE_PARTIALLED": Status.COMPLETE,
    "UNFULFILLABLE": Status.UNFULFILLABLE,
    "CANCELLED": Status.CANCELLED,
    "INVALID": Status.REFUSED,
}
UNIFIED_ACCOUNT_RULE = (
    "Amazon channels with the same seller id share one FBA stock pool (a unified account): tick FBA Sync "
    "Inventory on the one channel that controls the FBA location; the others' FBA orders are allocated there."
)


# --- Selectors -----------------------------------------------------------------------------------


def _seller_channels(*, channel: Channel):
    """The Amazon channels of the same seller account, this one included."""
    if not channel.seller_id:
        return Channel.objects.filter(pk=channel.pk)
    return Channel.objects.filter(kind=channel.kind, seller_id=channel.seller_id)


def fba_sync_conflicts(*, channel: Channel) -> list[str]:
    """The other channels of the seller that also have FBA Sync Inventory on (there must be none)."""
    if not channel.connector_class.has_fulfilment_network or not channel.fba_sync_inventory or not channel.seller_id:
        return []
    others = _seller_channels(channel=channel).filter(fba_sync_inventory=True).exclude(pk=channel.pk)
    return list(others.order_by("name").values_list("name", flat=True))


def fba_controller(*, channel: Channel) -> Channel | None:
    """The channel that controls the seller's FBA pool: the one with FBA enabled and FBA Sync Inventory on."""
    if not channel.connector_class.has_fulfilment_network:
        return None
    if channel.fba_enabled and channel.fba_sync_inventory:
        return channel
    return (
        _seller_channels(channel=channel).filter(fba_enabled=True, fba_sync_inventory=True)
        .exclude(pk=channel.pk).order_by("pk").first()
    )


def fba_location_for_afn_orders(*, channel: Channel) -> int | None:
    """Where a channel's AFN orders are allocated: the controlling channel's FBA location, else its own."""
    for candidate in (fba_controller(channel=channel), channel):
        if candidate is not None:
            location_id = (
                FulfilmentLocation.objects.filter(channel=candidate).values_list("location_id", flat=True).first()
            )
            if location_id is not None:
                return location_id
    return None


def _stock_items_by_sku(*, channel: Channel, skus: Iterable[str]) -> dict[str, int]:
    """Amazon SKU -> stock item: a listing's link beats a SKU match, and this channel's listing a sibling's."""
    siblings = list(_seller_channels(channel=channel).exclude(pk=channel.pk).values_list("pk", flat=True))
    found: dict[str, int] = {}
    for chunk in chunks(sorted(set(skus)), SKU_CHUNK):
        found.update(StockItem.objects.filter(sku__in=chunk).values_list("sku", "id"))
        for channel_ids in (siblings, [channel.pk]):
            found.update(
                ChannelListing.objects.filter(
                    channel_id__in=channel_ids, channel_sku__in=chunk, stock_item__isnull=False
                ).values_list("channel_sku", "stock_item_id")
            )
    return found


def _amazon_skus(*, channel: Channel, stock_item_ids: Iterable[int]) -> dict[int, str]:
    """Stock item -> the seller SKU Amazon stores it under: an FBA listing's SKU before a merchant one's."""
    listings = ChannelListing.objects.filter(
        channel__in=_seller_channels(channel=channel), stock_item_id__in=set(stock_item_ids)
    ).order_by("fulfilled_by_channel", "pk")
    # Later rows win: FBA listings come last.
    return dict(listings.values_list("stock_item_id", "channel_sku"))


# --- The FBA location ----------------------------------------------------------------------------


@transaction.atomic
def fba_location_ensure(*, channel: Channel) -> Location | None:
    """The channel's FBA location, created the first time FBA is on. Idempotent; never deletes one."""
    if not channel.connector_class.has_fulfilment_network or not channel.fba_enabled or channel.pk is None:
        return None
    # Serialises two saves of the channel, so they cannot both create a location.
    Channel.objects.select_for_update().filter(pk=channel.pk).values_list("pk", flat=True).first()
    existing = FulfilmentLocation.objects.filter(channel=channel).select_related("location").first()
    if existing is not None:
        return existing.location
    name = f"FBA – {channel.name}"[:100]
    if Location.objects.filter(name=name).exists():
        name = f"{name[:88]} ({channel.pk})"
    location = Location.objects.create(name=name, kind=Location.Kind.EXTERNAL)
    FulfilmentLocation.objects.create(channel=channel, location=location)
    logger.info("channels.fba.location_created channel=%s location=%s", channel.pk, location.pk)
    return location


# --- FBA stock sync ------------------------------------------------------------------------------


def fba_sync_check(*, channel: Channel) -> None:
    """Raise a ValidationError saying why this channel may not read Amazon's FBA stock, if it may not."""
    if not channel.connector_class.has_fulfilment_network:
        raise ValidationError(f"{channel.name} is a {channel.connector_class.label} channel: it has no FBA stock.")
    if not (channel.enabled and channel.fba_enabled and channel.fba_sync_inventory):
        raise ValidationError(
            f"FBA sync is off for {channel.name}: it needs Enabled, FBA enabled and FBA sync inventory ticked."
        )
    conflicts = fba_sync_conflicts(channel=channel)
    if conflicts:
        raise ValidationError(
            f"{channel.name} and {', '.join(conflicts)} both have FBA Sync Inventory on for seller "
            f"{channel.seller_id}. {UNIFIED_ACCOUNT_RULE}"
        )


def fba_inventory_sync(*, channel_id: int) -> SyncRun:
    """Set the channel's FBA location to Amazon's fulfillable quantities (reason FBA sync in the ledger).

    A complete download: an item Amazon no longer reports holds nothing at Amazon. SKUs that match no
    stock item are the run's record errors. The run counts the levels changed as processed and those
    already right as skipped. Raises ValidationError when the channel may not sync (see fba_sync_check).
    """
    channel = Channel.objects.get(pk=channel_id)
    fba_sync_check(channel=channel)
    location = fba_location_ensure(channel=channel)
    sync_runs_interrupted_close(channel_id=channel.pk, kind=SyncRun.Kind.FBA)
    run = SyncRun.objects.create(channel=channel, kind=SyncRun.Kind.FBA)
    fulfillable: dict[str, int] = {}
    errors: list[RecordError] = []
    try:
        for page in channel_connector(channel=channel).fetch_fba_stock():
            errors.extend(page.errors)
            fulfillable.update((stock.sku, stock.fulfillable) for stock in page.stock)
    except ChannelError as exc:
        if isinstance(exc, ChannelAuthError):
            channel_flag_reauthorisation(channel_id=channel.pk, reason=str(exc))
        run_finish(run, processed=0, skipped=0, errors=errors, error=f"{type(exc).__name__}: {exc}")
        raise
    item_by_sku = _stock_items_by_sku(channel=channel, skus=fulfillable)
    errors.extend(
        RecordError(sku, f"no stock item has this SKU and no listing of {channel.name} links it to one")
        for sku in sorted(fulfillable) if sku not in item_by_sku
    )
    # Two SKUs of one stock item (e.g. new and used) are one stock level here.
    totals: dict[int, int] = defaultdict(int)
    for sku, quantity in fulfillable.items():
        if sku in item_by_sku:
            totals[item_by_sku[sku]] += quantity
    held = StockLevel.objects.filter(location=location, quantity__gt=0).values_list("stock_item_id", flat=True)
    for item_id in set(held) - totals.keys():
        totals[item_id] = 0
    rows = [(item_id, location.pk, quantity) for item_id, quantity in sorted(totals.items())]
    changed = stock_levels_set_bulk(
        rows=rows, reason=StockMovement.Reason.FBA_SYNC, reference=f"FBA sync of {channel.name}"
    )
    logger.info("channels.fba.synced channel=%s skus=%s changed=%s unknown=%s",
                channel.pk, len(fulfillable), changed, len(errors))
    return run_finish(run, processed=changed, skipped=len(rows) - changed, errors=errors)


# --- Multi-channel fulfilment --------------------------------------------------------------------


def _shipping_speed(order: Order) -> str:
    """Amazon's speed category closest to the service the buyer chose; Standard unless it says otherwise."""
    service = f"{order.channel_shipping_tag} {order.postal_service.name if order.postal_service else ''}".lower()
    if "priority" in service or "next day" in service:
        return "Priority"
    if "expedited" in service or "express" in service:
        return "Expedited"
    return "Standard"


def _fba_currency(channel: Channel) -> str:
    return marketplace_currency(channel.marketplace_id) or channel.currency


def fulfilment_request_build(*, order: Order, channel: Channel) -> FulfilmentRequest:
    """The fulfilment order Amazon is sent for this order, through the FBA location's channel."""
    currency = order.currency
    if channel.fba_convert_currency and currency != _fba_currency(channel):
        # The seed's one-to-one conversion: the value is kept and only the currency code changes, so FBA
        # accepts an order priced in another marketplace's currency.
        currency = _fba_currency(channel)
    items = list(order.items.select_related("stock_item"))
    amazon_sku = _amazon_skus(channel=channel, stock_item_ids=[i.stock_item_id for i in items if i.stock_item_id])
    lines = tuple(
        FulfilmentLine(
            line_id=str(item.pk),
            sku=amazon_sku.get(item.stock_item_id) or (item.stock_item.sku if item.stock_item else item.channel_sku),
            quantity=item.quantity,
            unit_value=item.unit_price,
            currency=currency,
        )
        for item in items
    )
    return FulfilmentRequest(
        fulfilment_order_id=order.fulfilment_order.fulfilment_order_id,
        displayable_order_id=order.channel_order_id,
        ordered_at=order.received_at,
        comment=f"Thank you for your order from {order.channel.name}.",
        shipping_speed=_shipping_speed(order),
        address=ExternalAddress(
            name=order.ship_name or order.buyer_name, line1=order.ship_line1, line2=order.ship_line2,
            city=order.ship_city, region=order.ship_region, postcode=order.ship_postcode,
            country=order.ship_country, phone=order.ship_phone,
        ),
        lines=lines,
    )


def _already_with_amazon(connector: Connector, fulfilment_order_id: str) -> bool:
    """Whether Amazon has this fulfilment order: a retried submission whose first answer was lost."""
    try:
        connector.fulfilment_order(fulfilment_order_id)
    except ChannelError:
        return False
    return True


def _refusal(*, order: Order, channel: Channel, reason: str) -> str:
    fba_currency = _fba_currency(channel)
    if order.currency != fba_currency and not channel.fba_convert_currency:
        reason += (
            f" The order is in {order.currency} and {channel.name} fulfils in {fba_currency}: tick FBA Convert "
            f"Currency on {channel.name} to send its prices in {fba_currency}, then reallocate it to FBA again."
        )
    return reason


def _outbound_save(sent: FulfilmentOrder, **changes) -> None:
    for name, value in changes.items():
        setattr(sent, name, value)
    sent.save(update_fields=[*changes, "updated_at"])


def _outbound_update(order_id: int, *, sending: bool = True, **changes) -> int:
    """Write Amazon's answer; with `sending`, only if the order is still being sent (another delivery of the
    same submission may have recorded it already)."""
    rows = FulfilmentOrder.objects.filter(order_id=order_id)
    if sending:
        rows = rows.filter(status=Status.SENDING)
    return rows.update(**changes, updated_at=timezone.now())


def _outbound_requeue(order_id: int, *, error: str) -> None:
    # Retried by its own task or by the next follow.
    _outbound_update(order_id, status=Status.QUEUED, error=error)


def _outbound_claim(*, order_id: int) -> tuple[Order, Channel, FulfilmentRequest] | str:
    """Mark the queued order as being sent and build what Amazon is sent, under its row lock for this moment
    only. Returns the order, the FBA location's channel and the request, or why nothing is sent."""
    with transaction.atomic():
        order = (
            Order.objects.select_for_update(of=("self",))
            .select_related("channel", "postal_service", "fulfilment_location__fulfilment__channel")
            .filter(pk=order_id).first()
        )
        sent = FulfilmentOrder.objects.filter(order_id=order_id).first()
        # Being sent already: by a worker that died mid-call, since the caller holds the order's "fba-submit"
        # lock. Sent again: Amazon keeps one fulfilment order per id.
        sendable = (Status.QUEUED, Status.SENDING)
        if order is None or sent is None or sent.status not in sendable or not order.is_open:
            return "nothing to send"
        location = order.fulfilment_location
        link = getattr(location, "fulfilment", None) if location is not None else None
        channel = link.channel if link is not None else None
        if channel is None:
            _outbound_save(sent, error="The order is not at an FBA location of an Amazon channel.")
            return "not at an FBA location"
        if not (channel.enabled and channel.fba_enabled):
            _outbound_save(sent, error=f"FBA is off on {channel.name}: turn it on, or reallocate the order to a "
                                       "warehouse.")
            return "FBA is off"
        request = fulfilment_request_build(order=order, channel=channel)
        _outbound_update(order.pk, sending=False, status=Status.SENDING)
    return order, channel, request


def fba_outbound_submit(*, order_id: int) -> str:
    """Send an order queued for FBA to Amazon as a fulfilment order. Safe to repeat: sent once. Callers hold
    the order's "fba-submit" lock (the task and fba_outbound_follow do).

    The order is claimed (status "being sent") in a short transaction and Amazon is asked with no lock held;
    meanwhile the order cannot be cancelled, moved or processed here. Amazon's answer is recorded after, in
    another. Amazon's refusal is kept on the order; a transient failure queues it again and is raised for
    the task to retry.
    """
    claimed = _outbound_claim(order_id=order_id)
    if isinstance(claimed, str):
        return claimed
    order, channel, request = claimed
    connector = channel_connector(channel=channel)
    try:
        connector.create_fulfilment_order(request)
    except ChannelAuthError as exc:
        channel_flag_reauthorisation(channel_id=channel.pk, reason=str(exc))
        _outbound_requeue(order.pk, error=str(exc))
        return "needs reauthorisation"
    except ChannelRejected as exc:
        if not _already_with_amazon(connector, request.fulfilment_order_id):
            _outbound_update(order.pk, status=Status.REFUSED,
                             error=_refusal(order=order, channel=channel, reason=str(exc)))
            logger.info("channels.fba.outbound_refused order=%s", order.pk)
            return "refused"
    except (ChannelRateLimited, ChannelTransientError) as exc:
        _outbound_requeue(order.pk, error=f"Will retry: {exc}")
        raise
    except ChannelError as exc:
        _outbound_requeue(order.pk, error=str(exc))
        return "failed"
    # Conditional: another delivery of this submission may have recorded Amazon's answer already.
    _outbound_update(order.pk, status=Status.RECEIVED, error="")
    logger.info("channels.fba.outbound_sent order=%s fulfilment_order=%s", order.pk, request.fulfilment_order_id)
    return "sent"


@transaction.atomic
def fba_outbound_record(*, order_id: int, state: FulfilmentState) -> str:
    """Keep Amazon's news of a fulfilment order. Once Amazon has shipped it, process the order with
    Amazon's tracking number: its own channel is then sent the despatch confirmation."""
    order = Order.objects.select_for_update(of=("self",)).filter(pk=order_id).first()
    sent = FulfilmentOrder.objects.filter(order_id=order_id).first()
    if order is None or sent is None or sent.status not in FulfilmentOrder.WITH_AMAZON:
        return "nothing to record"
    status = OUTBOUND_STATUS[state.status]
    if status != Status.COMPLETE:
        error = ""
        if status not in FulfilmentOrder.WITH_AMAZON:
            error = (f"Amazon reports the fulfilment order {state.status.lower()}: reallocate the order to a "
                     "warehouse, or to FBA again to resend it.")
        if (status, error) != (sent.status, sent.error):
            _outbound_save(sent, status=status, error=error)
        return status
    package = state.packages[0] if state.packages else None
    tracking = package.tracking_number[:100] if package else ""
    if not order.is_open:
        _outbound_save(sent, status=status, error=(
            f"Amazon shipped it (tracking {tracking or 'none'}) after the order was "
            f"{order.get_status_display().lower()} here."))
        return "shipped after the order closed"
    _outbound_save(sent, status=status, error="")
    postal = None
    if package and package.carrier:
        postal = PostalService.objects.filter(
            Q(carrier_code__iexact=package.carrier) | Q(name__iexact=package.carrier)
        ).order_by("pk").first()
    # Amazon has shipped it: the stock leaves whatever the order's own channel will accept of the despatch.
    order_process(order_id=order.pk, tracking_number=tracking, postal_service_id=postal.pk if postal else None,
                  check_despatch=False)
    logger.info("channels.fba.outbound_shipped order=%s", order.pk)
    return "shipped"


def fba_outbound_track(*, order_id: int) -> str:
    """Ask Amazon where an order it holds stands, and record it. Transient failures are raised."""
    sent = (
        FulfilmentOrder.objects.select_related("order__fulfilment_location__fulfilment__channel")
        .filter(order_id=order_id).first()
    )
    if sent is None or sent.status not in FulfilmentOrder.WITH_AMAZON:
        return "nothing to track"
    order = sent.order
    channel = order.fulfilment_location.fulfilment.channel
    try:
        state = channel_connector(channel=channel).fulfilment_order(sent.fulfilment_order_id)
    except (ChannelRateLimited, ChannelTransientError):
        raise
    except ChannelError as exc:
        if isinstance(exc, ChannelAuthError):
            channel_flag_reauthorisation(channel_id=channel.pk, reason=str(exc))
        _outbound_update(order.pk, sending=False, error=str(exc))
        return "failed"
    return fba_outbound_record(order_id=order.pk, state=state)


def fba_outbound_follow(*, channel_id: int) -> str:
    """Send the orders queued for this channel's FBA locations and follow those Amazon holds.

    One call per order: Amazon answers for one fulfilment order at a time. Stops at the first
    transient failure (raised), since the channel is then unlikely to answer for the rest.
    """
    channel = Channel.objects.get(pk=channel_id)
    if not (channel.enabled and channel.fba_enabled):
        return "FBA is off"
    at_fba = FulfilmentOrder.objects.filter(order__fulfilment_location__fulfilment__channel=channel)
    # Being sent too: if its lock is free, the worker sending it died before Amazon answered.
    queued = list(
        at_fba.filter(status__in=(Status.QUEUED, Status.SENDING), order__status__in=Order.OPEN_STATUSES)
        .order_by("order_id").values_list("order_id", flat=True)
    )
    held = list(
        at_fba.filter(status__in=FulfilmentOrder.WITH_AMAZON).order_by("order_id").values_list("order_id", flat=True)
    )
    outcomes = []
    for order_id in queued:
        # The lock its submission task takes: one worker asks Amazon for an order at a time.
        with order_lock(order_id=order_id, purpose="fba-submit") as mine:
            outcomes.append(fba_outbound_submit(order_id=order_id) if mine else "another worker is sending it")
    outcomes += [fba_outbound_track(order_id=order_id) for order_id in held]
    return f"{len(queued)} sent, {len(held)} followed, {outcomes.count('shipped')} shipped"
