"""Celery entry points. Thin: they take ids, hold the channel's lock and call one service.

Names start with the queue they are routed to (orders_, inventory_, listings_, despatch_), see
CELERY_TASK_ROUTES. All run with acks_late, so a task whose worker dies is delivered again; each
service is safe to run twice, and each task that may outlast the broker's visibility timeout holds a
lock, so a second delivery never runs alongside the first (see CELERY_BROKER_TRANSPORT_OPTIONS).
"""

from __future__ import annotations

import functools
import logging

from celery import shared_task
from celery.signals import worker_ready
from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import InterfaceError, OperationalError

from channels.connectors.base import ChannelAuthError, ChannelRateLimited, ChannelTransientError
from channels.models import Channel, SyncRun
from channels.scheduling import PUSH_QUEUED_KEY, orders_follow_up_clear, orders_follow_up_pending
from channels.services import channel_rules_changed
from channels.sync.despatch import order_cancellation_confirm, order_despatch_confirm
from channels.sync.fba.outbound import fba_outbound_follow, fba_outbound_submit
from channels.sync.fba.stock import fba_inventory_sync
from channels.sync.inventory_push import inventory_push
from channels.sync.listings_download import ListingDownloadRunning, listings_download
from channels.sync.locks import LOCK_TTL, LockHeldByItself, channel_lock, order_lock
from channels.sync.now import orders_follow_up
from channels.sync.order_download import orders_download
from channels.sync.order_hints import channel_webhooks_follow, order_hint_import

logger = logging.getLogger(__name__)

RETRY = {
    "bind": True,
    # A database that went away for a moment (failover, restart) is retried like a channel's 5xx.
    "autoretry_for": (ChannelTransientError, OperationalError, InterfaceError),
    "retry_backoff": 5,
    # No countdown may outlast the broker's visibility timeout (see TASK_COUNTDOWN_MAX), so it takes more
    # retries to cover an outage of 45 minutes, as ten backing off to 600 s did.
    "retry_backoff_max": settings.TASK_COUNTDOWN_MAX,
    "retry_jitter": True,
    "max_retries": 90,
}
# A push that finds another running for its channel tries again this soon, so no change waits long.
BUSY_RETRY_SECONDS = 2


def retry_outside_locks(body):
    """Retry the task when the channel says to slow down, after the wait it asked for (at most
    TASK_COUNTDOWN_MAX: an early retry meets the rate limiter again), and when another delivery of this
    same task holds its lock: that one still runs, or died less than LOCK_TTL ago, so this copy waits its
    turn in the queue rather than vanish with the message a dead holder would have needed.

    The retry is raised from outside the task's body, so outside any lock the body took: a retry run
    inline must never wait on the lock its own attempt still holds.
    """

    @functools.wraps(body)
    def task(self, *args, **kwargs):
        try:
            return body(self, *args, **kwargs)
        except ChannelRateLimited as exc:
            countdown = min(max(1.0, exc.retry_after), settings.TASK_COUNTDOWN_MAX)
            raise self.retry(exc=exc, countdown=countdown, max_retries=50) from exc
        except LockHeldByItself as exc:
            # Within the task's retries: a holder runs for the hard time limit at most, 20 of these.
            raise self.retry(exc=exc, countdown=LOCK_TTL) from exc

    return task


@shared_task(**RETRY)
@retry_outside_locks
def orders_download_task(self, channel_id: int, follow_up: bool = False, paced: bool = True) -> str:
    """`paced` (beat): yields to a follow-up queued after activity, which comes at the quota's own pace; staff's
    Download orders now and a retry, which carries on the same download, do not. `follow_up`: that follow-up
    (sync.now.orders_follow_up)."""
    if follow_up:
        orders_follow_up_clear(channel_id=channel_id)
    elif paced and not self.request.retries and orders_follow_up_pending(channel_id=channel_id):
        return "skipped: a follow-up download is queued at the channel's quota"
    try:
        with channel_lock(channel_id=channel_id, purpose="orders", owner=self.request.id or "") as held:
            if not held:
                return "another order download is running for this channel"
            run = orders_download(channel_id=channel_id)
    except Channel.DoesNotExist:
        return "channel deleted"
    if run is None:
        return "channel disabled"
    orders_follow_up(channel_id=channel_id)
    return run.status


@shared_task(**RETRY)
@retry_outside_locks
def inventory_push_task(self, channel_id: int, full: bool = False) -> str:
    # Changes from now on must queue a new push: this one may already have read its quantities.
    cache.delete(PUSH_QUEUED_KEY.format(channel_id=channel_id))
    try:
        with channel_lock(channel_id=channel_id, purpose="push", owner=self.request.id or "") as held:
            run = inventory_push(channel_id=channel_id, full=full) if held else None
    except Channel.DoesNotExist:
        return "channel deleted"
    if not held:
        # Another push for this channel is running; it may have planned before our change, so go again soon.
        raise self.retry(countdown=BUSY_RETRY_SECONDS, max_retries=None)
    return run.status if run else "inventory sync off"


@shared_task(**RETRY)
def inventory_rules_changed_task(self, channel_id: int) -> str:
    """A channel's rules or location mapping changed, and the change committed: mark every listing of the
    channel and queue its push. Marking twice is harmless, so a second delivery needs no lock."""
    return f"{channel_rules_changed(channel_id=channel_id)} listing(s) marked"


@shared_task(**RETRY)
@retry_outside_locks
def listings_download_task(self, channel_id: int) -> str:
    if not Channel.objects.filter(pk=channel_id, enabled=True).exists():
        return "channel disabled or deleted"
    try:
        run = listings_download(channel_id=channel_id)
    except ListingDownloadRunning:
        return "a listing download is already running for this channel"
    except ChannelAuthError:
        # Recorded on the run and the channel is flagged; retrying cannot help until the seller reauthorises.
        return "needs reauthorisation"
    return run.status


@shared_task(**RETRY)
@retry_outside_locks
def despatch_confirm_task(self, order_id: int) -> str:
    with order_lock(order_id=order_id, purpose="despatch", owner=self.request.id or "") as held:
        return order_despatch_confirm(order_id=order_id) if held else "another worker is sending it"


@shared_task(**RETRY)
@retry_outside_locks
def despatch_cancel_task(self, order_id: int, reason: str = "") -> str:
    with order_lock(order_id=order_id, purpose="cancellation", owner=self.request.id or "") as held:
        if not held:
            return "another worker is sending it"
        return order_cancellation_confirm(order_id=order_id, reason=reason or "Cancelled by the seller")


@shared_task(**RETRY)
@retry_outside_locks
def inventory_fba_sync_task(self, channel_id: int) -> str:
    try:
        with channel_lock(channel_id=channel_id, purpose="fba") as held:
            if not held:
                return "another FBA sync is running for this channel"
            run = fba_inventory_sync(channel_id=channel_id)
    except Channel.DoesNotExist:
        return "channel deleted"
    except ValidationError as exc:
        return " ".join(exc.messages)
    except ChannelAuthError:
        return "needs reauthorisation"
    return run.status


@shared_task(**RETRY)
@retry_outside_locks
def despatch_fba_submit_task(self, order_id: int) -> str:
    with order_lock(order_id=order_id, purpose="fba-submit", owner=self.request.id or "") as held:
        return fba_outbound_submit(order_id=order_id) if held else "another worker is sending it"


@shared_task(**RETRY)
@retry_outside_locks
def despatch_fba_outbound_task(self, channel_id: int) -> str:
    try:
        with channel_lock(channel_id=channel_id, purpose="fba-outbound") as held:
            if not held:
                return "another FBA fulfilment check is running for this channel"
            return fba_outbound_follow(channel_id=channel_id)
    except Channel.DoesNotExist:
        return "channel deleted"


@worker_ready.connect(dispatch_uid="channels-interrupted-runs-resume")
def interrupted_runs_resume(**kwargs) -> None:
    """A worker starting queues again the order downloads and pushes still marked running: their worker died.

    The embedded broker (no Redis) loses the message of a task whose whole worker was killed, so without this
    the channel would wait for its next beat. On Redis the message comes back by itself; this copy then finds
    the work done or the lock taken, and returns.
    """
    running = SyncRun.objects.filter(status=SyncRun.Status.RUNNING, channel__enabled=True)
    for kind, task in ((SyncRun.Kind.ORDERS, orders_download_task), (SyncRun.Kind.INVENTORY, inventory_push_task)):
        for channel_id in sorted(set(running.filter(kind=kind).values_list("channel_id", flat=True))):
            task.delay(channel_id)


@shared_task(**RETRY)
@retry_outside_locks
def orders_hint_task(self, channel_id: int, order_ids: list[str]) -> str:
    """Read and store the orders a webhook named. A channel down or throttling is retried (RETRY), so no hint
    is dropped; one that never gets through is still found by the periodic download."""
    try:
        run = order_hint_import(channel_id=channel_id, order_ids=order_ids)
    except Channel.DoesNotExist:
        return "channel deleted"
    except ChannelAuthError:
        # Recorded on the run and the channel is flagged; the download finds the order once reauthorised.
        return "needs reauthorisation"
    return run.status if run else "channel disabled"


@shared_task(**RETRY)
@retry_outside_locks
def channel_webhooks_follow_task(self, channel_id: int) -> str:
    """Subscribe or unsubscribe the channel's order webhooks after it was created, enabled, disabled or given
    new credentials."""
    try:
        return channel_webhooks_follow(channel_id=channel_id)
    except Channel.DoesNotExist:
        return "channel deleted"
    except ChannelAuthError:
        return "needs reauthorisation"
