"""Kits: a stock item made of other stock items, whose orders hold and take its components."""

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from inventory.models import KitComponent, StockLevel, StockMovement
from inventory.services import (
    kit_components_set,
    stock_consume,
    stock_level_change,
    stock_levels_set_bulk,
    stock_release,
    stock_reserve,
)
from inventory.signals import stock_changed
from tests.inventory.factories import (
    FbaLocationFactory,
    KitComponentFactory,
    LocationFactory,
    StockItemFactory,
    StockLevelFactory,
)

pytestmark = pytest.mark.django_db


def held(item, location) -> tuple[int, int]:
    """(on hand, in open orders) of an item at a location; (0, 0) where it has no level."""
    level = StockLevel.objects.filter(stock_item=item, location=location).first()
    return (level.quantity, level.in_open_orders) if level else (0, 0)


@pytest.fixture
def warehouse():
    return LocationFactory(name="Main warehouse")


@pytest.fixture
def gift_set(warehouse):
    """A gift set of one mug and two coasters, 10 mugs and 30 coasters on the shelf."""
    kit, mug, coaster = StockItemFactory(sku="GIFT-SET"), StockItemFactory(sku="MUG"), StockItemFactory(sku="COASTER")
    StockLevelFactory(stock_item=mug, location=warehouse, quantity=10)
    StockLevelFactory(stock_item=coaster, location=warehouse, quantity=30)
    kit_components_set(kit_id=kit.pk, components=[(mug.pk, 1), (coaster.pk, 2)])
    return kit, mug, coaster


def problems_of(kit, components) -> list[str]:
    with pytest.raises(ValidationError) as raised:
        kit_components_set(kit_id=kit.pk, components=components)
    return raised.value.messages


def test_a_three_pack_is_one_component_three_times():
    pack, single = StockItemFactory(sku="SOCK-3PK"), StockItemFactory(sku="SOCK")

    assert kit_components_set(kit_id=pack.pk, components=[(single.pk, 3)]) is True

    assert list(KitComponent.objects.values_list("kit__sku", "component__sku", "quantity")) == [
        ("SOCK-3PK", "SOCK", 3)
    ]
    assert kit_components_set(kit_id=pack.pk, components=[(single.pk, 3)]) is False


def test_a_kit_cannot_contain_itself():
    kit, part = StockItemFactory(sku="KIT"), StockItemFactory()

    assert problems_of(kit, [(part.pk, 1), (kit.pk, 1)]) == [
        "A kit cannot contain itself: remove KIT from its components."
    ]
    assert not KitComponent.objects.exists()


def test_the_database_refuses_a_kit_containing_itself_too():
    kit = StockItemFactory()

    with pytest.raises(IntegrityError), transaction.atomic():
        KitComponent.objects.create(kit=kit, component=kit, quantity=1)


def test_kits_of_kits_are_refused_both_ways(gift_set):
    kit, mug, _ = gift_set
    hamper = StockItemFactory(sku="HAMPER")

    assert problems_of(hamper, [(kit.pk, 1)]) == [
        "GIFT-SET is itself a kit: a kit is made of items stocked on their own; list GIFT-SET's components instead."
    ]
    assert "MUG is a component of the kit GIFT-SET: a kit cannot be part of another kit." in problems_of(
        mug, [(hamper.pk, 1)]
    )


def test_a_quantity_below_one_and_a_component_given_twice_are_refused():
    kit, part = StockItemFactory(sku="KIT"), StockItemFactory(sku="PART")

    assert problems_of(kit, [(part.pk, 0)]) == ["PART: the quantity per kit must be a whole number, at least 1."]
    assert problems_of(kit, [(part.pk, 1), (part.pk, 2)]) == [
        "PART is listed twice in KIT: give it once, with the quantity per kit."
    ]


def test_an_item_with_stock_on_the_shelf_cannot_become_a_kit(warehouse):
    item, part = StockItemFactory(sku="BOX"), StockItemFactory()
    StockLevelFactory(stock_item=item, location=warehouse, quantity=4)

    assert problems_of(item, [(part.pk, 1)]) == [
        "BOX has 4 in stock at Main warehouse: a kit has no stock of its own at a warehouse (its components are "
        "the stock); set it to 0 first."
    ]


def test_a_kit_has_no_stock_of_its_own_at_a_warehouse(gift_set, warehouse):
    kit, _, _ = gift_set

    with pytest.raises(ValidationError) as raised:
        stock_level_change(stock_item_id=kit.pk, location_id=warehouse.pk, add=5, note="delivery")
    assert raised.value.message_dict == {
        "change": ["GIFT-SET is a kit: it has no stock of its own at a warehouse; change its components' stock "
                   "instead."]
    }
    with pytest.raises(ValidationError):
        stock_levels_set_bulk(rows=[(kit.pk, warehouse.pk, 5)], reason="import")
    assert held(kit, warehouse) == (0, 0)


def test_amazon_stocks_a_kit_packed_at_its_fulfilment_centre(gift_set):
    kit, mug, _ = gift_set
    fba = FbaLocationFactory()

    stock_levels_set_bulk(rows=[(kit.pk, fba.pk, 7)], reason="fba_sync")
    stock_reserve(lines=[(kit.pk, fba.pk, 2)])

    assert held(kit, fba) == (7, 2)
    assert held(mug, fba) == (0, 0)


def test_an_order_for_a_kit_holds_its_components_and_counts_the_kits_held(gift_set, warehouse):
    kit, mug, coaster = gift_set

    stock_reserve(lines=[(kit.pk, warehouse.pk, 2)])

    assert (held(mug, warehouse), held(coaster, warehouse), held(kit, warehouse)) == ((10, 2), (30, 4), (0, 2))


def test_two_lines_sharing_a_component_hold_it_for_both(gift_set, warehouse):
    kit, mug, _ = gift_set
    mug_set = StockItemFactory(sku="MUG-PAIR")
    kit_components_set(kit_id=mug_set.pk, components=[(mug.pk, 2)])

    stock_reserve(lines=[(kit.pk, warehouse.pk, 3), (mug_set.pk, warehouse.pk, 2), (mug.pk, warehouse.pk, 1)])

    assert held(mug, warehouse) == (10, 3 + 4 + 1)


def test_a_cancelled_kit_order_gives_its_components_back(gift_set, warehouse):
    kit, mug, coaster = gift_set
    stock_reserve(lines=[(kit.pk, warehouse.pk, 2)])

    stock_release(lines=[(kit.pk, warehouse.pk, 2)])

    assert (held(mug, warehouse), held(coaster, warehouse), held(kit, warehouse)) == ((10, 0), (30, 0), (0, 0))


def test_a_despatched_kit_takes_its_components_off_the_shelf_in_the_ledger(gift_set, warehouse):
    kit, mug, coaster = gift_set
    stock_reserve(lines=[(kit.pk, warehouse.pk, 2), (mug.pk, warehouse.pk, 1)])

    stock_consume(lines=[(kit.pk, warehouse.pk, 2), (mug.pk, warehouse.pk, 1)], reference="EKM order 1001")

    assert (held(mug, warehouse), held(coaster, warehouse), held(kit, warehouse)) == ((7, 0), (26, 0), (0, 0))
    ledger = StockMovement.objects.values_list("stock_item__sku", "delta", "quantity_after", "kit__sku", "reference")
    assert sorted(ledger, key=lambda row: (row[0], row[2])) == [
        ("COASTER", -4, 26, "GIFT-SET", "EKM order 1001"),
        ("MUG", -2, 7, "GIFT-SET", "EKM order 1001"),
        ("MUG", -1, 9, None, "EKM order 1001"),
    ]


def test_a_kit_cannot_be_despatched_beyond_its_components_on_the_shelf(gift_set, warehouse):
    kit, mug, _ = gift_set
    stock_reserve(lines=[(kit.pk, warehouse.pk, 11)])

    with pytest.raises(ValidationError, match="Cannot despatch 11 of MUG from Main warehouse: only 10 in stock."):
        stock_consume(lines=[(kit.pk, warehouse.pk, 11)])
    assert held(mug, warehouse) == (10, 11)


def test_changing_a_kits_components_moves_what_its_open_orders_hold(gift_set, warehouse):
    kit, mug, coaster = gift_set
    ribbon = StockItemFactory(sku="RIBBON")
    stock_reserve(lines=[(kit.pk, warehouse.pk, 3)])

    kit_components_set(kit_id=kit.pk, components=[(mug.pk, 1), (ribbon.pk, 1)])

    assert (held(mug, warehouse), held(coaster, warehouse), held(ribbon, warehouse)) == ((10, 3), (30, 0), (0, 3))
    stock_release(lines=[(kit.pk, warehouse.pk, 3)])
    assert (held(mug, warehouse), held(ribbon, warehouse), held(kit, warehouse)) == ((10, 0), (0, 0), (0, 0))


def test_a_components_stock_change_announces_the_kits_made_of_it(
    gift_set, warehouse, django_capture_on_commit_callbacks
):
    kit, mug, _ = gift_set
    other = StockItemFactory()
    KitComponentFactory(component=other)
    sent = []

    def listener(sender, *, stock_item_ids, price_changed, **kwargs):
        sent.append(stock_item_ids)

    stock_changed.connect(listener, dispatch_uid="kits-listener")
    try:
        with django_capture_on_commit_callbacks(execute=True):
            stock_level_change(stock_item_id=mug.pk, location_id=warehouse.pk, add=1, note="found one")
    finally:
        stock_changed.disconnect(dispatch_uid="kits-listener")
    assert sent == [frozenset({mug.pk, kit.pk})]
