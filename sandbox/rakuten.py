"""Rakuten France web services (sales_ws, stock_ws): query-string credentials, XML answers."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any
from xml.sax.saxutils import escape

from sandbox import state
from sandbox.api import Call, ChannelApi, render_rows
from sandbox.ratelimit import Limit
from sandbox.store import parse_time
from sandbox.web import Request, Response

PAGE_SIZE = 100
SALES_ACTIONS = ("getcurrentsales", "getnewsales", "acceptsale", "settrackingpackageinfos", "cancelitem")
STOCK_ACTIONS = ("export", "import", "genericimportreport")


def element(name: str, value: Any) -> str:
    if value is None or value == "":
        return f"<{name}/>"
    return f"<{name}>{escape(str(value))}</{name}>"


def encode_token(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode()


def decode_token(token: str) -> dict[str, Any] | None:
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode()))
    except (ValueError, binascii.Error):
        return None
    return data if isinstance(data, dict) else None


def action_of(request: Request) -> str:
    return request.arg("action") or request.form().get("action") or "unknown"


class RakutenApi(ChannelApi):
    kind = "rakuten"
    # Rakuten publishes no figures; one bucket per account, generous (see README).
    published_limits = {"ws": Limit(20, 100)}

    def routes(self) -> None:
        self.router.add("GET", "/sales_ws", action_of, self.sales)
        self.router.add("GET", "/stock_ws", action_of, self.stock)
        self.router.add("POST", "/stock_ws", action_of, self.stock)

    def bucket_key(self, operation: str) -> str:
        return "ws"

    def error(self, status: int, code: str, message: str) -> Response:
        return Response.xml(f"<error>{element('code', code)}{element('message', message)}</error>", status)

    def invalid_credentials(self, call: Call) -> Response:
        return self.error(200, "InvalidCredentials", "The login or the token is not valid.")

    def param(self, call: Call, name: str) -> str:
        value = call.request.arg(name)
        if value is None and call.request.method == "POST":
            value = call.request.form().get(name)
        return value or ""

    def authenticate(self, call: Call) -> None:
        credentials = call.account.credentials
        if self.param(call, "login") != credentials["login"] or self.param(call, "pwd") != credentials["token"]:
            raise self.fail(200, "InvalidCredentials", "The login or the token is not valid.")
        if not self.param(call, "version"):
            raise self.fail(200, "MissingParameter", "The version parameter is required.")

    def ok(self, action: str) -> Response:
        return Response.xml(f"<{action}result><response><status>OK</status></response></{action}result>")

    # sales_ws

    def sales(self, call: Call) -> Response:
        action = call.operation
        if action not in SALES_ACTIONS:
            raise self.fail(200, "InvalidAction", f"Unknown sales_ws action {action!r}.")
        if action in ("getcurrentsales", "getnewsales"):
            return self.list_sales(call, action)
        item_id = self.param(call, "itemid")
        with call.write() as db:
            found = state.order_of_item(db, call.account, int(item_id)) if item_id.isdigit() else None
            if found is None:
                raise self.fail(200, "InvalidItemId", f"No item {item_id!r} in your sales.")
            sale, item = found
            getattr(self, action)(db, call, sale, item)
        return self.ok(action)

    def list_sales(self, call: Call, action: str) -> Response:
        token = self.param(call, "nexttoken")
        if token:
            query = decode_token(token)
            if query is None:
                raise self.fail(200, "InvalidNextToken", "The nexttoken is not valid.")
        else:
            query = {"since": None}
            if action == "getcurrentsales" and self.param(call, "purchasedate"):
                try:
                    query["since"] = parse_time(self.param(call, "purchasedate"))
                except ValueError:
                    raise self.fail(200, "InvalidParameter", "purchasedate must be ISO 8601.") from None
        where, params = ["account_id = ?"], [call.account.id]
        if action == "getnewsales":
            where.append("status = 'REQUESTED'")
        if query.get("since"):
            where.append("updated_at >= ?")
            params.append(query["since"])
        if query.get("cursor"):
            where.append("(updated_at, id) > (?, ?)")
            params.extend(query["cursor"])
        with call.read() as db:
            rows = db.execute(f"SELECT * FROM channel_order WHERE {' AND '.join(where)} ORDER BY updated_at, id "
                              "LIMIT ?", (*params, PAGE_SIZE + 1)).fetchall()
            page = rows[:PAGE_SIZE]
            sales = render_rows(call, page, "", lambda pks: state.order_items(db, pks),
                                lambda row, items: self.sale_xml(self.sale_fields(row, items)))
            spoiled = call.take_malformed(sales)
            if spoiled is not None:
                row = page[spoiled["index"]]
                sale = self.sale_fields(row, state.order_items(db, [row["id"]])[row["id"]])
                if spoiled["corrupt"] == "id":
                    sale["purchaseid"] = None
                else:
                    sale["items"][0]["quantity"] = "one"
                sales[spoiled["index"]] = self.sale_xml(sale)
        next_token = ""
        if len(rows) > PAGE_SIZE:
            next_token = encode_token({**query, "cursor": [page[-1]["updated_at"], page[-1]["id"]]})
        body = "".join(sales)
        return Response.xml(f"<{action}result><response>{element('nexttoken', next_token)}<sales>{body}</sales>"
                            f"</response></{action}result>")

    def sale_fields(self, sale, items) -> dict[str, Any]:
        address = json.loads(sale["address"])
        return {
            "purchaseid": sale["order_id"], "purchasedate": sale["created_at"], "lastupdate": sale["updated_at"],
            "status": sale["status"], "ispaid": int(bool(sale["paid"])), "shippingtype": sale["shipping_tag"],
            "currency": sale["currency"] or "EUR", "login": f"{address['first_name'].lower()}{sale['id']}",
            "email": sale["buyer_email"], "address": address, "shippingcost": sale["shipping_cost"],
            "items": [{"itemid": item["id"], "sku": item["sku"], "advertid": item["variant_id"] or item["listing_id"],
                       "headline": item["title"], "itemstatus": item["status"], "quantity": item["quantity"],
                       "price": item["price"]} for item in items],
        }

    def sale_xml(self, sale: dict[str, Any]) -> str:
        address = sale["address"]
        items = "".join("<item>" + "".join(element(key, value) for key, value in item.items()) + "</item>"
                        for item in sale["items"])
        return (
            "<sale>" + "".join(element(key, sale[key]) for key in ("purchaseid", "purchasedate", "lastupdate",
                                                                  "status", "ispaid", "shippingtype", "currency"))
            + f"<buyer>{element('login', sale['login'])}{element('email', sale['email'])}</buyer>"
            + "<deliveryaddress>" + "".join(element(tag, address[key]) for tag, key in (
                ("firstname", "first_name"), ("lastname", "last_name"), ("address1", "line1"), ("address2", "line2"),
                ("city", "city"), ("zipcode", "postcode"), ("country", "country"), ("phonenumber", "phone")))
            + "</deliveryaddress>" + element("shippingcost", sale["shippingcost"])
            + f"<items>{items}</items></sale>"
        )

    def acceptsale(self, db, call: Call, sale, item) -> None:
        if item["status"] != "REQUESTED":
            raise self.fail(200, "InvalidItemStatus", f"Item {item['id']} is {item['status']}, not REQUESTED.")
        self.set_item_status(db, sale, item, "ACCEPTED")

    def settrackingpackageinfos(self, db, call: Call, sale, item) -> None:
        if item["status"] != "ACCEPTED":
            raise self.fail(200, "InvalidItemStatus", f"Item {item['id']} is {item['status']}, not ACCEPTED.")
        tracking_number = self.param(call, "tracking_number")
        if not tracking_number or not self.param(call, "transporter_name"):
            raise self.fail(200, "MissingParameter", "transporter_name and tracking_number are required.")
        self.set_item_status(db, sale, item, "SHIPPED")
        state.event_record(db, call.account, "shipment", {
            "order_id": sale["order_id"], "tracking_number": tracking_number,
            "carrier": self.param(call, "transporter_name"), "tracking_url": self.param(call, "tracking_url"),
            "shipping_method": sale["shipping_tag"],
            "items": [{"line_id": str(item["id"]), "sku": item["sku"], "quantity": item["quantity"]}]})

    def cancelitem(self, db, call: Call, sale, item) -> None:
        if item["status"] in ("SHIPPED", "CANCELLED", "REFUSED"):
            raise self.fail(200, "InvalidItemStatus", f"Item {item['id']} is {item['status']}.")
        self.set_item_status(db, sale, item, "CANCELLED")
        state.event_record(db, call.account, "cancellation", {
            "order_id": sale["order_id"], "reason": self.param(call, "comment"),
            "items": [{"line_id": str(item["id"]), "sku": item["sku"], "quantity": item["quantity"]}]})

    def set_item_status(self, db, sale, item, status: str) -> None:
        """Change one item; the sale takes the status once none of its live items lags behind."""
        db.execute("UPDATE order_item SET status = ? WHERE id = ?", (status, item["id"]))
        others = {row["status"] for row in db.execute(
            "SELECT status FROM order_item WHERE order_pk = ? AND status NOT IN ('CANCELLED', 'REFUSED')",
            (sale["id"],))}
        if others <= {status} or not others:
            state.order_status_set(db, sale, status if others else "CANCELLED", items_too=False)
        else:
            state.order_touch(db, sale)

    # stock_ws

    def stock(self, call: Call) -> Response:
        action = call.operation
        if action not in STOCK_ACTIONS:
            raise self.fail(200, "InvalidAction", f"Unknown stock_ws action {action!r}.")
        if action == "import":
            if call.request.method != "POST":
                raise self.fail(200, "InvalidMethod", "import is a POST with a multipart file.")
            return self.import_file(call)
        if action == "genericimportreport":
            return self.import_report(call)
        return self.export(call)

    def export(self, call: Call) -> Response:
        token = self.param(call, "nexttoken")
        after = 0
        if token:
            query = decode_token(token)
            if query is None or not isinstance(query.get("after"), int):
                raise self.fail(200, "InvalidNextToken", "The nexttoken is not valid.")
            after = query["after"]
        with call.read() as db:
            total = db.execute("SELECT COUNT(*) FROM listing WHERE account_id = ?", (call.account.id,)).fetchone()[0]
            rows = db.execute("SELECT * FROM listing WHERE account_id = ? AND id > ? ORDER BY id LIMIT ?",
                              (call.account.id, after, PAGE_SIZE + 1)).fetchall()
        page = rows[:PAGE_SIZE]
        adverts = [{"advertid": row["id"], "sku": row["sku"], "title": row["title"], "quantity": row["quantity"],
                    "price": row["price"]} for row in page]
        spoiled = call.take_malformed(adverts)
        if spoiled is not None:
            adverts[spoiled["index"]]["sku" if spoiled["corrupt"] == "id" else "quantity"] = (
                None if spoiled["corrupt"] == "id" else "lots")
        next_token = encode_token({"after": page[-1]["id"]}) if len(rows) > PAGE_SIZE else ""
        body = "".join("<advert>" + "".join(element(key, value) for key, value in advert.items()) + "</advert>"
                       for advert in adverts)
        return Response.xml(f"<exportresult><response>{element('resultcount', total)}{element('nexttoken', next_token)}"
                            f"{body}</response></exportresult>")

    def import_file(self, call: Call) -> Response:
        content = call.request.files().get("file")
        if content is None:
            raise self.fail(200, "MissingParameter", "The multipart field file is required.")
        products = []
        with call.write() as db:
            for line in content.decode("utf-8", "replace").splitlines():
                if not line.strip() or line.strip().lower().startswith("sku;"):
                    continue
                products.append(self.import_line(db, call.account, line))
            import_id = db.execute("INSERT INTO document (id, account_id, content_type, content) "
                                   "SELECT COALESCE(MAX(CAST(id AS INTEGER)), 0) + 1, ?, 'rakuten/import', ? "
                                   "FROM document WHERE content_type = 'rakuten/import'",
                                   (call.account.id, json.dumps(products).encode())).lastrowid
            import_id = db.execute("SELECT id FROM document WHERE rowid = ?", (import_id,)).fetchone()[0]
        return Response.xml(f"<importresult><response><status>OK</status>{element('importid', import_id)}"
                            "</response></importresult>")

    def import_line(self, db, account: state.Account, line: str) -> dict[str, str]:
        cells = [cell.strip() for cell in line.split(";")]
        sku = cells[0]
        quantity = cells[1] if len(cells) > 1 else ""
        price = cells[2] if len(cells) > 2 else ""
        listing = state.listing_by_sku(db, account, sku)
        if listing is None:
            return {"sku": sku, "status": "KO", "error": "Unknown SKU"}
        if not quantity.isdigit():
            return {"sku": sku, "status": "KO", "error": f"Invalid quantity {quantity!r}"}
        try:
            amount = state.money(price.replace(",", ".")) if price else None
        except state.ControlError:
            return {"sku": sku, "status": "KO", "error": f"Invalid price {price!r}"}
        if amount is not None and amount <= 0:
            return {"sku": sku, "status": "KO", "error": f"Invalid price {price!r}"}
        state.stock_record(db, account, listing, quantity=int(quantity), price=amount)
        return {"sku": sku, "status": "OK", "error": ""}

    def import_report(self, call: Call) -> Response:
        file_id = self.param(call, "fileid")
        with call.read() as db:
            row = db.execute("SELECT content FROM document WHERE id = ? AND account_id = ? AND "
                             "content_type = 'rakuten/import'", (file_id, call.account.id)).fetchone()
        if row is None:
            raise self.fail(200, "InvalidFileId", f"No import {file_id!r}.")
        products = "".join(
            f"<product>{element('sku', product['sku'])}{element('status', product['status'])}"
            f"{element('error', product['error'])}</product>" for product in json.loads(row["content"]))
        return Response.xml(f"<genericimportreportresult><response><status>Treated</status>{element('fileid', file_id)}"
                            f"{products}</response></genericimportreportresult>")
