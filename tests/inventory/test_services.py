import io
import threading
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, transaction

from inventory.models import StockItem, StockLevel, StockMovement
from inventory.selectors import stock_levels_by_availability
from inventory.services import (
    InsufficientStock,
    stock_consume,
    stock_import_csv,
    stock_item_price_set,
    stock_level_adjust,
    stock_level_set,
    stock_levels_set_bulk,
    stock_release,
    stock_reserve,
)
from inventory.signals import stock_changed
from tests.inventory.factories import LocationFactory, StockItemFactory, StockLevelFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def announced():
    """Every stock_changed sent, as (stock_item_ids, price_changed)."""
    sent = []

    def listener(sender, *, stock_item_ids, price_changed, **kwargs):
        sent.append((stock_item_ids, price_changed))

    stock_changed.connect(listener, dispatch_uid="test-listener")
    yield sent
    stock_changed.disconnect(dispatch_uid="test-listener")


def level_of(item, location) -> tuple[int, int]:
    return StockLevel.objects.values_list("quantity", "in_open_orders").get(stock_item=item, location=location)


def test_adjust_creates_the_level_and_writes_one_movement():
    item, location = StockItemFactory(), LocationFactory()

    stock_level_adjust(stock_item_id=item.pk, location_id=location.pk, delta=5, reason="adjustment", reference="PO 1")

    assert level_of(item, location) == (5, 0)
    movement = StockMovement.objects.get()
    assert (movement.delta, movement.quantity_after, movement.reason, movement.reference) == (
        5, 5, "adjustment", "PO 1"
    )


def test_adjust_refuses_to_go_below_zero_and_changes_nothing():
    level = StockLevelFactory(quantity=2)

    with pytest.raises(ValidationError) as exc:
        stock_level_adjust(
            stock_item_id=level.stock_item_id, location_id=level.location_id, delta=-3, reason="adjustment"
        )

    assert "only 2 in stock" in exc.value.messages[0]
    assert level_of(level.stock_item, level.location) == (2, 0)
    assert not StockMovement.objects.exists()


def test_set_writes_the_difference_and_nothing_when_unchanged():
    level = StockLevelFactory(quantity=10)

    stock_level_set(stock_item_id=level.stock_item_id, location_id=level.location_id, quantity=4, reason="stock_count")
    stock_level_set(stock_item_id=level.stock_item_id, location_id=level.location_id, quantity=4, reason="stock_count")

    assert list(StockMovement.objects.values_list("delta", "quantity_after")) == [(-6, 4)]


def test_bulk_set_writes_only_changed_levels():
    location = LocationFactory()
    same, changed = StockLevelFactory(location=location, quantity=3), StockLevelFactory(location=location, quantity=3)
    new_item = StockItemFactory()

    count = stock_levels_set_bulk(
        rows=[
            (same.stock_item_id, location.pk, 3), (changed.stock_item_id, location.pk, 8), (new_item.pk, location.pk, 2)
        ],
        reason="import",
    )

    assert count == 2
    assert sorted(StockMovement.objects.values_list("stock_item_id", "delta")) == sorted(
        [(changed.stock_item_id, 5), (new_item.pk, 2)]
    )


def test_reserve_creates_missing_levels_and_may_oversell():
    item, location = StockItemFactory(), LocationFactory()
    StockLevelFactory(stock_item=item, location=location, quantity=1)
    other = StockItemFactory()

    stock_reserve(lines=[(item.pk, location.pk, 2), (item.pk, location.pk, 1), (other.pk, location.pk, 4)])

    assert level_of(item, location) == (1, 3)
    assert level_of(other, location) == (0, 4)
    assert not StockMovement.objects.exists()


def test_release_never_goes_below_zero():
    level = StockLevelFactory(quantity=5, in_open_orders=2)

    stock_release(lines=[(level.stock_item_id, level.location_id, 3)])

    assert level_of(level.stock_item, level.location) == (5, 0)


def test_consume_takes_stock_and_open_orders_together():
    level = StockLevelFactory(quantity=5, in_open_orders=3)

    stock_consume(lines=[(level.stock_item_id, level.location_id, 2)], reference="Order 7")

    assert level_of(level.stock_item, level.location) == (3, 1)
    movement = StockMovement.objects.get()
    assert (movement.delta, movement.quantity_after, movement.reason, movement.reference) == (
        -2, 3, StockMovement.Reason.DESPATCH, "Order 7"
    )


def test_consume_refuses_more_than_is_there_naming_sku_and_location():
    item = StockItemFactory(sku="MUG-1")
    location = LocationFactory(name="Leeds")
    StockLevelFactory(stock_item=item, location=location, quantity=1, in_open_orders=2)

    with pytest.raises(InsufficientStock) as exc:
        stock_consume(lines=[(item.pk, location.pk, 2)])

    assert exc.value.messages == ["Cannot despatch 2 of MUG-1 from Leeds: only 1 in stock."]
    assert isinstance(exc.value, ValidationError)
    assert level_of(item, location) == (1, 2)


def test_a_stock_change_is_announced_on_commit_only(announced, django_capture_on_commit_callbacks):
    level = StockLevelFactory(quantity=1)

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        stock_level_adjust(
            stock_item_id=level.stock_item_id, location_id=level.location_id, delta=1, reason="adjustment"
        )
    assert announced == []

    for callback in callbacks:
        callback()
    assert announced == [(frozenset({level.stock_item_id}), False)]


def test_a_rolled_back_change_is_never_announced(announced, django_capture_on_commit_callbacks):
    level = StockLevelFactory(quantity=1)

    with django_capture_on_commit_callbacks(execute=True), pytest.raises(RuntimeError), transaction.atomic():
        stock_reserve(lines=[(level.stock_item_id, level.location_id, 1)])
        raise RuntimeError("the order import failed")

    assert announced == []


def test_every_write_path_announces(announced, django_capture_on_commit_callbacks):
    level = StockLevelFactory(quantity=5)
    line = [(level.stock_item_id, level.location_id, 1)]

    with django_capture_on_commit_callbacks(execute=True):
        stock_reserve(lines=line)
        stock_release(lines=line)
        stock_reserve(lines=line)
        stock_consume(lines=line)
        stock_levels_set_bulk(rows=[(level.stock_item_id, level.location_id, 9)], reason="import")
        stock_item_price_set(stock_item_id=level.stock_item_id, retail_price=Decimal("1.50"))

    assert [price for _, price in announced] == [False] * 5 + [True]
    assert {ids for ids, _ in announced} == {frozenset({level.stock_item_id})}


def test_an_unchanged_price_is_not_announced(announced, django_capture_on_commit_callbacks):
    item = StockItemFactory(retail_price=Decimal("9.99"))

    with django_capture_on_commit_callbacks(execute=True):
        assert not stock_item_price_set(stock_item_id=item.pk, retail_price=Decimal("9.99"))

    assert announced == []


# --- CSV import ----------------------------------------------------------------------------------


def csv_file(text: str, name: str = "stock.csv") -> io.BytesIO:
    handle = io.BytesIO(text.encode())
    handle.name = name
    return handle


def test_import_sets_levels_and_writes_the_ledger():
    item = StockItemFactory(sku="MUG-1")
    LocationFactory(name="Leeds")

    changed = stock_import_csv(file=csv_file("SKU,Location,Quantity\nMUG-1,Leeds,7\n"), user=None)

    assert changed == 1
    assert StockLevel.objects.get(stock_item=item).quantity == 7
    assert StockMovement.objects.get().reason == StockMovement.Reason.IMPORT


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("MUG-1,Leeds,7\nNOPE,Leeds,1\n", "Line 3: no stock item has the SKU 'NOPE'."),
        ("MUG-1,Leeds,7\nMUG-1,York,1\n", "Line 3: no location is called 'York'."),
        ("MUG-1,Leeds,seven\n", "Line 2: the quantity 'seven' is not a whole number."),
        ("MUG-1,Leeds,-1\n", "Line 2: the quantity -1 is negative; physical stock cannot go below zero."),
        ("MUG-1,Leeds,1\nMUG-1,Leeds,2\n", "Line 3: MUG-1 at Leeds is already set on line 2."),
        ("MUG-1,Leeds\n", "Line 2: expected 3 columns, found 2."),
    ],
)
def test_a_bad_row_applies_nothing_and_names_its_line(body, message):
    StockItemFactory(sku="MUG-1")
    LocationFactory(name="Leeds")

    with pytest.raises(ValidationError) as exc:
        stock_import_csv(file=csv_file("sku,location,quantity\n" + body), user=None)

    assert exc.value.message_dict == {"file": [message]}
    assert not StockLevel.objects.exists()
    assert not StockMovement.objects.exists()


def test_a_header_is_required():
    with pytest.raises(ValidationError) as exc:
        stock_import_csv(file=csv_file("MUG-1,Leeds,7\n"), user=None)

    assert exc.value.message_dict["file"][0].startswith("Line 1: the header lacks sku, location, quantity")


def test_import_stock_command(tmp_path):
    StockItemFactory(sku="MUG-1")
    LocationFactory(name="Leeds")
    good = tmp_path / "good.csv"
    good.write_text("sku,location,quantity\nMUG-1,Leeds,4\n")
    out = io.StringIO()

    call_command("import_stock", str(good), stdout=out)

    assert "1 stock levels changed" in out.getvalue()


def test_import_stock_command_fails_on_one_line_and_applies_nothing(tmp_path):
    StockItemFactory(sku="MUG-1")
    LocationFactory(name="Leeds")
    bad = tmp_path / "bad.csv"
    bad.write_text("sku,location,quantity\nMUG-1,Leeds,4\nMUG-1,Leeds,x\n")

    with pytest.raises(CommandError) as exc:
        call_command("import_stock", str(bad))

    assert str(exc.value) == f"{bad}: Line 3: the quantity 'x' is not a whole number. Nothing was imported."
    assert "\n" not in str(exc.value)
    assert not StockLevel.objects.exists()


# --- concurrency ---------------------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_reservations_do_not_lose_updates():
    items = [StockItem.objects.create(sku=f"C-{n}", title="Concurrent") for n in range(3)]
    location = LocationFactory(name="Concurrent warehouse")
    workers, per_worker = 8, 10
    errors = []

    def reserve(worker: int) -> None:
        try:
            for n in range(per_worker):
                # Lines in different orders across workers: pk-ordered locking must not deadlock.
                lines = [(item.pk, location.pk, 1) for item in items]
                stock_reserve(lines=lines[::-1] if (worker + n) % 2 else lines)
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=reserve, args=(worker,)) for worker in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert list(StockLevel.objects.order_by("stock_item__sku").values_list("in_open_orders", flat=True)) == [
        workers * per_worker
    ] * len(items)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_despatches_never_take_more_than_is_there():
    level = StockLevelFactory(quantity=5, in_open_orders=5)
    outcomes = []

    def despatch() -> None:
        try:
            stock_consume(lines=[(level.stock_item_id, level.location_id, 1)])
            outcomes.append("ok")
        except InsufficientStock:
            outcomes.append("short")
        finally:
            connection.close()

    threads = [threading.Thread(target=despatch) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert outcomes.count("ok") == 5
    assert level_of(level.stock_item, level.location) == (0, 0)


def test_the_availability_filter_finds_oversold_out_of_stock_and_in_stock_levels():
    warehouse = LocationFactory()
    rows = {"OVER": (1, 3), "ZERO": (2, 2), "SOME": (5, 1)}
    for sku, (quantity, in_open_orders) in rows.items():
        StockLevel.objects.create(stock_item=StockItemFactory(sku=sku), location=warehouse, quantity=quantity,
                                  in_open_orders=in_open_orders)

    def skus(availability):
        levels = stock_levels_by_availability(StockLevel.objects.all(), availability=availability)
        return sorted(levels.values_list("stock_item__sku", flat=True))

    assert skus("oversold") == ["OVER"]
    assert skus("out") == ["OVER", "ZERO"]
    assert skus("in") == ["SOME"]
