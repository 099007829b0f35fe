"""Writes on listings for the inventory push: marking what needs a push, recording what was pushed.

A listing is marked (push_pending) whenever something that feeds its quantity, latency or price may
have changed; the push plan then sends only those whose values really differ from what was last
pushed. Recording a push clears the mark and, in the same transaction, re-marks any listing whose
stock changed while the push was in flight, so no change is ever lost between plan and record.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from django.db import connection, transaction
from django.db.models import Exists, OuterRef, Subquery
from django.utils import timezone

from channels import scheduling
from channels.history import listings_history_record
from channels.models import Channel, ChannelListing, OrderStatusMapping, ShippingMapping, SyncRun
from channels.selectors import PlannedPush, computing_cursor, listings_differing_sql
from inventory.models import StockItem

# Rows per UPDATE ... FROM (VALUES ...) statement.
BATCH = 5000


def _chunks(values: Sequence, size: int):
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _id_chunk_size() -> int:
    limit = connection.features.max_query_params
    return limit // 2 if limit else 1_000_000


def listings_mark_for_push(*, stock_item_ids: Iterable[int], price_changed: bool = False) -> set[int]:
    """Mark every listing of these stock items, on every channel, for a push; return the channels that
    sync inventory and hold such listings (the ones to schedule a push for).

    A price change marks the listings on every channel too: the push plan only sends a price where the
    channel's Price Change is on, and the others drop out of the plan unchanged.
    """
    ids = sorted(set(stock_item_ids))
    channel_ids: set[int] = set()
    if not ids:
        return channel_ids
    for chunk in _chunks(ids, _id_chunk_size()):
        linked = ChannelListing.objects.filter(stock_item_id__in=chunk, fulfilled_by_channel=False)
        linked.filter(push_pending=False).update(push_pending=True)
        channel_ids.update(
            Channel.objects.filter(
                enabled=True, inventory_sync=True, update_inventory=True,
                listings__stock_item_id__in=chunk, listings__fulfilled_by_channel=False,
            )
            .values_list("pk", flat=True)
            .distinct()
        )
    return channel_ids


def channel_listings_mark_all(*, channel_id: int) -> int:
    """The channel's rules or location mapping changed: every linked listing may get another number."""
    return ChannelListing.objects.filter(
        channel_id=channel_id, stock_item__isnull=False, fulfilled_by_channel=False, push_pending=False
    ).update(push_pending=True)


def _recheck(*, listing_ids: Sequence[int]) -> int:
    """Re-mark those of these listings whose computed values differ from what was last pushed.

    Runs after the statement that cleared their marks, in the same transaction: a stock change that
    committed before this statement is seen here, one that commits later marks the row after us.
    """
    table = ChannelListing._meta.db_table
    marked = 0
    by_channel: dict[int, list[int]] = {}
    for chunk in _chunks(sorted(listing_ids), _id_chunk_size()):
        for listing_id, channel_id in ChannelListing.objects.filter(pk__in=chunk).values_list("pk", "channel_id"):
            by_channel.setdefault(channel_id, []).append(listing_id)
    for channel_id, ids in sorted(by_channel.items()):
        # Batches keep the IN lists short enough for the planner to stay on the primary key.
        for chunk in _chunks(sorted(ids), min(BATCH, _id_chunk_size())):
            differing, params = listings_differing_sql(channel_id=channel_id, listing_ids=chunk)
            with computing_cursor() as cursor:
                cursor.execute(f"UPDATE {table} SET push_pending = %s WHERE id IN ({differing})", [True, *params])
                marked += cursor.rowcount
    return marked


@transaction.atomic
def listings_record_pushed(*, pushes: Sequence[PlannedPush], at: datetime) -> None:
    """The channel accepted these values: remember them, clear the mark and any previous error.

    One UPDATE ... FROM (VALUES ...) per batch of 5,000. A price of None (Price Change off) keeps the
    last pushed price.
    """
    if not pushes:
        return
    table = ChannelListing._meta.db_table
    ordered = sorted(pushes, key=lambda push: push.listing_id)
    for chunk in _chunks(ordered, BATCH):
        values = ", ".join(["(%s, %s, %s, %s, %s)"] * len(chunk))
        params = [
            value
            for push in chunk
            for value in (push.listing_id, push.quantity, push.latency_days, push.price, push.is_ended)
        ]
        with connection.cursor() as cursor:
            cursor.execute(
                f"WITH v(id, quantity, latency, price, ended) AS (VALUES {values}) "
                f"UPDATE {table} AS l SET last_pushed_quantity = CAST(v.quantity AS integer), "
                "last_pushed_latency = CAST(v.latency AS integer), "
                "last_pushed_price = COALESCE(CAST(v.price AS numeric), l.last_pushed_price), "
                "is_ended = CAST(v.ended AS boolean), last_pushed_at = %s, push_pending = %s, push_error = '' "
                "FROM v WHERE l.id = v.id",
                [*params, at, False],
            )
    _recheck(listing_ids=[push.listing_id for push in ordered])


def listings_record_rejected(*, rejected: Sequence[tuple[int, str]]) -> None:
    """The channel refused these listings: keep them marked so the next push tries again, and say why."""
    if not rejected:
        return
    table = ChannelListing._meta.db_table
    ordered = sorted(rejected)
    for chunk in _chunks(ordered, BATCH):
        values = ", ".join(["(%s, %s)"] * len(chunk))
        params = [value for listing_id, reason in chunk for value in (listing_id, reason)]
        with connection.cursor() as cursor:
            cursor.execute(
                f"WITH v(id, reason) AS (VALUES {values}) "
                f"UPDATE {table} AS l SET push_error = v.reason, push_pending = %s FROM v WHERE l.id = v.id",
                [*params, True],
            )


@transaction.atomic
def listings_pending_settle(*, channel_id: int) -> int:
    """Clear the marks of listings whose values turned out unchanged (a stock change at a location the
    channel does not count, a price change on a channel without Price Change), so later plans do not
    recompute them again and again. Returns how many stay marked."""
    table = ChannelListing._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET push_pending = %s WHERE channel_id = %s AND push_pending RETURNING id",
            [False, channel_id],
        )
        cleared = [row[0] for row in cursor.fetchall()]
    return _recheck(listing_ids=cleared) if cleared else 0


# --- The mapping screens and listing links (called by the admin) ------------------------------------


@transaction.atomic
def channel_location_mapping_save(*, channel_id: int, from_locations: bool, location_ids: Iterable[int]) -> None:
    """Location Mapping: which warehouses' stock the channel is sent. Turned off, every warehouse counts and
    the ticks are kept for the next time it is turned on."""
    channel = Channel.objects.select_for_update().get(pk=channel_id)
    if channel.update_inventory_from_locations != from_locations:
        channel.update_inventory_from_locations = from_locations
        # A plain save: the channels receivers mark every listing for a push when the rule changes.
        channel.save(update_fields=["update_inventory_from_locations", "updated_at"])
    if from_locations:
        channel.inventory_locations.set(sorted(set(location_ids)))


@transaction.atomic
def channel_status_mappings_save(*, channel_id: int, mapping: dict[str, str]) -> list[str]:
    """Order Status Mapping: the hub status for each channel status (seen on orders or offered by the
    connector). Statuses not stored yet are added; returns the statuses whose mapping changed."""
    OrderStatusMapping.objects.bulk_create(
        [OrderStatusMapping(channel_id=channel_id, channel_status=status) for status in mapping],
        ignore_conflicts=True,
    )
    changed = []
    for row in OrderStatusMapping.objects.select_for_update().filter(channel_id=channel_id, channel_status__in=mapping):
        if row.hub_status != mapping[row.channel_status]:
            row.hub_status = mapping[row.channel_status]
            row.save(update_fields=["hub_status"])
            changed.append(row.channel_status)
    return sorted(changed)


@transaction.atomic
def channel_shipping_mappings_save(*, channel_id: int, mapping: dict[str, int | None]) -> list[str]:
    """Shipping Mapping: the postal service for each shipping tag (None: unmapped). Returns the changed tags."""
    ShippingMapping.objects.bulk_create(
        [ShippingMapping(channel_id=channel_id, tag=tag) for tag in mapping], ignore_conflicts=True
    )
    changed = []
    for row in ShippingMapping.objects.select_for_update().filter(channel_id=channel_id, tag__in=mapping):
        if row.postal_service_id != mapping[row.tag]:
            row.postal_service_id = mapping[row.tag]
            row.save(update_fields=["postal_service"])
            changed.append(row.tag)
    return sorted(changed)


@transaction.atomic
def listings_link_by_sku(*, listing_ids: Iterable[int]) -> int:
    """Link each unlinked listing to the stock item with the same SKU; mark the newly linked ones for a push
    and schedule it on commit. Returns how many were linked."""
    same_sku = StockItem.objects.filter(sku=OuterRef("channel_sku"))
    linked_ids: list[int] = []
    for chunk in _chunks(sorted(set(listing_ids)), _id_chunk_size()):
        matching = ChannelListing.objects.filter(pk__in=chunk, stock_item__isnull=True).filter(Exists(same_sku))
        ids = list(matching.values_list("pk", flat=True))
        ChannelListing.objects.filter(pk__in=ids).update(stock_item_id=Subquery(same_sku.values("pk")[:1]))
        linked_ids += ids
    listings_history_record(listing_ids=linked_ids, reason="Linked by SKU")
    item_ids: set[int] = set()
    for chunk in _chunks(linked_ids, _id_chunk_size()):
        item_ids.update(ChannelListing.objects.filter(pk__in=chunk).values_list("stock_item_id", flat=True))
    channel_ids = listings_mark_for_push(stock_item_ids=item_ids)
    if channel_ids:
        transaction.on_commit(lambda: scheduling.inventory_push_schedule(channel_ids=sorted(channel_ids)))
    return len(linked_ids)


RUN_INTERRUPTED = (
    "Interrupted: the worker running it stopped before it finished. The next run picked up from where "
    "this one had got to."
)


def sync_runs_interrupted_close(*, channel_id: int, kind: str) -> int:
    """Close the channel's runs of this kind still marked running: their worker died mid-run.

    Called by a run that has just taken the channel's lock for this kind (or claimed its listing
    download), so no other run of that kind is going on and every "running" one is left over.
    """
    return SyncRun.objects.filter(channel_id=channel_id, kind=kind, status=SyncRun.Status.RUNNING).update(
        status=SyncRun.Status.FAILED, finished_at=timezone.now(), error=RUN_INTERRUPTED
    )
