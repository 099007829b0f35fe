"""Any Amazon payload gives parsed records or per-record errors, never an exception that stops the page."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from channels.connectors.amazon.mapper import listings_from_report, orders_page_from_amazon, push_results_from_feed
from channels.connectors.base import ChannelPayloadError, StockUpdate
from tests.channels.connectors.conftest import fixture_json, fixture_text
from tests.channels.connectors.property_strategies import (
    JSON,
    assert_sound_listing,
    assert_sound_order,
    spoiled,
)

# Orders as searchOrders sends them (valid per the contract: tests/contracts/test_amazon.py checks).
GOOD_ORDERS = fixture_json("amazon_orders_page1.json")["orders"] + fixture_json("amazon_orders_page2.json")["orders"]
REPORT = fixture_text("amazon_listings_report.tsv")
HEADER = REPORT.splitlines()[0]
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def assert_every_order_accounted_for(raw_orders, page):
    assert len(page.orders) + len(page.errors) == len(raw_orders)
    for order in page.orders:
        assert_sound_order(order)
    for error in page.errors:
        assert error.record_id and error.reason


@FAST
@given(st.lists(st.one_of(st.sampled_from(GOOD_ORDERS).flatmap(spoiled), JSON), max_size=5))
def test_spoiled_orders_are_each_parsed_or_reported(raw_orders):
    page = orders_page_from_amazon({"orders": raw_orders})
    assert_every_order_accounted_for(raw_orders, page)


@FAST
@given(st.lists(st.sampled_from(GOOD_ORDERS).flatmap(spoiled), max_size=3), st.sampled_from(GOOD_ORDERS))
def test_a_bad_order_never_hides_a_good_one(bad_orders, good):
    page = orders_page_from_amazon({"orders": [*bad_orders, good]})
    assert good["orderId"] in {order.channel_order_id for order in page.orders}


@FAST
@given(JSON)
def test_any_json_body_is_a_page(body):
    if isinstance(body, dict) and isinstance(body.get("orders"), list):
        assert_every_order_accounted_for(body["orders"], orders_page_from_amazon(body))
    elif isinstance(body, dict):
        orders_page_from_amazon(body)


TSV_CELL = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\t\r\n"), max_size=12)


@FAST
@given(st.lists(st.lists(TSV_CELL, min_size=0, max_size=11), max_size=6))
def test_any_report_rows_are_listings_or_line_errors(rows):
    text = "\n".join([HEADER, *("\t".join(cells) for cells in rows)]) + "\n"
    pages = list(listings_from_report(text, page_size=4))
    listings = [listing for page in pages for listing in page.listings]
    errors = [error for page in pages for error in page.errors]
    for listing in listings:
        assert_sound_listing(listing)
    assert all(error.record_id for error in errors)
    assert pages[-1].done == pages[-1].total


@FAST
@given(st.text(max_size=200))
def test_any_text_as_a_report_never_raises(text):
    for page in listings_from_report(text):
        for listing in page.listings:
            assert_sound_listing(listing)


@FAST
@given(JSON)
def test_any_feed_result_gives_one_answer_per_update(report):
    updates = [StockUpdate(channel_sku=f"SKU-{n}", external_id="", quantity=n) for n in range(3)]
    try:
        results = push_results_from_feed(updates, report if isinstance(report, dict) else {"issues": report})
    except ChannelPayloadError:
        return
    assert [result.channel_sku for result in results] == ["SKU-0", "SKU-1", "SKU-2"]


def test_a_feed_result_with_unreadable_issues_is_a_payload_error():
    """Found by the property test above: `{"issues": [None]}` raised AttributeError out of the push."""
    updates = [StockUpdate(channel_sku="SKU-0", external_id="", quantity=1)]
    for report in ({"issues": [None]}, {"issues": True}, {"issues": [{"messageId": "x"}]}):
        with pytest.raises(ChannelPayloadError):
            push_results_from_feed(updates, report)


def test_a_carriage_return_in_a_report_is_a_row_break_not_a_crash():
    """Found by the property test above: a lone '\\r' made csv raise out of the listing download."""
    pages = list(listings_from_report(HEADER + "\nMug\t1\tMUG\t9.99\t3\t\tB0\tDEFAULT\tActive\r0\n"))
    assert [listing.channel_sku for page in pages for listing in page.listings] == ["MUG"]


def test_an_object_where_the_sku_belongs_is_a_record_error():
    """Found by the property test above: a non-text sellerSku or status reached the sync as a dict."""
    order = {**GOOD_ORDERS[0], "fulfillment": {"fulfillmentStatus": {"a": 1}}}
    page = orders_page_from_amazon({"orders": [order]})
    assert not page.orders and page.errors[0].record_id == GOOD_ORDERS[0]["orderId"]
