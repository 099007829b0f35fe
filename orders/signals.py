"""Announcements the orders app makes on commit, so the channels app can tell the marketplace
without orders importing channels. Each carries `order_ids`; `order_cancelled` also the `reason`."""

from django.dispatch import Signal

order_processed = Signal()
order_cancelled = Signal()
