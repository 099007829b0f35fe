"""What the inventory app announces, so that channels can react without inventory importing them.

`stock_changed` is sent once the transaction that changed stock has committed, with
`stock_item_ids` (frozenset[int]) and `price_changed` (bool). Receivers must not assume they run
inside that transaction: it is over.
"""

from django.dispatch import Signal

stock_changed = Signal()
