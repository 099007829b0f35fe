"""Any EKM order, order items or products payload gives parsed records or per-record errors, never a crash."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from channels.connectors.ekm.mapper import listings_from_products, order_from_ekm
from channels.connectors.values import RECORD_ERRORS
from tests.channels.connectors.conftest import fixture_json
from tests.channels.connectors.property_strategies import (
    JSON,
    assert_sound_listing,
    assert_sound_order,
    spoiled,
)

ORDERS = fixture_json("ekm_orders_page1.json")["data"]
ITEMS = fixture_json("ekm_order_123_items.json")["data"]
PRODUCTS = fixture_json("ekm_products_page1.json")["data"] + fixture_json("ekm_products_page2.json")["data"]
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def parsed_or_record_error(order, items):
    """What the connector does with one order: the mapped order, or None when it reports a record error."""
    try:
        mapped = order_from_ekm(order, items)
    except RECORD_ERRORS:
        return None
    assert_sound_order(mapped)
    return mapped


@FAST
@given(st.sampled_from(ORDERS).flatmap(spoiled), st.just(ITEMS))
def test_a_spoiled_order_is_parsed_or_a_record_error(order, items):
    parsed_or_record_error(order, items)


@FAST
@given(st.sampled_from(ORDERS), spoiled(ITEMS))
def test_spoiled_items_are_parsed_or_a_record_error(order, items):
    parsed_or_record_error(order, items)


@FAST
@given(JSON, st.lists(JSON, max_size=3))
def test_any_json_order_is_parsed_or_a_record_error(order, items):
    parsed_or_record_error(order, items)


@FAST
@given(st.lists(st.one_of(st.sampled_from(PRODUCTS).flatmap(spoiled), JSON), max_size=5))
def test_spoiled_products_are_listings_or_record_errors(products):
    listings, errors = listings_from_products(products)
    for listing in listings:
        assert_sound_listing(listing)
    assert all(error.reason for error in errors)


@FAST
@given(st.sampled_from(PRODUCTS).flatmap(spoiled))
def test_a_spoiled_product_never_hides_another(product):
    listings, _ = listings_from_products([product, PRODUCTS[0]])
    assert PRODUCTS[0]["product_code"] in {listing.channel_sku for listing in listings}


def test_a_good_order_still_parses():
    assert parsed_or_record_error(ORDERS[0], ITEMS) is not None


@pytest.mark.parametrize("items", [[{"id": 1, "quantity": 1, "item_price": 1, "product_code": {"a": 1}}]])
def test_an_object_where_the_sku_belongs_is_a_record_error(items):
    assert parsed_or_record_error(ORDERS[0], items) is None
