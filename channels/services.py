"""Writes on channels and listings: staff's edits, marking what needs a push, recording what was pushed.

A listing is marked (a ListingPushMark row) whenever something that feeds its quantity, latency or price
may have changed; the push plan then sends only those whose values really differ from what was last
pushed. A push claims its channel's marks before it plans, records what the channel accepted in the
listings' push state, and then removes the marks it claimed, all of them in one statement: a listing
marked again while the push was in flight lost its claim, so it keeps its mark and no change is lost
between plan and record.

Every screen, command and task that edits a channel or a listing goes through the services here, which
mark the listings the edit affects, schedule one debounced push on commit and keep the channel's
periodic tasks in step. No model signal does it behind their backs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Case, Exists, F, OuterRef, Subquery, Value, When
from django.utils import timezone

from channels import scheduling
from channels.dashboard import listings_waiting_count
from channels.fulfilment import fba_location_ensure
from channels.history import listings_history_record
from channels.models import (
    CREDENTIAL_PREFIX,
    Channel,
    ChannelListing,
    ChannelPushMark,
    ListingPushMark,
    ListingPushState,
    OrderStatusMapping,
    ShippingMapping,
    SyncRun,
)
from channels.selectors import PlannedPush
from config.batching import chunks, id_batch_size
from inventory.models import StockItem

# Rows per INSERT ... SELECT FROM (VALUES ...) statement.
BATCH = 5000

# Listing fields (as the listing form names them) that change what its channel is sent.
LISTING_PUSH_FIELDS = frozenset({
    "channel", "stock_item", "fulfilled_by_channel", "max_listed_quantity", "max_listed_percentage",
    "end_when_quantity", "latency_days", "price_override",
})
# Channel settings that change what every listing of the channel is sent.
CHANNEL_RULE_FIELDS = frozenset({
    "update_inventory_from_locations", "max_listed_quantity", "max_listed_percentage", "end_when_quantity",
    "latency_days", "product_based_latency", "latency_property_name", "price_change",
})
# What the channel's order webhook subscriptions depend on, besides its credentials.
WEBHOOK_FIELDS = frozenset({"enabled", "api_base_url", "auth_base_url"})
# Switches that, turned on, let the pending changes through.
CHANNEL_SWITCHES = frozenset({"enabled", "inventory_sync", "update_inventory"})


def _listings_mark(*, where: str, params: Sequence) -> int:
    """Mark the linked merchant listings that `where` (over the listings table, as `l`) selects; returns
    how many marks were added or had their claim cleared.

    One INSERT ... SELECT: a listing already marked and unclaimed is left alone (no write); one claimed
    by a push in flight loses the claim, so that push leaves it marked.
    """
    listing = ChannelListing._meta.db_table
    mark = ListingPushMark._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {mark} (listing_id, channel_id, claimed_by_run) "
            f"SELECT l.id, l.channel_id, NULL FROM {listing} AS l "
            f"WHERE l.stock_item_id IS NOT NULL AND NOT l.fulfilled_by_channel AND ({where}) "
            f"ON CONFLICT (listing_id) DO UPDATE SET claimed_by_run = NULL, channel_id = excluded.channel_id "
            f"WHERE {mark}.claimed_by_run IS NOT NULL OR {mark}.channel_id <> excluded.channel_id",
            list(params),
        )
        return cursor.rowcount


def _placeholders(values: Sequence) -> str:
    return ", ".join(["%s"] * len(values))


def listings_mark(*, listing_ids: Iterable[int]) -> int:
    """Mark these listings (those linked and sent from the warehouses) for their channels' next push."""
    marked = 0
    for chunk in chunks(sorted(set(listing_ids)), id_batch_size()):
        marked += _listings_mark(where=f"l.id IN ({_placeholders(chunk)})", params=chunk)
    return marked

def listings_mark_for_push(*, stock_item_ids: Iterable[int], price_changed: bool = False) -> set[int]:
    """Mark every listing of these stock items, on every channel, for a push; return the channels that
    sync inventory and hold such listings (the ones to schedule a push for).

    A price change marks the listings on every channel too: the push plan only sends a price where the
    channel's Price Change is on, and the others drop out of the plan unchanged.
    """
    ids = sorted(set(stock_item_ids))
    if not ids:
        return set()
    listing = ChannelListing._meta.db_table
    holding: set[int] = set()
    # PostgreSQL takes the ids as one array literal (binding 200k parameters one by one cost seconds);
    # SQLite, which caps parameters, in batches.
    batches = [_array(ids, "integer")] if connection.vendor == "postgresql" else chunks(ids, id_batch_size())
    for batch in batches:
        if isinstance(batch, str):
            where, params = "l.stock_item_id = ANY(%s::integer[])", [batch]
        else:
            where, params = f"l.stock_item_id IN ({_placeholders(batch)})", batch
        _listings_mark(where=where, params=params)
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT DISTINCT l.channel_id FROM {listing} AS l WHERE NOT l.fulfilled_by_channel AND {where}",
                params,
            )
            holding.update(row[0] for row in cursor.fetchall())
    return _syncing_channel_ids(channel_ids=holding)


def channel_listings_mark_all(*, channel_id: int) -> None:
    """The channel's rules or location mapping changed: every linked listing may get another number. One
    channel mark stands for them all (a claim in flight is cleared, as marking a listing clears its own)."""
    mark = ChannelPushMark._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {mark} (channel_id, claimed_by_run) VALUES (%s, NULL) "
            "ON CONFLICT (channel_id) DO UPDATE SET claimed_by_run = NULL",
            [channel_id],
        )


def _push_schedule_on_commit(channel_ids: Iterable[int]) -> None:
    ids = sorted(set(channel_ids))
    if ids:
        transaction.on_commit(lambda: scheduling.inventory_push_schedule(channel_ids=ids))


def _syncing_channel_ids(*, channel_ids: Iterable[int]) -> set[int]:
    return set(
        Channel.objects.filter(pk__in=channel_ids, enabled=True, inventory_sync=True, update_inventory=True)
        .values_list("pk", flat=True)
    )


@transaction.atomic
def listings_stock_changed(*, stock_item_ids: Iterable[int], price_changed: bool = False) -> None:
    """Stock or the price of these items changed (inventory announces it on commit): mark their listings
    on every channel and schedule a push for each channel that syncs inventory."""
    _push_schedule_on_commit(listings_mark_for_push(stock_item_ids=stock_item_ids, price_changed=price_changed))


@transaction.atomic
def channel_rules_changed(*, channel_id: int) -> int:
    """Mark every listing of a channel whose rules or location mapping changed and schedule its push on
    commit; returns how many listings wait. Run by a worker once the edit committed
    (channel_rules_changed_queue)."""
    channel_listings_mark_all(channel_id=channel_id)
    if _syncing_channel_ids(channel_ids=[channel_id]):
        _push_schedule_on_commit([channel_id])
    return listings_waiting_count(channel_ids=[channel_id]).get(channel_id, 0)


def _channel_rules_changed_on_commit(*, channel_id: int) -> None:
    # Marking a 200k-listing channel takes most of a second: after the save, in a worker, not in the request.
    transaction.on_commit(lambda: scheduling.channel_rules_changed_queue(channel_id=channel_id))


@transaction.atomic
def listings_push_claim(*, channel_id: int, run_id: int) -> None:
    """Claim the channel's marks for this push run, before its plan is computed.

    Commits before the plan reads anything (callers are outside any transaction): a change committed
    after the claim re-marks its listing, which clears the claim, so the run's settle leaves it.
    """
    ChannelPushMark.objects.filter(channel_id=channel_id).update(claimed_by_run=run_id)
    ListingPushMark.objects.filter(channel_id=channel_id).update(claimed_by_run=run_id)


# The PostgreSQL type of each push state column a write sends.
PUSH_STATE_TYPES = {
    "listing_id": "integer", "last_pushed_quantity": "integer", "last_pushed_latency": "integer",
    "last_pushed_price": "numeric", "is_ended": "boolean", "push_error": "text",
}
# Listings per statement: VALUES rows on SQLite (bound parameters), array elements on PostgreSQL.
ARRAY_BATCH = 100_000


def _push_states_write(*, columns: Mapping[str, Sequence], update: Mapping[str, str],
                       constants: Mapping[str, object]) -> None:
    """Write push state rows given column by column (`listing_id` first), updating a listing's row in place
    when it has one and adding it otherwise; `update` gives each column's new value over `v` (the row
    written) and `s` (the stored one); `constants` are columns with one value for every row.

    A new row takes its listing's channel. A listing deleted since the plan is skipped. On PostgreSQL each column
    travels as one array literal (unnest), and the insert runs only when the update missed some listings (their
    first push)."""
    listing = ChannelListing._meta.db_table
    state = ListingPushState._meta.db_table
    names = list(columns)
    constant_names = list(constants)
    constant_values = [
        connection.ops.adapt_datetimefield_value(value) if isinstance(value, datetime) else value
        for value in constants.values()
    ]
    assignments = ", ".join(
        [f"{name} = {expression}" for name, expression in update.items()]
        + [f"{name} = %s" for name in constant_names]
    )
    inserted = ", ".join(names + constant_names + ["channel_id"])
    selected = ", ".join([f"v.{name}" for name in names] + ["%s"] * len(constant_names) + ["l.channel_id"])
    total = len(columns["listing_id"])
    postgresql = connection.vendor == "postgresql"
    batch = ARRAY_BATCH if postgresql else BATCH
    for start in range(0, total, batch):
        chunk = {name: values[start:start + batch] for name, values in columns.items()}
        if postgresql:
            source = "unnest({}) AS v({})".format(
                ", ".join(f"%s::{PUSH_STATE_TYPES[name]}[]" for name in names), ", ".join(names)
            )
            values = [_array(chunk[name], PUSH_STATE_TYPES[name]) for name in names]
        else:
            # SQLite names the columns of VALUES column1, column2...: a subquery gives them their names.
            row_sql = "(" + ", ".join(["%s"] * len(names)) + ")"
            source = "(SELECT {} FROM (VALUES {})) AS v".format(
                ", ".join(f"column{n + 1} AS {name}" for n, name in enumerate(names)),
                ", ".join([row_sql] * len(chunk["listing_id"])),
            )
            values = [value for row in zip(*chunk.values(), strict=True) for value in row]
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {state} AS s SET {assignments} FROM {source} WHERE s.listing_id = v.listing_id",
                [*constant_values, *values],
            )
            if cursor.rowcount == len(chunk["listing_id"]):
                continue
            # The key decides what is new: a NOT EXISTS over the table being filled would rescan its growing
            # heap for every row (40 s for a first push of 200k listings).
            cursor.execute(
                f"INSERT INTO {state} ({inserted}) SELECT {selected} FROM {source} "
                f"JOIN {listing} AS l ON l.id = v.listing_id WHERE true ON CONFLICT (listing_id) DO NOTHING",
                [*constant_values, *values],
            )


def _array(values: Sequence, kind: str):
    """A PostgreSQL array literal for numbers and booleans, written in one join: the driver adapts a list
    element by element, which took most of the time of recording a full push. Text goes as a list."""
    if kind == "text":
        return list(values)
    if kind == "boolean":
        return "{" + ",".join(["t" if value else "f" for value in values]) + "}"
    if None not in values:
        return "{" + ",".join(map(str, values)) + "}"
    return "{" + ",".join(["NULL" if value is None else str(value) for value in values]) + "}"


@transaction.atomic
def listings_record_pushed(*, pushes: Sequence[PlannedPush], at: datetime) -> None:
    """The channel accepted these values: remember them and clear any previous refusal.

    The narrow push state rows are updated in place (heap-only on PostgreSQL); a listing's first push adds
    its row. A price of None (Price Change off) keeps the last pushed price. The marks go when the run
    settles.
    """
    if not pushes:
        return
    # In the plan's order: the rows are the push's own (one push per channel at a time), nothing to lock in
    # a common order against.
    _push_states_write(
        columns={
            "listing_id": [push.listing_id for push in pushes],
            "last_pushed_quantity": [push.quantity for push in pushes],
            "last_pushed_latency": [push.latency_days for push in pushes],
            "last_pushed_price": [push.price for push in pushes],
            "is_ended": [push.is_ended for push in pushes],
        },
        update={
            "last_pushed_quantity": "v.last_pushed_quantity", "last_pushed_latency": "v.last_pushed_latency",
            "last_pushed_price": "COALESCE(v.last_pushed_price, s.last_pushed_price)", "is_ended": "v.is_ended",
        },
        constants={"last_pushed_at": at, "push_error": ""},
    )


def listings_record_revisions(*, listing_ids: Sequence[int], day: date) -> None:
    """The channel revised these listings once more on its calendar day `day` (their push state rows exist: the
    accepted values were just recorded)."""
    for chunk in chunks(sorted(set(listing_ids)), id_batch_size()):
        ListingPushState.objects.filter(listing_id__in=chunk).update(
            revisions_today=Case(When(revisions_day=day, then=F("revisions_today") + 1), default=Value(1)),
            revisions_day=day,
        )


@transaction.atomic
def listings_record_rejected(*, rejected: Sequence[tuple[int, str]]) -> None:
    """The channel refused these listings: say why, and keep them marked so the next push tries again."""
    if not rejected:
        return
    ordered = sorted(rejected)
    _push_states_write(
        columns={"listing_id": [listing_id for listing_id, _ in ordered], "push_error": [why for _, why in ordered]},
        update={"push_error": "v.push_error"}, constants={},
    )
    listings_mark(listing_ids=[listing_id for listing_id, _ in ordered])


def listings_pending_settle(*, channel_id: int, run_id: int) -> int:
    """The run is done: remove the marks it claimed. A listing it pushed is recorded, one whose values
    turned out unchanged (a stock change at a location the channel does not count, a price change on a
    channel without Price Change) needs nothing, and one refused or marked again since lost the claim.
    Returns how many of the channel's listings still wait for a push."""
    ChannelPushMark.objects.filter(channel_id=channel_id, claimed_by_run=run_id).delete()
    ListingPushMark.objects.filter(channel_id=channel_id, claimed_by_run=run_id).delete()
    return listings_waiting_count(channel_ids=[channel_id]).get(channel_id, 0)


# --- What staff edit: channels and listings (called by the admin, the commands and the tasks) -------


@transaction.atomic
def channel_create(*, channel: Channel) -> Channel:
    """Save a new channel and give it its periodic tasks (order download, push, listing download), and its
    FBA location when FBA is on."""
    channel.save()
    scheduling.channel_beat_schedule_update(channel=channel)
    _fba_location_follow(channel=channel)
    _webhooks_follow_on_commit(channel=channel)
    return channel


def _webhooks_follow_on_commit(*, channel: Channel) -> None:
    # Without a public URL the hub takes no webhooks: nothing to subscribe (channel_webhooks_follow, the
    # command, removes what an earlier address left).
    if settings.STOCKLINE_PUBLIC_URL and channel.connector_class.receives_order_webhooks:
        transaction.on_commit(lambda: scheduling.channel_webhooks_follow_queue(channel_id=channel.pk))


def _fba_location_follow(*, channel: Channel) -> None:
    # Switched off, FBA keeps its location and history: nothing is removed here.
    if channel.fba_enabled:
        fba_location_ensure(channel=channel)


@transaction.atomic
def channel_settings_update(*, channel: Channel, changed_fields: Iterable[str]) -> Channel:
    """Save staff's edit of a channel; `changed_fields` names the fields the edit changed (a form's
    changed_data). New rules have a worker mark every listing of the channel and schedule its push once the
    edit commits; a switch turned on schedules a push to send what waited; the periodic tasks follow the
    switches; the order webhooks follow the switch, the endpoints and the credentials; FBA turned on gives
    the channel its FBA location. An edit that changes none of these costs nothing beyond the save."""
    changed = set(changed_fields)
    channel.save()
    rules_changed = bool(changed & CHANNEL_RULE_FIELDS)
    switched_on = any(getattr(channel, name) for name in changed & CHANNEL_SWITCHES)
    if rules_changed:
        _channel_rules_changed_on_commit(channel_id=channel.pk)
    elif switched_on and channel.syncs_inventory:
        _push_schedule_on_commit([channel.pk])
    if changed & scheduling.CHANNEL_SCHEDULE_FIELDS:
        scheduling.channel_beat_schedule_update(channel=channel)
    if "fba_enabled" in changed:
        _fba_location_follow(channel=channel)
    if changed & WEBHOOK_FIELDS or any(name.startswith(CREDENTIAL_PREFIX) for name in changed):
        _webhooks_follow_on_commit(channel=channel)
    return channel


@transaction.atomic
def channels_delete(*, channel_ids: Iterable[int]) -> None:
    """Delete these channels with their listings, mappings and periodic tasks."""
    ids = sorted(set(channel_ids))
    Channel.objects.filter(pk__in=ids).delete()
    for channel_id in ids:
        scheduling.channel_beat_schedule_delete(channel_id=channel_id)


def _listing_marked_if_linked(listing: ChannelListing) -> bool:
    if listing.stock_item_id is None or listing.fulfilled_by_channel:
        return False
    listings_mark(listing_ids=[listing.pk])
    return True


@transaction.atomic
def listing_create(*, listing: ChannelListing) -> ChannelListing:
    """Save a listing staff added by hand; linked to a stock item, it is marked and its channel's push
    scheduled on commit."""
    listing.save()
    if _listing_marked_if_linked(listing):
        _push_schedule_on_commit(_syncing_channel_ids(channel_ids=[listing.channel_id]))
    return listing


@transaction.atomic
def listing_overrides_update(*, listing: ChannelListing, changed_fields: Iterable[str]) -> ChannelListing:
    """Save staff's edit of a listing's link or overrides; `changed_fields` names the fields the edit
    changed (a form's changed_data). A change to what the channel is sent marks the linked listing and
    schedules its channel's push on commit; any other edit (a title) marks nothing."""
    listing.save()
    if set(changed_fields) & LISTING_PUSH_FIELDS and _listing_marked_if_linked(listing):
        _push_schedule_on_commit(_syncing_channel_ids(channel_ids=[listing.channel_id]))
    return listing


# --- The mapping screens and listing links (called by the admin and the listing download) -----------


@transaction.atomic
def channel_location_mapping_save(*, channel_id: int, from_locations: bool, location_ids: Iterable[int],
                                  channel_location_id: str | None = None) -> None:
    """Location Mapping: which warehouses' stock the channel is sent, and (where the channel has locations of
    its own) which of them it goes to; None leaves that as it is. Turned off, every warehouse counts and the
    ticks are kept for the next time it is turned on."""
    channel = Channel.objects.select_for_update().get(pk=channel_id)
    if channel_location_id is not None and channel_location_id != channel.channel_location_id:
        channel.channel_location_id = channel_location_id
        channel.save(update_fields=["channel_location_id", "updated_at"])
        # The same quantities, at another location of the channel's: every listing is sent again.
        transaction.on_commit(lambda: scheduling.inventory_push_full_queue(channel_id=channel_id))
    changed = channel.update_inventory_from_locations != from_locations
    if changed:
        channel.update_inventory_from_locations = from_locations
        channel.save(update_fields=["update_inventory_from_locations", "updated_at"])
    if from_locations:
        ticked = sorted(set(location_ids))
        if ticked != sorted(channel.inventory_locations.values_list("pk", flat=True)):
            channel.inventory_locations.set(ticked)
            changed = True
    # Another set of warehouses, or all of them instead of some: every listing may get another number.
    if changed:
        _channel_rules_changed_on_commit(channel_id=channel.pk)


def channel_status_mappings_add(*, channel_id: int, statuses: Iterable[str]) -> None:
    """Statuses seen on the channel's orders or offered by it: stored Unmapped unless already known."""
    OrderStatusMapping.objects.bulk_create(
        [OrderStatusMapping(channel_id=channel_id, channel_status=status) for status in sorted(set(statuses))],
        ignore_conflicts=True,
    )


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


def _same_sku_stock_item():
    return StockItem.objects.filter(sku=OuterRef("channel_sku"))


@transaction.atomic
def listings_link_by_sku(*, listing_ids: Iterable[int]) -> int:
    """Link each unlinked listing to the stock item with the same SKU; mark the newly linked ones for a push
    and schedule their channels' pushes on commit. Returns how many were linked."""
    same_sku = _same_sku_stock_item()
    linked_ids: list[int] = []
    channel_ids: set[int] = set()
    for chunk in chunks(sorted(set(listing_ids)), id_batch_size()):
        matching = ChannelListing.objects.filter(pk__in=chunk, stock_item__isnull=True).filter(Exists(same_sku))
        rows = list(matching.values_list("pk", "channel_id", "fulfilled_by_channel"))
        stock_item_id = Subquery(same_sku.values("pk")[:1])
        # Amazon's stock is never sent: a listing it fulfils is linked but not marked.
        to_push = [pk for pk, _, by_amazon in rows if not by_amazon]
        ChannelListing.objects.filter(pk__in=[pk for pk, _, _ in rows]).update(stock_item_id=stock_item_id)
        listings_mark(listing_ids=to_push)
        linked_ids += [pk for pk, _, _ in rows]
        channel_ids.update(channel_id for _, channel_id, by_amazon in rows if not by_amazon)
    listings_history_record(listing_ids=linked_ids, reason="Linked by SKU")
    _push_schedule_on_commit(_syncing_channel_ids(channel_ids=channel_ids) if channel_ids else ())
    return len(linked_ids)


@transaction.atomic
def listings_link_downloaded(*, channel_id: int, channel_skus: Iterable[str]) -> int:
    """A listing download stored these SKUs: link those still unlinked to the stock item with the same SKU,
    mark them for a push and schedule the channel's push on commit. Returns how many were linked."""
    same_sku = _same_sku_stock_item()
    unlinked = ChannelListing.objects.filter(
        channel_id=channel_id, stock_item__isnull=True, channel_sku__in=list(channel_skus)
    ).filter(Exists(same_sku))
    stock_item_id = Subquery(same_sku.values("pk")[:1])
    # Amazon's stock is never sent: a listing it fulfils is linked but not marked.
    to_push = list(unlinked.filter(fulfilled_by_channel=False).values_list("pk", flat=True))
    linked = unlinked.update(stock_item_id=stock_item_id)
    if to_push:
        listings_mark(listing_ids=to_push)
        _push_schedule_on_commit(_syncing_channel_ids(channel_ids=[channel_id]))
    return linked


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


def channel_create_tested(*, channel: Channel, rotated_credentials: Mapping[str, str] | None) -> Channel:
    """Save a new channel whose Test before Save used up single-use tokens: the ones the channel issued then
    replace the ones staff typed (see channels.sync.connections.tested_credentials_open)."""
    if rotated_credentials:
        channel.credentials = {**channel.credentials, **rotated_credentials}
    return channel_create(channel=channel)


@transaction.atomic
def listings_record_channel_found(*, found: Sequence[tuple[int, int | None]], at: datetime) -> None:
    """The channel held another quantity than the hub last saw (a stale compare-and-set): keep what it held as the
    listing's channel quantity, so the listing shows the drift until the next download, even though the push has
    since set the hub's quantity."""
    if not found:
        return
    listings = [ChannelListing(pk=pk, channel_quantity=quantity, downloaded_at=at) for pk, quantity in sorted(found)]
    ChannelListing.objects.bulk_update(listings, ["channel_quantity", "downloaded_at"])
