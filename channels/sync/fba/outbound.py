"""Multi-channel fulfilment: an order of any channel reallocated to an FBA location is sent to Amazon as a
fulfilment order (`fba_outbound_submit`); `fba_outbound_track` follows it and, once Amazon ships it,
processes the order with Amazon's tracking number, so that the order's own channel is sent the despatch
confirmation. `fba_outbound_follow` does both for every order of a channel's FBA locations (the beat task).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

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
)
from channels.models import Channel, ChannelListing, FulfilmentOrder
from channels.sync.connections import channel_connector
from channels.sync.locks import order_lock
from channels.sync.runs import reauthorisation_flagged
from orders.models import Order, PostalService
from orders.services import order_process

logger = logging.getLogger(__name__)

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


def _amazon_skus(*, channel: Channel, stock_item_ids: Iterable[int]) -> dict[int, str]:
    """Stock item -> the seller SKU Amazon stores it under: an FBA listing's SKU before a merchant one's."""
    listings = ChannelListing.objects.filter(
        channel__in=channel.seller_channels(), stock_item_id__in=set(stock_item_ids)
    ).order_by("fulfilled_by_channel", "pk")
    # Later rows win: FBA listings come last.
    return dict(listings.values_list("stock_item_id", "channel_sku"))



def _shipping_speed(order: Order) -> str:
    """Amazon's speed category closest to the service the buyer chose; Standard unless it says otherwise."""
    service = f"{order.channel_shipping_tag} {order.postal_service.name if order.postal_service else ''}".lower()
    if "priority" in service or "next day" in service:
        return "Priority"
    if "expedited" in service or "express" in service:
        return "Expedited"
    return "Standard"


def _fba_currency(channel: Channel) -> str:
    return channel.connector_class.fulfilment_currency(channel.marketplace_id) or channel.currency


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
        with reauthorisation_flagged(channel_id=channel.pk):
            connector.create_fulfilment_order(request)
    except ChannelAuthError as exc:
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
        with reauthorisation_flagged(channel_id=channel.pk):
            state = channel_connector(channel=channel).fulfilment_order(sent.fulfilment_order_id)
    except (ChannelRateLimited, ChannelTransientError):
        raise
    except ChannelError as exc:
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
