"""Reads for the staff's screens: the latest runs per channel, the sync dashboard and its chart.

Every read here is one set-based query whatever the number of channels or rows, so the Channel
Integration list and the dashboard stay fast with a real catalogue.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.db.models import Count, F, OuterRef, Q, QuerySet, Subquery, Sum, Window
from django.db.models.functions import RowNumber, TruncDate
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from channels.models import (
    STALE_DOWNLOAD_AFTER,
    Channel,
    ChannelListing,
    ChannelPushMark,
    ListingPushMark,
    OrderStatusMapping,
    SyncRun,
)
from inventory.models import StockLevel
from orders.models import Order
from orders.selectors import orders_channel_not_told_by_channel

CHART_DAYS = 30
# The statuses that mean a run left something for staff to look at.
RUN_PROBLEMS = (SyncRun.Status.FAILED, SyncRun.Status.PARTIAL)
LAST_RUN_FIELDS = ("status", "started_at", "processed", "failed")
# How long before a rotating client secret expires the dashboard starts saying so.
SECRET_WARNING_DAYS = 14


def _latest_run(kind: str, field: str) -> Subquery:
    latest = SyncRun.objects.filter(channel=OuterRef("pk"), kind=kind).order_by("-started_at", "-id")
    return Subquery(latest.values(field)[:1])


def channels_with_last_runs(queryset: QuerySet[Channel]) -> QuerySet[Channel]:
    """Each channel with its latest order download and inventory push as `last_<kind>_<field>`,
    from correlated subqueries on the (channel, kind, -started_at) index: one query for the list."""
    annotations = {
        f"last_{kind}_{field}": _latest_run(kind, field)
        for kind in (SyncRun.Kind.ORDERS, SyncRun.Kind.INVENTORY)
        for field in LAST_RUN_FIELDS
    }
    return queryset.annotate(**annotations)


def channel_health(channel: Channel) -> tuple[str, str]:
    """(state, words) for the health badge; the channel must come from `channels_with_last_runs`."""
    if channel.needs_reauthorisation:
        return "reauthorise", "needs reauthorisation"
    if channel.last_orders_status in RUN_PROBLEMS or channel.last_inventory_status in RUN_PROBLEMS:
        return "errors", "errors in last run"
    if not channel.enabled:
        return "disabled", "disabled"
    return "ok", "ok"


def client_secret_warning(channel: Channel, *, now=None) -> str:
    """What staff must do about a client secret the channel expires (Amazon LWA: 180 days); empty: nothing."""
    lifetime = channel.connector_class.client_secret_lifetime_days
    if not lifetime or not channel.credentials.get("client_secret"):
        return ""
    if channel.client_secret_replaced_at is None:
        return (f"When the client secret was issued is not recorded: it expires {lifetime} days after issue. "
                "Enter the current one again on the channel's page to start the count.")
    now = now or timezone.now()
    expires = channel.client_secret_replaced_at + timedelta(days=lifetime)
    days_left = (expires - now).days
    if days_left > SECRET_WARNING_DAYS:
        return ""
    when = timezone.localtime(expires).strftime("%d %b %Y")
    if expires <= now:
        return f"The client secret expired on {when}: generate a new one and enter it on the channel's page."
    return (f"The client secret expires on {when} ({days_left} day{'s' if days_left != 1 else ''}): generate "
            "a new one and enter it on the channel's page before then.")


@dataclass(frozen=True)
class ChannelSummary:
    channel: Channel
    health: tuple[str, str]
    listings: int
    unlinked: int
    pending_push: int
    push_errors: int
    open_orders: int
    recent_runs: list[SyncRun]
    secret_warning: str = ""
    # Orders whose despatch or cancellation the channel refused, or never heard of.
    orders_not_told: int = 0


@dataclass(frozen=True)
class DayPoint:
    day: date
    orders: int
    pushed: int


def dashboard_channels(*, runs_per_channel: int = 5) -> list[ChannelSummary]:
    """Per channel: health, listing counts, open orders and its latest runs (five queries in all)."""
    open_statuses = list(Order.OPEN_STATUSES)
    channels = list(
        channels_with_last_runs(Channel.objects.all()).order_by("name")
    )
    listing_counts = {
        row["channel_id"]: row
        for row in ChannelListing.objects.values("channel_id").annotate(
            total=Count("pk"),
            unlinked=Count("pk", filter=Q(stock_item__isnull=True)),
            errors=Count("pk", filter=Q(push_state__isnull=False) & ~Q(push_state__push_error="")),
        )
    }
    not_told = orders_channel_not_told_by_channel()
    waiting_push = listings_waiting_count()
    open_orders = dict(
        Order.objects.filter(status__in=open_statuses).values("channel_id").annotate(n=Count("pk"))
        .values_list("channel_id", "n")
    )
    # The latest few runs of every channel in one query: rank within the channel, keep the top ones.
    runs: dict[int, list[SyncRun]] = {}
    recent = (
        SyncRun.objects.filter(started_at__gte=timezone.now() - timedelta(days=CHART_DAYS))
        .annotate(rank=Window(RowNumber(), partition_by=F("channel_id"), order_by=[F("started_at").desc(),
                                                                                   F("id").desc()]))
        .filter(rank__lte=runs_per_channel)
        .only("channel_id", "kind", "status", "started_at", "processed", "failed", "skipped")
        .order_by("channel_id", "rank")
    )
    for run in recent:
        runs.setdefault(run.channel_id, []).append(run)
    return [
        ChannelSummary(
            channel=channel,
            health=channel_health(channel),
            listings=listing_counts.get(channel.pk, {}).get("total", 0),
            unlinked=listing_counts.get(channel.pk, {}).get("unlinked", 0),
            pending_push=waiting_push.get(channel.pk, 0),
            push_errors=listing_counts.get(channel.pk, {}).get("errors", 0),
            open_orders=open_orders.get(channel.pk, 0),
            orders_not_told=not_told.get(channel.pk, 0),
            recent_runs=runs.get(channel.pk, []),
            secret_warning=client_secret_warning(channel),
        )
        for channel in channels
    ]


def runs_needing_attention(*, limit: int = 20) -> QuerySet[SyncRun]:
    """Failed or partial runs of the last 30 days, newest first."""
    since = timezone.now() - timedelta(days=CHART_DAYS)
    return (
        SyncRun.objects.filter(status__in=RUN_PROBLEMS, started_at__gte=since)
        .select_related("channel").order_by("-started_at", "-id")[:limit]
    )


def oversold_levels(*, limit: int = 20) -> QuerySet[StockLevel]:
    """Stock levels where open orders hold more than is on the shelf (available < 0)."""
    return (
        StockLevel.objects.alias(available_qty=F("quantity") - F("in_open_orders"))
        .filter(available_qty__lt=0)
        .annotate(available_now=F("quantity") - F("in_open_orders"))
        .select_related("stock_item", "location")
        .order_by("available_now", "pk")[:limit]
    )


def activity_by_day(*, days: int = CHART_DAYS) -> list[DayPoint]:
    """Orders downloaded and listing quantities pushed per day over the last `days` days, the days being the
    staff's (TIME_ZONE): TruncDate cuts in the current time zone, so the first day starts at its midnight."""
    first = timezone.localdate() - timedelta(days=days - 1)
    since = timezone.make_aware(datetime.combine(first, time.min))
    orders = dict(
        Order.objects.filter(created_at__gte=since).annotate(day=TruncDate("created_at"))
        .values("day").annotate(n=Count("pk")).values_list("day", "n")
    )
    pushed = dict(
        SyncRun.objects.filter(kind=SyncRun.Kind.INVENTORY, started_at__gte=since)
        .annotate(day=TruncDate("started_at")).values("day").annotate(n=Sum("processed")).values_list("day", "n")
    )
    return [
        DayPoint(day=day, orders=orders.get(day, 0), pushed=pushed.get(day, 0) or 0)
        for day in (first + timedelta(days=n) for n in range(days))
    ]


def activity_chart_svg(points: list[DayPoint], *, width: int = 720, height: int = 180) -> str:
    """A bar chart as inline SVG: orders (left bar) and quantities pushed (right bar) per day,
    each series scaled to its own maximum so a busy push day does not flatten the orders."""
    pad_left, pad_bottom, pad_top = 8, 22, 10
    plot_height = height - pad_bottom - pad_top
    slot = (width - pad_left) / max(len(points), 1)
    bar = max(slot / 2 - 1, 1)
    top_orders = max((p.orders for p in points), default=0) or 1
    top_pushed = max((p.pushed for p in points), default=0) or 1
    bars, labels = [], []
    for index, point in enumerate(points):
        x = pad_left + index * slot
        for offset, value, top, css in ((0, point.orders, top_orders, "orders"), (bar, point.pushed, top_pushed,
                                                                                  "pushed")):
            h = round(plot_height * value / top, 1)
            bars.append((css, round(x + offset, 1), round(pad_top + plot_height - h, 1), round(bar, 1), h,
                         f"{point.day:%d %b}: {value} {'orders' if css == 'orders' else 'quantities pushed'}"))
        if index == len(points) - 1:
            # Anchored at its end so the last day's label stays inside the chart.
            labels.append((round(x + 2 * bar, 1), height - 6, "end", f"{point.day:%d %b}"))
        elif index % 5 == 0 and index < len(points) - 3:
            labels.append((round(x, 1), height - 6, "start", f"{point.day:%d %b}"))
    return format_html(
        '<svg class="activity-chart" role="img" aria-label="Orders downloaded and quantities pushed per day" '
        'width="{}" height="{}" viewBox="0 0 {} {}">{}{}</svg>',
        width, height, width, height,
        format_html_join(
            "", '<rect class="{}" x="{}" y="{}" width="{}" height="{}"><title>{}</title></rect>', bars
        ),
        format_html_join("", '<text x="{}" y="{}" text-anchor="{}">{}</text>', labels),
    )


def activity_totals(points: list[DayPoint]) -> tuple[int, int]:
    """(orders downloaded, quantities pushed) over the chart's days, for the figures beside it."""
    return sum(point.orders for point in points), sum(point.pushed for point in points)


@dataclass(frozen=True)
class ListingDownloadProgress:
    running: bool
    # Asked for (the Download listings button) and not yet claimed by a worker: the new run, at 0 %.
    starting: bool
    done: int
    total: int
    percent: int
    started_at: datetime | None
    estimated_completion: datetime | None
    completed_at: datetime | None


def channel_listing_download_running(*, channel: Channel) -> bool:
    """Flagged as running and claimed lately: a flag older than STALE_DOWNLOAD_AFTER is one a dead download
    left behind, and the next download may start."""
    started = channel.listing_download_started_at
    return channel.listing_download_in_progress and bool(started) and (
        timezone.now() - started < STALE_DOWNLOAD_AFTER
    )


def channel_listing_download_starting(*, channel: Channel) -> bool:
    """Asked for since the last download completed, and no worker has claimed it yet: the click stamps the start
    time without the in-progress flag, which the claim sets. One asked for longer ago than STALE_DOWNLOAD_AFTER
    never started (its task was lost), and the bar shows the last download again."""
    started, completed = channel.listing_download_started_at, channel.listing_download_completed_at
    return (
        not channel.listing_download_in_progress and started is not None
        and (completed is None or started > completed) and timezone.now() - started < STALE_DOWNLOAD_AFTER
    )


def channel_listing_download_progress(*, channel: Channel) -> ListingDownloadProgress:
    """How far the channel's listing download is: while it runs, the share of pages done; asked for and not yet
    started, 0; after, 100% once one has completed."""
    running = channel_listing_download_running(channel=channel)
    starting = not running and channel_listing_download_starting(channel=channel)
    done, total = channel.listing_download_done, channel.listing_download_total
    if running:
        percent = min(100, done * 100 // total) if total else 0
    elif starting:
        percent = 0
    else:
        percent = 100 if channel.listing_download_completed_at else 0
    return ListingDownloadProgress(
        running=running, starting=starting, done=done, total=total, percent=percent,
        started_at=channel.listing_download_started_at,
        estimated_completion=channel.listing_download_estimated_completion,
        completed_at=channel.listing_download_completed_at,
    )


def listing_download_channels(*, channel_id: int | None) -> QuerySet[Channel]:
    """The channels whose download the listing list shows: the one it is filtered to, else those downloading."""
    shown = Q(pk=channel_id) if channel_id is not None else Q(listing_download_in_progress=True)
    return Channel.objects.filter(shown).order_by("name")


@dataclass(frozen=True)
class MappingCounts:
    total: int
    unmapped: int


def channel_location_names(*, channel: Channel) -> list[str] | None:
    """The locations whose stock the channel is sent, by name; None when every warehouse counts."""
    if not channel.update_inventory_from_locations:
        return None
    return list(channel.inventory_locations.order_by("name").values_list("name", flat=True))


def channel_status_mapping_counts(*, channel: Channel) -> MappingCounts:
    """The channel's order statuses seen or offered, and how many are still Unmapped."""
    counts = channel.status_mappings.aggregate(
        total=Count("pk"), unmapped=Count("pk", filter=Q(hub_status=OrderStatusMapping.UNMAPPED)),
    )
    return MappingCounts(**counts)


def channel_shipping_mapping_counts(*, channel: Channel) -> MappingCounts:
    """The channel's shipping tags seen, and how many have no postal service yet."""
    counts = channel.shipping_mappings.aggregate(
        total=Count("pk"), unmapped=Count("pk", filter=Q(postal_service__isnull=True)),
    )
    return MappingCounts(**counts)


def listings_waiting_count(*, channel_ids: Iterable[int] | None = None) -> dict[int, int]:
    """How many listings wait for a push, per channel id (channels with none left out): a channel marked as
    a whole counts every linked merchant listing; otherwise its marks. Two grouped queries."""
    whole = set(ChannelPushMark.objects.values_list("channel_id", flat=True))
    marks = ListingPushMark.objects.all()
    linked = ChannelListing.objects.filter(channel_id__in=whole, stock_item__isnull=False, fulfilled_by_channel=False)
    if channel_ids is not None:
        ids = set(channel_ids)
        marks, whole = marks.filter(channel_id__in=ids), whole & ids
        linked = linked.filter(channel_id__in=ids)
    counts = dict(marks.values("channel_id").annotate(n=Count("pk")).values_list("channel_id", "n"))
    if whole:
        counts.update(linked.values("channel_id").annotate(n=Count("pk")).values_list("channel_id", "n"))
    return counts
