"""Order download: every order the channel changed since Last Order Sync, page by page, then the watermark.

Each page is read for its mapping context once, mapped order by order (order_mapping), and imported in one
transaction (orders.services.order_import: idempotent, reserving stock). A bad order is that order's error
in the run; the rest of the page is stored. A channel that reads each order's details with a call of its own
(EKM's items) leaves out, before that call, the orders stored already as the channel last changed them: every
download re-reads the last minutes (`order_overlap`).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.core.exceptions import ValidationError
from django.db import DataError, IntegrityError, transaction
from django.utils import timezone

from channels.connectors.base import ExternalOrder, OrderChange, OrderPage, RecordError, WatermarkPolicy
from channels.fulfilment import fba_location_for_afn_orders
from channels.models import NEVER_SYNCED, Channel, ChannelListing, OrderStatusMapping, ShippingMapping, SyncRun
from channels.sync.connections import channel_connector
from channels.sync.order_mapping import (
    MAX_IDENTIFIER,
    MAX_TAG,
    MappingContext,
    OrderSkipped,
    OrderUnreadable,
    order_data_from_external,
)
from channels.sync.runs import channel_run
from channels.sync.text import is_storable, storable_text
from inventory.models import Location, StockItem
from orders.selectors import orders_held_as_changed
from orders.services import ImportResult, OrderData, order_import

logger = logging.getLogger(__name__)

# How far back the downloads keep asking again for an order the channel sent unreadable.
UNREADABLE_RETRY_WINDOW = timedelta(hours=24)


@dataclass
class PageOutcome:
    stored: int = 0
    skipped: int = 0
    errors: list[RecordError] = field(default_factory=list)
    oldest_imported: datetime | None = None
    latest_order: datetime | None = None
    unreadable: int = 0


def _mapping_context(*, channel: Channel, orders: Iterable[ExternalOrder]) -> MappingContext:
    orders = list(orders)
    # A status or tag too long for its mapping column is that order's error (order_data_from_external),
    # not a failed insert of every mapping on the page.
    # So is one the database cannot store at all.
    statuses = {o.channel_status for o in orders if 0 < len(o.channel_status) <= MAX_IDENTIFIER
                and is_storable(o.channel_status)}
    tags = {o.shipping_tag for o in orders if 0 < len(o.shipping_tag) <= MAX_TAG and is_storable(o.shipping_tag)}
    skus = {item.sku for o in orders for item in o.items if is_storable(item.sku)}
    # First sight of a status or tag adds it unmapped, so staff can map it.
    OrderStatusMapping.objects.bulk_create(
        [OrderStatusMapping(channel=channel, channel_status=s) for s in sorted(statuses)], ignore_conflicts=True
    )
    ShippingMapping.objects.bulk_create(
        [ShippingMapping(channel=channel, tag=t) for t in sorted(tags)], ignore_conflicts=True
    )
    status_map = dict(
        OrderStatusMapping.objects.filter(channel=channel, channel_status__in=statuses).values_list(
            "channel_status", "hub_status"
        )
    )
    postal_by_tag = dict(
        ShippingMapping.objects.filter(channel=channel, tag__in=tags).values_list("tag", "postal_service_id")
    )
    item_by_sku = dict(StockItem.objects.filter(sku__in=skus).values_list("sku", "id"))
    # A listing's link beats a SKU match: the channel's SKU may differ from the stock item's.
    item_by_sku |= dict(
        ChannelListing.objects.filter(channel=channel, channel_sku__in=skus, stock_item__isnull=False).values_list(
            "channel_sku", "stock_item_id"
        )
    )
    # Orders go to the default warehouse; with none marked, the first warehouse, so stock is always held.
    warehouse_id = (
        Location.objects.filter(kind=Location.Kind.WAREHOUSE)
        .order_by("-is_default", "pk")
        .values_list("id", flat=True)
        .first()
    )
    # A unified account's AFN orders all go to the FBA location of the channel that controls the shared pool.
    fba = fba_location_for_afn_orders(channel=channel)
    return MappingContext(
        channel=channel,
        status_map=status_map,
        postal_by_tag=postal_by_tag,
        item_by_sku=item_by_sku,
        warehouse_id=warehouse_id,
        fba_location_id=fba,
    )


def _orders_import(
    *, channel: Channel, orders: list[OrderData], outcome: PageOutcome
) -> tuple[ImportResult, list[OrderData]]:
    """Import the page's orders in one go; if the database refuses one (a value no check above foresaw), each
    alone, so that one is the order's error and the rest are stored. Returns the result and the orders stored."""
    try:
        with transaction.atomic():
            return order_import(channel_id=channel.pk, orders=orders), orders
    except (DataError, IntegrityError):
        result, stored = ImportResult(), []
        for data in orders:
            try:
                with transaction.atomic():
                    alone = order_import(channel_id=channel.pk, orders=[data])
            except (DataError, IntegrityError) as exc:
                logger.warning(
                    "channels.orders.refused channel=%s order=%s", channel.pk, storable_text(data.channel_order_id)
                )
                outcome.errors.append(RecordError(data.channel_order_id, f"the database refused the order: {exc}"))
                outcome.unreadable += 1
                continue
            stored.append(data)
            for name in ("created", "updated", "cancelled", "unchanged"):
                getattr(result, name).extend(getattr(alone, name))
        return result, stored


def orders_store_page(*, channel: Channel, page: OrderPage) -> PageOutcome:
    """Store one page: map every order, import the good ones, report the bad ones by order id."""
    outcome = PageOutcome(errors=list(page.errors), unreadable=len(page.errors))
    context = _mapping_context(channel=channel, orders=page.orders)
    ready: list[OrderData] = []
    for external in page.orders:
        try:
            ready.append(order_data_from_external(context=context, external=external))
        except OrderSkipped:
            outcome.skipped += 1
        except ValidationError as exc:
            outcome.errors.append(RecordError(external.channel_order_id, "; ".join(exc.messages)))
            outcome.unreadable += isinstance(exc, OrderUnreadable)
    result, ready = _orders_import(channel=channel, orders=ready, outcome=outcome)
    outcome.stored = len(ready)
    changed = set(result.created) | set(result.updated)
    imported_times = [e.updated_at for e in page.orders if e.channel_order_id in changed]
    outcome.oldest_imported = min(imported_times, default=None)
    # The latest change the channel reported among the orders stored, not their order time: an order that
    # changed after it was placed would otherwise be found again by every download after it. The orders the
    # connector left out as held already (a webhook may have brought them) count too.
    stored_ids = {d.channel_order_id for d in ready}
    outcome.latest_order = max(
        [*(max(e.created_at, e.updated_at) for e in page.orders if e.channel_order_id in stored_ids),
         *(change.updated_at for change in page.unchanged)], default=None,
    )
    for order_id in changed:
        logger.info("channels.orders.stored channel=%s order=%s", channel.pk, storable_text(order_id))
    return outcome


def _next_watermark(*, policy: WatermarkPolicy, current: datetime, until: datetime, outcomes: list[PageOutcome]):
    if policy is WatermarkPolicy.OLDEST_IMPORTED:
        oldest = min((o.oldest_imported for o in outcomes if o.oldest_imported), default=None)
        moved = max(current, min(oldest, until)) if oldest else until
    else:
        latest = max((o.latest_order for o in outcomes if o.latest_order), default=None)
        moved = max(current, latest) if latest else current
    if any(o.unreadable for o in outcomes):
        # An order the channel sent unreadable (its time unknown) may have been a glitch: the watermark
        # stays, so the next downloads ask for it again, but for UNREADABLE_RETRY_WINDOW at most, so one
        # record broken for good cannot hold every download back.
        return min(moved, max(current, until - UNREADABLE_RETRY_WINDOW))
    return moved


def _held_unchanged(channel_id: int, changes: Sequence[OrderChange]) -> set[str]:
    return orders_held_as_changed(
        channel_id=channel_id,
        changes={change.channel_order_id: (change.updated_at, change.channel_status) for change in changes},
    )


def orders_download(*, channel_id: int) -> SyncRun | None:
    """Download and store every order changed since Last Order Sync, then move the watermark.

    Each page is stored in its own transaction. If a page fails to arrive the watermark stays where
    it was and the error propagates (the task retries): pages already stored are found again by the
    next run and left as they are. Callers hold the channel's "orders" lock (the task and the command do).
    """
    channel = Channel.objects.get(pk=channel_id)
    if not channel.enabled:
        return None
    with channel_run(channel=channel, kind=SyncRun.Kind.ORDERS) as tally:
        connector = channel_connector(channel=channel)
        # Channels filter by whole seconds: round up so an order stamped this very second is included.
        until = (timezone.now() + timedelta(seconds=1)).replace(microsecond=0)
        since = channel.last_order_sync
        if since > NEVER_SYNCED + connector.order_overlap:
            since -= connector.order_overlap
        if connector.reads_order_details_apart:
            pages = connector.fetch_orders(since, until, unchanged=functools.partial(_held_unchanged, channel.pk))
        else:
            pages = connector.fetch_orders(since, until)
        outcomes: list[PageOutcome] = []
        for page in pages:
            with transaction.atomic():
                # Counted before the commit: its on-commit work (a push run inline) may raise.
                outcome = orders_store_page(channel=channel, page=page)
                outcomes.append(outcome)
                tally.processed += outcome.stored
                tally.skipped += outcome.skipped
                tally.errors.extend(outcome.errors)
        watermark = _next_watermark(
            policy=connector.watermark_policy, current=channel.last_order_sync, until=until, outcomes=outcomes
        )
        Channel.objects.filter(pk=channel.pk).update(last_order_sync=watermark)
    return tally.run
