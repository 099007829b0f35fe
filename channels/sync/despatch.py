"""Despatch and cancellation: telling an order's channel it has shipped (with tracking) or ended.

Each is safe to repeat (sent once, the time kept on the order) and records one despatch run. What the channel
heard is kept on the order (`channel_told`): told, or refused with the channel's words for staff to fix and
retry (orders.services.order_channel_retell asks for this same flow again); a transient failure stays
"telling", its message kept, and is raised for the task to retry.
"""

from __future__ import annotations

from collections.abc import Callable

from django.utils import timezone

from channels.connectors.base import (
    ChannelError,
    ChannelRateLimited,
    ChannelRejected,
    ChannelTransientError,
    OrderLineRef,
    OrderRef,
    Shipment,
)
from channels.models import OrderStatusMapping, ShippingMapping, SyncRun
from channels.order_checks import channel_sends_tracking
from channels.sync.connections import channel_connector
from channels.sync.runs import channel_run
from orders.models import Order


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


def _told(order: Order, state: str, **fields) -> None:
    Order.objects.filter(pk=order.pk).update(channel_told=state, channel_told_at=timezone.now(), **fields)


def _confirm(*, order: Order, send: Callable[[], None], sent_field: str, error_field: str) -> str:
    with channel_run(channel=order.channel, kind=SyncRun.Kind.DESPATCH, exclusive=False) as tally:
        try:
            send()
        except (ChannelRateLimited, ChannelTransientError) as exc:
            # Still telling while the task retries; the order is listed as not told meanwhile, with why.
            Order.objects.filter(pk=order.pk).update(**{error_field: f"Will retry: {exc}"})
            raise
        except ChannelError as exc:
            tally.refused(order.channel_order_id, exc)
            _told(order, Order.ChannelTold.REFUSED, **{error_field: str(exc)})
            return "failed"
        _told(order, Order.ChannelTold.TOLD, **{sent_field: timezone.now(), error_field: ""})
        tally.processed = 1
    return "sent"


def order_despatch_confirm(*, order_id: int) -> str:
    """Tell the order's channel it has shipped, with tracking. Safe to repeat: sent once."""
    order = Order.objects.select_related("channel", "postal_service").filter(pk=order_id).first()
    if order is None or order.status != Order.Status.PROCESSED or order.despatch_sent_at:
        return "nothing to send"
    channel = order.channel
    if order.fulfilled_by_channel or not channel.enabled or not channel.mark_as_despatched:
        # Switched off since the order was processed: nothing is on its way any more.
        _told(order, Order.ChannelTold.NOT_NEEDED)
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
        _told(order, Order.ChannelTold.NOT_NEEDED)
        return "not sent: cancellation notes are off"
    connector = channel_connector(channel=channel)
    return _confirm(
        order=order,
        send=lambda: connector.cancel_order(_order_ref(order), reason),
        sent_field="cancellation_sent_at",
        error_field="cancellation_error",
    )
