import logging
import math
from datetime import UTC, datetime
from decimal import Decimal

import pytest
import responses
from responses import matchers

from channels.connectors.base import (
    ChannelAuthError,
    ChannelPayloadError,
    ChannelRateLimited,
    ChannelRejected,
    ChannelTransientError,
    OrderLineRef,
    OrderRef,
    Shipment,
    StockUpdate,
)
from channels.connectors.contracts import contract_load
from channels.connectors.http import DEFAULT_MAX_WAIT
from channels.connectors.rakuten.client import RATE_LIMITS
from channels.connectors.rakuten.connector import RakutenConnector
from channels.connectors.rakuten.mapper import sale_from_rakuten, sales_page, xml_document
from channels.connectors.ratelimit import InProcessLimiter
from tests.channels.connectors.conftest import RAKUTEN_BASE, MemoryStore, fixture_text, rakuten_config

TOKEN = "rk-token-secret-42"
PROFILE = "4242"
SALES = f"{RAKUTEN_BASE}/sales_ws"
STOCK = f"{RAKUTEN_BASE}/stock_ws"
STATUS = "<{0}><response><status>{1}</status></response></{0}>"
EMPTY_NEW_SALES = "<getnewsalesresult><response><sales/></response></getnewsalesresult>"
IMPORTED = "<importresult><response><importid>314</importid></response></importresult>"


def errorresponse(code, message, *details, type_="Sender"):
    detail = "".join(f"<detail><![CDATA[{d}]]></detail>" for d in details)
    return (f'<?xml version="1.0" encoding="UTF-8"?><errorresponse xmlns="http://pmcdn.priceminister.com/res/schema/'
            f'error"><error><type>{type_}</type><code>{code}</code><message>{message}</message>'
            f"<details>{detail}</details></error></errorresponse>")


def action(name, **params):
    return matchers.query_param_matcher({"action": name, **params}, strict_match=False)


def connector(limiter, token=TOKEN, **config):
    rakuten = RakutenConnector(rakuten_config(extra={"import_profile_id": PROFILE}, **config),
                               MemoryStore(token=token), limiter)
    rakuten.sleep = lambda seconds: None
    return rakuten


def document(name):
    return xml_document(fixture_text(name).encode())


ORDER = OrderRef("5001", lines=(OrderLineRef("9001", "MUG-RED", 1), OrderLineRef("9002", "MUG-RED", 1)))


def test_a_sale_has_one_line_per_item_each_one_unit():
    page, next_token = sales_page(document("rakuten_getcurrentsales_page1.xml"))
    assert next_token == "NEXT-2"
    (sale,) = page.orders
    assert sale.channel_order_id == "5001" and sale.channel_status == "ACCEPTED"
    assert sale.is_paid and not sale.is_cancelled
    assert sale.currency == "EUR" and sale.shipping_tag == "Normal"
    assert sale.buyer_email == "marie@example.fr" and sale.buyer_name == "Marie Curie"
    assert [(i.line_id, i.sku, i.quantity, i.unit_price, i.external_product_id) for i in sale.items] == [
        ("9001", "MUG-RED", 1, Decimal("12.5"), "77"), ("9002", "MUG-RED", 1, Decimal("12.5"), "77"),
        ("9003", "MUG-BLUE", 1, Decimal("10.00"), "78")]
    assert sale.total == Decimal("35.00") and sale.shipping_cost == 0
    assert sale.created_at == datetime(2026, 11, 29, 10, 5, tzinfo=UTC)
    address = sale.shipping_address
    assert (address.line1, address.postcode, address.city, address.country) == ("1 rue Cuvier", "75005", "Paris",
                                                                                  "FR")
    assert [e.record_id for e in page.errors] == ["(no purchase id)"]


def test_a_sale_whose_items_are_all_cancelled_is_cancelled_and_ships_to_its_pick_up_point():
    page, next_token = sales_page(document("rakuten_getcurrentsales_page2.xml"))
    (sale,) = page.orders
    assert next_token == "" and sale.is_cancelled and sale.channel_status == "CANCELLED"
    assert sale.buyer_email is None
    assert (sale.shipping_address.line1, sale.shipping_address.line2) == ("2 place Bellecour", "Tabac du Centre")


def test_one_live_item_keeps_a_sale_open():
    sale = document("rakuten_getcurrentsales_page1.xml")["getcurrentsalesresult"]["response"]["sales"]["sale"][0]
    sale["items"]["item"][0]["itemstatus"] = "CANCELLED"
    mapped = sale_from_rakuten(sale)
    assert not mapped.is_cancelled and mapped.channel_status == "ACCEPTED"


def test_an_iso_8859_1_answer_is_read_with_its_accents():
    """Rakuten has answered ISO-8859-1; such an answer used to be refused as 'not UTF-8'."""
    latin = fixture_text("rakuten_getcurrentsales_page2.xml").replace('encoding="UTF-8"', 'encoding="ISO-8859-1"')
    page, _ = sales_page(xml_document(latin.encode("iso-8859-1")))
    assert page.orders[0].items[0].title == "Théière"


@pytest.mark.parametrize("attack", [
    '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]><r>&b;</r>',
    '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>',
])
def test_xml_with_entity_declarations_is_refused(attack):
    with pytest.raises(ChannelPayloadError, match="DOCTYPE or ENTITY"):
        xml_document(attack.encode())


@responses.activate
def test_entity_attack_in_an_answer_is_refused_before_parsing(limiter):
    responses.add(responses.GET, SALES, body='<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>',
                  match=[action("getnewsales")])
    with pytest.raises(ChannelPayloadError):
        connector(limiter).test_connection()


@responses.activate
def test_a_refused_token_is_an_auth_error_not_an_empty_list_of_sales(limiter, caplog):
    """The errorresponse root used to be taken for an answer with no sales."""
    caplog.set_level(logging.DEBUG)
    responses.add(responses.GET, SALES, body=errorresponse(
        "InvalidUserConnection", "Unknown user or password.", f"Incorrect login or password for pwd={TOKEN}"))
    rakuten = connector(limiter)
    with pytest.raises(ChannelAuthError, match="Unknown user or password") as caught:
        rakuten.test_connection()
    with pytest.raises(ChannelAuthError):
        list(rakuten.fetch_orders(datetime(2026, 11, 29, tzinfo=UTC)))
    assert TOKEN not in str(caught.value)
    assert all(TOKEN not in record.getMessage() for record in caplog.records)
    assert responses.calls[0].request.params["pwd"] == TOKEN


@responses.activate
def test_a_refused_despatch_keeps_rakutens_message_and_details(limiter):
    responses.add(responses.GET, SALES, match=[action("settrackingpackageinfos")], body=errorresponse(
        "ParameterError", "Problem with parameters.", "The item 9001 cannot be shipped"))
    with pytest.raises(ChannelRejected, match=r"ParameterError: Problem with parameters\. \(The item 9001 cannot"):
        connector(limiter).confirm_despatch(ORDER, Shipment(tracking_number="T1", carrier="Colissimo"))


@responses.activate
@pytest.mark.parametrize(("body", "error"), [
    (errorresponse("InvalidUserRights", "Quota exceeded.", "You have exceeded the maximum number of requests per "
                                                           "hour."), ChannelRateLimited),
    (errorresponse("ServerError", "Server not able to fullfill request.", type_="ServerError"), ChannelTransientError),
    (errorresponse("InvalidUserRights", "You may not use this web service."), ChannelRejected),
])
def test_other_refusals_have_their_own_errors(limiter, body, error):
    responses.add(responses.GET, SALES, body=body)
    with pytest.raises(error):
        connector(limiter).test_connection()


@responses.activate
def test_every_action_is_sent_with_its_own_version(limiter):
    """Every call used to go with getnewsales' 2017-08-07, which Rakuten refuses for the others."""
    responses.add(responses.GET, SALES, body=fixture_text("rakuten_getnewsales.xml"), match=[action("getnewsales")])
    responses.add(responses.GET, SALES, body=STATUS.format("saleacceptanceresult", "Accepted"),
                  match=[action("acceptsale")])
    responses.add(responses.GET, SALES, body=fixture_text("rakuten_getcurrentsales_page2.xml"),
                  match=[action("getcurrentsales")])
    responses.add(responses.GET, SALES, body=STATUS.format("setshippingpackageinfosresult", "OK"),
                  match=[action("settrackingpackageinfos")])
    responses.add(responses.GET, SALES, body=STATUS.format("cancelitemresult", "CANCELLED"),
                  match=[action("cancelitem")])
    responses.add(responses.GET, STOCK, body=fixture_text("rakuten_export_page2.xml"), match=[action("export")])
    responses.add(responses.POST, STOCK, body=IMPORTED, match=[action("import")])
    responses.add(responses.GET, STOCK, body=fixture_text("rakuten_importreport.xml"), match=[action("importreport")])
    rakuten = connector(limiter)
    list(rakuten.fetch_orders(datetime(2026, 11, 29, tzinfo=UTC)))
    list(rakuten.fetch_listings())
    rakuten.push_listings([StockUpdate("MUG-RED", "77", quantity=3)])
    rakuten.confirm_despatch(ORDER, Shipment(tracking_number="T1", carrier="Colissimo"))
    rakuten.cancel_order(ORDER, "Rupture de stock")
    sent = {call.request.params["action"]: call.request.params["version"] for call in responses.calls}
    contract = contract_load("rakuten")
    assert sent == {name: contract.operation(name).spec["query"]["properties"]["version"]["const"] for name in sent}
    assert sent == {"getnewsales": "2017-08-07", "acceptsale": "2010-09-20", "getcurrentsales": "2017-08-07",
                    "export": "2018-06-29", "import": "2010-09-20", "importreport": "2017-02-10",
                    "settrackingpackageinfos": "2016-03-16", "cancelitem": "2011-02-02"}


@responses.activate
def test_new_sales_are_accepted_then_current_sales_are_read_over_the_status_window(limiter):
    responses.add(responses.GET, SALES, body=fixture_text("rakuten_getnewsales.xml"), match=[action("getnewsales")])
    responses.add(responses.GET, SALES, body=STATUS.format("saleacceptanceresult", "Accepted"),
                  match=[action("acceptsale", itemid="9001")])
    responses.add(responses.GET, SALES, body=STATUS.format("saleacceptanceresult", "Refused"),
                  match=[action("acceptsale", itemid="9002")])
    responses.add(responses.GET, SALES, body=fixture_text("rakuten_getcurrentsales_page2.xml"),
                  match=[action("getcurrentsales", nexttoken="NEXT-2")])
    responses.add(responses.GET, SALES, body=fixture_text("rakuten_getcurrentsales_page1.xml"),
                  match=[action("getcurrentsales", purchasedate="2026-11-15")])
    pages = list(connector(limiter).fetch_orders(datetime(2026, 11, 29, 10, tzinfo=UTC)))
    assert [[o.channel_order_id for o in p.orders] for p in pages] == [["5001"], ["5002"]]
    assert any(e.record_id == "5001" and "9002" in e.reason and "Refused" in e.reason for e in pages[0].errors)
    accepted = [c.request.params["itemid"] for c in responses.calls if c.request.params["action"] == "acceptsale"]
    # 9003 is already ACCEPTED: only the items awaiting acceptance (REQUESTED, TO_CONFIRM) are accepted.
    assert accepted == ["9001", "9002"]
    assert all(c.request.params["login"] == "shopfr" for c in responses.calls)


@responses.activate
def test_a_sale_bought_before_the_last_download_and_cancelled_since_is_seen(limiter):
    """Current sales used to be asked only from the last download on, so an older sale's cancellation was missed."""
    responses.add(responses.GET, SALES, body=EMPTY_NEW_SALES, match=[action("getnewsales")])
    responses.add(responses.GET, SALES, body=fixture_text("rakuten_getcurrentsales_page2.xml"),
                  match=[action("getcurrentsales", purchasedate="2026-11-20")])
    # The cancelled sale was bought on the 29th at 11:00; the last download ran on December the 4th.
    (page,) = list(connector(limiter).fetch_orders(datetime(2026, 12, 4, 9, tzinfo=UTC)))
    assert [(o.channel_order_id, o.is_cancelled) for o in page.orders] == [("5002", True)]


@responses.activate
def test_a_first_download_from_the_beginning_of_time_asks_from_year_one(limiter):
    responses.add(responses.GET, SALES, body=EMPTY_NEW_SALES, match=[action("getnewsales")])
    responses.add(responses.GET, SALES, body=fixture_text("rakuten_getcurrentsales_page2.xml"),
                  match=[action("getcurrentsales", purchasedate="0001-01-01")])
    assert len(list(connector(limiter).fetch_orders(datetime(1, 1, 1, tzinfo=UTC)))) == 1


@responses.activate
def test_push_uploads_the_profiles_layout_and_reads_its_import_report(limiter):
    """The push used to send header-less sku;quantity;price with no profile and poll genericimportreport."""
    responses.add(responses.POST, STOCK, body=IMPORTED, match=[action("import", profileid=PROFILE)])
    responses.add(responses.GET, STOCK, match=[action("importreport", fileid="314")],
                  body="<importreportresult><response><processstatus>RUNNING</processstatus></response>"
                       "</importreportresult>")
    responses.add(responses.GET, STOCK, body=fixture_text("rakuten_importreport.xml"),
                  match=[action("importreport", fileid="314")])
    results = connector(limiter).push_listings([
        StockUpdate("MUG-RED", "77", quantity=4, price=Decimal("12.5")),
        StockUpdate("GONE", "", quantity=0),
        StockUpdate("BAD;SKU", "", quantity=1),
    ])
    by_sku = {r.channel_sku: r for r in results}
    assert by_sku["MUG-RED"].accepted
    assert not by_sku["GONE"].accepted and by_sku["GONE"].message == "Référence vendeur inconnue"
    assert not by_sku["BAD;SKU"].accepted
    upload = responses.calls[0].request
    assert b"\r\nMUG-RED;12.50;4\nGONE;;0\n\r\n" in upload.body
    assert b"BAD;SKU" not in upload.body
    assert [c.request.params["action"] for c in responses.calls] == ["import", "importreport", "importreport"]


class Clock:
    def __init__(self):
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.slept.append(seconds)
        self.now += seconds


@responses.activate
def test_a_flurry_of_pushes_goes_at_once_and_the_next_waits_its_turn_rather_than_fail():
    """Rakuten publishes no limit, so the hub's own import bucket must not hold a flurry back (it made the fourth
    push of a burst of orders wait 10 s); past the burst a push waits for its turn, within what a call may wait."""
    clock = Clock()
    limiter = InProcessLimiter(clock=clock, sleep=clock.sleep)
    responses.add(responses.POST, STOCK, body=IMPORTED)
    responses.add(responses.GET, STOCK, body=fixture_text("rakuten_importreport.xml"))
    rakuten = connector(limiter)
    quota = RATE_LIMITS["import"]
    # The bench's flurry: the baseline push, one per channel's order page, the channel's own orders.
    assert quota.burst >= 4
    for _push in range(quota.burst):
        assert rakuten.push_listings([StockUpdate("MUG-RED", "77", quantity=4)])[0].accepted
    assert clock.slept == []
    assert rakuten.push_listings([StockUpdate("MUG-RED", "77", quantity=3)])[0].accepted
    assert clock.slept == [pytest.approx(1 / quota.rate)]
    assert 1 / quota.rate <= DEFAULT_MAX_WAIT


@responses.activate
def test_a_download_starts_with_the_operation_its_poll_is_paced_by(limiter):
    responses.add(responses.GET, SALES, body=EMPTY_NEW_SALES, match=[action("getnewsales")])
    responses.add(responses.GET, SALES, body=fixture_text("rakuten_getcurrentsales_page1.xml").replace(
        "<nexttoken>NEXT-2</nexttoken>", ""), match=[action("getcurrentsales")])
    list(connector(limiter).fetch_orders(datetime(2026, 11, 29, 10, tzinfo=UTC)))
    assert responses.calls[0].request.params["action"] == RakutenConnector.order_download_operation
    rate = RATE_LIMITS[RakutenConnector.order_download_operation].rate
    assert RakutenConnector.order_download_interval() == math.ceil(1 / (RakutenConnector.order_download_share * rate))
    assert RakutenConnector.order_download_interval() * rate >= 1


@responses.activate
def test_a_file_rakuten_could_not_process_refuses_every_update(limiter):
    responses.add(responses.POST, STOCK, body=IMPORTED)
    responses.add(responses.GET, STOCK, body=(
        "<importreportresult><response><processstatus>PROCESS_FAILED</processstatus><errorlist><error><data/>"
        "<errorreport>Fichier vide</errorreport></error></errorlist></response></importreportresult>"))
    results = connector(limiter).push_listings([StockUpdate("MUG-RED", "77", quantity=4)])
    assert [(r.accepted, r.message) for r in results] == [
        (False, "Rakuten could not process the stock file: Fichier vide")]


@responses.activate
def test_push_without_an_import_profile_is_refused_before_any_call(limiter):
    rakuten = RakutenConnector(rakuten_config(), MemoryStore(token=TOKEN), limiter)
    with pytest.raises(ChannelRejected, match="import profile id"):
        rakuten.push_listings([StockUpdate("MUG-RED", "77", quantity=4)])
    assert len(responses.calls) == 0


@responses.activate
def test_despatch_and_cancellation_go_item_by_item(limiter):
    responses.add(responses.GET, SALES, body=STATUS.format("setshippingpackageinfosresult", "OK"),
                  match=[action("settrackingpackageinfos")])
    responses.add(responses.GET, SALES, body=STATUS.format("cancelitemresult", "CANCELLED"),
                  match=[action("cancelitem")])
    rakuten = connector(limiter)
    rakuten.confirm_despatch(ORDER, Shipment(tracking_number="CP123", carrier="colissimo"))
    rakuten.cancel_order(ORDER, "Rupture de stock")
    sent = [(c.request.params["action"], c.request.params["itemid"]) for c in responses.calls]
    assert sent == [("settrackingpackageinfos", "9001"), ("settrackingpackageinfos", "9002"),
                    ("cancelitem", "9001"), ("cancelitem", "9002")]
    assert responses.calls[0].request.params["transporter_name"] == "Colissimo"
    assert "tracking_url" not in responses.calls[0].request.params
    assert responses.calls[2].request.params["comment"] == "Rupture de stock"


@pytest.mark.parametrize(("carrier", "sent"), [
    ("Colis Privé", "Colis Prive"), ("CHRONOPOST", "Chronopost"), ("royal-mail", "Royal Mail"), ("dpd uk", "DPD UK"),
])
@responses.activate
def test_the_postal_services_carrier_is_matched_to_rakutens_list(limiter, carrier, sent):
    responses.add(responses.GET, SALES, body=STATUS.format("setshippingpackageinfosresult", "OK"))
    connector(limiter).confirm_despatch(OrderRef("1", lines=(OrderLineRef("9", "X", 1),)),
                                        Shipment(tracking_number="T", carrier=carrier))
    assert responses.calls[0].request.params["transporter_name"] == sent


@responses.activate
def test_a_carrier_rakuten_does_not_list_goes_as_autre_with_its_tracking_url(limiter):
    """Free text used to be sent as transporter_name, which Rakuten does not know."""
    responses.add(responses.GET, SALES, body=STATUS.format("setshippingpackageinfosresult", "OK"))
    connector(limiter).confirm_despatch(OrderRef("1", lines=(OrderLineRef("9", "X", 1),)), Shipment(
        tracking_number="PF1", carrier="Parcelforce", tracking_url="https://track.example/PF1"))
    params = responses.calls[0].request.params
    assert (params["transporter_name"], params["tracking_url"]) == ("Autre", "https://track.example/PF1")


@responses.activate
@pytest.mark.parametrize("url", ["", "track.example/PF1"])
def test_an_unlisted_carrier_without_a_usable_tracking_url_is_refused_before_any_call(limiter, url):
    with pytest.raises(ChannelRejected, match="does not know the carrier 'Parcelforce'.*tracking URL"):
        connector(limiter).confirm_despatch(OrderRef("1", lines=(OrderLineRef("9", "X", 1),)),
                                            Shipment(tracking_number="PF1", carrier="Parcelforce", tracking_url=url))
    assert len(responses.calls) == 0


@responses.activate
def test_a_despatch_without_a_tracking_number_or_a_cancellation_without_a_reason_is_refused(limiter):
    rakuten = connector(limiter)
    with pytest.raises(ChannelRejected, match="tracking number"):
        rakuten.confirm_despatch(ORDER, Shipment(tracking_number=" ", carrier="Colissimo"))
    with pytest.raises(ChannelRejected, match="reason"):
        rakuten.cancel_order(ORDER, "")
    assert len(responses.calls) == 0


@responses.activate
def test_listings_export_pages_with_progress(limiter):
    responses.add(responses.GET, STOCK, body=fixture_text("rakuten_export_page2.xml"),
                  match=[action("export", nexttoken="EXP-2")])
    responses.add(responses.GET, STOCK, body=fixture_text("rakuten_export_page1.xml"), match=[action("export")])
    pages = list(connector(limiter).fetch_listings())
    assert [(p.done, p.total) for p in pages] == [(2, 3), (3, 3)]
    assert [(li.channel_sku, li.external_id, li.title, li.quantity, li.price) for li in pages[0].listings] == [
        ("MUG-RED", "77", "Mug rouge", 4, Decimal("12.50")), ("MUG-BLUE", "78", "Mug bleu", 0, Decimal("10.0"))]


@responses.activate
def test_reauthorise_with_a_new_token_saves_it_once_it_works(limiter):
    responses.add(responses.GET, SALES, body=EMPTY_NEW_SALES, match=[action("getnewsales", pwd="new-token-99")])
    rakuten = connector(limiter, token="old-token")
    result = rakuten.reauthorise(authorization_code="new-token-99")
    assert result.ok and "new-token-99" not in result.message
    assert rakuten.credentials.load()["token"] == "new-token-99"


def test_the_connector_declares_what_the_contract_says():
    spec = contract_load("rakuten").operation("settrackingpackageinfos").spec["query"]
    listed = spec["properties"]["transporter_name"]["enum"]
    assert [carrier.code for carrier in RakutenConnector.carriers] + ["Autre"] == listed
    assert RakutenConnector.other_carrier == "Autre" and RakutenConnector.other_carrier_needs_tracking_url
    assert RakutenConnector.despatch_needs_tracking_number
    assert "tracking_number" in spec["required"]
    assert "import_profile_id" in RakutenConnector.account_fields
    assert RakutenConnector.cancellation_reasons == {}
