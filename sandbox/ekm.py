"""EKM Partner API, as channels/connectors/ekm/contract/*.json describes it (written from EKM's swagger).

Route operation names are the contract's operation ids, so every request is checked against it before its
handler runs; a refused one gets EKM's wrapper with `validation_result` (`refuse_invalid`).

Webhooks: when the control API places or changes an order, `order_webhooks_send` POSTs EKM's delivery to every
enabled subscription of its topic, from a thread of its own so the control API answers at once, with EKM's
5-second wait and retry schedule.
"""

from __future__ import annotations

import base64
import json
import logging
import math
import re
import secrets
import threading
import time
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import requests

from sandbox.api import Call, ChannelApi, render_rows
from sandbox.ratelimit import Decision, Limit
from sandbox.state.accounts import (
    access_token_issue,
    access_token_state,
    authorization_code_use,
    grant_create,
    refresh_token_issue,
    refresh_tokens_used_bump,
)
from sandbox.state.common import TAX_RATE, Account, included_tax
from sandbox.state.listings import listing_by_id, stock_record
from sandbox.state.orders import EKM_ORDER_STATUSES, order_get, order_items, order_status_set, order_totals
from sandbox.state.received import event_record
from sandbox.state.webhooks import (
    subscription_add,
    subscription_delete,
    subscription_endpoints,
    subscription_update,
    subscriptions_all,
)
from sandbox.store import Store, now_iso, parse_time
from sandbox.web import HttpError, Response

logger = logging.getLogger("sandbox")

MAX_PAGE_SIZE = 20
DEFAULT_SCOPE = ("tempest.orders.read tempest.orders.write tempest.products.read tempest.products.write "
                 "tempest.settings.orderstatuses.read offline_access")
STATUS_COLOURS = ("#000099", "#FF0000", "#FF00FF", "#008000", "#FFFF00", "#0000FF", "#800080", "#808080")
CURRENCY_SYMBOLS = {"GBP": "£", "EUR": "€", "USD": "$"}
# An order's last_updated is null until the order first changes (every example order in the swagger has null).
LAST_UPDATED = "(CASE WHEN revision = 0 AND updated_at = created_at THEN NULL ELSE updated_at END)"
FILTER_FIELDS = {"last_updated": LAST_UPDATED, "order_date": "created_at", "status": "status",
                 "id": "CAST(order_id AS INTEGER)", "order_number": "order_number"}
DATE_FIELDS = {"last_updated", "order_date"}
FILTER_OPERATORS = {"eq": "=", "ne": "<>", "gt": ">", "ge": ">=", "lt": "<", "le": "<="}
ORDER_COLUMNS = {"id": "CAST(order_id AS INTEGER)", "order_date": "created_at", "last_updated": LAST_UPDATED,
                 "status": "status", "order_number": "order_number"}
TOKEN = re.compile(r"\s*(?:(\()|(\))|'((?:[^']|'')*)'|(-?\d+(?:\.\d+)?)(?![\w:.-])|([A-Za-z_][\w]*))")
INVALID_SEARCH = "Invalid search expression"
REQUIRED = re.compile(r"^'(\w+)' is a required property$")
UNEXPECTED = re.compile(r"\('(\w+)' was unexpected\)")
# The swagger's Webhooks section: EKM waits 5 s for the 200, then retries 20 times, the n-th after
# 200 ms x 1.97^(n-1). Tests lower the retries, which would otherwise go on for a day.
WEBHOOK_TIMEOUT = 5.0
WEBHOOK_RETRIES = 20


def webhook_delay(retry: int) -> float:
    """Seconds before the n-th retry of a delivery (from 1): the swagger's getDelay."""
    return 0.2 * 1.97 ** (retry - 1)


def _segment(claims: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(claims, separators=(",", ":")).encode()).decode().rstrip("=")


def access_token_prefix(account: Account, client_id: str, scope: str) -> str:
    """EKM's access tokens are JSON Web Tokens whose `sub` is the merchant's username (the Webhooks section): the
    header and claims, to which the random part is added as the signature (nobody checks it)."""
    claims = {"sub": account.name, "client_id": client_id, "scope": scope,
              "exp": int(time.time()) + account.token_lifetime}
    return f"{_segment({'alg': 'RS256', 'typ': 'JWT'})}.{_segment(claims)}."


def _delivered(endpoint: str, payload: dict[str, str]) -> bool:
    try:
        with requests.post(endpoint, json=payload, timeout=WEBHOOK_TIMEOUT, stream=True) as answer:
            return answer.status_code == 200
    except requests.RequestException:
        return False


def _pause(store: Store, seconds: float) -> bool:
    """Wait, unless the sandbox stops meanwhile (its store closes): then False."""
    end = time.monotonic() + seconds
    while not store.closed:
        left = end - time.monotonic()
        if left <= 0:
            return True
        time.sleep(min(left, 0.05))
    return False


def _deliver(store: Store, deliveries: list[tuple[str, dict[str, str]]]) -> None:
    """Send each delivery; one not answered 200 in time is sent again on EKM's schedule, the others meanwhile."""
    pending = [(time.monotonic(), 0, endpoint, payload) for endpoint, payload in deliveries]
    while pending:
        pending.sort(key=lambda entry: entry[0])
        due, retries, endpoint, payload = pending.pop(0)
        if not _pause(store, due - time.monotonic()):
            return
        if _delivered(endpoint, payload):
            continue
        if retries < WEBHOOK_RETRIES:
            pending.append((time.monotonic() + webhook_delay(retries + 1), retries + 1, endpoint, payload))
        else:
            logger.warning("sandbox.ekm.webhook_given_up %s %s", payload["topic"], payload["entity_id"])


def order_webhooks_send(store: Store, account: Account, topic: str, order_ids: list[str]) -> None:
    """Tell every subscription of `topic` about these orders, from a thread (EKM's deliveries are asynchronous).
    Called once the orders are committed, so the hub reading one at once finds it."""
    with store.read() as db:
        endpoints = subscription_endpoints(db, account, topic)
    deliveries = [(endpoint, {"username": account.name, "topic": topic, "entity_id": str(order_id)})
                  for order_id in order_ids for endpoint in endpoints]
    if deliveries:
        threading.Thread(target=_deliver, args=(store, deliveries), name="sandbox-ekm-webhooks", daemon=True).start()


def number(value: Decimal | str) -> float:
    """EKM sends money as a JSON number."""
    return float(Decimal(value))


def envelope(data: Any, *, status: int = 200, meta: dict[str, int] | None = None,
             links: list[dict[str, str]] | None = None, validation: list[dict[str, Any]] | None = None,
             errors: dict[str, str] | None = None) -> Response:
    """EKM's wrapper around every JSON answer: meta is {} and links [] on a single record, as in the swagger."""
    return Response.json({"meta": meta or {}, "links": links or [], "validation_result": validation,
                          "errors": errors, "data": data}, status)


def page_of(data: list[Any], *, page: int, per_page: int, total: int, resource: str) -> Response:
    pages = math.ceil(total / per_page)
    links = [{"rel": "current", "href": f"/{resource}?page={page}"}]
    if page < pages:
        links.append({"rel": "next", "href": f"/{resource}?page={page + 1}"})
    return envelope(data, meta={"pages_total": pages, "items_total": total, "items_per_page": per_page}, links=links)


def refusal(status: int, message: str, member: str | None = None) -> Response:
    return envelope(None, status=status, validation=[{"member_names": [member] if member else None,
                                                      "error_message": message}])


def member_of(problem: str) -> tuple[str | None, str]:
    """(field, message) of one contract problem, in EKM's words where it has them."""
    where, _, message = problem.partition(": ")
    if ": " in message and where in ("body", "query", "form"):
        field, _, rest = message.partition(": ")
        if re.fullmatch(r"[\w.\[\]]+", field):
            return field, rest
    if found := REQUIRED.match(message):
        return found[1], f"The {found[1]} field is required."
    if found := UNEXPECTED.search(message):
        return found[1], message
    return None, message


class ODataFilter:
    """The subset of OData $filter that Orders_Search is given here, as SQL over channel_order.

    Comparisons of a field with a quoted text, a number or null, joined by and/or/not, with parentheses.
    """

    def __init__(self, text: str) -> None:
        self.tokens = self.tokenise(text)
        self.at = 0

    @staticmethod
    def tokenise(text: str) -> list[tuple[str, str]]:
        tokens, position = [], 0
        while text[position:].strip():
            found = TOKEN.match(text, position)
            if not found:
                raise ValueError(INVALID_SEARCH)
            opening, closing, quoted, numeral, word = found.groups()
            kind = ("(" if opening else ")" if closing else "text" if quoted is not None
                    else "number" if numeral is not None else "word")
            tokens.append((kind, quoted.replace("''", "'") if quoted is not None else found[0].strip()))
            position = found.end()
        return tokens

    def sql(self) -> tuple[str, list[Any]]:
        if not self.tokens:
            return "1 = 1", []
        where, params = self.either()
        if self.at != len(self.tokens):
            raise ValueError(INVALID_SEARCH)
        return where, params

    def peek(self) -> tuple[str, str]:
        return self.tokens[self.at] if self.at < len(self.tokens) else ("end", "")

    def take(self) -> tuple[str, str]:
        token = self.peek()
        if token[0] == "end":
            raise ValueError(INVALID_SEARCH)
        self.at += 1
        return token

    def keyword(self, word: str) -> bool:
        kind, value = self.peek()
        if kind == "word" and value.lower() == word:
            self.at += 1
            return True
        return False

    def either(self) -> tuple[str, list[Any]]:
        where, params = self.both()
        while self.keyword("or"):
            more, extra = self.both()
            where, params = f"({where} OR {more})", params + extra
        return where, params

    def both(self) -> tuple[str, list[Any]]:
        where, params = self.negation()
        while self.keyword("and"):
            more, extra = self.negation()
            where, params = f"({where} AND {more})", params + extra
        return where, params

    def negation(self) -> tuple[str, list[Any]]:
        if self.keyword("not"):
            where, params = self.negation()
            return f"(NOT {where})", params
        if self.peek()[0] == "(":
            self.take()
            where, params = self.either()
            if self.take()[0] != ")":
                raise ValueError(INVALID_SEARCH)
            return where, params
        return self.comparison()

    def comparison(self) -> tuple[str, list[Any]]:
        (kind, field), (op_kind, operator), (value_kind, value) = self.take(), self.take(), self.take()
        if kind != "word" or field not in FILTER_FIELDS or op_kind != "word" or operator not in FILTER_OPERATORS:
            raise ValueError(INVALID_SEARCH)
        column = FILTER_FIELDS[field]
        if value_kind == "word" and value == "null":
            if operator not in ("eq", "ne"):
                raise ValueError(INVALID_SEARCH)
            return f"{column} IS {'NOT ' if operator == 'ne' else ''}NULL", []
        if value_kind not in ("text", "number"):
            raise ValueError(INVALID_SEARCH)
        if field in DATE_FIELDS:
            value = parse_time(value)
        elif field == "id":
            value = int(value)
        return f"{column} {FILTER_OPERATORS[operator]} ?", [value]


class EkmApi(ChannelApi):
    kind = "ekm"
    published_limits = {"bucket": Limit(2, 40)}

    def routes(self) -> None:
        add = self.router.add
        add("POST", "/connect/token", "token", self.token, authenticated=False, limited=False)
        add("GET", "/connect/authorize", "authorize", self.authorize, authenticated=False, limited=False)
        add("GET", "/api/v1/settings/shop_information", "ShopInformation_Get", self.shop_information)
        add("GET", "/api/v1/settings/domains", "Domains_GetPrimaryDomain", self.domains)
        add("GET", "/api/v1/settings/currency", "Currency_GetCurrency", self.currency)
        add("GET", "/api/v1/settings/orderstatuses", "OrderStatuses_GetOrderStatuses", self.order_statuses)
        add("GET", "/api/v2/orders/search", "Orders_Search", self.search_orders)
        add("GET", "/api/v2/orders", "Orders_GetAll", self.all_orders)
        add("GET", "/api/v2/orders/{order_id}", "Orders_GetById", self.get_order)
        add("GET", "/api/v2/orders/{order_id}/items", "Orders_GetItems", self.order_items)
        add("PUT", "/api/v2/orders/{order_id}/deliveryTracking", "Orders_UpdateDeliveryTracking",
            self.delivery_tracking)
        add("PUT", "/api/v2/orders/{order_id}/status", "Orders_UpdateStatus", self.set_status)
        add("GET", "/api/v1/products", "Products_GetAll", self.products)
        add("GET", "/api/v1/products/{product_id}", "Products_Get", self.get_product)
        add("PUT", "/api/v1/products/{product_id}", "Products_Update", self.update_product)
        add("PUT", "/api/v1/products/{product_id}/stock", "ProductStock_Update", self.product_stock)
        add("GET", "/api/v1/products/{product_id}/variants/{variant_id}", "ProductVariants_GetProductVariant",
            self.get_variant)
        add("PUT", "/api/v1/products/{product_id}/variants/{variant_id}", "ProductVariants_Update",
            self.update_variant)
        add("PUT", "/api/v1/products/{product_id}/variants/{variant_id}/stock", "ProductVariantStock_Update",
            self.variant_stock)
        add("POST", "/api/v2/Webhooks", "Webhooks_Post", self.subscribe)
        add("GET", "/api/v2/Webhooks/webhooks", "Webhooks_GetAll", self.subscriptions)
        add("PUT", "/api/v2/Webhooks/{subscription_id}", "Webhooks_Put", self.update_subscription)
        add("DELETE", "/api/v2/Webhooks/{subscription_id}", "Webhooks_Delete", self.unsubscribe)

    # The vendor's error shapes

    def error(self, status: int, code: str, message: str) -> Response:
        if status in (401, 403):
            return Response(status, b"", [("WWW-Authenticate", 'Bearer error="invalid_token"')])
        if status in (400, 404, 422):
            return refusal(status, message)
        # 429 and 5xx: EKM documents no body for them; the wrapper names the error as its `errors` object does.
        return envelope(None, status=status, errors={code: message})

    def refused(self, status: int, message: str, member: str | None = None) -> HttpError:
        return HttpError(refusal(status, message, member))

    def refuse_invalid(self, call: Call, problems: list[str]) -> Response:
        if call.operation == "token":
            return Response.json({"error": "invalid_request", "error_description": "; ".join(problems)}, 400)
        if self.contract.operation(call.operation).spec["responses"].get("400") is None:
            return Response(400)
        validation = []
        for problem in problems:
            member, message = member_of(problem)
            validation.append({"member_names": [member] if member else None, "error_message": message})
        return envelope(None, status=400, validation=validation)

    def bucket_key(self, operation: str) -> str:
        return "bucket"

    def rate_headers(self, decision: Decision | None) -> list[tuple[str, str]]:
        if decision is None:
            return []
        # LeakRate is the leak interval in seconds and LeakAmount what leaks each interval (swagger 'Rate Limits').
        rate = decision.limit.rate
        interval, amount = (1.0, rate) if rate >= 1 or rate <= 0 else (1 / rate, 1.0)
        return [("X-EKM-RateLimit-Cost", "1"), ("X-EKM-RateLimit-BucketSize", str(decision.limit.burst)),
                ("X-EKM-RateLimit-LeakRate", f"{interval:g}"), ("X-EKM-RateLimit-LeakAmount", f"{amount:g}"),
                ("X-EKM-RateLimit-Remaining", str(decision.remaining))]

    def authenticate(self, call: Call) -> None:
        header = call.request.header("Authorization")
        token = header[7:].strip() if header.lower().startswith("bearer ") else ""
        with call.read() as db:
            token_state = access_token_state(db, call.account, token)
        if token_state == "revoked":
            raise self.fail(403, "", "")
        if token_state != "valid":
            raise self.fail(401, "", "")

    # OAuth2 (connect.json)

    def token(self, call: Call) -> Response:
        form = call.request.form()
        account = call.account
        if form.get("client_id") != account.credentials["client_id"] or form.get(
                "client_secret") != account.credentials["client_secret"]:
            return Response.json({"error": "invalid_client"}, 400)
        grant_type = form.get("grant_type")
        scope = form.get("scope") or DEFAULT_SCOPE
        with call.write() as db:
            if grant_type == "refresh_token":
                row = db.execute(
                    "SELECT r.used, r.grant_id, g.revoked FROM refresh_token r JOIN oauth_grant g ON g.id = r.grant_id "
                    "WHERE r.token = ? AND r.account_id = ?", (form.get("refresh_token", ""), account.id)).fetchone()
                if row is None or row["revoked"]:
                    return Response.json({"error": "invalid_grant"}, 400)
                if row["used"]:
                    # A replayed refresh token means two holders: EKM revokes the whole grant.
                    db.execute("UPDATE oauth_grant SET revoked = 1 WHERE id = ?", (row["grant_id"],))
                    return Response.json({"error": "invalid_grant"}, 400)
                db.execute("UPDATE refresh_token SET used = 1 WHERE token = ?", (form["refresh_token"],))
                refresh_tokens_used_bump(db, account)
                grant_id = row["grant_id"]
            elif grant_type == "authorization_code":
                if not authorization_code_use(db, account, form.get("code", "")):
                    return Response.json({"error": "invalid_grant"}, 400)
                grant_id = grant_create(db, account)
            else:
                return Response.json({"error": "unsupported_grant_type"}, 400)
            refresh = refresh_token_issue(db, account, grant_id, "ekmr_")
            access = access_token_issue(db, account, grant_id, access_token_prefix(account, form["client_id"], scope))
        return Response.json({"access_token": access, "expires_in": account.token_lifetime, "token_type": "Bearer",
                              "refresh_token": refresh, "scope": scope})

    def authorize(self, call: Call) -> Response:
        """The consent page, the merchant consenting at once: back to redirect_uri with a code `token` takes once.

        An unknown client, or a redirect URI the account's credentials do not register (`redirect_uris`, when
        set), is refused on the page itself (OAuth2 never redirects to an unchecked URI); a response_type other
        than `code` goes back with `unsupported_response_type`."""
        arg = call.request.arg
        if arg("client_id") != call.account.credentials["client_id"]:
            return Response.json({"error": "invalid_client", "error_description": "Unknown client"}, 400)
        redirect_uri = arg("redirect_uri") or ""
        registered = list(call.account.credentials.get("redirect_uris") or [])
        if registered and redirect_uri not in registered:
            return Response.json({"error": "invalid_request", "error_description": "Invalid redirect_uri"}, 400)
        if arg("response_type") != "code":
            answer = {"error": "unsupported_response_type", "state": arg("state") or ""}
        else:
            answer = {"code": "ekmc_" + secrets.token_urlsafe(18), "scope": arg("scope") or DEFAULT_SCOPE,
                      "state": arg("state") or ""}
        back = redirect_uri + ("&" if "?" in redirect_uri else "?") + urlencode(answer)
        return Response(302, b"", [("Location", back)])

    # Settings

    def shop_information(self, call: Call) -> Response:
        name = call.account.settings.get("shop_name") or f"{call.account.name} (sandbox)"
        return envelope({"shop_name": name, "country": "GB"})

    def domains(self, call: Call) -> Response:
        return envelope({"primary_domain_name": f"{call.account.name}.ekmsandbox.test"})

    def currency(self, call: Call) -> Response:
        code = call.account.settings.get("currency") or "GBP"
        return envelope({"currency_code": code, "currency_symbol": CURRENCY_SYMBOLS.get(code, code)})

    def statuses(self, account: Account) -> list[str]:
        return account.settings.get("order_statuses") or EKM_ORDER_STATUSES

    def order_statuses(self, call: Call) -> Response:
        return envelope({"statuses": [
            {"name": name, "colour": STATUS_COLOURS[index % len(STATUS_COLOURS)], "show_in_quick_stats": True}
            for index, name in enumerate(self.statuses(call.account))]})

    # Orders

    def page_args(self, call: Call) -> tuple[int, int]:
        # The contract has checked both already (page >= 1, 1 <= limit <= 20).
        return int(call.request.arg("page") or "1"), int(call.request.arg("limit") or str(MAX_PAGE_SIZE))

    def search_orders(self, call: Call) -> Response:
        try:
            where, params = ODataFilter(call.request.arg("query") or "").sql()
        except ValueError:
            raise self.refused(400, INVALID_SEARCH) from None
        orderby = call.request.arg("orderby") or "id"
        column = ORDER_COLUMNS.get(orderby.lstrip("-"))
        if column is None:
            raise self.refused(400, f"Cannot order by {orderby!r}", "orderby")
        direction = " DESC" if orderby.startswith("-") else ""
        return self.orders_page(call, where, params, f"{column}{direction}, id{direction}")

    def all_orders(self, call: Call) -> Response:
        return self.orders_page(call, "1 = 1", [], "id")

    def orders_page(self, call: Call, where: str, params: list[Any], ordering: str) -> Response:
        page, limit = self.page_args(call)
        condition = f"account_id = ? AND {where}"
        values = [call.account.id, *params]
        with call.read() as db:
            total = db.execute(f"SELECT COUNT(*) FROM channel_order WHERE {condition}", values).fetchone()[0]
            rows = db.execute(f"SELECT * FROM channel_order WHERE {condition} ORDER BY {ordering} LIMIT ? OFFSET ?",
                              (*values, limit, (page - 1) * limit)).fetchall()
            texts = render_rows(call, rows, "", lambda pks: order_items(db, pks),
                                lambda row, items: json.dumps(self.render_order(row, items)))
        orders = [json.loads(text) for text in texts]
        spoiled = call.take_malformed(orders)
        if spoiled is not None:
            if spoiled["corrupt"] == "quantity":
                orders[spoiled["index"]]["total_cost"] = "lots"
            else:
                del orders[spoiled["index"]]["id"]
        return page_of(orders, page=page, per_page=limit, total=total, resource="orders")

    def render_order(self, order, items) -> dict[str, Any]:
        """A V2Order."""
        address = json.loads(order["address"])
        totals = order_totals(order, items)
        tracking = json.loads(order["tracking"]) if order["tracking"] else {}
        never_changed = order["revision"] == 0 and order["updated_at"] == order["created_at"]
        return {
            "id": int(order["order_id"]), "order_number": order["order_number"], "order_date": order["created_at"],
            "last_updated": None if never_changed else order["updated_at"], "status": order["status"],
            "payment_status": "SUCCESS" if order["paid"] else "PENDING", "order_type": "",
            "delivery_method": order["shipping_tag"],
            "shipping_company": tracking.get("delivery_tracking_company") or None,
            "sub_total": number(totals["subtotal"]), "total_delivery": number(totals["shipping"]),
            "total_tax": number(totals["tax"]), "total_cost": number(totals["total"]),
            "customer_details": {"first_name": address["first_name"], "last_name": address["last_name"],
                                 "email_address": order["buyer_email"]},
            "shipping_address": {"first_name": address["first_name"], "last_name": address["last_name"],
                                 "address": address["line1"], "address2": address["line2"] or None,
                                 "town": address["city"], "county": address["region"] or None,
                                 "post_code": address["postcode"], "country": address["country"],
                                 "telephone": address["phone"] or None},
            **{key: tracking.get(key) or None for key in ("delivery_tracking_number", "delivery_tracking_company",
                                                          "delivery_tracking_url")},
        }

    def find_order(self, db, call: Call, order_id: str):
        order = order_get(db, call.account, order_id)
        if order is None:
            raise self.refused(404, f"Order '{order_id}' not found.", "id")
        return order

    def order_answer(self, db, call: Call, order_id: str) -> Response:
        order = self.find_order(db, call, order_id)
        return envelope(self.render_order(order, order_items(db, [order["id"]])[order["id"]]))

    def get_order(self, call: Call, order_id: str) -> Response:
        with call.read() as db:
            return self.order_answer(db, call, order_id)

    def order_items(self, call: Call, order_id: str) -> Response:
        with call.read() as db:
            order = self.find_order(db, call, order_id)
            items = order_items(db, [order["id"]])[order["id"]]
        rendered = [self.render_item(order, item) for item in items]
        spoiled = call.take_malformed(rendered)
        if spoiled is not None:
            if spoiled["corrupt"] == "id":
                del rendered[spoiled["index"]]["product_code"]
            else:
                rendered[spoiled["index"]]["quantity"] = "one"
        return envelope(rendered)

    def render_item(self, order, item) -> dict[str, Any]:
        """A V2OrderItem: it names the product, and a variant only by its product_code."""
        rendered = {
            "id": item["id"], "order_id": int(order["order_id"]), "order_number": order["order_number"],
            "product_code": item["sku"], "item_name": item["title"], "quantity": item["quantity"],
            "item_price": number(item["price"]),
            "item_tax": number(included_tax(Decimal(item["price"]) * item["quantity"])),
            "item_tax_rate": float(TAX_RATE), "item_discount": 0.0,
        }
        if item["listing_id"] is not None:
            rendered["product_id"] = item["listing_id"]
        return rendered

    def delivery_tracking(self, call: Call, order_id: str) -> Response:
        body = call.request.json()
        with call.write() as db:
            order = self.find_order(db, call, order_id)
            tracking = json.loads(order["tracking"]) if order["tracking"] else {}
            tracking.update({key: value or "" for key, value in body.items()})
            db.execute("UPDATE channel_order SET tracking = ?, updated_at = ?, revision = revision + 1 "
                       "WHERE id = ?", (json.dumps(tracking), now_iso(), order["id"]))
            return self.order_answer(db, call, order_id)

    def set_status(self, call: Call, order_id: str) -> Response:
        body = call.request.json()
        status = body["status"]
        if status not in self.statuses(call.account):
            raise self.refused(400, f"'{status}' is not one of the shop's order statuses.", "status")
        settings = call.account.settings
        despatched = settings.get("despatch_statuses") or ["DISPATCHED", "COMPLETE"]
        cancelled = settings.get("cancelled_statuses") or ["CANCELLED"]
        with call.write() as db:
            order = self.find_order(db, call, order_id)
            items = order_items(db, [order["id"]])[order["id"]]
            lines = [{"line_id": str(item["id"]), "sku": item["sku"], "quantity": item["quantity"]} for item in items]
            order_status_set(db, order, status)
            event_record(db, call.account, "status", {"order_id": order_id, "status": status,
                                                            "email_customer": bool(body.get("email_customer"))})
            if status in despatched and order["status"] not in despatched:
                tracking = json.loads(order["tracking"]) if order["tracking"] else {}
                event_record(db, call.account, "shipment", {
                    "order_id": order_id, "tracking_number": tracking.get("delivery_tracking_number", ""),
                    "carrier": tracking.get("delivery_tracking_company", ""),
                    "tracking_url": tracking.get("delivery_tracking_url", ""),
                    "shipping_method": order["shipping_tag"], "items": lines})
            if status in cancelled and order["status"] not in cancelled:
                event_record(db, call.account, "cancellation",
                                   {"order_id": order_id, "reason": status, "items": lines})
            return self.order_answer(db, call, order_id)

    # Products

    def render_variant(self, variant) -> dict[str, Any]:
        """A V1ProductVariant."""
        return {"id": variant["id"], "parent_product_id": variant["parent_id"], "product_code": variant["sku"],
                "number_in_stock": variant["quantity"], "price": number(variant["price"]),
                "live": bool(variant["live"])}

    def render_product(self, product, variants) -> dict[str, Any]:
        """A V1Product."""
        return {
            "id": product["id"], "name": product["title"], "product_code": product["sku"],
            "number_in_stock": product["quantity"], "price": number(product["price"]), "live": bool(product["live"]),
            "variants": [self.render_variant(variant) for variant in variants],
        }

    def variants_of(self, db, product_ids: list[int]) -> dict[int, list]:
        grouped: dict[int, list] = {product_id: [] for product_id in product_ids}
        if product_ids:
            marks = ",".join("?" * len(product_ids))
            for row in db.execute(f"SELECT * FROM listing WHERE parent_id IN ({marks}) ORDER BY id", product_ids):
                grouped[row["parent_id"]].append(row)
        return grouped

    def products(self, call: Call) -> Response:
        page, limit = self.page_args(call)
        with call.read() as db:
            total = db.execute("SELECT COUNT(*) FROM listing WHERE account_id = ? AND parent_id IS NULL",
                               (call.account.id,)).fetchone()[0]
            rows = db.execute("SELECT * FROM listing WHERE account_id = ? AND parent_id IS NULL ORDER BY id "
                              "LIMIT ? OFFSET ?", (call.account.id, limit, (page - 1) * limit)).fetchall()
            variants = self.variants_of(db, [row["id"] for row in rows])
        products = [self.render_product(row, variants[row["id"]]) for row in rows]
        spoiled = call.take_malformed(products)
        if spoiled is not None:
            if spoiled["corrupt"] == "id":
                del products[spoiled["index"]]["product_code"]
            else:
                products[spoiled["index"]]["number_in_stock"] = "lots"
        return page_of(products, page=page, per_page=limit, total=total, resource="products")

    def find_product(self, db, call: Call, product_id: str):
        """A product (not a variant): a variant's id is a 422, as on EKM."""
        product = listing_by_id(db, call.account, int(product_id)) if product_id.isdigit() else None
        if product is None:
            raise self.refused(404, f"Product '{product_id}' not found.", "id")
        if product["parent_id"]:
            raise self.refused(422, f"Product '{product_id}' is a variant. Please use master product Id "
                                    f"'{product['parent_id']}'", "id")
        return product

    def find_variant(self, db, call: Call, product_id: str, variant_id: str):
        variant = listing_by_id(db, call.account, int(variant_id)) if variant_id.isdigit() else None
        if variant is None or str(variant["parent_id"]) != product_id:
            raise self.refused(404, f"Product '{product_id}' has no variant '{variant_id}'.", "id")
        return variant

    def product_answer(self, db, call: Call, product_id: int) -> Response:
        product = listing_by_id(db, call.account, product_id)
        return envelope(self.render_product(product, self.variants_of(db, [product["id"]])[product["id"]]))

    def get_product(self, call: Call, product_id: str) -> Response:
        with call.read() as db:
            return self.product_answer(db, call, self.find_product(db, call, product_id)["id"])

    def apply_changes(self, db, call: Call, listing, body: dict[str, Any]) -> None:
        """The stock and price a product or variant PUT sets, recorded only where they change."""
        quantity = body.get("number_in_stock")
        price = Decimal(str(body["price"])) if "price" in body else None
        changed = {"quantity": quantity if quantity is not None and quantity != listing["quantity"] else None,
                   "price": price if price is not None and price != Decimal(listing["price"]) else None}
        if any(value is not None for value in changed.values()):
            stock_record(db, call.account, listing, **changed)
        if "live" in body:
            db.execute("UPDATE listing SET live = ? WHERE id = ?", (int(body["live"]), listing["id"]))

    def update_product(self, call: Call, product_id: str) -> Response:
        body = call.request.json()
        # The swagger marks name required; ASP.NET's [Required] refuses an empty or blank one as well.
        if not body["name"].strip():
            raise self.refused(400, "The name field is required.", "name")
        with call.write() as db:
            product = self.find_product(db, call, product_id)
            db.execute("UPDATE listing SET title = ? WHERE id = ?", (body["name"], product["id"]))
            self.apply_changes(db, call, product, body)
            return self.product_answer(db, call, product["id"])

    def get_variant(self, call: Call, product_id: str, variant_id: str) -> Response:
        with call.read() as db:
            return envelope(self.render_variant(self.find_variant(db, call, product_id, variant_id)))

    def update_variant(self, call: Call, product_id: str, variant_id: str) -> Response:
        body = call.request.json()
        with call.write() as db:
            variant = self.find_variant(db, call, product_id, variant_id)
            self.apply_changes(db, call, variant, body)
            return envelope(self.render_variant(listing_by_id(db, call.account, variant["id"])))

    def read_stock(self, call: Call) -> int:
        body = call.request.json()
        if "stock" not in body:
            raise self.refused(400, "The stock field is required.", "stock")
        return body["stock"]

    def product_stock(self, call: Call, product_id: str) -> Response:
        stock = self.read_stock(call)
        with call.write() as db:
            product = self.find_product(db, call, product_id)
            stock_record(db, call.account, product, quantity=stock)
        return envelope({"id": product["id"], "stock": stock})

    def variant_stock(self, call: Call, product_id: str, variant_id: str) -> Response:
        stock = self.read_stock(call)
        with call.write() as db:
            variant = self.find_variant(db, call, product_id, variant_id)
            stock_record(db, call.account, variant, quantity=stock)
        return envelope({"id": variant["id"], "parent_product_id": variant["parent_id"], "stock": stock})

    # Webhooks (webhooks.json): the subscriptions of the account (EKM lists the app's for the merchant).

    def subscribe(self, call: Call) -> Response:
        body = call.request.json()
        with call.write() as db:
            subscription_add(db, call.account, topic=body["topic"], endpoint=body["endpoint"],
                             is_enabled=bool(body.get("is_enabled", True)))
        return Response(201)

    def subscriptions(self, call: Call) -> Response:
        account, client_id = call.account, call.account.credentials["client_id"]
        with call.read() as db:
            listed = [{**subscription, "merchant_username": account.name, "client_id": client_id,
                       "disabled_reason": None} for subscription in subscriptions_all(db, account)]
        return page_of(listed, page=1, per_page=max(len(listed), 1), total=len(listed), resource="webhooks")

    def update_subscription(self, call: Call, subscription_id: str) -> Response:
        body = call.request.json()
        with call.write() as db:
            found = subscription_update(db, call.account, subscription_id, body)
        return Response(200 if found else 404)

    def unsubscribe(self, call: Call, subscription_id: str) -> Response:
        with call.write() as db:
            found = subscription_delete(db, call.account, subscription_id)
        return Response(200 if found else 404)
