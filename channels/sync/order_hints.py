"""Orders by webhook: a channel's delivery is only a hint. It is checked without calling the channel (its
signature where the channel signs, its merchant, its topic), queued, and answered at once; the task then reads
the orders it names through the API and stores them as the download does (order_download.orders_store_page:
the same mapping, the same idempotent import, so a duplicate delivery changes nothing). The watermark is the
download's alone, and the periodic download stays as the safety net for any hint lost on the way.

Each channel's webhook path carries a token derived from SECRET_KEY and the channel's id: EKM does not sign its
deliveries, so the unguessable path is what keeps strangers from posting hints; nothing is stored for it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from contextlib import suppress

from django.conf import settings
from django.db import transaction
from django.urls import reverse
from django.utils.crypto import constant_time_compare, salted_hmac

from channels.connectors.base import WebhookHint, WebhookRefused
from channels.models import Channel, SyncRun
from channels.sync.connections import channel_connector
from channels.sync.order_download import orders_store_page
from channels.sync.runs import channel_run, reauthorisation_flagged

logger = logging.getLogger(__name__)

WEBHOOK_SALT = "stockline.channels.order-webhook"
WEBHOOK_URL_NAME = "channel-webhook"


def _token(channel_id: int, secret: str) -> str:
    return salted_hmac(WEBHOOK_SALT, str(channel_id), secret=secret, algorithm="sha256").hexdigest()[:32]


def channel_webhook_token(*, channel_id: int) -> str:
    """The unguessable part of the channel's webhook path."""
    return _token(channel_id, settings.SECRET_KEY)


def channel_webhook_token_matches(*, channel_id: int, token: str) -> bool:
    """Whether `token` is the channel's, under SECRET_KEY or one of SECRET_KEY_FALLBACKS: after a new key the
    channel's old subscription still delivers until `channel_webhooks_follow` points it at the new path."""
    secrets = [settings.SECRET_KEY, *settings.SECRET_KEY_FALLBACKS]
    return any(constant_time_compare(_token(channel_id, secret), token) for secret in secrets)


def channel_webhook_url(*, channel_id: int) -> str:
    """Where the channel sends its webhooks: under STOCKLINE_PUBLIC_URL (empty when it is not set)."""
    if not settings.STOCKLINE_PUBLIC_URL:
        return ""
    path = reverse(WEBHOOK_URL_NAME, kwargs={"channel_id": channel_id,
                                             "token": channel_webhook_token(channel_id=channel_id)})
    return settings.STOCKLINE_PUBLIC_URL + path


def order_hint_receive(*, channel_id: int, headers: Mapping[str, str], body: bytes) -> WebhookHint | None:
    """Check one delivery to the channel's webhook path; no call to the channel, so the answer is immediate.

    None: the channel is disabled, so there is nothing to read now (the download catches up once it is enabled
    again). Raises Channel.DoesNotExist, or WebhookRefused, which is recorded as a failed order run so staff see
    that something posts hints the hub will not act on.
    """
    channel = Channel.objects.get(pk=channel_id)
    if not channel.enabled:
        return None
    try:
        return channel_connector(channel=channel).webhook_hint(headers, body)
    except WebhookRefused as exc:
        logger.warning("channels.webhooks.refused channel=%s reason=%s", channel.pk, exc)
        # Recorded as the run policy records any failure: a failed run with the reason.
        with suppress(WebhookRefused), channel_run(channel=channel, kind=SyncRun.Kind.ORDERS, exclusive=False):
            raise
        raise


def order_hint_import(*, channel_id: int, order_ids: list[str]) -> SyncRun | None:
    """Read the hinted orders through the channel's API and store them as the download does; None when the
    channel is disabled. A failure to read them is raised (after its run is recorded) for the task to retry.

    Runs beside a download of the same channel without its lock: the import is idempotent under concurrency,
    and the orders are read before the transaction opens, so no row lock waits on the channel.
    """
    channel = Channel.objects.get(pk=channel_id)
    if not channel.enabled:
        return None
    with channel_run(channel=channel, kind=SyncRun.Kind.ORDERS, exclusive=False) as tally:
        page = channel_connector(channel=channel).order_get(order_ids)
        with transaction.atomic():
            outcome = orders_store_page(channel=channel, page=page)
            tally.processed += outcome.stored
            tally.skipped += outcome.skipped
            tally.errors.extend(outcome.errors)
    return tally.run


def channel_webhooks_follow(*, channel_id: int) -> str:
    """Make the channel's webhook subscriptions match the hub: subscribed to its webhook path while the channel
    is enabled and STOCKLINE_PUBLIC_URL is set, unsubscribed otherwise. Safe to repeat. Returns what was done.

    Channel errors are raised (a refused credential flags the channel for reauthorisation first).
    """
    channel = Channel.objects.get(pk=channel_id)
    connector = channel_connector(channel=channel)
    if not connector.receives_order_webhooks:
        return "this channel sends no order webhooks; its orders are downloaded"
    endpoint = channel_webhook_url(channel_id=channel.pk)
    with reauthorisation_flagged(channel_id=channel.pk):
        if channel.enabled and endpoint:
            subscriptions = connector.webhooks_subscribe(endpoint)
            logger.info("channels.webhooks.subscribed channel=%s subscriptions=%s", channel.pk, len(subscriptions))
            return f"order webhooks subscribed ({len(subscriptions)} subscriptions)"
        connector.webhooks_unsubscribe()
    logger.info("channels.webhooks.unsubscribed channel=%s", channel.pk)
    why = "the channel is disabled" if not channel.enabled else "STOCKLINE_PUBLIC_URL is not set"
    return f"order webhooks unsubscribed: {why}"
