"""Any Rakuten XML answer gives parsed records, per-record errors or one ChannelPayloadError, never a crash."""

import xml.etree.ElementTree as ET

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from channels.connectors.base import ChannelPayloadError, StockUpdate
from channels.connectors.rakuten.mapper import (
    adverts,
    adverts_total,
    items_awaiting_acceptance,
    listing_from_advert,
    next_token,
    push_results_from_report,
    rakuten_error,
    response,
    sales_page,
    xml_document,
)
from channels.connectors.values import RECORD_ERRORS
from tests.channels.connectors.conftest import fixture_text
from tests.channels.connectors.property_strategies import assert_sound_listing, assert_sound_order

SALES = fixture_text("rakuten_getcurrentsales_page1.xml")
EXPORT = fixture_text("rakuten_export_page1.xml")
REPORT = fixture_text("rakuten_importreport.xml")
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
XML_TEXT = st.text(alphabet=st.characters(codec="utf-8", blacklist_categories=("Cs", "Cc")), max_size=20)
ODD_VALUES = st.one_of(XML_TEXT, st.sampled_from(["", "-1", "1e999", "NaN", "Infinity", "1e30", "two", "12,50",
                                                   "31/02/2026-25:61", "01/01/0001-00:00", "٣"]))


@st.composite
def spoiled_xml(draw, document: str) -> bytes:
    """The document with some elements' text replaced, some elements removed, some given a child."""
    root = ET.fromstring(document.encode())
    elements = [element for element in root.iter() if element is not root]
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        element = draw(st.sampled_from(elements))
        choice = draw(st.integers(min_value=0, max_value=2))
        if choice == 0:
            element.text = draw(ODD_VALUES)
        elif choice == 1:
            ET.SubElement(element, draw(st.sampled_from(["amount", "item", "x"]))).text = draw(ODD_VALUES)
        else:
            for parent in root.iter():
                if element in list(parent):
                    parent.remove(element)
                    break
    return ET.tostring(root, encoding="utf-8")


def parsed(content: bytes):
    try:
        return xml_document(content)
    except ChannelPayloadError:
        return None


@FAST
@given(spoiled_xml(SALES))
def test_spoiled_sales_are_orders_or_record_errors(content):
    document = parsed(content)
    page, token = sales_page(document)
    assert isinstance(token, str)
    container = response(document).get("sales")
    # A <sales> element always holds a list of sales, however many.
    sales = container["sale"] if isinstance(container, dict) else []
    assert len(page.orders) + len(page.errors) == len(sales)
    for order in page.orders:
        assert_sound_order(order)
        assert all(item.quantity == 1 for item in order.items)
    assert all(isinstance(item_id, str) and item_id for _, item_id in items_awaiting_acceptance(document))


@FAST
@given(spoiled_xml(EXPORT))
def test_spoiled_adverts_are_listings_or_record_errors(content):
    document = parsed(content)
    assert isinstance(next_token(document), str)
    assert adverts_total(document) is None or isinstance(adverts_total(document), int)
    for advert in adverts(document):
        try:
            listing = listing_from_advert(advert)
        except RECORD_ERRORS:
            continue
        assert_sound_listing(listing)


@FAST
@given(st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_any_bytes_are_a_document_or_a_payload_error(content):
    document = parsed(content)
    if document is not None:
        assert len(document) == 1
        sales_page(document)
        items_awaiting_acceptance(document)
        rakuten_error(document)
        push_results_from_report([StockUpdate(channel_sku="A", external_id="", quantity=1)], document)


@FAST
@given(spoiled_xml(REPORT.replace("GONE;;0", "B;;1")))
def test_a_spoiled_import_report_answers_for_every_update(content):
    updates = [StockUpdate(channel_sku=sku, external_id="", quantity=1) for sku in ("A", "B")]
    results = push_results_from_report(updates, parsed(content))
    assert [result.channel_sku for result in results] == ["A", "B"]
    assert results[0].accepted or results[0].message
