"""What the channels app does when something happens elsewhere (FBA).

- An Amazon channel with FBA on gets its FBA location.
- An order is reallocated to an FBA location (queued for Amazon): a retried task sends it to Amazon.

Processed and cancelled orders and stock changes are heard in channels/subscriptions.py; a channel's
periodic tasks follow it through the channel services.
"""

from django.db import transaction
from django.db.models.signals import post_save
from django.dispatch import receiver

from channels.fba import fba_location_ensure
from channels.models import Channel
from channels.tasks import despatch_fba_submit_task
from orders.models import Order


@receiver(post_save, sender=Channel, dispatch_uid="channels-fba-location-follows-channel")
def channel_saved_fba_location(sender, *, instance: Channel, raw=False, **kwargs) -> None:
    # Switched off, FBA keeps its location and history: nothing is removed here.
    if not raw and instance.fba_enabled:
        fba_location_ensure(channel=instance)


@receiver(post_save, sender=Order, dispatch_uid="channels-order-queued-for-fba")
def order_queued_for_fba(sender, *, instance: Order, raw=False, update_fields=None, **kwargs) -> None:
    if raw or instance.fba_outbound_status != Order.FbaOutbound.QUEUED:
        return
    if update_fields is not None and "fba_outbound_status" not in update_fields:
        return
    order_id = instance.pk
    transaction.on_commit(lambda: despatch_fba_submit_task.delay(order_id))
