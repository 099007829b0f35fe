"""Listing download: every listing of the channel, page by page, upserted by SKU and linked to the stock
item with the same SKU, with the progress shown on the channel row."""

from __future__ import annotations

import logging

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from channels.connectors.base import ExternalListing
from channels.models import STALE_DOWNLOAD_AFTER, Channel, ChannelListing, SyncRun
from channels.services import listings_link_downloaded
from channels.sync.connections import channel_connector
from channels.sync.runs import channel_run

logger = logging.getLogger(__name__)

LISTING_UPDATE_FIELDS = [
    "title", "external_id", "is_active", "fulfilled_by_channel", "channel_quantity", "channel_price", "downloaded_at",
]


class ListingDownloadRunning(Exception):
    """A listing download for this channel is already under way."""


def _download_free(now) -> Q:
    return (
        Q(listing_download_in_progress=False)
        | Q(listing_download_started_at__isnull=True)
        | Q(listing_download_started_at__lt=now - STALE_DOWNLOAD_AFTER)
    )


def listings_download_asked(*, channel_id: int) -> None:
    """The Download listings button was pressed: the bar shows the new download starting at once, not the last
    one's 100 %, until a worker claims it. The start is stamped without the in-progress flag (the claim sets it);
    the last completion time stays until then. A download running keeps its row."""
    now = timezone.now()
    Channel.objects.filter(_download_free(now), pk=channel_id).update(
        listing_download_started_at=now, listing_download_estimated_completion=None,
        listing_download_done=0, listing_download_total=0,
    )


def _download_claim(*, channel_id: int) -> bool:
    """Set the in-progress flag unless another download holds it; one conditional UPDATE, so only one wins."""
    now = timezone.now()
    return bool(Channel.objects.filter(_download_free(now), pk=channel_id).update(
        listing_download_in_progress=True,
        listing_download_started_at=now,
        listing_download_completed_at=None,
        listing_download_estimated_completion=None,
        listing_download_done=0,
        listing_download_total=0,
    ))


def listings_store_page(*, channel_id: int, listings: tuple[ExternalListing, ...]) -> int:
    """Upsert one page by (channel, SKU) and link the unlinked to the stock item with the same SKU (marked for
    a push, the channel's push scheduled on commit).

    Staff's settings on a listing (its stock item, overrides, push state) are never overwritten.
    Returns how many listings the page held.
    """
    now = timezone.now()
    # One row per SKU: PostgreSQL refuses to update the same row twice in one statement.
    by_sku = {listing.channel_sku[:100]: listing for listing in listings if listing.channel_sku.strip()}
    rows = [
        ChannelListing(
            channel_id=channel_id,
            channel_sku=sku,
            external_id=listing.external_id[:100],
            title=listing.title[:255],
            is_active=listing.is_active,
            fulfilled_by_channel=listing.fulfilled_by_channel,
            channel_quantity=listing.quantity,
            channel_price=listing.price,
            downloaded_at=now,
        )
        for sku, listing in by_sku.items()
    ]
    with transaction.atomic():
        ChannelListing.objects.bulk_create(
            rows, update_conflicts=True, unique_fields=["channel", "channel_sku"], update_fields=LISTING_UPDATE_FIELDS,
        )
        listings_link_downloaded(channel_id=channel_id, channel_skus=by_sku)
    return len(rows)


def _progress(*, channel_id: int, started, done: int, total: int) -> None:
    now = timezone.now()
    # Linear: if `done` of `total` took this long, the rest takes proportionally as long.
    estimate = started + (now - started) * (total / done) if done and total else None
    Channel.objects.filter(pk=channel_id).update(
        listing_download_done=done, listing_download_total=max(total, done),
        listing_download_estimated_completion=estimate,
    )


def listings_download(*, channel_id: int) -> SyncRun:
    """Download every listing of the channel, upsert and link them, with progress on the channel row.

    Raises ListingDownloadRunning when another download holds the channel, and re-raises any failure
    after recording it in the SyncRun (a task retries on transient errors).
    """
    channel = Channel.objects.get(pk=channel_id)
    if not _download_claim(channel_id=channel_id):
        raise ListingDownloadRunning(f"A listing download for {channel.name} is already running.")
    try:
        with channel_run(channel=channel, kind=SyncRun.Kind.LISTINGS) as tally:
            connector = channel_connector(channel=channel)
            for page in connector.fetch_listings():
                tally.processed += listings_store_page(channel_id=channel_id, listings=page.listings)
                tally.errors.extend(page.errors)
                _progress(channel_id=channel_id, started=tally.run.started_at, done=page.done, total=page.total)
            # A listing the complete download did not see is gone from the channel.
            ChannelListing.objects.filter(
                channel_id=channel_id, downloaded_at__lt=tally.run.started_at, is_active=True
            ).update(is_active=False)
    finally:
        Channel.objects.filter(pk=channel_id).update(
            listing_download_in_progress=False, listing_download_completed_at=timezone.now(),
        )
    logger.info(
        "channels.listings.downloaded channel=%s listings=%s errors=%s", channel_id, tally.processed, len(tally.errors)
    )
    return tally.run
