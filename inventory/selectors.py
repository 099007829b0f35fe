"""Reads of stock: levels per location with what open orders hold, and the movement ledger."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from django.db.models import F, OuterRef, Q, QuerySet, Subquery, Sum
from django.db.models.functions import Coalesce

from config.batching import chunks, id_batch_size
from inventory.models import KitComponent, Location, StockItem, StockLevel, StockMovement


def stock_levels_for_item(*, stock_item_id: int) -> QuerySet[StockLevel]:
    """Every level of one item with its location, and `available_qty` (may be negative: oversold)."""
    return (
        StockLevel.objects.filter(stock_item_id=stock_item_id)
        .select_related("location")
        .annotate(available_qty=F("quantity") - F("in_open_orders"))
        .order_by("location__name")
    )


def stock_movements_for_item(*, stock_item_id: int, limit: int = 50) -> QuerySet[StockMovement]:
    """The latest movements of one item, newest first; for a kit, its components' movements when it was sold."""
    return (
        StockMovement.objects.filter(Q(stock_item_id=stock_item_id) | Q(kit_id=stock_item_id))
        .select_related("location", "user", "stock_item", "kit")
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


# (component id, quantity per kit)
KitParts = tuple[tuple[int, int], ...]


def kit_parts(*, kit_ids: Iterable[int]) -> dict[int, KitParts]:
    """The components of those of these stock items that are kits, with the quantity of each per kit."""
    parts: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for chunk in chunks(sorted(set(kit_ids)), id_batch_size()):
        rows = KitComponent.objects.filter(kit_id__in=chunk).order_by("kit_id", "component_id")
        for kit_id, component_id, quantity in rows.values_list("kit_id", "component_id", "quantity"):
            parts[kit_id].append((component_id, quantity))
    return {kit_id: tuple(rows) for kit_id, rows in parts.items()}


def kits_containing(*, component_ids: Iterable[int]) -> dict[int, KitParts]:
    """Every kit with one of these stock items among its components, with all of its components."""
    kit_ids: set[int] = set()
    for chunk in chunks(sorted(set(component_ids)), id_batch_size()):
        kit_ids.update(KitComponent.objects.filter(component_id__in=chunk).values_list("kit_id", flat=True))
    return kit_parts(kit_ids=kit_ids)


def warehouse_ids() -> frozenset[int]:
    """The hub's own warehouses: where a kit is made of its components (at an external centre, a kit is what
    the fulfiller stocks, packed)."""
    return frozenset(Location.objects.filter(kind=Location.Kind.WAREHOUSE).values_list("pk", flat=True))


def kits_floor(available: int, per_kit: int) -> int:
    """Whole kits a component's available quantity makes: rounded down, so an oversold component (below 0) makes
    fewer than none rather than none."""
    return available // per_kit


@dataclass(frozen=True)
class KitComponentAvailable:
    sku: str
    per_kit: int
    available: int

    @property
    def kits(self) -> int:
        return kits_floor(self.available, self.per_kit)


@dataclass(frozen=True)
class KitAvailableAt:
    """What a kit's components make at one location, and the component that limits it."""

    location_id: int
    components: tuple[KitComponentAvailable, ...]

    @property
    def available(self) -> int:
        return min(component.kits for component in self.components)

    @property
    def limiting(self) -> KitComponentAvailable:
        return min(self.components, key=lambda component: (component.kits, component.sku))


def kit_available_by_location(*, kit_id: int, location_ids: Sequence[int]) -> list[KitAvailableAt]:
    """A kit's availability at each of these locations from its components (available = physical less open
    orders), for the explanation on its page; the quantity rule in SQL computes the same."""
    parts = kit_parts(kit_ids=[kit_id]).get(kit_id, ())
    component_ids = [component_id for component_id, _ in parts]
    skus = dict(StockItem.objects.filter(pk__in=component_ids).values_list("pk", "sku"))
    levels = {
        (item_id, location_id): available
        for item_id, location_id, available in StockLevel.objects.filter(
            stock_item_id__in=component_ids, location_id__in=list(location_ids)
        ).values_list("stock_item_id", "location_id", F("quantity") - F("in_open_orders"))
    }
    return [
        KitAvailableAt(
            location_id=location_id,
            components=tuple(
                KitComponentAvailable(
                    sku=skus[component_id], per_kit=per_kit, available=levels.get((component_id, location_id), 0)
                )
                for component_id, per_kit in parts
            ),
        )
        for location_id in location_ids
    ] if parts else []


def stock_item_is_kit(*, stock_item_id: int) -> bool:
    return KitComponent.objects.filter(kit_id=stock_item_id).exists()
