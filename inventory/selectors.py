"""Reads of stock: levels per location with what open orders hold, and the movement ledger."""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import F, OuterRef, Q, QuerySet, Subquery, Sum
from django.db.models.functions import Coalesce

from config.batching import chunks, id_batch_size
from inventory.models import Location, StockItem, StockLevel, StockMovement


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


def stock_items_with_totals(stock_items: QuerySet[StockItem]) -> QuerySet[StockItem]:
    """The items with `total_quantity`, `total_in_open_orders` and `total_available` over every location."""
    # Correlated sums rather than a GROUP BY over every item: PostgreSQL computes them for the page's
    # rows only, so the list costs the same with 100k items as with 100.
    levels = StockLevel.objects.filter(stock_item=OuterRef("pk")).order_by().values("stock_item")

    def total(column: str):
        return Coalesce(Subquery(levels.annotate(total=Sum(column)).values("total")), 0)

    return (
        stock_items.annotate(total_quantity=total("quantity"), total_in_open_orders=total("in_open_orders"))
        .annotate(total_available=F("total_quantity") - F("total_in_open_orders"))
    )


# Available (physical less open orders) at a level, by how staff look for it.
AVAILABILITY = {
    "oversold": Q(available_qty__lt=0),
    "out": Q(available_qty__lte=0),
    "in": Q(available_qty__gt=0),
}


def stock_levels_by_availability(levels: QuerySet[StockLevel], *, availability: str) -> QuerySet[StockLevel]:
    """The levels oversold (available below 0), out of stock (0 or below) or in stock (above 0)."""
    return levels.alias(available_qty=F("quantity") - F("in_open_orders")).filter(AVAILABILITY[availability])


def stock_on_hand(*, pairs: Iterable[tuple[int, int]]) -> dict[tuple[int, int], int]:
    """The physical stock of these (stock item, location) pairs; a pair with no level yet is missing (0)."""
    wanted = set(pairs)
    location_ids = sorted({location_id for _, location_id in wanted})
    on_hand: dict[tuple[int, int], int] = {}
    for chunk in chunks(sorted({item_id for item_id, _ in wanted}), id_batch_size()):
        rows = StockLevel.objects.filter(stock_item_id__in=chunk, location_id__in=location_ids).values_list(
            "stock_item_id", "location_id", "quantity"
        )
        on_hand.update(((item_id, location_id), quantity) for item_id, location_id, quantity in rows)
    return {key: quantity for key, quantity in on_hand.items() if key in wanted}


def default_warehouse_id() -> int | None:
    """The location the stock forms offer first: where orders are allocated, so where most stock moves."""
    return Location.objects.filter(is_default=True).values_list("pk", flat=True).first()
