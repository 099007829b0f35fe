"""Hypothesis strategies shared by the mapper property tests: arbitrary JSON, and real records spoiled.

A channel's bad record is rarely random noise; it is a good record with one field missing, of the
wrong type or out of range. So besides arbitrary JSON the strategies take a fixture record and
replace or drop one value anywhere in it.
"""

from __future__ import annotations

import copy
from datetime import datetime
from decimal import Decimal
from typing import Any

from hypothesis import strategies as st

from channels.connectors.base import ExternalListing, ExternalOrder

TEXT = st.text(max_size=30)
# Values a channel sends where another type was expected: numbers out of range, odd strings, nesting.
ODD_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True), TEXT,
    st.sampled_from(["", " ", "NaN", "Infinity", "-1", "1e999", "1e30", "0x10", "１２", "2026-13-45T99:99:99Z",
                     "9999-12-31T23:59:59Z", "0001-01-01T00:00:00Z", "12.345.6", "\x00", "٣"]),
)
JSON = st.recursive(ODD_SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
                    max_leaves=12)


def _paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, child in value.items():
            found += _paths(child, prefix + (key,))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += _paths(child, prefix + (index,))
    return found


@st.composite
def spoiled(draw, record: Any, *, changes: int = 3) -> Any:
    """`record` with up to `changes` values replaced by odd JSON or removed."""
    spoilt = copy.deepcopy(record)
    for _ in range(draw(st.integers(min_value=1, max_value=changes))):
        paths = _paths(spoilt)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = spoilt
        for step in path[:-1]:
            parent = parent[step]
        if draw(st.booleans()) and isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent[path[-1]] = draw(JSON)
    return spoilt


def assert_sound_order(order: ExternalOrder) -> None:
    """What a mapper hands the sync services is typed as promised, whatever the payload was."""
    assert isinstance(order.channel_order_id, str) and order.channel_order_id
    texts = [order.channel_status, order.buyer_name, order.shipping_tag, *vars(order.shipping_address).values()]
    assert all(isinstance(value, str) for value in texts), texts
    assert order.currency is None or isinstance(order.currency, str)
    assert order.buyer_email is None or isinstance(order.buyer_email, str)
    assert isinstance(order.created_at, datetime) and order.created_at.tzinfo is not None
    assert isinstance(order.updated_at, datetime) and order.updated_at.tzinfo is not None
    for amount in (order.subtotal, order.shipping_cost, order.total, order.tax):
        assert amount is None or (isinstance(amount, Decimal) and amount.is_finite())
    for item in order.items:
        assert isinstance(item.quantity, int) and not isinstance(item.quantity, bool)
        assert isinstance(item.unit_price, Decimal) and item.unit_price.is_finite()
        texts = [item.sku, item.line_id, item.title, item.external_product_id]
        assert all(isinstance(value, str) for value in texts), texts


def assert_sound_listing(listing: ExternalListing) -> None:
    assert isinstance(listing.channel_sku, str) and listing.channel_sku.strip()
    assert isinstance(listing.external_id, str) and isinstance(listing.title, str)
    assert listing.quantity is None or (isinstance(listing.quantity, int) and not isinstance(listing.quantity, bool))
    assert listing.price is None or (isinstance(listing.price, Decimal) and listing.price.is_finite())
