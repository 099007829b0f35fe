"""Rakuten France web services (sales_ws, stock_ws), emulated to channels/connectors/rakuten/contract/*.json.

Credentials and version travel in the query string, answers are XML, refusals an errorresponse. Each route's
operation is the request's `action`, the contract's operation id, so every request is checked against its
action's query (and form) schema, and in tests every answer against its response schema, through the same
XML-to-document conversion the connector reads answers with (`channels.connectors.rakuten.mapper`).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any
from xml.sax.saxutils import escape

from channels.connectors.rakuten.mapper import xml_document
from sandbox.api import Call, ChannelApi, render_rows
from sandbox.control import RAKUTEN_IMPORT_COLUMNS, RAKUTEN_IMPORT_PROFILE_ID
from sandbox.ratelimit import Decision, Limit
from sandbox.state.common import Account, ControlError, money
from sandbox.state.listings import listing_by_sku, stock_record
from sandbox.state.orders import order_items, order_of_item, order_status_set, order_touch
from sandbox.state.received import event_record
from sandbox.web import HttpError, Request, Response

PAGE_SIZE = 100
AWAITING = "REQUESTED"
ENDED = ("CANCELLED", "REFUSED")
# The statuses an item may be shipped or cancelled from ([XLB] in the contract's notes).
SHIPPABLE = ("ACCEPTED", "COMMITTED")
COUNTRY_NAMES = {"FR": "France", "BE": "Belgique", "GB": "Royaume-Uni", "DE": "Allemagne", "ES": "Espagne"}
PARAMETER_ERROR = "Problem with parameters."


def element(name: str, value: Any) -> str:
    if value is None or value == "":
        return f"<{name}/>"
    return f"<{name}>{escape(str(value))}</{name}>"


def elements(fields: Iterable[tuple[str, Any]]) -> str:
    return "".join(element(name, value) for name, value in fields)


def amount(name: str, value: Any, currency: str) -> str:
    return f"<{name}>{element('amount', value)}{element('currency', currency)}</{name}>"


def encode_token(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode()


def decode_token(token: str) -> dict[str, Any] | None:
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode()))
    except (ValueError, binascii.Error):
        return None
    return data if isinstance(data, dict) else None


def action_of(request: Request) -> str:
    return request.arg("action") or "unknown"


def purchase_date(stored: str) -> str:
    """A stored ISO time in Rakuten's dd/mm/yyyy-hh:mm."""
    return datetime.fromisoformat(stored.replace("Z", "+00:00")).strftime("%d/%m/%Y-%H:%M")


def sale_status(statuses: list[str]) -> str:
    """What the sandbox keeps as the sale's status: its live items' first status, else CANCELLED/REFUSED."""
    live = [status for status in statuses if status not in ENDED]
    if live:
        return live[0]
    return "REFUSED" if set(statuses) == {"REFUSED"} else "CANCELLED"


class RakutenApi(ChannelApi):
    kind = "rakuten"
    # Rakuten publishes no figures (CHANNEL_APIS.md): no bucket unless the account's `rate_limits` sets one for
    # "ws" (every action of the account), which answers past it as Rakuten answers its hourly quota.
    published_limits: dict[str, Limit] = {}

    def routes(self) -> None:
        self.router.add("GET", "/sales_ws", action_of, self.sales)
        self.router.add("GET", "/stock_ws", action_of, self.stock)
        self.router.add("POST", "/stock_ws", action_of, self.stock)

    def bucket_key(self, operation: str) -> str:
        return "ws"

    # --- Rakuten's errors and the contract's view of a request and an answer ---

    def errorresponse(self, type_: str, code: str, message: str, details: Iterable[str] = (),
                      status: int = 200) -> Response:
        detail = "".join(element("detail", d) for d in details)
        return Response.xml(f"<errorresponse><error>{elements((('type', type_), ('code', code), ('message', message)))}"
                            f"<details>{detail}</details></error></errorresponse>", status)

    def error(self, status: int, code: str, message: str) -> Response:
        """The shared paths' errors (faults, throttling, unknown account) in Rakuten's shape."""
        if status == 429:
            return self.errorresponse("Sender", "InvalidUserRights", "Quota exceeded.",
                                      ["You have exceeded the maximum number of requests per hour."], status)
        if status >= 500:
            return self.errorresponse("ServerError", "ServerError", "Server not able to fullfill request.",
                                      [message], status)
        return self.errorresponse("Sender", code, message, [], status)

    def refuse(self, *details: str) -> HttpError:
        """Rakuten's refusal of a parameter, each detail saying what is wrong (our words: Rakuten's are unknown)."""
        return HttpError(self.errorresponse("Sender", "ParameterError", PARAMETER_ERROR, details))

    def refuse_invalid(self, call: Call, problems: list[str]) -> Response:
        return self.errorresponse("Sender", "ParameterError", PARAMETER_ERROR, problems)

    def throttled(self, decision: Decision) -> Response:
        response = self.error(429, "InvalidUserRights", "Quota exceeded.")
        response.headers.append(("Retry-After", str(decision.retry_after)))
        return response

    def request_parts(self, request: Request) -> dict[str, Any]:
        """The query, and for a POST its form with each uploaded file as its text."""
        parts: dict[str, Any] = {"query": {name: values[0] for name, values in request.query.items()}}
        if request.method == "POST":
            files = {name: content.decode("utf-8", "replace") for name, content in request.files().items()}
            parts["form"] = {**request.form(), **files}
        return parts

    def response_document(self, response: Response) -> Any:
        return xml_document(response.body) if response.body else None

    def invalid_credentials(self, call: Call) -> Response:
        return self.errorresponse("Sender", "InvalidUserConnection", "Unknown user or password.",
                                  ["Incorrect login or password"])

    def param(self, call: Call, name: str) -> str:
        return call.request.arg(name) or ""

    def authenticate(self, call: Call) -> None:
        login, token = self.param(call, "login"), self.param(call, "pwd")
        if not login or not token:
            # Missing parameters: the contract's check answers them (ParameterError).
            return
        credentials = call.account.credentials
        if login != credentials["login"] or token != credentials["token"]:
            raise HttpError(self.invalid_credentials(call))

    def echo(self, call: Call) -> str:
        return f"<request>{elements((('version', self.param(call, 'version')), ('user', self.param(call, 'login'))))}" \
               "</request>"

    def status_answer(self, call: Call, root: str, status: str) -> Response:
        version = self.param(call, "version")
        return Response.xml(f"<{root}>{self.echo(call)}<response>{element('lastversion', version)}"
                            f"{element('status', status)}</response></{root}>")

    # --- sales_ws ---

    def sales(self, call: Call) -> Response:
        action = call.operation
        if action in ("getnewsales", "getcurrentsales"):
            return self.list_sales(call, action)
        writes = {"acceptsale": (self.acceptsale, "saleacceptanceresult"),
                  "refusesale": (self.refusesale, "saleacceptanceresult"),
                  "settrackingpackageinfos": (self.settrackingpackageinfos, "setshippingpackageinfosresult"),
                  "cancelitem": (self.cancelitem, "cancelitemresult")}
        if action not in writes:
            raise self.refuse(f"The action {action} does not exist on sales_ws")
        write, root = writes[action]
        item_id = self.param(call, "itemid")
        with call.write() as db:
            found = order_of_item(db, call.account, int(item_id))
            if found is None:
                raise self.refuse(f"The item {item_id} is not one of your sales")
            sale, item = found
            status = write(db, call, sale, item)
        return self.status_answer(call, root, status)

    def list_sales(self, call: Call, action: str) -> Response:
        token = self.param(call, "nexttoken")
        if token:
            query = decode_token(token)
            if query is None or query.get("action") != action:
                raise self.refuse("The nexttoken is not valid")
        else:
            query = {"action": action, "since": None}
            purchased = self.param(call, "purchasedate")
            if action == "getcurrentsales" and purchased:
                try:
                    query["since"] = datetime.strptime(purchased, "%Y-%m-%d").strftime("%Y-%m-%dT00:00:00Z")
                except ValueError:
                    # Rakuten ignores a purchasedate it cannot read ([SHB]'s test of 'WRONGDATE').
                    query["since"] = None
        where, params = ["o.account_id = ?"], [call.account.id]
        if action == "getnewsales":
            where.append(f"EXISTS (SELECT 1 FROM order_item i WHERE i.order_pk = o.id AND i.status = '{AWAITING}')")
        if query.get("since"):
            where.append("o.created_at >= ?")
            params.append(query["since"])
        if query.get("cursor"):
            where.append("(o.created_at, o.id) > (?, ?)")
            params.extend(query["cursor"])
        with call.read() as db:
            rows = db.execute(f"SELECT o.* FROM channel_order o WHERE {' AND '.join(where)} "
                              "ORDER BY o.created_at, o.id LIMIT ?", (*params, PAGE_SIZE + 1)).fetchall()
            page = rows[:PAGE_SIZE]
            sales = render_rows(call, page, "", lambda pks: order_items(db, pks),
                                lambda row, items: self.sale_xml(self.sale_fields(row, items)))
            spoiled = call.take_malformed(sales)
            if spoiled is not None:
                row = page[spoiled["index"]]
                sale = self.sale_fields(row, order_items(db, [row["id"]])[row["id"]])
                if spoiled["corrupt"] == "id":
                    sale["purchaseid"] = None
                else:
                    sale["items"][0]["price"] = "one"
                sales[spoiled["index"]] = self.sale_xml(sale)
        next_token = ""
        if len(rows) > PAGE_SIZE:
            next_token = encode_token({**query, "cursor": [page[-1]["created_at"], page[-1]["id"]]})
        root = f"{action}result"
        return Response.xml(f"<{root}>{self.echo(call)}<response>{element('lastversion', self.param(call, 'version'))}"
                            f"{element('nexttoken', next_token)}<sales>{''.join(sales)}</sales></response></{root}>")

    def sale_fields(self, sale, items) -> dict[str, Any]:
        address = json.loads(sale["address"])
        return {
            "purchaseid": sale["order_id"], "purchasedate": purchase_date(sale["created_at"]),
            "shippingtype": sale["shipping_tag"], "currency": sale["currency"] or "EUR",
            "login": f"{address['first_name'].lower()}{sale['id']}", "email": sale["buyer_email"], "address": address,
            "items": [{"itemid": item["id"], "sku": item["sku"], "advertid": item["variant_id"] or item["listing_id"],
                       "headline": item["title"], "itemstatus": item["status"], "price": item["price"]}
                      for item in items],
        }

    def sale_xml(self, sale: dict[str, Any]) -> str:
        address, currency = sale["address"], sale["currency"]
        country = address["country"]
        items = "".join(
            "<item>" + elements((("sku", item["sku"]), ("advertid", item["advertid"])))
            + amount("advertpricelisted", item["price"], currency)
            + elements((("itemid", item["itemid"]), ("headline", item["headline"]), ("itemstatus", item["itemstatus"]),
                        ("ispreorder", "N"), ("isnego", "N")))
            + amount("price", item["price"], currency)
            + elements((("isrsl", "N"), ("paymentstatus", "INCOMING"))) + "</item>"
            for item in sale["items"])
        delivery = elements((
            ("lastname", address["last_name"]), ("firstname", address["first_name"]), ("address1", address["line1"]),
            ("address2", address["line2"]), ("zipcode", address["postcode"]), ("city", address["city"]),
            ("country", COUNTRY_NAMES.get(country, country)), ("countryalpha2", country),
            ("phonenumber1", address["phone"])))
        return (
            "<sale>" + elements((("purchaseid", sale["purchaseid"]), ("purchasedate", sale["purchasedate"])))
            + "<deliveryinformation>"
            + elements((("shippingtype", sale["shippingtype"]), ("isfullrsl", "N"),
                        ("purchasebuyerlogin", sale["login"]), ("purchasebuyeremail", sale["email"])))
            + f"<deliveryaddress>{delivery}</deliveryaddress><billingaddress>{delivery}</billingaddress>"
            + f"</deliveryinformation><items>{items}</items></sale>"
        )

    def acceptsale(self, db, call: Call, sale, item) -> str:
        if item["status"] != AWAITING:
            # As in [SHB]'s sample: accepting what is not awaiting acceptance answers Refused.
            return "Refused"
        self.set_item_status(db, sale, item, "ACCEPTED")
        return "Accepted"

    def refusesale(self, db, call: Call, sale, item) -> str:
        if item["status"] != AWAITING:
            raise self.refuse(f"The item {item['id']} is {item['status']}, not awaiting acceptance")
        self.set_item_status(db, sale, item, "REFUSED")
        return "Refused"

    def settrackingpackageinfos(self, db, call: Call, sale, item) -> str:
        if item["status"] not in SHIPPABLE:
            raise self.refuse(f"The item {item['id']} is {item['status']}: it cannot be shipped")
        # What status an item takes once its tracking is sent is not known: it keeps its own.
        order_touch(db, sale)
        event_record(db, call.account, "shipment", {
            "order_id": sale["order_id"], "tracking_number": self.param(call, "tracking_number"),
            "carrier": self.param(call, "transporter_name"), "tracking_url": self.param(call, "tracking_url"),
            "shipping_method": sale["shipping_tag"],
            "items": [{"line_id": str(item["id"]), "sku": item["sku"], "quantity": item["quantity"]}]})
        return "OK"

    def cancelitem(self, db, call: Call, sale, item) -> str:
        if item["status"] not in SHIPPABLE:
            raise self.refuse(f"The item {item['id']} is {item['status']}: only an accepted item can be cancelled")
        self.set_item_status(db, sale, item, "CANCELLED")
        event_record(db, call.account, "cancellation", {
            "order_id": sale["order_id"], "reason": self.param(call, "comment"),
            "items": [{"line_id": str(item["id"]), "sku": item["sku"], "quantity": item["quantity"]}]})
        return "CANCELLED"

    def set_item_status(self, db, sale, item, status: str) -> None:
        """Change one item; the sale's kept status follows its items."""
        db.execute("UPDATE order_item SET status = ? WHERE id = ?", (status, item["id"]))
        statuses = [row["status"] for row in db.execute("SELECT status FROM order_item WHERE order_pk = ? ORDER BY id",
                                                        (sale["id"],))]
        order_status_set(db, sale, sale_status(statuses), items_too=False)

    # --- stock_ws ---

    def stock(self, call: Call) -> Response:
        action = call.operation
        if action == "import" and call.request.method == "POST":
            return self.import_file(call)
        if action == "importreport" and call.request.method == "GET":
            return self.import_report(call)
        if action == "export" and call.request.method == "GET":
            return self.export(call)
        raise self.refuse(f"The action {action} does not exist on stock_ws as a {call.request.method}")

    def export(self, call: Call) -> Response:
        token = self.param(call, "nexttoken")
        after = 0
        if token:
            query = decode_token(token)
            if query is None or not isinstance(query.get("after"), int):
                raise self.refuse("The nexttoken is not valid")
            after = query["after"]
        with call.read() as db:
            total = db.execute("SELECT COUNT(*) FROM listing WHERE account_id = ?", (call.account.id,)).fetchone()[0]
            rows = db.execute("SELECT * FROM listing WHERE account_id = ? AND id > ? ORDER BY id LIMIT ?",
                              (call.account.id, after, PAGE_SIZE + 1)).fetchall()
        page = rows[:PAGE_SIZE]
        adverts = [{"advertid": row["id"], "sku": row["sku"], "title": row["title"], "stock": row["quantity"],
                    "price": row["price"]} for row in page]
        spoiled = call.take_malformed(adverts)
        if spoiled is not None:
            if spoiled["corrupt"] == "id":
                adverts[spoiled["index"]]["sku"] = None
            else:
                adverts[spoiled["index"]]["stock"] = "lots"
        next_token = encode_token({"after": page[-1]["id"]}) if len(rows) > PAGE_SIZE else ""
        body = "".join(
            f"<advert><productsummary>{elements((('productid', advert['advertid']), ('headline', advert['title'])))}"
            f"</productsummary>{elements((('advertid', advert['advertid']), ('sku', advert['sku'])))}"
            f"{amount('price', advert['price'], 'EUR')}{elements((('quality', 'NEW'), ('stock', advert['stock'])))}"
            "</advert>" for advert in adverts)
        return Response.xml(f"<inventoryresult>{self.echo(call)}<response>{element('nbresults', total)}"
                            f"{element('nexttoken', next_token)}<advertlist>{body}</advertlist></response>"
                            "</inventoryresult>")

    def import_profile(self, call: Call) -> tuple[str, ...]:
        profiles = call.account.settings.get("import_profiles") or {RAKUTEN_IMPORT_PROFILE_ID: RAKUTEN_IMPORT_COLUMNS}
        profile_id = self.param(call, "profileid")
        if profile_id not in profiles:
            raise self.refuse(f"The import profile {profile_id} does not exist")
        return tuple(profiles[profile_id])

    def import_file(self, call: Call) -> Response:
        columns = self.import_profile(call)
        content = call.request.files()["file"]
        lines = [line for line in content.decode("utf-8", "replace").splitlines() if line.strip()]
        with call.write() as db:
            errors = [error for line in lines if (error := self.import_line(db, call.account, columns, line))]
            report = {"processstatus": "PROCESSED" if lines else "PROCESS_FAILED",
                      "errors": errors if lines else [{"data": "", "errorreport": "The file has no line"}]}
            rowid = db.execute("INSERT INTO document (id, account_id, content_type, content) "
                               "SELECT COALESCE(MAX(CAST(id AS INTEGER)), 0) + 1, ?, 'rakuten/import', ? "
                               "FROM document WHERE content_type = 'rakuten/import'",
                               (call.account.id, json.dumps(report).encode())).lastrowid
            import_id = db.execute("SELECT id FROM document WHERE rowid = ?", (rowid,)).fetchone()[0]
        return Response.xml(f"<importresult>{self.echo(call)}<response>{element('importid', import_id)}"
                            "</response></importresult>")

    def import_line(self, db, account: Account, columns: tuple[str, ...], line: str) -> dict[str, str] | None:
        """Apply one line in the profile's layout; the report's error for it, or None when it was taken."""
        cells = [cell.strip() for cell in line.split(";")]
        if len(cells) != len(columns):
            return {"data": line, "errorreport": f"{len(columns)} columns expected, {len(cells)} found"}
        values = dict(zip(columns, cells, strict=True))
        listing = listing_by_sku(db, account, values.get("sku", ""))
        if listing is None:
            return {"data": line, "errorreport": "Unknown SKU"}
        quantity = values.get("quantity", "")
        if "quantity" in values and not quantity.isdigit():
            return {"data": line, "errorreport": f"Invalid quantity {quantity!r}"}
        price = values.get("price", "")
        try:
            price_amount = money(price) if price else None
        except ControlError:
            return {"data": line, "errorreport": f"Invalid price {price!r}"}
        if price_amount is not None and price_amount <= 0:
            return {"data": line, "errorreport": f"Invalid price {price!r}"}
        stock_record(db, account, listing, quantity=int(quantity) if quantity else None, price=price_amount)
        return None

    def import_report(self, call: Call) -> Response:
        file_id = self.param(call, "fileid")
        with call.read() as db:
            row = db.execute("SELECT content FROM document WHERE id = ? AND account_id = ? AND "
                             "content_type = 'rakuten/import'", (file_id, call.account.id)).fetchone()
        if row is None:
            raise self.refuse(f"The file {file_id} does not exist")
        report = json.loads(row["content"])
        errors = "".join(f"<error>{elements((('data', e['data']), ('errorreport', e['errorreport'])))}</error>"
                         for e in report["errors"])
        return Response.xml(f"<importreportresult>{self.echo(call)}<response>"
                            f"{element('processstatus', report['processstatus'])}<errorlist>{errors}</errorlist>"
                            "</response></importreportresult>")
