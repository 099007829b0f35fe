import logging
from datetime import UTC, datetime
from decimal import Decimal

import pytest
import responses
from responses import matchers

from channels.connectors.base import (
    ChannelAuthError,
    ChannelPayloadError,
    ChannelRejected,
    OrderLineRef,
    OrderRef,
    Shipment,
    StockUpdate,
)
from channels.connectors.rakuten.connector import RakutenConnector, parse_xml, sale_from_rakuten, sales_page
from tests.channels.connectors.conftest import RAKUTEN_BASE, MemoryStore, fixture_text, rakuten_config

TOKEN = "rk-token-secret-42"
SALES = f"{RAKUTEN_BASE}/sales_ws"
STOCK = f"{RAKUTEN_BASE}/stock_ws"
OK = "<{0}result><response><status>OK</status></response></{0}result>"
EMPTY_NEW_SALES = "<getnewsalesresult><response><nexttoken/><sales/></response></getnewsalesresult>"


def action(name, **params):
    return matchers.query_param_matcher({"action": name, **params}, strict_match=False)


def connector(limiter, token=TOKEN):
    rakuten = RakutenConnector(rakuten_config(), MemoryStore(token=token), limiter)
    rakuten.sleep = lambda seconds: None
    return rakuten


def test_a_sale_maps_with_one_line_per_item():
    page, next_token = sales_page(parse_xml(fixture_text("rakuten_getcurrentsales_page1.xml").encode()))
    assert next_token == "NEXT-2"
    (sale,) = page.orders
    assert sale.channel_order_id == "5001" and sale.channel_status == "ACCEPTED"
    assert sale.is_paid and not sale.is_cancelled
    assert sale.currency == "EUR" and sale.shipping_tag == "Normal"
    assert sale.buyer_email == "marie@example.fr" and sale.buyer_name == "Marie Curie"
    assert [(i.line_id, i.sku, i.quantity, i.unit_price) for i in sale.items] == [
        ("9001", "MUG-RED", 2, Decimal("12.50")), ("9002", "MUG-BLUE", 1, Decimal("10.00"))]
    assert sale.shipping_cost == Decimal("3.90") and sale.total == Decimal("38.90")
    assert sale.created_at == datetime(2026, 11, 29, 10, 5, tzinfo=UTC)
    assert [e.record_id for e in page.errors] == ["(no purchase id)"]


def test_a_cancelled_sale_is_cancelled_and_unpaid():
    root = parse_xml(fixture_text("rakuten_getcurrentsales_page2.xml").encode())
    sale = sale_from_rakuten(root.find("response/sales/sale"))
    assert sale.is_cancelled and not sale.is_paid and sale.buyer_email is None


@pytest.mark.parametrize("attack", [
    '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]><r>&b;</r>',
    '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>',
])
def test_xml_with_entity_declarations_is_refused(attack):
    with pytest.raises(ChannelPayloadError, match="DOCTYPE or ENTITY"):
        parse_xml(attack.encode())


@responses.activate
def test_entity_attack_in_an_answer_is_refused_before_parsing(limiter):
    responses.add(responses.GET, SALES, body='<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>',
                  match=[action("getnewsales")])
    with pytest.raises(ChannelPayloadError):
        connector(limiter).test_connection()


@responses.activate
def test_invalid_credentials_is_an_auth_error_and_the_token_stays_secret(limiter, caplog):
    caplog.set_level(logging.DEBUG)
    responses.add(responses.GET, SALES, body=(
        f"<error><code>InvalidCredentials</code><message>Token {TOKEN} is not valid</message></error>"))
    with pytest.raises(ChannelAuthError) as caught:
        connector(limiter).test_connection()
    assert TOKEN not in str(caught.value)
    assert all(TOKEN not in record.getMessage() for record in caplog.records)
    assert responses.calls[0].request.params["pwd"] == TOKEN


@responses.activate
def test_new_sales_are_accepted_then_current_sales_are_paged(limiter):
    responses.add(responses.GET, SALES, body=fixture_text("rakuten_getnewsales.xml"), match=[action("getnewsales")])
    responses.add(responses.GET, SALES, body=OK.format("acceptsale"), match=[action("acceptsale", itemid="9001")])
    responses.add(responses.GET, SALES, body="<error><code>SaleAlreadyAccepted</code><message>no</message></error>",
                  match=[action("acceptsale", itemid="9002")])
    responses.add(responses.GET, SALES, body=fixture_text("rakuten_getcurrentsales_page2.xml"),
                  match=[action("getcurrentsales", nexttoken="NEXT-2")])
    responses.add(responses.GET, SALES, body=fixture_text("rakuten_getcurrentsales_page1.xml"),
                  match=[action("getcurrentsales", purchasedate="2026-11-29T10:00:00Z")])
    pages = list(connector(limiter).fetch_orders(datetime(2026, 11, 29, 10, tzinfo=UTC)))
    assert [[o.channel_order_id for o in p.orders] for p in pages] == [["5001"], ["5002"]]
    assert any(e.record_id == "5001" and "9002" in e.reason for e in pages[0].errors)
    actions = [c.request.params["action"] for c in responses.calls]
    assert actions[:3] == ["getnewsales", "acceptsale", "acceptsale"]
    assert all(c.request.params["login"] == "shopfr" for c in responses.calls)


@responses.activate
def test_push_imports_a_csv_and_reads_per_sku_results(limiter):
    responses.add(responses.POST, STOCK, match=[action("import")],
                  body="<importresult><response><status>OK</status><importid>314</importid></response></importresult>")
    responses.add(responses.GET, STOCK, match=[action("genericimportreport", fileid="314")],
                  body="<genericimportreportresult><response><status>Pending</status></response>"
                       "</genericimportreportresult>")
    responses.add(responses.GET, STOCK, match=[action("genericimportreport", fileid="314")], body=(
        "<genericimportreportresult><response><status>Treated</status>"
        "<product><sku>MUG-RED</sku><status>OK</status><error/></product>"
        "<product><sku>GONE</sku><status>KO</status><error>Unknown SKU</error></product>"
        "</response></genericimportreportresult>"))
    results = connector(limiter).push_listings([
        StockUpdate("MUG-RED", "77", quantity=4, price=Decimal("12.5")),
        StockUpdate("GONE", "", quantity=0),
        StockUpdate("BAD;SKU", "", quantity=1),
    ])
    by_sku = {r.channel_sku: r for r in results}
    assert by_sku["MUG-RED"].accepted
    assert not by_sku["GONE"].accepted and by_sku["GONE"].message == "Unknown SKU"
    assert not by_sku["BAD;SKU"].accepted
    upload = responses.calls[0].request
    assert b"MUG-RED;4;12.50\nGONE;0;\n" in upload.body
    assert b"BAD;SKU" not in upload.body


@responses.activate
def test_despatch_and_cancellation_go_item_by_item(limiter):
    responses.add(responses.GET, SALES, body=OK.format("settrackingpackageinfos"),
                  match=[action("settrackingpackageinfos")])
    responses.add(responses.GET, SALES, body=OK.format("cancelitem"), match=[action("cancelitem")])
    order = OrderRef("5001", lines=(OrderLineRef("9001", "MUG-RED", 2), OrderLineRef("9002", "MUG-BLUE", 1)))
    rakuten = connector(limiter)
    rakuten.confirm_despatch(order, Shipment(tracking_number="CP123", carrier="Colissimo"))
    rakuten.cancel_order(order, "Rupture de stock")
    sent = [(c.request.params["action"], c.request.params["itemid"]) for c in responses.calls]
    assert sent == [("settrackingpackageinfos", "9001"), ("settrackingpackageinfos", "9002"),
                    ("cancelitem", "9001"), ("cancelitem", "9002")]
    assert responses.calls[0].request.params["transporter_name"] == "Colissimo"
    assert responses.calls[2].request.params["comment"] == "Rupture de stock"


@responses.activate
def test_a_refused_despatch_is_rejected(limiter):
    responses.add(responses.GET, SALES, body="<error><code>InvalidItem</code><message>Unknown item</message></error>")
    with pytest.raises(ChannelRejected, match="Unknown item"):
        connector(limiter).confirm_despatch(OrderRef("1", lines=(OrderLineRef("9", "X", 1),)),
                                            Shipment(tracking_number="T", carrier="C"))


@responses.activate
def test_listings_export_pages_with_progress(limiter):
    responses.add(responses.GET, STOCK, body=fixture_text("rakuten_export_page2.xml"),
                  match=[action("export", nexttoken="EXP-2")])
    responses.add(responses.GET, STOCK, body=fixture_text("rakuten_export_page1.xml"), match=[action("export")])
    pages = list(connector(limiter).fetch_listings())
    assert [(p.done, p.total) for p in pages] == [(2, 3), (3, 3)]
    assert [(li.channel_sku, li.external_id, li.quantity) for li in pages[0].listings] == [
        ("MUG-RED", "77", 4), ("MUG-BLUE", "78", 0)]


@responses.activate
def test_reauthorise_with_a_new_token_saves_it_once_it_works(limiter):
    responses.add(responses.GET, SALES, body=EMPTY_NEW_SALES, match=[action("getnewsales", pwd="new-token-99")])
    rakuten = connector(limiter, token="old-token")
    result = rakuten.reauthorise(authorization_code="new-token-99")
    assert result.ok and "new-token-99" not in result.message
    assert rakuten.credentials.load()["token"] == "new-token-99"
