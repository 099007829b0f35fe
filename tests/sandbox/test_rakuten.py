"""The Rakuten emulation: Rakuten's actions at their versions, its sale record, its errorresponse refusals."""

import pytest

from channels.connectors.contracts import contract_load
from channels.connectors.rakuten.mapper import xml_document
from sandbox.control import RAKUTEN_IMPORT_PROFILE_ID
from tests.sandbox.conftest import make_account

CONTRACT = contract_load("rakuten")
STOCK_ACTIONS = ("export", "import", "importreport")


def version(action):
    return CONTRACT.operation(action).spec["query"]["properties"]["version"]["const"]


@pytest.fixture
def fr(sandbox):
    account = make_account(sandbox, "rakuten", "fr")
    account.session.params = {"login": account.credentials["login"], "pwd": account.credentials["token"]}
    return account


def answer(account, action, method="GET", files=None, **params):
    """The answer's document; every answer is HTTP 200, refusals included."""
    service = "stock_ws" if action in STOCK_ACTIONS else "sales_ws"
    response = account.session.request(method, f"{account.url}/{service}", files=files, timeout=5,
                                       params={"action": action, "version": version(action), **params})
    assert response.status_code == 200, response.text
    return xml_document(response.content)


def error(document):
    found = document["errorresponse"]["error"]
    return found["code"], found["message"], found["details"]["detail"]


def sales(document):
    return next(iter(document.values()))["response"]["sales"]["sale"]


def test_a_refused_token_answers_invalid_user_connection(fr):
    document = answer(fr, "getnewsales", pwd="wrong")
    assert error(document) == ("InvalidUserConnection", "Unknown user or password.", ["Incorrect login or password"])


def test_a_missing_login_is_a_parameter_error(fr):
    fr.session.params = {"pwd": fr.credentials["token"]}
    code, message, details = error(answer(fr, "getnewsales"))
    assert (code, message) == ("ParameterError", "Problem with parameters.")
    assert any("login" in detail for detail in details)


@pytest.mark.parametrize("action", sorted(CONTRACT.operations))
def test_each_action_refuses_another_actions_version_or_none(fr, action):
    method = "POST" if action == "import" else "GET"
    wrong = "2012-01-01" if version(action) == "2017-08-07" else "2017-08-07"
    for sent in (wrong, ""):
        code, _, details = error(answer(fr, action, method, version=sent))
        assert code == "ParameterError" and any("version" in detail for detail in details), (action, sent)


def test_current_sales_from_a_purchase_date_a_page_at_a_time(sandbox, fr):
    sandbox.listings("rakuten", "fr", [{"sku": "A", "title": "Lampe", "quantity": 9, "price": "12.50"}])
    sandbox.orders("rakuten", "fr", [{"created_at": "2026-11-01T09:00:00Z", "items": [{"sku": "A"}]}])
    recent = sandbox.orders("rakuten", "fr", generate=150, skus=["A"])
    first = answer(fr, "getcurrentsales", purchasedate="2026-11-02")
    token = first["getcurrentsalesresult"]["response"]["nexttoken"]
    assert len(sales(first)) == 100 and token
    second = answer(fr, "getcurrentsales", nexttoken=token)
    assert second["getcurrentsalesresult"]["response"]["nexttoken"] == ""
    page = sales(first) + sales(second)
    assert sorted(sale["purchaseid"] for sale in page) == sorted(recent)
    assert len(sales(answer(fr, "getcurrentsales"))) == 100
    # A date Rakuten cannot read is ignored, as it ignored 'WRONGDATE' in a public client's test.
    assert len(sales(answer(fr, "getcurrentsales", purchasedate="2026-13-45"))) == 100


def test_a_sale_is_rakutens_record_with_one_item_per_unit(sandbox, fr):
    sandbox.listings("rakuten", "fr", [{"sku": "A", "title": "Lampe", "quantity": 9, "price": "12.50"}])
    (sale_id,) = sandbox.orders("rakuten", "fr", [{"created_at": "2026-11-29T10:05:00Z", "buyer_email": "m@ex.fr",
                                                  "items": [{"sku": "A", "quantity": 2}]}])
    (sale,) = sales(answer(fr, "getcurrentsales"))
    assert (sale["purchaseid"], sale["purchasedate"]) == (sale_id, "29/11/2026-10:05")
    delivery = sale["deliveryinformation"]
    assert delivery["purchasebuyeremail"] == "m@ex.fr" and delivery["deliveryaddress"]["countryalpha2"] == "FR"
    items = sale["items"]["item"]
    assert [(item["sku"], item["headline"], item["itemstatus"], item["price"]) for item in items] == [
        ("A", "Lampe", "ACCEPTED", {"amount": "12.50", "currency": "EUR"})] * 2
    assert len({item["itemid"] for item in items}) == 2


def test_new_sales_are_accepted_or_refused_item_by_item(sandbox, fr):
    sandbox.listings("rakuten", "fr", [{"sku": "A", "quantity": 9}, {"sku": "B", "quantity": 9}])
    (sale_id,) = sandbox.orders("rakuten", "fr", [{"status": "REQUESTED", "items": [{"sku": "A"}, {"sku": "B"}]}])
    (sale,) = sales(answer(fr, "getnewsales"))
    keep, drop = (item["itemid"] for item in sale["items"]["item"])
    accepted = answer(fr, "acceptsale", itemid=keep)
    assert accepted["saleacceptanceresult"]["response"]["status"] == "Accepted"
    assert answer(fr, "refusesale", itemid=drop)["saleacceptanceresult"]["response"]["status"] == "Refused"
    assert sales(answer(fr, "getnewsales")) == []
    assert answer(fr, "acceptsale", itemid=keep)["saleacceptanceresult"]["response"]["status"] == "Refused"
    assert error(answer(fr, "refusesale", itemid=keep))[0] == "ParameterError"
    (order,) = sandbox.orders("rakuten", "fr")
    assert (order["order_id"], order["status"], [i["status"] for i in order["items"]]) == (
        sale_id, "ACCEPTED", ["ACCEPTED", "REFUSED"])


def test_tracking_and_cancellation_per_item(sandbox, fr):
    sandbox.listings("rakuten", "fr", [{"sku": "A", "quantity": 9}, {"sku": "B", "quantity": 9}])
    shipped, cancelled, waiting = sandbox.orders("rakuten", "fr", [
        {"items": [{"sku": "A"}]}, {"items": [{"sku": "B"}]}, {"status": "REQUESTED", "items": [{"sku": "A"}]}])
    items = {order["order_id"]: order["items"][0]["line_id"] for order in sandbox.orders("rakuten", "fr")}
    result = answer(fr, "settrackingpackageinfos", itemid=items[shipped], transporter_name="Colissimo",
                    tracking_number="6A123")
    assert result["setshippingpackageinfosresult"]["response"]["status"] == "OK"
    refused = answer(fr, "settrackingpackageinfos", itemid=items[waiting], transporter_name="Colissimo",
                     tracking_number="6A124")
    assert error(refused)[0] == "ParameterError"
    cancel = answer(fr, "cancelitem", itemid=items[cancelled], comment="Rupture de stock")
    assert cancel["cancelitemresult"]["response"]["status"] == "CANCELLED"
    assert error(answer(fr, "cancelitem", itemid=items[cancelled], comment="again"))[0] == "ParameterError"
    assert error(answer(fr, "cancelitem", itemid="999999", comment="?"))[0] == "ParameterError"
    received = sandbox.received("rakuten", "fr")
    (shipment,) = received["shipments"]
    assert (shipment["order_id"], shipment["carrier"], shipment["tracking_number"]) == (shipped, "Colissimo", "6A123")
    (cancellation,) = received["cancellations"]
    assert (cancellation["order_id"], cancellation["reason"]) == (cancelled, "Rupture de stock")
    statuses = {order["order_id"]: order["status"] for order in sandbox.orders("rakuten", "fr")}
    assert statuses == {shipped: "ACCEPTED", cancelled: "CANCELLED", waiting: "REQUESTED"}


def test_export_pages_adverts(sandbox, fr):
    sandbox.listings("rakuten", "fr", [{"sku": f"S{index:03d}", "quantity": index} for index in range(130)])
    first = answer(fr, "export")["inventoryresult"]["response"]
    assert first["nbresults"] == "130"
    second = answer(fr, "export", nexttoken=first["nexttoken"])["inventoryresult"]["response"]
    adverts = first["advertlist"]["advert"] + second["advertlist"]["advert"]
    assert len(adverts) == 130 and second["nexttoken"] == ""
    assert (adverts[5]["sku"], adverts[5]["stock"]) == ("S005", "5")


def test_an_import_in_the_profiles_layout_and_its_report(sandbox, fr):
    sandbox.listings("rakuten", "fr", [{"sku": "A", "quantity": 1, "price": "5"}, {"sku": "B", "quantity": 1}])
    content = "A;6.50;7\nB;;3\nGHOST;2;1\nA;;x\nA;1\n"
    imported = answer(fr, "import", "POST", files={"file": ("stock.csv", content.encode(), "text/csv")},
                      profileid=RAKUTEN_IMPORT_PROFILE_ID)
    report = answer(fr, "importreport", fileid=imported["importresult"]["response"]["importid"])
    response = report["importreportresult"]["response"]
    assert response["processstatus"] == "PROCESSED"
    assert [(e["data"], e["errorreport"]) for e in response["errorlist"]["error"]] == [
        ("GHOST;2;1", "Unknown SKU"), ("A;;x", "Invalid quantity 'x'"), ("A;1", "3 columns expected, 2 found")]
    stock = sandbox.received("rakuten", "fr")["stock"]
    assert (stock["A"]["quantity"], stock["A"]["price"]) == (7, "6.50")
    assert (stock["B"]["quantity"], stock["B"]["price"]) == (3, None)


def test_an_account_reads_each_of_its_own_profiles_layout_and_refuses_an_unknown_profile(sandbox):
    account = make_account(sandbox, "rakuten", "fr", import_profiles={"7": ["quantity", "sku"]})
    account.session.params = {"login": account.credentials["login"], "pwd": account.credentials["token"]}
    sandbox.listings("rakuten", "fr", [{"sku": "A", "quantity": 1}])
    file = {"file": ("stock.csv", b"4;A\n", "text/csv")}
    assert error(answer(account, "import", "POST", files=file, profileid=RAKUTEN_IMPORT_PROFILE_ID))[0] == (
        "ParameterError")
    answer(account, "import", "POST", files=file, profileid="7")
    assert sandbox.received("rakuten", "fr")["stock"]["A"]["quantity"] == 4
