"""History rows for changes made in bulk, which bypass save() and so django-simple-history's signals.

The user comes from the request (HistoryRequestMiddleware) when there is one; a sync task has none.
"""

from __future__ import annotations

from collections.abc import Iterable

from channels.models import ChannelListing

# Rows loaded and written per statement.
HISTORY_BATCH = 2000


def listings_history_record(*, listing_ids: Iterable[int], reason: str) -> int:
    """Record the current link and overrides of these listings as a change, with the reason staff will read."""
    ids = sorted(set(listing_ids))
    for start in range(0, len(ids), HISTORY_BATCH):
        listings = list(ChannelListing.objects.filter(pk__in=ids[start : start + HISTORY_BATCH]))
        ChannelListing.history.bulk_history_create(listings, update=True, default_change_reason=reason)
    return len(ids)
