"""Celery entry points. Thin: they take ids, hold the channel's lock and call one service.

Names start with the queue they are routed to (orders_, inventory_, listings_, despatch_), see
CELERY_TASK_ROUTES. All run with acks_late, so a task whose worker dies is delivered again; each
service is safe to run twice.
"""

from __future__ import annotations

import functools
import logging

from celery import shared_task
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import InterfaceError, OperationalError

from channels.connections import ListingDownloadRunning, listings_download
from channels.connectors.base import ChannelAuthError, ChannelRateLimited, ChannelTransientError
from channels.fba import fba_inventory_sync, fba_outbound_follow, fba_outbound_submit
from channels.locks import channel_lock
from channels.models import Channel
from channels.scheduling import PUSH_QUEUED_KEY
from channels.sync import (
    inventory_push,
    order_cancellation_confirm,
    order_despatch_confirm,
    orders_download,
)

logger = logging.getLogger(__name__)

RETRY = {
    "bind": True,
    # A database that went away for a moment (failover, restart) is retried like a channel's 5xx.
    "autoretry_for": (ChannelTransientError, OperationalError, InterfaceError),
    "retry_backoff": 5,
    "retry_backoff_max": 600,
    "retry_jitter": True,
    "max_retries": 10,
}
# A push that finds another running for its channel tries again this soon, so no change waits long.
BUSY_RETRY_SECONDS = 2


def rate_limited_retry(body):
    """Retry the task when the channel says to slow down, after the wait the channel asked for.

    The retry is raised from outside the task's body, so outside any lock the body took: a retry run
    inline must never wait on the lock its own attempt still holds.
    """

    @functools.wraps(body)
    def task(self, *args, **kwargs):
        try:
            return body(self, *args, **kwargs)
        except ChannelRateLimited as exc:
            raise self.retry(exc=exc, countdown=max(1.0, exc.retry_after), max_retries=50) from exc

    return task


@shared_task(**RETRY)
@rate_limited_retry
def orders_download_task(self, channel_id: int) -> str:
    try:
        with channel_lock(channel_id=channel_id, purpose="orders", owner=self.request.id or "") as held:
            if not held:
                return "another order download is running for this channel"
            run = orders_download(channel_id=channel_id)
    except Channel.DoesNotExist:
        return "channel deleted"
    return run.status if run else "channel disabled"


@shared_task(**RETRY)
@rate_limited_retry
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
@rate_limited_retry
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
@rate_limited_retry
def despatch_confirm_task(self, order_id: int) -> str:
    return order_despatch_confirm(order_id=order_id)


@shared_task(**RETRY)
@rate_limited_retry
def despatch_cancel_task(self, order_id: int, reason: str = "") -> str:
    return order_cancellation_confirm(order_id=order_id, reason=reason or "Cancelled by the seller")


@shared_task(**RETRY)
@rate_limited_retry
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
@rate_limited_retry
def despatch_fba_submit_task(self, order_id: int) -> str:
    return fba_outbound_submit(order_id=order_id)


@shared_task(**RETRY)
@rate_limited_retry
def despatch_fba_outbound_task(self, channel_id: int) -> str:
    try:
        with channel_lock(channel_id=channel_id, purpose="fba-outbound") as held:
            if not held:
                return "another FBA fulfilment check is running for this channel"
            return fba_outbound_follow(channel_id=channel_id)
    except Channel.DoesNotExist:
        return "channel deleted"
