"""Inventory push: what each listing may sell, sent to the channel in batches, and what it accepted recorded.

The run waits for its turn under the channel's quota, then claims its channel's marks; the plan
(channels.selectors.listings_push_plan) computes the listings whose quantity, latency or price differ from what
was last sent, set-based; claiming, recording and settling are channels.services'. This module only drives the
connector between them.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

from django.utils import timezone

from channels.connectors.base import PushResult, RecordError, StockUpdate
from channels.dashboard import listings_waiting_count
from channels.models import Channel, SyncRun
from channels.selectors import (
    RevisionBudget,
    listings_channel_quantity_seen,
    listings_push_plan,
    listings_revision_hold,
)
from channels.services import (
    listings_pending_settle,
    listings_push_claim,
    listings_record_channel_found,
    listings_record_pushed,
    listings_record_rejected,
    listings_record_revisions,
)
from channels.sync.connections import channel_connector
from channels.sync.runs import channel_run
from config.batching import chunks

# A listing the channel did not answer for is left pending rather than assumed sent.
REJECTED_UNANSWERED = PushResult(channel_sku="", accepted=False, message="The channel gave no answer for this listing.")


def inventory_push(*, channel_id: int, full: bool = False) -> SyncRun | None:
    """Send the channel the quantity, latency and price of every listing whose values changed.

    Only what the channel accepted is recorded as pushed; a rejected listing stays pending with the
    channel's message. Batches already accepted stay recorded if a later batch fails, so a retry sends
    only the rest. `full` resends every linked listing, overwriting values edited on the channel.
    Callers hold the channel's "push" lock (the task and the command do).
    """
    channel = Channel.objects.get(pk=channel_id)
    if not channel.syncs_inventory:
        return None
    connector = channel_connector(channel=channel)
    if full or listings_waiting_count(channel_ids=[channel.pk]):
        # The wait for the channel's quota comes before the claim and the plan, outside any transaction: a
        # change made while it waits goes out in this push, rather than in the next one, a quota's turn later.
        connector.push_turn_take()
    with channel_run(channel=channel, kind=SyncRun.Kind.INVENTORY) as tally:
        listings_push_claim(channel_id=channel.pk, run_id=tally.run.pk)
        plan = listings_push_plan(channel_id=channel.pk, full=full)
        budget = None
        declared = channel.connector_class
        if declared.max_revisions_per_day:
            # A channel that caps revisions a day (eBay) gets each listing's changes coalesced: one held back
            # keeps its mark and goes, with its latest values, at a later push (the safety net runs every 15 min).
            budget = RevisionBudget(cap=declared.max_revisions_per_day, zone=ZoneInfo(declared.revision_day_zone),
                                    now=timezone.now())
            plan, held = listings_revision_hold(plan=plan, budget=budget)
            listings_record_rejected(rejected=[(push.listing_id, reason) for push, reason in held])
            tally.skipped += len(held)
        for batch in chunks(plan, connector.max_batch_size):
            seen = (listings_channel_quantity_seen(listing_ids=[push.listing_id for push in batch])
                    if getattr(connector, "compares_channel_quantity", False) else {})
            updates = [
                StockUpdate(
                    channel_sku=push.channel_sku, external_id=push.external_id, quantity=push.quantity,
                    latency_days=push.latency_days, price=push.price, currency=channel.currency,
                    channel_quantity=seen.get(push.listing_id, (None, None))[0],
                    channel_quantity_seen_at=seen.get(push.listing_id, (None, None))[1],
                )
                for push in batch
            ]
            answers = {result.channel_sku: result for result in connector.push_listings(updates)}
            results = [(push, answers.get(push.channel_sku, REJECTED_UNANSWERED)) for push in batch]
            listings_record_channel_found(found=[(push.listing_id, result.channel_quantity_found)
                                                 for push, result in results
                                                 if result.channel_quantity_found is not None], at=timezone.now())
            accepted = [push for push, result in results if result.accepted]
            rejected = [(push, result.message) for push, result in results if not result.accepted]
            listings_record_pushed(pushes=accepted, at=timezone.now())
            if budget is not None:
                listings_record_revisions(listing_ids=[push.listing_id for push in accepted], day=budget.day)
            if rejected:
                listings_record_rejected(rejected=[(push.listing_id, message) for push, message in rejected])
            tally.processed += len(accepted)
            tally.errors.extend(RecordError(push.channel_sku, message) for push, message in rejected)
            tally.progress_show()
        listings_pending_settle(channel_id=channel.pk, run_id=tally.run.pk)
        Channel.objects.filter(pk=channel.pk).update(last_inventory_sync=timezone.now())
    return tally.run
