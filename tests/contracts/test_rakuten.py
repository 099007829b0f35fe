"""The Rakuten connector and sandbox against channels/connectors/rakuten/contract/*.json.

Rakuten publishes no machine-readable definition; the contract is written from public clients (its notes say
which). Every request the connector sends validates against its action's query (and form) schema; answers,
read through the one XML conversion, valid per the response schemas, with optional fields absent, map to the
hub values a seller expects; and the sandbox sends no element the contract does not declare.
"""

from datetime import UTC, datetime
from decimal import Decimal
from urllib.parse import urlsplit

import pytest
import responses

from channels.connectors.base import OrderLineRef, OrderRef, Shipment, StockUpdate
from channels.connectors.contracts import contract_load
from channels.connectors.rakuten.connector import RakutenConnector
from channels.connectors.rakuten.mapper import (
    listing_from_advert,
    push_results_from_report,
    sale_from_rakuten,
    xml_document,
)
from channels.connectors.ratelimit import InProcessLimiter
from sandbox.control import RAKUTEN_IMPORT_PROFILE_ID
from sandbox.web import Request
from tests.channels.connectors.conftest import RAKUTEN_BASE, MemoryStore, fixture_text, rakuten_config
from tests.contracts.helpers import answer_undeclared, query_of
from tests.sandbox.conftest import make_account

CONTRACT = contract_load("rakuten")
STATUS = "<{0}><response><lastversion>{2}</lastversion><status>{1}</status></response></{0}>"
ANSWERS = {
    "getnewsales": fixture_text("rakuten_getnewsales.xml"),
    "acceptsale": STATUS.format("saleacceptanceresult", "Accepted", "2010-09-20"),
    "getcurrentsales": fixture_text("rakuten_getcurrentsales_page2.xml"),
    "export": fixture_text("rakuten_export_page2.xml"),
    "import": "<importresult><response><importid>314</importid></response></importresult>",
    "importreport": fixture_text("rakuten_importreport.xml"),
    "settrackingpackageinfos": STATUS.format("setshippingpackageinfosresult", "OK", "2016-03-16"),
    "cancelitem": STATUS.format("cancelitemresult", "CANCELLED", "2011-02-02"),
}
FIXTURES = {
    "rakuten_getnewsales.xml": "getnewsales",
    "rakuten_getcurrentsales_page1.xml": "getcurrentsales",
    "rakuten_getcurrentsales_page2.xml": "getcurrentsales",
    "rakuten_export_page1.xml": "export",
    "rakuten_export_page2.xml": "export",
    "rakuten_importreport.xml": "importreport",
}
ERROR = ("<errorresponse><error><type>Sender</type><code>InvalidUserConnection</code><message>Unknown user or "
         "password.</message><details><detail>Incorrect login or password</detail></details></error></errorresponse>")


def request_parts(request) -> tuple[str, dict]:
    """The action and the request as the contract describes it: its query, and a POST's form and files."""
    url = urlsplit(request.url)
    query = query_of(request.url)
    parts = {"query": query}
    if request.method == "POST":
        body = request.body if isinstance(request.body, bytes) else (request.body or "").encode()
        sent = Request("POST", url.path, url.query, request.headers, body)
        parts["form"] = {**sent.form(), **{name: data.decode() for name, data in sent.files().items()}}
    return query["action"], parts


@responses.activate
def test_every_request_the_connector_sends_holds_to_the_contract():
    def answer(request):
        action, _ = request_parts(request)
        return 200, {"Content-Type": "text/xml; charset=utf-8"}, ANSWERS[action]

    for method, service in (("GET", "sales_ws"), ("GET", "stock_ws"), ("POST", "stock_ws")):
        responses.add_callback(method, f"{RAKUTEN_BASE}/{service}", callback=answer)
    rakuten = RakutenConnector(rakuten_config(extra={"import_profile_id": "4242"}), MemoryStore(token="t0k3n"),
                               InProcessLimiter(sleep=lambda seconds: None))
    rakuten.sleep = lambda seconds: None
    order = OrderRef("5001", lines=(OrderLineRef("9001", "MUG-RED", 1),))
    rakuten.test_connection()
    list(rakuten.fetch_orders(datetime(2026, 11, 29, tzinfo=UTC)))
    list(rakuten.fetch_listings())
    rakuten.push_listings([StockUpdate("MUG-RED", "77", quantity=4, price=Decimal("12.50")),
                           StockUpdate("TEAPOT", "80", quantity=0)])
    rakuten.confirm_despatch(order, Shipment(tracking_number="6A123", carrier="Colissimo"))
    rakuten.confirm_despatch(order, Shipment(tracking_number="PF1", carrier="Parcelforce",
                                             tracking_url="https://track.example/PF1"))
    rakuten.cancel_order(order, "Rupture de stock")

    used = set()
    for call in responses.calls:
        action, parts = request_parts(call.request)
        used.add(action)
        assert CONTRACT.operation(action).method == call.request.method
        assert CONTRACT.operation(action).request_errors(**parts) == [], (action, parts)
    assert used == set(ANSWERS)


@pytest.mark.parametrize(("fixture", "operation_id"), sorted(FIXTURES.items()))
def test_the_connectors_fixtures_hold_to_the_contract(fixture, operation_id):
    document = xml_document(fixture_text(fixture).encode())
    assert CONTRACT.operation(operation_id).response_errors(200, document) == []


def test_an_errorresponse_holds_to_every_operations_contract_at_any_status():
    document = xml_document(ERROR.encode())
    for operation in CONTRACT.operations.values():
        assert operation.response_errors(200, document) == []
        assert operation.response_errors(429, document) == []


def test_an_answer_the_contract_refuses_is_refused():
    getnewsales = CONTRACT.operation("getnewsales")
    no_items = xml_document(b"<getnewsalesresult><response><sales><sale><purchaseid>1</purchaseid>"
                            b"<purchasedate>01/12/2026-10:00</purchasedate></sale></sales></response>"
                            b"</getnewsalesresult>")
    assert getnewsales.response_errors(200, no_items)
    wrong_root = xml_document(b"<getcurrentsalesresult><response><sales/></response></getcurrentsalesresult>")
    assert getnewsales.response_errors(200, wrong_root)


def test_a_sale_with_only_its_required_elements_maps_to_empty_values():
    answer = (b"<getcurrentsalesresult><response><sales><sale><purchaseid>7</purchaseid>"
              b"<purchasedate>01/12/2026-10:00:30</purchasedate><items><item><itemid>70</itemid>"
              b"<itemstatus>ACCEPTED</itemstatus><price><amount>5</amount></price></item></items></sale></sales>"
              b"</response></getcurrentsalesresult>")
    document = xml_document(answer)
    assert CONTRACT.operation("getcurrentsales").response_errors(200, document) == []
    sale = sale_from_rakuten(document["getcurrentsalesresult"]["response"]["sales"]["sale"][0])
    assert (sale.channel_order_id, sale.channel_status, sale.is_paid, sale.is_cancelled) == ("7", "ACCEPTED", True,
                                                                                           False)
    assert sale.created_at == datetime(2026, 12, 1, 10, 0, 30, tzinfo=UTC)
    assert (sale.currency, sale.buyer_email, sale.buyer_name, sale.shipping_tag) == (None, None, "", "")
    assert sale.shipping_address.line1 == "" and sale.total == Decimal("5")
    assert [(item.sku, item.title, item.quantity, item.external_product_id) for item in sale.items] == [("", "", 1, "")]


def test_an_advert_and_an_import_report_with_only_their_required_elements():
    export = xml_document(b"<inventoryresult><response><advertlist><advert><advertid>5</advertid><sku>A</sku>"
                          b"</advert></advertlist></response></inventoryresult>")
    assert CONTRACT.operation("export").response_errors(200, export) == []
    listing = listing_from_advert(export["inventoryresult"]["response"]["advertlist"]["advert"][0])
    assert (listing.channel_sku, listing.external_id, listing.title, listing.quantity, listing.price) == (
        "A", "5", "", None, None)
    report = xml_document(b"<r><response><processstatus>PROCESSED</processstatus></response></r>")
    assert CONTRACT.operation("importreport").response_errors(200, report) == []
    (result,) = push_results_from_report([StockUpdate("A", "5", quantity=1)], report)
    assert result.accepted


# --- The sandbox sends nothing the contract does not declare, and refuses in Rakuten's words ---


def version(action: str) -> str:
    return CONTRACT.operation(action).spec["query"]["properties"]["version"]["const"]


@pytest.fixture
def fr(sandbox):
    account = make_account(sandbox, "rakuten", "fr")
    account.session.params = {"login": account.credentials["login"], "pwd": account.credentials["token"]}
    return account


def call(account, action, method="GET", **params):
    service = "stock_ws" if action in ("export", "import", "importreport") else "sales_ws"
    files = params.pop("files", None)
    return account.session.request(method, f"{account.url}/{service}", files=files, timeout=5,
                                   params={"action": action, "version": version(action), **params})


def test_the_sandbox_answers_with_no_element_the_contract_lacks(sandbox, fr):
    sandbox.listings("rakuten", "fr", [{"sku": "A", "title": "Lampe", "quantity": 3, "price": "9.50"},
                                       {"sku": "B", "quantity": 1}])
    sandbox.orders("rakuten", "fr", [{"status": "REQUESTED", "items": [{"sku": "A"}, {"sku": "B"}]},
                                     {"items": [{"sku": "A", "quantity": 2}]}])
    new, current = sandbox.orders("rakuten", "fr")
    imported = call(fr, "import", "POST", profileid=RAKUTEN_IMPORT_PROFILE_ID,
                    files={"file": ("stock.csv", b"A;9.90;5\nGHOST;;1\n", "text/csv")})
    file_id = xml_document(imported.content)["importresult"]["response"]["importid"]
    answers = {
        "getnewsales": call(fr, "getnewsales"),
        "acceptsale": call(fr, "acceptsale", itemid=new["items"][0]["line_id"]),
        "refusesale": call(fr, "refusesale", itemid=new["items"][1]["line_id"]),
        "getcurrentsales": call(fr, "getcurrentsales", purchasedate="2026-01-01"),
        "settrackingpackageinfos": call(fr, "settrackingpackageinfos", itemid=current["items"][0]["line_id"],
                                        transporter_name="Autre", tracking_number="T1",
                                        tracking_url="https://track.example/T1"),
        "cancelitem": call(fr, "cancelitem", itemid=current["items"][1]["line_id"], comment="Rupture"),
        "export": call(fr, "export"),
        "import": imported,
        "importreport": call(fr, "importreport", fileid=file_id),
        "errorresponse": call(fr, "cancelitem", itemid="999999", comment="?"),
    }
    assert set(answers) - {"errorresponse"} == set(CONTRACT.operations)
    for name, answer in answers.items():
        operation = CONTRACT.operation("cancelitem" if name == "errorresponse" else name)
        assert answer.status_code == 200, (name, answer.text)
        document = xml_document(answer.content)
        assert ("errorresponse" in document) == (name == "errorresponse"), (name, document)
        assert operation.response_errors(200, document) == [], name
        assert answer_undeclared(operation, 200, document) == [], name


@pytest.mark.parametrize(("action", "params", "problem"), [
    ("acceptsale", {"itemid": "1", "version": "2017-08-07"}, "version"),
    ("getcurrentsales", {"purchasedate": "2026-11-29T10:00:00Z"}, "purchasedate"),
    ("settrackingpackageinfos", {"itemid": "1", "transporter_name": "Autre", "tracking_number": "T"}, "tracking_url"),
    ("settrackingpackageinfos", {"itemid": "1", "transporter_name": "La Poste", "tracking_number": "T"},
     "transporter_name"),
    ("import", {"version": "2010-09-20"}, "profileid"),
    ("getnewsales", {"since": "2026-01-01"}, "since"),
])
def test_the_sandbox_refuses_what_the_contract_refuses_in_rakutens_words(fr, action, params, problem):
    method = "POST" if action == "import" else "GET"
    files = {"file": ("s.csv", b"A;1;1\n", "text/csv")} if method == "POST" else None
    answer = call(fr, action, method, files=files, **params)
    document = xml_document(answer.content)
    error = document["errorresponse"]["error"]
    assert (answer.status_code, error["type"], error["code"], error["message"]) == (
        200, "Sender", "ParameterError", "Problem with parameters.")
    assert any(problem in detail for detail in error["details"]["detail"]), error
