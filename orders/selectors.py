"""Reads of orders for the staff's screens: line counts for the order list, and what each channel was told."""

from __future__ import annotations

from django.db.models import Count, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce

from orders.models import Order, OrderItem


def orders_with_item_counts(orders: QuerySet[Order]) -> QuerySet[Order]:
    """The orders with `items_total`, their number of lines."""
    # A correlated count rather than a GROUP BY: PostgreSQL evaluates it for the page's rows only.
    lines = OrderItem.objects.filter(order=OuterRef("pk")).order_by().values("order").annotate(n=Count("pk"))
    return orders.annotate(items_total=Coalesce(Subquery(lines.values("n")), 0))


def order_channel_told(*, order: Order) -> tuple[str, str]:
    """(state, words) of what the channel was told of the order: "failed" with the channel's refusal,
    "confirmed", "pending" when a despatch is still to be sent, or "none"."""
    if order.despatch_error or order.cancellation_error:
        return "failed", order.despatch_error or order.cancellation_error
    if order.despatch_sent_at:
        return "confirmed", "despatch confirmed"
    if order.cancellation_sent_at:
        return "confirmed", "cancellation confirmed"
    if order.status == Order.Status.PROCESSED and order.channel.mark_as_despatched and not order.fulfilled_by_channel:
        return "pending", "despatch pending"
    return "none", "—"
