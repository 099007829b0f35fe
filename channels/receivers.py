"""How changes elsewhere reach the channels: mark the affected listings, schedule a debounced push.

Connected in ChannelsConfig.ready(). Inventory announces stock changes on commit (it must not import
channels); listing and channel edits are caught here because the admin saves them as plain models.
The receivers only delegate to services.
"""

from __future__ import annotations

from django.db import transaction
from django.db.models.signals import m2m_changed, post_save, pre_save
from django.dispatch import receiver

from channels import scheduling
from channels.models import Channel, ChannelListing
from channels.services import channel_listings_mark_all, listings_mark_for_push
from inventory.signals import stock_changed

# Listing fields that change what its channel is sent.
LISTING_PUSH_FIELDS = (
    "stock_item_id", "fulfilled_by_channel", "max_listed_quantity", "max_listed_percentage",
    "end_when_quantity", "latency_days", "price_override",
)
# Channel settings that change what every listing of the channel is sent.
CHANNEL_RULE_FIELDS = (
    "update_inventory_from_locations", "max_listed_quantity", "max_listed_percentage", "end_when_quantity",
    "latency_days", "product_based_latency", "latency_property_name", "price_change",
)
# Switches that, turned on, let the pending changes through.
CHANNEL_SWITCHES = ("enabled", "inventory_sync", "update_inventory")


def _schedule_on_commit(channel_ids: set[int]) -> None:
    if channel_ids:
        transaction.on_commit(lambda: scheduling.inventory_push_schedule(channel_ids=sorted(channel_ids)))


@receiver(stock_changed, dispatch_uid="channels.stock_changed")
def on_stock_changed(sender, *, stock_item_ids: frozenset[int], price_changed: bool = False, **kwargs) -> None:
    channel_ids = listings_mark_for_push(stock_item_ids=stock_item_ids, price_changed=price_changed)
    if channel_ids:
        scheduling.inventory_push_schedule(channel_ids=sorted(channel_ids))


def _before(model, instance, fields: tuple[str, ...]) -> dict | None:
    if instance.pk is None:
        return None
    return model.objects.filter(pk=instance.pk).values(*fields).first()


@receiver(pre_save, sender=ChannelListing, dispatch_uid="channels.listing_pre_save")
def on_listing_pre_save(sender, instance: ChannelListing, raw: bool = False, **kwargs) -> None:
    if not raw:
        instance._push_fields_before = _before(ChannelListing, instance, LISTING_PUSH_FIELDS)


@receiver(post_save, sender=ChannelListing, dispatch_uid="channels.listing_post_save")
def on_listing_saved(sender, instance: ChannelListing, created: bool, raw: bool = False, **kwargs) -> None:
    if raw or instance.stock_item_id is None or instance.fulfilled_by_channel:
        return
    before = getattr(instance, "_push_fields_before", None)
    if before is not None and all(before[name] == getattr(instance, name) for name in LISTING_PUSH_FIELDS):
        return
    if not instance.push_pending:
        ChannelListing.objects.filter(pk=instance.pk).update(push_pending=True)
        instance.push_pending = True
    syncing = Channel.objects.filter(pk=instance.channel_id, enabled=True, inventory_sync=True, update_inventory=True)
    if syncing.exists():
        _schedule_on_commit({instance.channel_id})


@receiver(pre_save, sender=Channel, dispatch_uid="channels.channel_pre_save")
def on_channel_pre_save(sender, instance: Channel, raw: bool = False, **kwargs) -> None:
    if not raw:
        instance._push_fields_before = _before(Channel, instance, CHANNEL_RULE_FIELDS + CHANNEL_SWITCHES)


@receiver(post_save, sender=Channel, dispatch_uid="channels.channel_post_save")
def on_channel_saved(sender, instance: Channel, created: bool, raw: bool = False, **kwargs) -> None:
    before = getattr(instance, "_push_fields_before", None)
    if raw or before is None:
        return
    rules_changed = any(before[name] != getattr(instance, name) for name in CHANNEL_RULE_FIELDS)
    switched_on = any(not before[name] and getattr(instance, name) for name in CHANNEL_SWITCHES)
    if rules_changed:
        channel_listings_mark_all(channel_id=instance.pk)
    if (rules_changed or switched_on) and instance.syncs_inventory:
        _schedule_on_commit({instance.pk})


@receiver(m2m_changed, sender=Channel.inventory_locations.through, dispatch_uid="channels.location_mapping")
def on_location_mapping_changed(sender, instance, action: str, reverse: bool, pk_set, **kwargs) -> None:
    if action not in ("post_add", "post_remove", "post_clear"):
        return
    if reverse:
        # Location.channels changed: pk_set holds channels (None on clear: all that held the location).
        channels = Channel.objects.filter(pk__in=pk_set) if pk_set is not None else Channel.objects.all()
    else:
        channels = Channel.objects.filter(pk=instance.pk)
    # Only channels that combine their ticked locations see a different number.
    affected = set(channels.filter(update_inventory_from_locations=True).values_list("pk", flat=True))
    for channel_id in sorted(affected):
        channel_listings_mark_all(channel_id=channel_id)
    syncing = Channel.objects.filter(pk__in=affected, enabled=True, inventory_sync=True, update_inventory=True)
    _schedule_on_commit(set(syncing.values_list("pk", flat=True)))
