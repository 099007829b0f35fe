"""Reads of orders for the staff's screens (line counts for the order list, what each channel was told) and for the
order download (which orders it holds as the channel last changed them)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta

from django.db.models import Count, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from orders.channel_checks import cancellation_notice, despatch_notice
from orders.models import Order, OrderItem

# A despatch still being told this long after it was asked for was lost on the way (its task never ran).
TELLING_STUCK_AFTER = timedelta(hours=1)


def orders_with_item_counts(orders: QuerySet[Order]) -> QuerySet[Order]:
    """The orders with `items_total`, their number of lines."""
    # A correlated count rather than a GROUP BY: PostgreSQL evaluates it for the page's rows only.
    lines = OrderItem.objects.filter(order=OuterRef("pk")).order_by().values("order").annotate(n=Count("pk"))
    return orders.annotate(items_total=Coalesce(Subquery(lines.values("n")), 0))


def _telling_stuck(order: Order) -> bool:
    return bool(order.despatch_error or order.cancellation_error) or (
        order.channel_told_at is not None and order.channel_told_at < timezone.now() - TELLING_STUCK_AFTER
    )


def order_channel_not_told(order: Order) -> bool:
    """Whether the channel should have heard of this order's despatch or cancellation and has not: it refused,
    a try failed, or the message was lost. Such an order may be retried (orders.services.order_channel_retell)."""
    told = order.channel_told
    return told == Order.ChannelTold.REFUSED or (told == Order.ChannelTold.TELLING and _telling_stuck(order))


def orders_channel_not_told(orders: QuerySet[Order] | None = None) -> QuerySet[Order]:
    """The orders of `order_channel_not_told`, in one query."""
    orders = Order.objects.all() if orders is None else orders
    stuck = ~Q(despatch_error="") | ~Q(cancellation_error="") | Q(
        channel_told_at__lt=timezone.now() - TELLING_STUCK_AFTER)
    return orders.filter(Q(channel_told=Order.ChannelTold.REFUSED) | Q(channel_told=Order.ChannelTold.TELLING) & stuck)


def orders_channel_not_told_count() -> int:
    """How many orders' channels were not told of their despatch or cancellation (refused, failed or lost)."""
    return orders_channel_not_told().count()


def orders_channel_not_told_by_channel() -> dict[int, int]:
    """`orders_channel_not_told_count` per channel id, in one query (channels with none are left out)."""
    rows = orders_channel_not_told().order_by().values_list("channel_id").annotate(n=Count("pk"))
    return dict(rows)


def order_channel_told(*, order: Order) -> tuple[str, str]:
    """(state, words) of what the channel heard of the order, naming the channel as the seller knows it:
    "told", "telling" (on its way), "not told" (refused, failed or lost: to retry) or "none"."""
    if order.is_open:
        return "none", "—"
    processed = order.status == Order.Status.PROCESSED
    notice = (despatch_notice if processed else cancellation_notice)(order=order)
    error = order.despatch_error if processed else order.cancellation_error
    told = order.channel_told
    if told == Order.ChannelTold.TOLD:
        return "told", f"{notice.channel} told"
    if told == Order.ChannelTold.REFUSED:
        return "not told", f"{notice.channel} refused: {error}"
    if told == Order.ChannelTold.TELLING:
        if error:
            # The error says the task will try again ("Will retry: HTTP 503 ...").
            return "not told", f"telling {notice.channel}… {error}"
        if _telling_stuck(order):
            return "not told", f"{notice.channel} not told: the message was lost on the way"
        return "telling", f"telling {notice.channel}…"
    return "none", "not needed"


def _numbers(numbers: list[str], *, shown: int = 20) -> str:
    more = f" and {len(numbers) - shown} more" if len(numbers) > shown else ""
    return ("Order " if len(numbers) == 1 else "Orders ") + ", ".join(numbers[:shown]) + more


def orders_channel_told_report(*, order_ids: Iterable[int], done: str) -> list[tuple[str, str]]:
    """One (state, message) per outcome of orders just processed or cancelled, naming what their channel heard,
    e.g. ("told", "Orders 1001, 1002 processed; Rakuten told."), read in one query."""
    groups: dict[tuple[str, str], list[str]] = {}
    orders = Order.objects.filter(pk__in=list(order_ids)).select_related("channel").order_by("channel_order_id")
    for order in orders:
        state, words = order_channel_told(order=order)
        if state == "none":
            notice = (despatch_notice if order.status == Order.Status.PROCESSED else cancellation_notice)(
                order=order)
            words = f"{notice.channel} not told: {notice.why_not}" if notice.why_not else "the channel is not told"
        groups.setdefault((state, words), []).append(order.channel_order_id)
    return [(state, f"{_numbers(numbers)} {done}; {words}" + ("" if words.endswith((".", "…")) else "."))
            for (state, words), numbers in groups.items()]


def orders_held_as_changed(*, channel_id: int, changes: Mapping[str, tuple[datetime, str]]) -> set[str]:
    """The channel's orders among `changes` (channel order id -> the channel's change time and status) that are
    stored with that change time and status already: read again, they would bring nothing new. One query."""
    if not changes:
        return set()
    stored = Order.objects.filter(channel_id=channel_id, channel_order_id__in=list(changes)).values_list(
        "channel_order_id", "channel_updated_at", "channel_status"
    )
    return {order_id for order_id, updated_at, status in stored if changes[order_id] == (updated_at, status)}
