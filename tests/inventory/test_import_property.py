"""Any CSV given to the stock import sets every level it names, or names the bad line and changes nothing."""

import csv
import io

import pytest
from django.core.exceptions import ValidationError
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inventory.models import StockLevel, StockMovement
from inventory.services import stock_import_csv
from tests.inventory.factories import LocationFactory, StockItemFactory, StockLevelFactory

pytestmark = pytest.mark.django_db

SKUS = ["MUG", "LAMP", "mug"]
LOCATIONS = ["Main", "main", "Shop"]
ODD = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["", " ", "-1", "1.5", "1e3", "1_000", " 7 ", "٣", "NaN", "99999999999", str(2**31),
                     "2147483647", "0", "\x00", "MUG\x00", "x" * 300]),
)
QUANTITY = st.one_of(st.integers(min_value=-5, max_value=2**40).map(str), ODD)
ROW = st.tuples(st.one_of(st.sampled_from(SKUS), ODD), st.one_of(st.sampled_from(LOCATIONS), ODD), QUANTITY)
HEADER = st.sampled_from([["sku", "location", "quantity"], ["Quantity", "SKU", "Location"],
                          ["sku", "quantity"], ["sku", "location", "quantity", "note"]])
SETTINGS = settings(max_examples=120, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@pytest.fixture
def shop():
    main, shop = LocationFactory(name="Main", is_default=True), LocationFactory(name="Shop")
    for sku in ("MUG", "LAMP"):
        item = StockItemFactory(sku=sku)
        StockLevelFactory(stock_item=item, location=main, quantity=3)
        StockLevelFactory(stock_item=item, location=shop, quantity=1)


def csv_text(header, rows) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    for row in rows:
        writer.writerow(row[: len(header)] if len(header) < 3 else [*row, *[""] * (len(header) - 3)])
    return out.getvalue()


def snapshot():
    return dict(StockLevel.objects.values_list("pk", "quantity")), StockMovement.objects.count()


def import_outcome(content):
    """(changed levels, None) or (None, the ValidationError); any other exception fails the test."""
    before = snapshot()
    with transaction.atomic():
        try:
            return stock_import_csv(file=io.BytesIO(content)), None
        except ValidationError as error:
            assert snapshot() == before, "a refused file changed stock"
            return None, error
        finally:
            transaction.set_rollback(True)


def assert_names_a_line_or_the_file(error: ValidationError):
    messages = error.message_dict.get("file", []) if hasattr(error, "error_dict") else error.messages
    assert messages and all(message.startswith("Line ") or "file" in message.lower() for message in messages), messages


@SETTINGS
@given(HEADER, st.lists(ROW, max_size=6))
def test_any_rows_set_every_level_or_name_the_line_and_change_nothing(shop, header, rows):
    changed, error = import_outcome(csv_text(header, rows).encode())
    if error is not None:
        assert_names_a_line_or_the_file(error)
    else:
        assert changed >= 0


@SETTINGS
@given(st.binary(max_size=120) | st.text(max_size=120).map(lambda t: t.encode("utf-8", "surrogatepass")))
def test_any_bytes_are_imported_or_refused_with_a_reason(shop, content):
    _, error = import_outcome(content)
    if error is not None:
        assert error.messages


def test_a_good_file_sets_the_levels():
    main = LocationFactory(name="Main")
    StockLevelFactory(stock_item=StockItemFactory(sku="MUG"), location=main, quantity=3)
    assert import_outcome(b"sku,location,quantity\nMUG,main,9\n")[0] == 1


@pytest.mark.parametrize(("content", "problem"), [
    # Found by the property tests: each raised out of the import (PostgreSQL's DataError, csv.Error) or,
    # for the quantity, failed the database write, instead of naming the line.
    (b"sku,location,quantity\n\x00,Main,0\n", "Line 2: the row contains a NUL character"),
    (b"\r\x00", "Line 1: the header lacks"),
    (b"sku,location,quantity\nMUG,Main,99999999999\n", "Line 2: the quantity 99999999999 is larger"),
])
def test_files_the_property_tests_found_are_refused_by_line(shop, content, problem):
    _, error = import_outcome(content)
    assert error.message_dict["file"][0].startswith(problem)
