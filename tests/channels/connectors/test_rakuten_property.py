"""Any Rakuten XML answer gives parsed records, per-record errors or one ChannelPayloadError, never a crash."""

import xml.etree.ElementTree as ET

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from channels.connectors.base import ChannelPayloadError, StockUpdate
from channels.connectors.rakuten.connector import (
    listing_from_advert,
    parse_xml,
    push_results_from_report,
    requested_items,
    sales_page,
)
from channels.connectors.values import RECORD_ERRORS
from tests.channels.connectors.conftest import fixture_text
from tests.channels.connectors.property_strategies import assert_sound_listing, assert_sound_order

SALES = fixture_text("rakuten_getcurrentsales_page1.xml")
EXPORT = fixture_text("rakuten_export_page1.xml")
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
XML_TEXT = st.text(alphabet=st.characters(codec="utf-8", blacklist_categories=("Cs", "Cc")), max_size=20)
ODD_VALUES = st.one_of(XML_TEXT, st.sampled_from(["", "-1", "1e999", "NaN", "Infinity", "1e30", "two", "12,50",
                                                   "2026-13-45T99:99:99Z", "0001-01-01T00:00:00Z", "٣"]))


@st.composite
def spoiled_xml(draw, document: str) -> bytes:
    """The document with some leaf elements' text replaced, some elements removed."""
    root = ET.fromstring(document.encode())
    elements = [element for element in root.iter() if element is not root]
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        element = draw(st.sampled_from(elements))
        if draw(st.booleans()):
            element.text = draw(ODD_VALUES)
        else:
            for parent in root.iter():
                if element in list(parent):
                    parent.remove(element)
                    break
    return ET.tostring(root, encoding="utf-8")


def parsed(content: bytes):
    try:
        return parse_xml(content)
    except ChannelPayloadError:
        return None


@FAST
@given(spoiled_xml(SALES))
def test_spoiled_sales_are_orders_or_record_errors(content):
    root = parsed(content)
    page, next_token = sales_page(root)
    assert isinstance(next_token, str)
    assert len(page.orders) + len(page.errors) == len(root.findall("response/sales/sale"))
    for order in page.orders:
        assert_sound_order(order)
    requested_items(root)


@FAST
@given(spoiled_xml(EXPORT))
def test_spoiled_adverts_are_listings_or_record_errors(content):
    for advert in parsed(content).iterfind("response/advert"):
        try:
            listing = listing_from_advert(advert)
        except RECORD_ERRORS:
            continue
        assert_sound_listing(listing)


@FAST
@given(st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_any_bytes_are_a_document_or_a_payload_error(content):
    root = parsed(content)
    if root is not None:
        sales_page(root)
        requested_items(root)
        push_results_from_report([StockUpdate(channel_sku="A", external_id="", quantity=1)], root)


@FAST
@given(spoiled_xml("<genericimportreportresult><response><status>Treated</status><product><sku>A</sku>"
                   "<status>OK</status><error/></product><product><sku>B</sku><status>KO</status>"
                   "<error>bad</error></product></response></genericimportreportresult>"))
def test_a_spoiled_import_report_answers_for_every_update(content):
    updates = [StockUpdate(channel_sku=sku, external_id="", quantity=1) for sku in ("A", "B")]
    results = push_results_from_report(updates, parsed(content))
    assert [result.channel_sku for result in results] == ["A", "B"]
