"""Amazon's multi-channel fulfilment as the orders app sees it: the external fulfiller registered in
`ChannelsConfig.ready` (see orders.external_fulfilment).

An order reallocated to an FBA location is queued for Amazon (a FulfilmentOrder row) and a retried task
sends it on commit; moved away, or cancelled before it was sent, it is withdrawn.
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from channels.models import FulfilmentLocation, FulfilmentOrder
from channels.tasks import despatch_fba_submit_task
from inventory.models import Location
from orders.external_fulfilment import Hold, Stage
from orders.models import Order

FULFILLER = "Amazon"
STAGES = {
    FulfilmentOrder.Status.QUEUED: Stage.QUEUED,
    FulfilmentOrder.Status.SENDING: Stage.SENDING,
    **{status: Stage.HELD for status in FulfilmentOrder.WITH_AMAZON},
}


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
        transaction.on_commit(lambda: despatch_fba_submit_task.delay(order_id))

    def order_cancelled(self, order: Order) -> None:
        FulfilmentOrder.objects.filter(order_id=order.pk, status=FulfilmentOrder.Status.QUEUED).delete()


AMAZON_FULFILMENT = AmazonFulfilment()
