"""What the channels app does when something happens elsewhere.

- Staff process or cancel an order (announced by the orders app on commit): the channel is told
  through a retried task, so a marketplace outage delays the confirmation without losing it.
- A channel is saved, switched on or off, or deleted: its periodic tasks in django-celery-beat follow,
  whichever screen or command made the change; an Amazon channel with FBA on gets its FBA location.
- An order is reallocated to an FBA location (queued for Amazon): a retried task sends it to Amazon.
"""

from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from channels.fba import fba_location_ensure
from channels.models import Channel
from channels.scheduling import channel_beat_schedule_delete, channel_beat_schedule_update
from channels.tasks import despatch_cancel_task, despatch_confirm_task, despatch_fba_submit_task
from orders.models import Order
from orders.signals import order_cancelled, order_processed


@receiver(order_processed, dispatch_uid="channels-order-processed")
def order_processed_confirm(sender, *, order_ids, **kwargs) -> None:
    for order_id in order_ids:
        despatch_confirm_task.delay(order_id)


@receiver(order_cancelled, dispatch_uid="channels-order-cancelled")
def order_cancelled_confirm(sender, *, order_ids, reason="", **kwargs) -> None:
    for order_id in order_ids:
        despatch_cancel_task.delay(order_id, reason)


@receiver(post_save, sender=Channel, dispatch_uid="channels-beat-follows-channel")
def channel_saved_schedule(sender, *, instance: Channel, raw=False, **kwargs) -> None:
    if not raw:
        channel_beat_schedule_update(channel=instance)


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


@receiver(post_delete, sender=Channel, dispatch_uid="channels-beat-removed-with-channel")
def channel_deleted_unschedule(sender, *, instance: Channel, **kwargs) -> None:
    channel_id = instance.pk
    transaction.on_commit(lambda: channel_beat_schedule_delete(channel_id=channel_id))
