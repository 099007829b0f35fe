"""The channels' fulfilment networks (Amazon FBA) as configuration: which channel controls a seller's FBA
pool, where its AFN orders are allocated, the FBA location a channel gets when FBA is on; and the external
fulfiller registered for the orders app in `ChannelsConfig.ready` (see orders.external_fulfilment).

- Turning FBA on for an Amazon channel gives it an external fulfilment centre, linked to the channel by a
  FulfilmentLocation (`fba_location_ensure`, called by channel_create and channel_settings_update);
  turning it off keeps the location and its history, and its stock is no longer read.
- Unified accounts: Amazon channels with the same seller id share one FBA pool. The channel with FBA
  Sync Inventory on controls it: only that channel reads Amazon's stock, and the AFN orders of every
  channel of the seller are allocated to its FBA location.
- An order reallocated to an FBA location is queued for Amazon (a FulfilmentOrder row) and a retried task
  sends it on commit (channels.sync.fba.outbound); moved away, or cancelled before it was sent, it is withdrawn.
"""

from __future__ import annotations

import logging

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from channels import scheduling
from channels.models import Channel, FulfilmentLocation, FulfilmentOrder
from inventory.models import Location
from orders.external_fulfilment import Hold, Stage
from orders.models import Order

logger = logging.getLogger(__name__)

UNIFIED_ACCOUNT_RULE = (
    "Amazon channels with the same seller id share one FBA stock pool (a unified account): tick FBA Sync "
    "Inventory on the one channel that controls the FBA location; the others' FBA orders are allocated there."
)
FULFILLER = "Amazon"
STAGES = {
    FulfilmentOrder.Status.QUEUED: Stage.QUEUED,
    FulfilmentOrder.Status.SENDING: Stage.SENDING,
    **{status: Stage.HELD for status in FulfilmentOrder.WITH_AMAZON},
}


def fba_controller(*, channel: Channel) -> Channel | None:
    """The channel that controls the seller's FBA pool: the one with FBA enabled and FBA Sync Inventory on."""
    if not channel.connector_class.has_fulfilment_network:
        return None
    if channel.fba_enabled and channel.fba_sync_inventory:
        return channel
    return (
        channel.seller_channels().filter(fba_enabled=True, fba_sync_inventory=True)
        .exclude(pk=channel.pk).order_by("pk").first()
    )


def fba_location_for_afn_orders(*, channel: Channel) -> int | None:
    """Where a channel's AFN orders are allocated: the controlling channel's FBA location, else its own."""
    for candidate in (fba_controller(channel=channel), channel):
        if candidate is not None:
            location_id = (
                FulfilmentLocation.objects.filter(channel=candidate).values_list("location_id", flat=True).first()
            )
            if location_id is not None:
                return location_id
    return None


@transaction.atomic
def fba_location_ensure(*, channel: Channel) -> Location | None:
    """The channel's FBA location, created the first time FBA is on. Idempotent; never deletes one."""
    if not channel.connector_class.has_fulfilment_network or not channel.fba_enabled or channel.pk is None:
        return None
    # Serialises two saves of the channel, so they cannot both create a location.
    Channel.objects.select_for_update().filter(pk=channel.pk).values_list("pk", flat=True).first()
    existing = FulfilmentLocation.objects.filter(channel=channel).select_related("location").first()
    if existing is not None:
        return existing.location
    name = f"FBA – {channel.name}"[:100]
    if Location.objects.filter(name=name).exists():
        name = f"{name[:88]} ({channel.pk})"
    location = Location.objects.create(name=name, kind=Location.Kind.EXTERNAL)
    FulfilmentLocation.objects.create(channel=channel, location=location)
    logger.info("channels.fba.location_created channel=%s location=%s", channel.pk, location.pk)
    return location




def fba_sync_check(*, channel: Channel) -> None:
    """Raise a ValidationError saying why this channel may not read Amazon's FBA stock, if it may not."""
    if not channel.connector_class.has_fulfilment_network:
        raise ValidationError(f"{channel.name} is a {channel.connector_class.label} channel: it has no FBA stock.")
    if not (channel.enabled and channel.fba_enabled and channel.fba_sync_inventory):
        raise ValidationError(
            f"FBA sync is off for {channel.name}: it needs Enabled, FBA enabled and FBA sync inventory ticked."
        )
    conflicts = channel.fba_sync_conflicts()
    if conflicts:
        raise ValidationError(
            f"{channel.name} and {', '.join(conflicts)} both have FBA Sync Inventory on for seller "
            f"{channel.seller_id}. {UNIFIED_ACCOUNT_RULE}"
        )


def _is_fba_location(location: Location) -> bool:
    return FulfilmentLocation.objects.filter(location_id=location.pk).exists()


class AmazonFulfilment:
    def hold(self, order: Order) -> Hold | None:
        sent = FulfilmentOrder.objects.filter(order_id=order.pk).first()
        if sent is None or sent.status not in STAGES:
            return None
        return Hold(fulfiller=FULFILLER, status=sent.get_status_display(), stage=STAGES[sent.status],
                    how_to_stop="cancel its fulfilment order in Seller Central")

    def name(self, location: Location) -> str | None:
        return FULFILLER if _is_fba_location(location) else None

    def resends(self, order: Order, location: Location) -> bool:
        return _is_fba_location(location) and FulfilmentOrder.objects.filter(
            order_id=order.pk, status__in=FulfilmentOrder.RESENDABLE
        ).exists()

    def order_moved(self, order: Order, location: Location) -> None:
        if not _is_fba_location(location):
            FulfilmentOrder.objects.filter(order_id=order.pk).delete()
            return
        FulfilmentOrder.objects.update_or_create(order=order, defaults={
            "status": FulfilmentOrder.Status.QUEUED,
            # Amazon keeps every id it was sent, so each submission has its own.
            "fulfilment_order_id": f"SL-{order.pk}-{timezone.now():%y%m%d%H%M%S}",
            "error": "",
        })
        order_id = order.pk
        transaction.on_commit(lambda: scheduling.fba_submission_queue(order_id=order_id))

    def order_cancelled(self, order: Order) -> None:
        FulfilmentOrder.objects.filter(order_id=order.pk, status=FulfilmentOrder.Status.QUEUED).delete()


AMAZON_FULFILMENT = AmazonFulfilment()
