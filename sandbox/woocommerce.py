"""A WooCommerce 9.9.7 shop's REST API (wc/v3), as channels/connectors/woocommerce/contract/*.json describes it.

Each account is one shop at /woocommerce/{account}: its REST API under /wp-json/wc/v3 (and the Shipment Tracking
extension's under /wp-json/wc-shipment-tracking/v3 when the account's `shipment_tracking` setting is on). The
sandbox speaks plain http, so, as WooCommerce does without TLS, it takes OAuth 1.0a one-legged signatures in
the query and refuses Basic. Every request is checked against its operation's contract before its handler runs;
a refused one gets WordPress's {code, message, data:{status}}.

Products: a listing without variations is a simple product; one whose listings name it as `variant_of` is a
variable product, and those are its variations. SKUs in the account's `stock_not_managed` setting do not manage
stock: WooCommerce ignores a quantity sent to them. Webhooks: when the control API places or changes an order,
each active webhook of its topic gets the order, signed with the webhook's secret, from a thread of its own.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import math
import secrets
import threading
import time
from decimal import Decimal
from typing import Any
from urllib.parse import quote, urlencode

import requests

from sandbox.api import Call, ChannelApi
from sandbox.state.common import Account, included_tax
from sandbox.state.listings import listing_by_id, stock_record
from sandbox.state.orders import order_get, order_items, order_status_set, order_totals
from sandbox.state.received import event_record
from sandbox.store import Store, now_iso, parse_time
from sandbox.web import HttpError, Response

logger = logging.getLogger("sandbox")

API = "/wp-json/wc/v3"
TRACKING = "/wp-json/wc-shipment-tracking/v3"
VERSION = "9.9.7"
DEFAULT_STATUSES = {"pending": "Pending payment", "processing": "Processing", "on-hold": "On hold",
                    "completed": "Completed", "cancelled": "Cancelled", "refunded": "Refunded", "failed": "Failed",
                    "checkout-draft": "Draft"}
BATCH_LIMIT = 100
TIMESTAMP_WINDOW = 15 * 60
MAX_FAILURES = 5
WEBHOOK_TIMEOUT = 5.0
WEBHOOK_RESOURCES = ("order", "product", "coupon", "customer")
WEBHOOK_EVENTS = ("created", "updated", "deleted", "restored")
PROVIDERS = {"United Kingdom": {"Royal Mail": "https://www.royalmail.com/track-your-item#/tracking-results/%1$s",
                                "DPD.co.uk": "https://track.dpd.co.uk/parcels/%1$s",
                                "Evri": "https://www.evri.com/track/parcel/%1$s"},
             "Global": {"DHL": "https://www.dhl.com/en/express/tracking.html?AWB=%1$s"}}


def wp_date(stored: str | None) -> str | None:
    """WordPress's dates: 2026-11-29T10:15:00, no offset (the *_gmt ones in UTC; the shop's zone is UTC here)."""
    return stored.removesuffix("Z") if stored else None


def money(value: Decimal | str) -> str:
    return f"{Decimal(value):.2f}"


def pct(value: str) -> str:
    return quote(value, safe="~")


def oauth_signature(method: str, url: str, params: dict[str, str], secret: str, algorithm: str) -> str:
    """WooCommerce's check: METHOD&pct(url)&pct(each name=value encoded, sorted by name, joined with &)."""
    pairs = "&".join(f"{k}={v}" for k, v in sorted((pct(k), pct(v)) for k, v in params.items()))
    base = f"{method}&{pct(url)}&{pct(pairs)}"
    digest = hmac.new(f"{secret}&".encode(), base.encode(),
                      hashlib.sha256 if algorithm == "HMAC-SHA256" else hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def wp_error(status: int, code: str, message: str, **data: Any) -> Response:
    return Response.json({"code": code, "message": message, "data": {"status": status, **data}}, status)


def _signed_delivery(endpoint: str, headers: dict[str, str], body: bytes) -> bool:
    try:
        with requests.post(endpoint, data=body, headers=headers, timeout=WEBHOOK_TIMEOUT, stream=True) as answer:
            return 200 <= answer.status_code < 300
    except requests.RequestException:
        return False


def _deliver(store: Store, deliveries: list[tuple[int, str, dict[str, str], bytes]]) -> None:
    """One attempt each, as WooCommerce makes; a webhook failing 5 times in a row is disabled."""
    for webhook_id, endpoint, headers, body in deliveries:
        if store.closed:
            return
        delivered = _signed_delivery(endpoint, headers, body)
        try:
            with store.write() as db:
                if delivered:
                    db.execute("UPDATE woo_webhook SET failures = 0 WHERE id = ?", (webhook_id,))
                else:
                    db.execute("UPDATE woo_webhook SET failures = failures + 1, status = CASE WHEN failures + 1 > ? "
                               "THEN 'disabled' ELSE status END WHERE id = ?", (MAX_FAILURES, webhook_id))
        except Exception:  # noqa: BLE001 - the store closed under the thread: the sandbox is stopping
            return


class WooCommerceApi(ChannelApi):
    kind = "woocommerce"
    # WooCommerce has no rate limit of its own; an account's `rate_limits` may play a host's.
    published_limits = {}

    def __init__(self) -> None:
        super().__init__()
        self._nonces: dict[int, dict[str, float]] = {}
        self._nonce_lock = threading.Lock()

    def routes(self) -> None:
        add = self.router.add
        add("GET", f"{API}/system_status", "system_status_get", self.system_status)
        add("GET", f"{API}/orders/statuses", "order_statuses_list", self.order_statuses)
        add("GET", f"{API}/products", "products_list", self.products)
        add("GET", f"{API}/products/{{product_id}}/variations", "product_variations_list", self.variations)
        add("POST", f"{API}/products/batch", "products_batch", self.products_batch)
        add("POST", f"{API}/products/{{product_id}}/variations/batch", "product_variations_batch",
            self.variations_batch)
        add("GET", f"{API}/orders", "orders_list", self.orders)
        add("GET", f"{API}/orders/{{order_id}}", "order_get", self.get_order)
        add("PUT", f"{API}/orders/{{order_id}}", "order_update", self.update_order)
        add("POST", f"{API}/orders/{{order_id}}/notes", "order_note_create", self.add_note)
        add("GET", f"{API}/webhooks", "webhooks_list", self.webhooks)
        add("POST", f"{API}/webhooks", "webhook_create", self.create_webhook)
        add("PUT", f"{API}/webhooks/{{webhook_id}}", "webhook_update", self.update_webhook)
        add("DELETE", f"{API}/webhooks/{{webhook_id}}", "webhook_delete", self.delete_webhook)
        add("GET", f"{TRACKING}/shipment-trackings/providers", "tracking_providers_list", self.providers,
            authenticated=False)
        add("POST", f"{TRACKING}/orders/{{order_id}}/shipment-trackings", "tracking_create", self.add_tracking)

    # WordPress's error shape

    def error(self, status: int, code: str, message: str) -> Response:
        codes = {401: "woocommerce_rest_cannot_view", 404: "rest_no_route", 429: "too_many_requests"}
        return wp_error(status, codes.get(status, code if code.islower() else "internal_server_error"), message)

    def refuse_invalid(self, call: Call, problems: list[str]) -> Response:
        params: dict[str, str] = {}
        for problem in problems:
            where, _, message = problem.partition(": ")
            name, _, detail = message.partition(": ")
            params[name if detail and " " not in name else where] = detail or message
        missing = [name for name, message in params.items() if "is a required property" in message]
        if missing:
            return wp_error(400, "rest_missing_callback_param", f"Missing parameter(s): {', '.join(missing)}",
                            params=missing)
        return wp_error(400, "rest_invalid_param", f"Invalid parameter(s): {', '.join(params)}", params=params)

    def fail(self, status: int, code: str, message: str) -> HttpError:
        return HttpError(wp_error(status, code, message))

    def invalid_credentials(self, call: Call) -> Response:
        return wp_error(401, "woocommerce_rest_authentication_error", "Consumer key is invalid.")

    # Authentication: OAuth 1.0a one-legged over plain http (the sandbox's), as WooCommerce without TLS

    def authenticate(self, call: Call) -> None:
        request, account = call.request, call.account
        params = {name: values[0] for name, values in request.query.items()}
        if "oauth_consumer_key" not in params:
            # Without TLS WooCommerce does not read Basic credentials: the call is nobody's.
            raise self.fail(401, "woocommerce_rest_cannot_view", "Sorry, you cannot list resources.")
        if params["oauth_consumer_key"] != account.credentials.get("consumer_key"):
            raise self.fail(401, "woocommerce_rest_authentication_error", "Consumer key is invalid.")
        missing = [name for name in ("oauth_timestamp", "oauth_nonce", "oauth_signature", "oauth_signature_method")
                   if not params.get(name)]
        if missing:
            raise self.fail(401, "woocommerce_rest_authentication_error",
                            f"Missing OAuth parameter {', '.join(missing)}")
        method = params["oauth_signature_method"]
        if method not in ("HMAC-SHA1", "HMAC-SHA256"):
            raise self.fail(401, "woocommerce_rest_authentication_error",
                            "Invalid signature - signature method is invalid.")
        signature = params.pop("oauth_signature")
        # The address as the shop knows itself, without the query: what the client signed.
        url = f"http://{request.host}{request.path}"
        expected = oauth_signature(request.method, url, params, account.credentials.get("consumer_secret", ""), method)
        if not hmac.compare_digest(expected, signature):
            raise self.fail(401, "woocommerce_rest_authentication_error",
                            "Invalid signature - provided signature does not match.")
        timestamp = int(params["oauth_timestamp"]) if params["oauth_timestamp"].isdigit() else 0
        now = time.time()
        if abs(now - timestamp) > TIMESTAMP_WINDOW:
            raise self.fail(401, "woocommerce_rest_authentication_error", "Invalid timestamp.")
        with self._nonce_lock:
            seen = self._nonces.setdefault(account.id, {})
            for nonce, at in list(seen.items()):
                if at < now - TIMESTAMP_WINDOW:
                    del seen[nonce]
            if params["oauth_nonce"] in seen:
                raise self.fail(401, "woocommerce_rest_authentication_error",
                                "Invalid nonce - nonce has already been used.")
            seen[params["oauth_nonce"]] = now
        # A key is created read, write or read_write in the shop; WooCommerce checks it per method.
        permissions = account.credentials.get("permissions") or "read_write"
        needed = "read" if request.method in ("GET", "HEAD") else "write"
        if permissions not in (needed, "read_write"):
            raise self.fail(401, "woocommerce_rest_authentication_error",
                            f"The API key provided does not have {needed} permissions.")

    # Pagination

    def page_args(self, call: Call) -> tuple[int, int]:
        # The contract checked both (page >= 1, 1 <= per_page <= 100).
        return int(call.request.arg("page") or "1"), int(call.request.arg("per_page") or "10")

    def page_of(self, call: Call, items: list[Any], *, total: int, page: int, per_page: int) -> Response:
        pages = math.ceil(total / per_page) if total else 0
        base = f"http://{call.request.host}{call.request.path}"
        query = {name: values[0] for name, values in call.request.query.items() if not name.startswith("oauth_")}
        links = []
        for rel, number in (("prev", page - 1), ("next", page + 1)):
            if 1 <= number <= pages:
                links.append(f'<{base}?{urlencode({**query, "page": number})}>; rel="{rel}"')
        headers = [("X-WP-Total", str(total)), ("X-WP-TotalPages", str(pages))]
        if links:
            headers.append(("Link", ", ".join(links)))
        return Response.json(items, headers=headers)

    # The shop

    def system_status(self, call: Call) -> Response:
        home = f"{call.base_url}"
        return Response.json({"environment": {"home_url": home, "site_url": home, "version": VERSION,
                                              "wp_version": "6.8.1", "php_version": "8.3.0", "language": "en_GB",
                                              "default_timezone": "UTC"},
                              "settings": {"currency": call.account.settings.get("currency", "GBP")}})

    def statuses(self, account: Account) -> dict[str, str]:
        extra = account.settings.get("order_statuses") or []
        return {**DEFAULT_STATUSES, **{slug: slug.replace("-", " ").title() for slug in extra}}

    def order_statuses(self, call: Call) -> Response:
        return Response.json([{"slug": slug, "name": name} for slug, name in self.statuses(call.account).items()])

    # Products

    def managed(self, account: Account, sku: str) -> bool:
        return sku not in set(account.settings.get("stock_not_managed") or [])

    def render_stock(self, account: Account, row) -> dict[str, Any]:
        managed = self.managed(account, row["sku"])
        in_stock = row["quantity"] > 0 or not managed
        return {"manage_stock": managed, "stock_quantity": row["quantity"] if managed else None,
                "stock_status": "instock" if in_stock else "outofstock", "backorders": "no",
                "price": money(row["price"]), "regular_price": money(row["price"]), "sale_price": "",
                "status": "publish" if row["live"] else "draft", "sku": row["sku"],
                "date_created_gmt": wp_date(row["created_at"]), "date_modified_gmt": wp_date(row["created_at"])}

    def render_product(self, account: Account, row, variation_ids: list[int]) -> dict[str, Any]:
        rendered = {"id": row["id"], "name": row["title"], "slug": row["sku"].lower(), "parent_id": 0,
                    "type": "variable" if variation_ids else "simple", "variations": variation_ids,
                    **self.render_stock(account, row)}
        if variation_ids:
            # A variable product's own stock is not what its variations sell.
            rendered.update(manage_stock=False, stock_quantity=None, stock_status="instock")
        return rendered

    def products(self, call: Call) -> Response:
        page, per_page = self.page_args(call)
        with call.read() as db:
            where = "account_id = ? AND parent_id IS NULL"
            total = db.execute(f"SELECT COUNT(*) FROM listing WHERE {where}", (call.account.id,)).fetchone()[0]
            direction = "DESC" if (call.request.arg("order") or "desc") == "desc" else "ASC"
            column = "id" if call.request.arg("orderby") in ("id", "include") else "created_at"
            rows = db.execute(f"SELECT * FROM listing WHERE {where} ORDER BY {column} {direction}, id {direction} "
                              "LIMIT ? OFFSET ?", (call.account.id, per_page, (page - 1) * per_page)).fetchall()
            children = self.children(db, [row["id"] for row in rows])
        items = [self.render_product(call.account, row, [child["id"] for child in children[row["id"]]])
                 for row in rows]
        spoiled = call.take_malformed(items)
        if spoiled is not None:
            items[spoiled["index"]]["stock_quantity" if spoiled["corrupt"] == "quantity" else "id"] = "lots"
        return self.page_of(call, items, total=total, page=page, per_page=per_page)

    def children(self, db, parent_ids: list[int]) -> dict[int, list]:
        grouped: dict[int, list] = {parent_id: [] for parent_id in parent_ids}
        if parent_ids:
            marks = ",".join("?" * len(parent_ids))
            for row in db.execute(f"SELECT * FROM listing WHERE parent_id IN ({marks}) ORDER BY id", parent_ids):
                grouped[row["parent_id"]].append(row)
        return grouped

    def variable_product(self, db, call: Call, product_id: str):
        parent = listing_by_id(db, call.account, int(product_id)) if product_id.isdigit() else None
        if parent is None or parent["parent_id"] is not None:
            raise self.fail(404, "woocommerce_rest_product_invalid_id", "Invalid ID.")
        return parent

    def variations(self, call: Call, product_id: str) -> Response:
        page, per_page = self.page_args(call)
        with call.read() as db:
            parent = self.variable_product(db, call, product_id)
            rows = self.children(db, [parent["id"]])[parent["id"]]
        if (call.request.arg("order") or "desc") == "desc":
            rows = rows[::-1]
        chosen = rows[(page - 1) * per_page: page * per_page]
        items = [{"id": row["id"], "type": "variation", **self.render_stock(call.account, row)} for row in chosen]
        return self.page_of(call, items, total=len(rows), page=page, per_page=per_page)

    def batch(self, call: Call, allowed) -> Response:
        """Apply a batch's updates one object at a time; one that fails gets its error, the others go on."""
        body = call.request.json()
        count = sum(len(body.get(part) or []) for part in ("create", "update", "delete"))
        if count > BATCH_LIMIT:
            raise self.fail(413, "woocommerce_rest_request_entity_too_large",
                            f"Unable to accept more than {BATCH_LIMIT} items for this request.")
        answer: dict[str, list] = {}
        with call.write() as db:
            for part in ("create", "delete"):
                if body.get(part):
                    answer[part] = [{"id": 0, "error": {"code": "woocommerce_rest_sandbox_not_emulated",
                                                        "message": f"The sandbox does not emulate batch {part}.",
                                                        "data": {"status": 400}}} for _ in body[part]]
            updates = []
            for entry in body.get("update") or []:
                object_id = int(entry["id"])
                row = listing_by_id(db, call.account, object_id)
                if row is None or not allowed(db, row):
                    updates.append({"id": object_id, "error": {"code": "woocommerce_rest_product_invalid_id",
                                                               "message": "Invalid ID.", "data": {"status": 400}}})
                    continue
                managed = self.managed(call.account, row["sku"])
                quantity = int(entry["stock_quantity"]) if "stock_quantity" in entry and managed else None
                price = Decimal(entry["regular_price"]) if entry.get("regular_price") not in (None, "") else None
                if quantity is not None or price is not None:
                    stock_record(db, call.account, row, quantity=quantity, price=price)
                updated = listing_by_id(db, call.account, object_id)
                if updated["parent_id"] is not None:
                    updates.append({"id": object_id, "type": "variation", **self.render_stock(call.account, updated)})
                else:
                    variations = self.children(db, [object_id])[object_id]
                    updates.append(self.render_product(call.account, updated, [v["id"] for v in variations]))
            if "update" in body:
                answer["update"] = updates
        return Response.json(answer)

    def products_batch(self, call: Call) -> Response:
        return self.batch(call, lambda db, row: row["parent_id"] is None)

    def variations_batch(self, call: Call, product_id: str) -> Response:
        with call.read() as db:
            parent = self.variable_product(db, call, product_id)
        return self.batch(call, lambda db, row: row["parent_id"] == parent["id"])

    # Orders

    @staticmethod
    def render_order(account: Account, order, items) -> dict[str, Any]:
        address = json.loads(order["address"])
        extra = json.loads(order["tracking"]) if order["tracking"] else {}
        totals = order_totals(order, items)
        shipping_tax = included_tax(totals["shipping"])
        person = {"first_name": address["first_name"], "last_name": address["last_name"], "company": "",
                  "address_1": address["line1"], "address_2": address["line2"], "city": address["city"],
                  "state": address["region"], "postcode": address["postcode"], "country": address["country"]}
        lines = []
        for item in items:
            gross = Decimal(item["price"]) * item["quantity"]
            tax = included_tax(gross)
            product_id, variation_id = item["listing_id"] or 0, item["variant_id"] or 0
            lines.append({"id": item["id"], "name": item["title"], "product_id": product_id,
                          "variation_id": variation_id, "quantity": item["quantity"], "tax_class": "",
                          "subtotal": money(gross - tax), "subtotal_tax": money(tax), "total": money(gross - tax),
                          "total_tax": money(tax), "taxes": [], "meta_data": [], "sku": item["sku"],
                          "price": float((gross - tax) / item["quantity"])})
        created, modified = wp_date(order["created_at"]), wp_date(order["updated_at"])
        return {
            "id": int(order["order_id"]), "parent_id": 0, "number": order["order_id"], "status": order["status"],
            "order_key": f"wc_order_{order['order_id']}", "created_via": "checkout", "version": VERSION,
            "currency": order["currency"] or account.settings.get("currency", "GBP"), "prices_include_tax": True,
            "date_created": created, "date_created_gmt": created, "date_modified": modified,
            "date_modified_gmt": modified, "date_paid": created if order["paid"] else None,
            "date_paid_gmt": created if order["paid"] else None,
            "date_completed_gmt": modified if order["status"] == "completed" else None,
            "discount_total": "0.00", "discount_tax": "0.00",
            "shipping_total": money(totals["shipping"] - shipping_tax),
            "shipping_tax": money(shipping_tax), "cart_tax": money(totals["tax"] - shipping_tax),
            "total": money(totals["total"]), "total_tax": money(totals["tax"]), "customer_id": 0,
            "billing": {**person, "email": order["buyer_email"], "phone": address["phone"]},
            "shipping": {**person, "phone": address["phone"]},
            "payment_method": "stripe" if order["paid"] else "bacs",
            "payment_method_title": "Credit card" if order["paid"] else "Direct bank transfer",
            "transaction_id": "", "customer_note": "", "line_items": lines,
            "shipping_lines": [{"id": 9000 + int(order["order_id"]), "method_title": order["shipping_tag"],
                                "method_id": "flat_rate", "instance_id": "1",
                                "total": money(totals["shipping"] - shipping_tax), "total_tax": money(shipping_tax),
                                "taxes": [], "meta_data": []}],
            "tax_lines": [], "fee_lines": [], "coupon_lines": [], "refunds": [], "meta_data": [],
            "needs_payment": not order["paid"], "needs_processing": True, "is_editable": order["status"] == "pending",
            "shipment_trackings": extra.get("tracking_items", []),
        }

    def order_json(self, db, account: Account, order) -> dict[str, Any]:
        return self.render_order(account, order, order_items(db, [order["id"]])[order["id"]])

    def find_order(self, db, call: Call, order_id: str):
        order = order_get(db, call.account, order_id)
        if order is None:
            raise self.fail(404, "woocommerce_rest_shop_order_invalid_id", "Invalid ID.")
        return order

    def orders(self, call: Call) -> Response:
        page, per_page = self.page_args(call)
        arg = call.request.arg
        where, values = ["account_id = ?"], [call.account.id]
        for name, column, operator in (("modified_after", "updated_at", ">"), ("modified_before", "updated_at", "<"),
                                       ("after", "created_at", ">"), ("before", "created_at", "<")):
            if arg(name):
                where.append(f"{column} {operator} ?")
                values.append(parse_time(arg(name)))
        statuses = [s for s in (arg("status") or "any").split(",") if s]
        if "any" not in statuses:
            where.append(f"status IN ({','.join('?' * len(statuses))})")
            values += statuses
        else:
            where.append("status NOT IN ('trash', 'checkout-draft', 'auto-draft')")
        condition = " AND ".join(where)
        direction = "ASC" if arg("order") == "asc" else "DESC"
        column = {"id": "id", "modified": "updated_at"}.get(arg("orderby") or "date", "created_at")
        with call.read() as db:
            total = db.execute(f"SELECT COUNT(*) FROM channel_order WHERE {condition}", values).fetchone()[0]
            rows = db.execute(f"SELECT * FROM channel_order WHERE {condition} ORDER BY {column} {direction}, "
                              f"id {direction} LIMIT ? OFFSET ?", (*values, per_page, (page - 1) * per_page)).fetchall()
            items = order_items(db, [row["id"] for row in rows])
        orders = [self.render_order(call.account, row, items[row["id"]]) for row in rows]
        spoiled = call.take_malformed(orders)
        if spoiled is not None:
            if spoiled["corrupt"] == "quantity":
                orders[spoiled["index"]]["line_items"][0]["quantity"] = "one"
            else:
                del orders[spoiled["index"]]["id"]
        return self.page_of(call, orders, total=total, page=page, per_page=per_page)

    def get_order(self, call: Call, order_id: str) -> Response:
        with call.read() as db:
            return Response.json(self.order_json(db, call.account, self.find_order(db, call, order_id)))

    def update_order(self, call: Call, order_id: str) -> Response:
        body = call.request.json()
        status = body.get("status")
        shop = self.statuses(call.account)
        if status is not None and status not in shop:
            return wp_error(400, "rest_invalid_param", "Invalid parameter(s): status",
                            params={"status": f"status is not one of {', '.join(shop)}."})
        settings = call.account.settings
        despatched = settings.get("despatch_statuses") or ["completed"]
        cancelled = settings.get("cancelled_statuses") or ["cancelled"]
        with call.write() as db:
            order = self.find_order(db, call, order_id)
            if status is not None and status != order["status"]:
                items = order_items(db, [order["id"]])[order["id"]]
                lines = [{"line_id": str(item["id"]), "sku": item["sku"], "quantity": item["quantity"]}
                         for item in items]
                order_status_set(db, order, status)
                event_record(db, call.account, "status", {"order_id": order_id, "status": status})
                extra = json.loads(order["tracking"]) if order["tracking"] else {}
                notes = [note["note"] for note in extra.get("notes", []) if note["customer_note"]]
                tracking = (extra.get("tracking_items") or [{}])[-1]
                if status in despatched and order["status"] not in despatched:
                    event_record(db, call.account, "shipment", {
                        "order_id": order_id, "tracking_number": tracking.get("tracking_number", ""),
                        "carrier": tracking.get("tracking_provider", ""), "tracking_url": tracking.get(
                            "tracking_link", ""), "note": notes[-1] if notes else "",
                        "shipping_method": order["shipping_tag"], "items": lines})
                if status in cancelled and order["status"] not in cancelled:
                    event_record(db, call.account, "cancellation", {
                        "order_id": order_id, "reason": notes[-1] if notes else status, "items": lines})
            return Response.json(self.order_json(db, call.account, self.find_order(db, call, order_id)))

    def keep(self, db, order, key: str, entry: dict[str, Any]) -> None:
        extra = json.loads(order["tracking"]) if order["tracking"] else {}
        extra.setdefault(key, []).append(entry)
        db.execute("UPDATE channel_order SET tracking = ?, updated_at = ?, revision = revision + 1 WHERE id = ?",
                   (json.dumps(extra), now_iso(), order["id"]))

    def add_note(self, call: Call, order_id: str) -> Response:
        body = call.request.json()
        if not str(body.get("note") or "").strip():
            return wp_error(400, "woocommerce_rest_invalid_order_note", "Cannot create order note, please provide a "
                                                                        "note.")
        customer = body.get("customer_note") in (True, "true", "1", 1)
        with call.write() as db:
            order = self.find_order(db, call, order_id)
            note_id = secrets.randbelow(10**9)
            moment = wp_date(now_iso())
            self.keep(db, order, "notes", {"id": note_id, "note": body["note"], "customer_note": customer})
        return Response.json({"id": note_id, "author": "WooCommerce", "date_created": moment,
                              "date_created_gmt": moment, "note": body["note"], "customer_note": customer}, 201)

    # The Shipment Tracking extension (shipment_tracking.json), where the account has it

    def has_tracking(self, call: Call) -> None:
        if not call.account.settings.get("shipment_tracking"):
            raise self.fail(404, "rest_no_route", "No route was found matching the URL and request method.")

    def providers(self, call: Call) -> Response:
        self.has_tracking(call)
        return Response.json(PROVIDERS)

    def add_tracking(self, call: Call, order_id: str) -> Response:
        self.has_tracking(call)
        body = call.request.json()
        provider = body.get("tracking_provider") or body.get("custom_tracking_provider") or ""
        known = {name: url for region in PROVIDERS.values() for name, url in region.items()}
        if body.get("tracking_provider") and provider not in known:
            return wp_error(400, "woocommerce_rest_shipment_tracking_invalid_provider", "Invalid tracking provider.")
        link = (known[provider].replace("%1$s", body["tracking_number"]) if provider in known
                else body.get("custom_tracking_link") or "")
        item = {"tracking_id": secrets.token_hex(16), "tracking_provider": provider, "tracking_link": link,
                "tracking_number": body["tracking_number"],
                "date_shipped": body.get("date_shipped") or now_iso()[:10]}
        with call.write() as db:
            self.keep(db, self.find_order(db, call, order_id), "tracking_items", item)
        return Response.json(item, 201)

    # Webhooks

    def render_webhook(self, row) -> dict[str, Any]:
        resource, _, event = row["topic"].partition(".")
        return {"id": row["id"], "name": row["name"], "status": row["status"], "topic": row["topic"],
                "resource": resource, "event": event, "hooks": [f"woocommerce_{resource}_{event}"],
                "delivery_url": row["delivery_url"], "date_created": wp_date(row["created_at"]),
                "date_created_gmt": wp_date(row["created_at"]), "date_modified": wp_date(row["modified_at"]),
                "date_modified_gmt": wp_date(row["modified_at"])}

    def webhooks(self, call: Call) -> Response:
        page, per_page = self.page_args(call)
        status = call.request.arg("status") or "all"
        with call.read() as db:
            rows = db.execute("SELECT * FROM woo_webhook WHERE account_id = ? AND (? = 'all' OR status = ?) "
                              "ORDER BY id DESC", (call.account.id, status, status)).fetchall()
        chosen = rows[(page - 1) * per_page: page * per_page]
        return self.page_of(call, [self.render_webhook(row) for row in chosen], total=len(rows), page=page,
                            per_page=per_page)

    def check_webhook(self, body: dict[str, Any]) -> Response | None:
        topic = body.get("topic")
        if topic is not None:
            resource, _, event = str(topic).partition(".")
            if not (resource in WEBHOOK_RESOURCES and event in WEBHOOK_EVENTS) and resource != "action":
                return wp_error(400, "woocommerce_rest_webhook_invalid_topic", "Webhook topic is required and must "
                                                                                "be valid.")
        url = body.get("delivery_url")
        if url is not None and not str(url).startswith(("http://", "https://")):
            return wp_error(400, "woocommerce_rest_webhook_invalid_delivery_url", "Webhook delivery URL must be a "
                                                                                   "valid URL starting with http:// "
                                                                                   "or https://.")
        return None

    def create_webhook(self, call: Call) -> Response:
        body = call.request.json()
        refused = self.check_webhook(body)
        if refused is not None:
            return refused
        now = now_iso()
        # Without a secret WooCommerce makes one from the user (an MD5 the caller cannot know).
        secret = body.get("secret") or hashlib.md5(call.account.name.encode()).hexdigest()  # noqa: S324
        with call.write() as db:
            webhook_id = db.execute(
                "INSERT INTO woo_webhook (account_id, name, topic, delivery_url, secret, status, failures, created_at, "
                "modified_at) VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?)",
                (call.account.id, body.get("name") or f"Webhook created on {now}", body["topic"],
                 body["delivery_url"], secret, body.get("status") or "active", now, now)).lastrowid
            row = db.execute("SELECT * FROM woo_webhook WHERE id = ?", (webhook_id,)).fetchone()
        return Response.json(self.render_webhook(row), 201)

    def find_webhook(self, db, call: Call, webhook_id: str):
        row = db.execute("SELECT * FROM woo_webhook WHERE id = ? AND account_id = ?",
                         (int(webhook_id) if webhook_id.isdigit() else 0, call.account.id)).fetchone()
        if row is None:
            raise self.fail(404, "woocommerce_rest_webhook_invalid_id", "Invalid ID.")
        return row

    def update_webhook(self, call: Call, webhook_id: str) -> Response:
        body = call.request.json()
        refused = self.check_webhook(body)
        if refused is not None:
            return refused
        with call.write() as db:
            row = self.find_webhook(db, call, webhook_id)
            values = {key: body.get(key) or row[key] for key in ("name", "topic", "delivery_url", "secret", "status")}
            failures = 0 if values["status"] == "active" else row["failures"]
            db.execute("UPDATE woo_webhook SET name = ?, topic = ?, delivery_url = ?, secret = ?, status = ?, "
                       "failures = ?, modified_at = ? WHERE id = ?",
                       (*values.values(), failures, now_iso(), row["id"]))
            row = self.find_webhook(db, call, webhook_id)
        return Response.json(self.render_webhook(row))

    def delete_webhook(self, call: Call, webhook_id: str) -> Response:
        with call.write() as db:
            row = self.find_webhook(db, call, webhook_id)
            db.execute("DELETE FROM woo_webhook WHERE id = ?", (row["id"],))
        return Response.json(self.render_webhook(row))


def order_webhooks_send(store: Store, account: Account, topic: str, order_ids: list[str], base_url: str) -> None:
    """Deliver these orders to every active webhook of `topic`, signed with its secret (from a thread)."""
    deliveries = []
    with store.read() as db:
        hooks = db.execute("SELECT * FROM woo_webhook WHERE account_id = ? AND topic = ? AND status = 'active' "
                           "ORDER BY id", (account.id, topic)).fetchall()
        for order_id in order_ids if hooks else []:
            order = order_get(db, account, order_id)
            if order is None:
                continue
            items = order_items(db, [order["id"]])[order["id"]]
            body = json.dumps(WooCommerceApi.render_order(account, order, items)).encode()
            for hook in hooks:
                signature = base64.b64encode(hmac.new(hook["secret"].encode(), body, hashlib.sha256).digest())
                headers = {"Content-Type": "application/json", "X-WC-Webhook-Source": f"{base_url}/",
                           "X-WC-Webhook-Topic": topic, "X-WC-Webhook-Resource": "order",
                           "X-WC-Webhook-Event": topic.partition(".")[2], "X-WC-Webhook-ID": str(hook["id"]),
                           "X-WC-Webhook-Delivery-ID": secrets.token_hex(16),
                           "X-WC-Webhook-Signature": signature.decode()}
                deliveries.append((hook["id"], hook["delivery_url"], headers, body))
    if deliveries:
        threading.Thread(target=_deliver, args=(store, deliveries), name="sandbox-woo-webhooks",
                         daemon=True).start()
