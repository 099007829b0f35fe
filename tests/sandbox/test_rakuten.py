import xml.etree.ElementTree as ET


def sales(rakuten, action="getcurrentsales", **params):
    response = rakuten.session.get(f"{rakuten.url}/sales_ws", params={"action": action, **params}, timeout=5)
    assert response.status_code == 200
    return ET.fromstring(response.content)


def test_bad_credentials_answer_200_with_an_error_root(rakuten):
    response = rakuten.session.get(f"{rakuten.url}/sales_ws", params={"action": "getnewsales", "pwd": "wrong"})
    assert response.status_code == 200
    root = ET.fromstring(response.content)
    assert root.tag == "error" and root.findtext("code") == "InvalidCredentials"


def test_current_sales_shape_filter_and_pages(sandbox, rakuten):
    sandbox.listings("rakuten", "fr", [{"sku": "A", "title": "Lampe", "quantity": 9, "price": "12.50"}])
    sandbox.orders("rakuten", "fr", [{"created_at": "2026-11-01T09:00:00Z", "items": [{"sku": "A"}]}])
    recent = sandbox.orders("rakuten", "fr", generate=150, skus=["A"])
    first = sales(rakuten, purchasedate="2026-11-02T00:00:00Z")
    assert first.tag == "getcurrentsalesresult"
    page = first.findall("response/sales/sale")
    token = first.findtext("response/nexttoken")
    assert len(page) == 100 and token
    second = sales(rakuten, purchasedate="2026-11-02T00:00:00Z", nexttoken=token)
    page += second.findall("response/sales/sale")
    assert not second.findtext("response/nexttoken")
    assert sorted(sale.findtext("purchaseid") for sale in page) == sorted(recent)
    updates = [sale.findtext("lastupdate") for sale in page]
    assert updates == sorted(updates)
    sale = page[0]
    assert sale.findtext("status") == "ACCEPTED" and sale.findtext("ispaid") == "1"
    assert sale.findtext("currency") == "EUR" and sale.findtext("deliveryaddress/country") == "FR"
    item = sale.find("items/item")
    assert item.findtext("sku") == "A" and item.findtext("headline") == "Lampe" and item.findtext("price") == "12.50"


def test_new_sales_are_accepted_item_by_item(sandbox, rakuten):
    sandbox.listings("rakuten", "fr", [{"sku": "A", "quantity": 9}])
    (sale_id,) = sandbox.orders("rakuten", "fr", [{"status": "REQUESTED", "items": [{"sku": "A"}]}])
    (sale,) = sales(rakuten, "getnewsales").findall("response/sales/sale")
    item_id = sale.findtext("items/item/itemid")
    accepted = sales(rakuten, "acceptsale", itemid=item_id)
    assert accepted.tag == "acceptsaleresult" and accepted.findtext("response/status") == "OK"
    assert sales(rakuten, "getnewsales").findall("response/sales/sale") == []
    assert sandbox.orders("rakuten", "fr")[0]["status"] == "ACCEPTED"
    assert sales(rakuten, "acceptsale", itemid=item_id).tag == "error"
    assert sale_id == sale.findtext("purchaseid")


def test_tracking_and_cancellation_per_item(sandbox, rakuten):
    sandbox.listings("rakuten", "fr", [{"sku": "A", "quantity": 9}, {"sku": "B", "quantity": 9}])
    shipped, cancelled = sandbox.orders("rakuten", "fr", [{"items": [{"sku": "A"}]}, {"items": [{"sku": "B"}]}])
    orders = {order["order_id"]: order for order in sandbox.orders("rakuten", "fr")}
    ship_item = orders[shipped]["items"][0]["line_id"]
    cancel_item = orders[cancelled]["items"][0]["line_id"]
    result = sales(rakuten, "settrackingpackageinfos", itemid=ship_item, transporter_name="Colissimo",
                   tracking_number="6A123", tracking_url="https://suivi/6A123")
    assert result.tag == "settrackingpackageinfosresult" and result.findtext("response/status") == "OK"
    assert sales(rakuten, "cancelitem", itemid=cancel_item, comment="Rupture de stock").tag == "cancelitemresult"
    assert sales(rakuten, "cancelitem", itemid=ship_item, comment="too late").tag == "error"
    assert sales(rakuten, "cancelitem", itemid="999999", comment="?").findtext("code") == "InvalidItemId"
    received = sandbox.received("rakuten", "fr")
    (shipment,) = received["shipments"]
    assert (shipment["order_id"], shipment["carrier"], shipment["tracking_number"]) == (shipped, "Colissimo", "6A123")
    (cancellation,) = received["cancellations"]
    assert (cancellation["order_id"], cancellation["reason"]) == (cancelled, "Rupture de stock")
    statuses = {order["order_id"]: order["status"] for order in sandbox.orders("rakuten", "fr")}
    assert statuses == {shipped: "SHIPPED", cancelled: "CANCELLED"}


def test_export_pages_adverts(sandbox, rakuten):
    sandbox.listings("rakuten", "fr", [{"sku": f"S{index:03d}", "quantity": index} for index in range(130)])
    first = ET.fromstring(rakuten.session.get(f"{rakuten.url}/stock_ws", params={"action": "export"}).content)
    assert first.tag == "exportresult" and first.findtext("response/resultcount") == "130"
    token = first.findtext("response/nexttoken")
    second = ET.fromstring(rakuten.session.get(f"{rakuten.url}/stock_ws",
                                               params={"action": "export", "nexttoken": token}).content)
    adverts = first.findall("response/advert") + second.findall("response/advert")
    assert len(adverts) == 130 and not second.findtext("response/nexttoken")
    assert adverts[5].findtext("sku") == "S005" and adverts[5].findtext("quantity") == "5"


def test_import_file_and_its_report(sandbox, rakuten):
    sandbox.listings("rakuten", "fr", [{"sku": "A", "quantity": 1, "price": "5"}, {"sku": "B", "quantity": 1}])
    content = "sku;quantity;price\nA;7;6.50\nB;3;\nGHOST;1;2\nA;x;\n"
    response = rakuten.session.post(f"{rakuten.url}/stock_ws", params={"action": "import"},
                                    files={"file": ("stock.csv", content.encode(), "text/csv")})
    root = ET.fromstring(response.content)
    assert root.tag == "importresult" and root.findtext("response/status") == "OK"
    report = ET.fromstring(rakuten.session.get(f"{rakuten.url}/stock_ws", params={
        "action": "genericimportreport", "fileid": root.findtext("response/importid")}).content)
    assert report.findtext("response/status") == "Treated"
    outcome = [(product.findtext("sku"), product.findtext("status")) for product in report.findall("response/product")]
    assert outcome == [("A", "OK"), ("B", "OK"), ("GHOST", "KO"), ("A", "KO")]
    stock = sandbox.received("rakuten", "fr")["stock"]
    assert (stock["A"]["quantity"], stock["A"]["price"]) == (7, "6.50")
    assert (stock["B"]["quantity"], stock["B"]["price"]) == (3, None)
