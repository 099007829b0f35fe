"""Sync now, and the order download's pace: what the buttons and the order download task ask before they queue.

Staff's buttons (Download orders now, Push stock now, Push all stock, Download listings) queue the same tasks as
beat and the commands, refused with a reason while a run of that kind is going on for the channel.

Orders are polled at the kind's quota (`Connector.order_download_interval`, the beat row's default). For a while
after orders of the channel were placed or changed, each download queues a follow-up at the quota's own pace
(`Connector.order_download_quota_seconds`), one at a time, and the periodic download yields to a queued
follow-up: together they never ask more often than the quota sustains.
"""

from __future__ import annotations

import enum
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from channels import scheduling
from channels.dashboard import channel_listing_download_running
from channels.models import Channel, SyncRun
from orders.models import Order

# Follow-ups go on while an order of the channel was placed or changed this recently.
ACTIVE_WINDOW = timedelta(minutes=15)
# Orders changed lately were, nearly always, placed in the last weeks: bounding by placement keeps the activity
# check on the (channel, received_at) index however many orders the channel has.
ACTIVE_ORDERS_PLACED_WITHIN = timedelta(days=60)


class SyncNow(enum.Enum):
    """The sync-now buttons: the run each one starts."""

    ORDERS = "order download"
    PUSH = "stock push"
    LISTINGS = "listing download"


RUN_KINDS = {SyncNow.ORDERS: SyncRun.Kind.ORDERS, SyncNow.PUSH: SyncRun.Kind.INVENTORY}


def channel_run_running(*, channel_id: int, kind: str) -> SyncRun | None:
    """The channel's run of `kind` going on now, if any. A run still marked running but older than the tasks'
    hard time limit is not: its worker was killed, and the next run of its kind closes it."""
    alive_since = timezone.now() - timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT)
    return (
        SyncRun.objects.filter(channel_id=channel_id, kind=kind, status=SyncRun.Status.RUNNING,
                               started_at__gte=alive_since)
        .order_by("-started_at").first()
    )


def sync_now_refusal(*, channel: Channel, what: SyncNow) -> str:
    """Why the button may not start `what` for the channel now, in the seller's words; "" when it may."""
    if not channel.enabled:
        return "the channel is switched off; switch it on first"
    if what is SyncNow.PUSH and not channel.syncs_inventory:
        return "stock is not sent to this channel; switch on Inventory sync and Update inventory first"
    if what is SyncNow.LISTINGS:
        if channel_listing_download_running(channel=channel):
            return (f"a listing download is already running ({channel.listing_download_done} of "
                    f"{channel.listing_download_total} done)")
        return ""
    running = channel_run_running(channel_id=channel.pk, kind=RUN_KINDS[what])
    if running is not None:
        return f"the last {what.value} is still running (started {timezone.localtime(running.started_at):%H:%M:%S})"
    return ""


def orders_recently_active(*, channel_id: int) -> bool:
    """An order of the channel was placed or changed within ACTIVE_WINDOW (a download stored it, a webhook's
    hint brought it, staff processed it)."""
    now = timezone.now()
    return Order.objects.filter(
        channel_id=channel_id, received_at__gte=now - ACTIVE_ORDERS_PLACED_WITHIN, updated_at__gte=now - ACTIVE_WINDOW
    ).exists()


def orders_follow_up(*, channel_id: int) -> bool:
    """After an order download: while the channel is active, queue the next download at the quota's pace (one
    queued at a time). True when one was queued."""
    channel = Channel.objects.filter(pk=channel_id, enabled=True).first()
    if channel is None or not orders_recently_active(channel_id=channel_id):
        return False
    return scheduling.orders_follow_up_schedule(
        channel_id=channel_id, countdown=channel.connector_class.order_download_quota_seconds()
    )
