"""The announcements the lower layers make on commit, each handed to one channels service or task.

Inventory and orders must not import channels, so they announce what happened (inventory/signals.py,
orders/signals.py) and the channels app listens here. Connected in ChannelsConfig.ready().
"""

from django.dispatch import receiver

from channels.services import listings_stock_changed
from channels.tasks import despatch_cancel_task, despatch_confirm_task
from inventory.signals import stock_changed
from orders.signals import order_cancelled, order_processed


@receiver(stock_changed, dispatch_uid="channels.stock_changed")
def stock_changed_push(sender, *, stock_item_ids: frozenset[int], price_changed: bool = False, **kwargs) -> None:
    listings_stock_changed(stock_item_ids=stock_item_ids, price_changed=price_changed)


# A retried task tells the channel, so a marketplace outage delays the confirmation without losing it.
@receiver(order_processed, dispatch_uid="channels-order-processed")
def order_processed_confirm(sender, *, order_ids, **kwargs) -> None:
    for order_id in order_ids:
        despatch_confirm_task.delay(order_id)


@receiver(order_cancelled, dispatch_uid="channels-order-cancelled")
def order_cancelled_confirm(sender, *, order_ids, reason="", **kwargs) -> None:
    for order_id in order_ids:
        despatch_cancel_task.delay(order_id, reason)
