"""Reads of stock: levels per location with what open orders hold, and the movement ledger."""

from __future__ import annotations

from django.db.models import F, QuerySet

from inventory.models import StockLevel, StockMovement


def stock_levels_for_item(*, stock_item_id: int) -> QuerySet[StockLevel]:
    """Every level of one item with its location, and `available_qty` (may be negative: oversold)."""
    return (
        StockLevel.objects.filter(stock_item_id=stock_item_id)
        .select_related("location")
        .annotate(available_qty=F("quantity") - F("in_open_orders"))
        .order_by("location__name")
    )


def stock_movements_for_item(*, stock_item_id: int, limit: int = 50) -> QuerySet[StockMovement]:
    """The latest movements of one item, newest first."""
    return (
        StockMovement.objects.filter(stock_item_id=stock_item_id)
        .select_related("location", "user")
        .order_by("-created_at", "-id")[:limit]
    )
