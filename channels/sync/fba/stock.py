"""FBA stock sync: the FBA location's levels set to Amazon's fulfillable quantities, through the stock ledger."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable

from channels.connectors.base import RecordError
from channels.fulfilment import fba_location_ensure, fba_sync_check
from channels.models import Channel, ChannelListing, SyncRun
from channels.sync.connections import channel_connector
from channels.sync.runs import channel_run
from config.batching import chunks
from inventory.models import StockItem, StockLevel, StockMovement
from inventory.services import stock_levels_set_bulk

logger = logging.getLogger(__name__)

SKU_CHUNK = 500


def _stock_items_by_sku(*, channel: Channel, skus: Iterable[str]) -> dict[str, int]:
    """Amazon SKU -> stock item: a listing's link beats a SKU match, and this channel's listing a sibling's."""
    siblings = list(channel.seller_channels().exclude(pk=channel.pk).values_list("pk", flat=True))
    found: dict[str, int] = {}
    for chunk in chunks(sorted(set(skus)), SKU_CHUNK):
        found.update(StockItem.objects.filter(sku__in=chunk).values_list("sku", "id"))
        for channel_ids in (siblings, [channel.pk]):
            found.update(
                ChannelListing.objects.filter(
                    channel_id__in=channel_ids, channel_sku__in=chunk, stock_item__isnull=False
                ).values_list("channel_sku", "stock_item_id")
            )
    return found



def fba_inventory_sync(*, channel_id: int) -> SyncRun:
    """Set the channel's FBA location to Amazon's fulfillable quantities (reason FBA sync in the ledger).

    A complete download: an item Amazon no longer reports holds nothing at Amazon. SKUs that match no
    stock item are the run's record errors. The run counts the levels changed as processed and those
    already right as skipped. Raises ValidationError when the channel may not sync (see fba_sync_check).
    """
    channel = Channel.objects.get(pk=channel_id)
    fba_sync_check(channel=channel)
    location = fba_location_ensure(channel=channel)
    with channel_run(channel=channel, kind=SyncRun.Kind.FBA) as tally:
        fulfillable: dict[str, int] = {}
        for page in channel_connector(channel=channel).fetch_fba_stock():
            tally.errors.extend(page.errors)
            fulfillable.update((stock.sku, stock.fulfillable) for stock in page.stock)
        item_by_sku = _stock_items_by_sku(channel=channel, skus=fulfillable)
        tally.errors.extend(
            RecordError(sku, f"no stock item has this SKU and no listing of {channel.name} links it to one")
            for sku in sorted(fulfillable) if sku not in item_by_sku
        )
        # Two SKUs of one stock item (e.g. new and used) are one stock level here.
        totals: dict[int, int] = defaultdict(int)
        for sku, quantity in fulfillable.items():
            if sku in item_by_sku:
                totals[item_by_sku[sku]] += quantity
        held = StockLevel.objects.filter(location=location, quantity__gt=0).values_list("stock_item_id", flat=True)
        for item_id in set(held) - totals.keys():
            totals[item_id] = 0
        rows = [(item_id, location.pk, quantity) for item_id, quantity in sorted(totals.items())]
        tally.processed = stock_levels_set_bulk(
            rows=rows, reason=StockMovement.Reason.FBA_SYNC, reference=f"FBA sync of {channel.name}"
        )
        tally.skipped = len(rows) - tally.processed
        logger.info("channels.fba.synced channel=%s skus=%s changed=%s unknown=%s",
                    channel.pk, len(fulfillable), tally.processed, len(tally.errors))
    return tally.run
