"""Whether someone else fulfils an order: a channel's own fulfilment network (e.g. Amazon FBA) it was sent to.

`orders` knows no channel. The channels app registers its external fulfiller at start-up
(`ChannelsConfig.ready`); the order services ask it, before the order's stock moves or the order is
processed or cancelled here, whether the fulfiller has the order, and tell it when an order is moved to
or away from its fulfilment centre or cancelled while still waiting to be sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Protocol

from inventory.models import Location
from orders.models import Order


class Stage(Enum):
    # Not sent yet: moving or cancelling the order here withdraws it.
    QUEUED = "queued"
    # Being sent right now, with no lock held: until the fulfiller answers, the order may not change here.
    SENDING = "sending"
    # The fulfiller has it: nothing changes here until it ships or is cancelled there.
    HELD = "held"


@dataclass(frozen=True)
class Hold:
    fulfiller: str  # as staff know it, e.g. "Amazon"
    status: str  # where the order stands there, e.g. "Received by Amazon"
    stage: Stage
    how_to_stop: str  # what staff do to take it back, e.g. "cancel its fulfilment order in Seller Central"


class ExternalFulfiller(Protocol):
    def hold(self, order: Order) -> Hold | None:
        """Whether this fulfiller has (or is about to be sent) the order."""

    def name(self, location: Location) -> str | None:
        """Whose fulfilment centre this location is ("Amazon"), or None when it is not this fulfiller's."""

    def resends(self, order: Order, location: Location) -> bool:
        """Whether reallocating the order to the location it is at sends it again (the fulfiller gave up)."""

    def order_moved(self, order: Order, location: Location) -> None:
        """The order's stock is now held at `location`, in this transaction: send it there, or withdraw it."""

    def order_cancelled(self, order: Order) -> None:
        """The order was cancelled here, in this transaction, while no fulfiller held it."""


_fulfillers: list[ExternalFulfiller] = []


def external_fulfiller_register(fulfiller: ExternalFulfiller) -> None:
    if fulfiller not in _fulfillers:
        _fulfillers.append(fulfiller)


def order_hold(order: Order) -> Hold | None:
    """The external fulfiller's hold on this order, if one has it or is about to be sent it."""
    return next((hold for f in _fulfillers if (hold := f.hold(order)) is not None), None)


def location_fulfiller(location: Location) -> str | None:
    """Who fulfils orders whose stock is held at this location, when it is not ours to ship."""
    return next((name for f in _fulfillers if (name := f.name(location)) is not None), None)


def reallocation_resends(*, order: Order, location: Location) -> bool:
    return any(f.resends(order, location) for f in _fulfillers)


def order_moved(*, order: Order, location: Location) -> None:
    for fulfiller in _fulfillers:
        fulfiller.order_moved(order, location)


def order_cancelled(*, order: Order) -> None:
    for fulfiller in _fulfillers:
        fulfiller.order_cancelled(order)


def order_stock_can_move(order: Order) -> bool:
    """Whether staff may still move the stock the order holds: relink its lines, change its location."""
    return order.is_open and not order.fulfilled_by_channel and order_hold(order) is None
