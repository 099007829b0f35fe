"""EKM Partner API (OAuth2 with single-use refresh tokens, leaky-bucket rate limit)."""

from __future__ import annotations

import json
import math
import re
from decimal import Decimal
from typing import Any

from sandbox import state
from sandbox.api import Call, ChannelApi, render_rows
from sandbox.ratelimit import Decision, Limit
from sandbox.store import parse_time
from sandbox.web import Response

MAX_PAGE_SIZE = 20
DEFAULT_SCOPE = ("tempest.orders.read tempest.orders.write tempest.products.read tempest.products.write "
                 "tempest.settings.orderstatuses.read offline_access")
FILTER_FIELDS = {"last_updated": "updated_at", "order_date": "created_at", "status": "status", "id": "id"}
FILTER_OPERATORS = {"gt": ">", "ge": ">=", "lt": "<", "le": "<=", "eq": "="}
ORDERINGS = {"last_updated": "updated_at, id", "-last_updated": "updated_at DESC, id DESC",
             "order_date": "created_at, id", "-order_date": "created_at DESC, id DESC", "id": "id", "-id": "id DESC"}
CLAUSE = re.compile(r"^\s*(\w+)\s+(gt|ge|lt|le|eq)\s+(?:'([^']*)'|(\d+))\s*$")


def wrapped(data: Any, *, status: int = 200, page: int = 1, per_page: int | None = None,
            total: int | None = None, validation: list[dict[str, Any]] | None = None,
            errors: list[str] | None = None) -> Response:
    if total is None:
        total = len(data) if isinstance(data, list) else int(data is not None)
    per_page = per_page or max(total, 1)
    return Response.json({
        "meta": {"pages_total": math.ceil(total / per_page), "items_total": total, "items_per_page": per_page,
                 "current_page": page},
        "links": {}, "validation_result": validation or [], "errors": errors or [], "data": data,
    }, status)


def invalid(status: int, member: str, message: str) -> Response:
    return wrapped(None, status=status, validation=[{"member_names": [member], "error_message": message}])


def number(value: Decimal | str) -> float:
    """EKM sends money as a JSON number."""
    return float(Decimal(value))


class EkmApi(ChannelApi):
    kind = "ekm"
    published_limits = {"bucket": Limit(2, 40)}

    def routes(self) -> None:
        add = self.router.add
        add("POST", "/connect/token", "token", self.token, authenticated=False, limited=False)
        add("GET", "/api/v1/settings/shop_information", "getShopInformation", self.shop_information)
        add("GET", "/api/v1/settings/currency", "getCurrency", self.currency)
        add("GET", "/api/v1/settings/orderstatuses", "getOrderStatuses", self.order_statuses)
        add("GET", "/api/v2/orders/search", "searchOrders", self.search_orders)
        add("GET", "/api/v2/orders", "getOrders", self.search_orders)
        add("GET", "/api/v2/orders/{order_id}", "getOrder", self.get_order)
        add("GET", "/api/v2/orders/{order_id}/items", "getOrderItems", self.order_items)
        add("PUT", "/api/v2/orders/{order_id}/deliveryTracking", "setDeliveryTracking", self.delivery_tracking)
        add("PUT", "/api/v2/orders/{order_id}/status", "setOrderStatus", self.set_status)
        add("GET", "/api/v1/products", "getProducts", self.products)
        add("GET", "/api/v1/products/{product_id}", "getProduct", self.get_product)
        add("PUT", "/api/v1/products/{product_id}", "updateProduct", self.update_product)
        add("PUT", "/api/v1/products/{product_id}/stock", "updateProductStock", self.product_stock)
        add("PUT", "/api/v1/products/{product_id}/variants/{variant_id}/stock", "updateVariantStock",
            self.variant_stock)

    def error(self, status: int, code: str, message: str) -> Response:
        if status in (401, 403):
            return Response(status, b"", [("WWW-Authenticate", 'Bearer error="invalid_token"')])
        if status in (400, 404, 422):
            return invalid(status, code, message)
        return wrapped(None, status=status, errors=[message])

    def bucket_key(self, operation: str) -> str:
        return "bucket"

    def rate_headers(self, decision: Decision | None) -> list[tuple[str, str]]:
        if decision is None:
            return []
        return [("X-EKM-RateLimit-Cost", "1"), ("X-EKM-RateLimit-BucketSize", str(decision.limit.burst)),
                ("X-EKM-RateLimit-LeakRate", f"{decision.limit.rate:g}"),
                ("X-EKM-RateLimit-LeakAmount", f"{decision.limit.rate:g}"),
                ("X-EKM-RateLimit-Remaining", str(decision.remaining))]

    def authenticate(self, call: Call) -> None:
        header = call.request.header("Authorization")
        token = header[7:].strip() if header.lower().startswith("bearer ") else ""
        with call.read() as db:
            token_state = state.access_token_state(db, call.account, token)
        if token_state == "revoked":
            raise self.fail(403, "", "")
        if token_state != "valid":
            raise self.fail(401, "", "")

    # OAuth2

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
                state.refresh_tokens_used_bump(db, account)
                grant_id = row["grant_id"]
            elif grant_type == "authorization_code":
                if not state.authorization_code_use(db, account, form.get("code", "")):
                    return Response.json({"error": "invalid_grant"}, 400)
                grant_id = state.grant_create(db, account)
            else:
                return Response.json({"error": "unsupported_grant_type"}, 400)
            refresh = state.refresh_token_issue(db, account, grant_id, "ekmr_")
            access = state.access_token_issue(db, account, grant_id, "ekma_")
        return Response.json({"access_token": access, "expires_in": account.token_lifetime, "token_type": "Bearer",
                              "refresh_token": refresh, "scope": scope})

    # Settings

    def shop_information(self, call: Call) -> Response:
        name = call.account.settings.get("shop_name") or f"{call.account.name} (sandbox)"
        return wrapped({"shop_name": name, "domain": f"{call.account.name}.ekmsandbox.test", "currency": "GBP"})

    def currency(self, call: Call) -> Response:
        return wrapped({"currency_code": "GBP", "symbol": "£"})

    def statuses(self, account: state.Account) -> list[str]:
        return account.settings.get("order_statuses") or state.EKM_ORDER_STATUSES

    def order_statuses(self, call: Call) -> Response:
        return wrapped([{"name": name} for name in self.statuses(call.account)])

    # Orders

    def page_args(self, call: Call) -> tuple[int, int]:
        page, limit = call.request.arg("page") or "1", call.request.arg("limit") or str(MAX_PAGE_SIZE)
        if not page.isdigit() or int(page) < 1:
            raise self.fail(400, "page", "page must be a positive integer")
        if not limit.isdigit() or not 1 <= int(limit) <= MAX_PAGE_SIZE:
            raise self.fail(400, "limit", f"limit must be between 1 and {MAX_PAGE_SIZE}")
        return int(page), int(limit)

    def parse_filter(self, query: str) -> tuple[list[str], list[Any]]:
        where, params = [], []
        for clause in filter(None, re.split(r"\s+and\s+", query.strip(), flags=re.IGNORECASE)):
            found = CLAUSE.match(clause)
            if not found or found[1] not in FILTER_FIELDS:
                raise self.fail(400, "query", f"Cannot understand the filter {clause!r}")
            column, value = FILTER_FIELDS[found[1]], found[3] if found[3] is not None else found[4]
            if column in ("updated_at", "created_at"):
                try:
                    value = parse_time(value)
                except ValueError:
                    raise self.fail(400, "query", f"Not a date: {value!r}") from None
            elif column == "id":
                value = int(value)
            where.append(f"{column} {FILTER_OPERATORS[found[2]]} ?")
            params.append(value)
        return where, params

    def search_orders(self, call: Call) -> Response:
        page, limit = self.page_args(call)
        where, params = self.parse_filter(call.request.arg("query") or "")
        ordering = ORDERINGS.get(call.request.arg("orderby") or "id")
        if ordering is None:
            raise self.fail(400, "orderby", f"orderby must be one of {', '.join(ORDERINGS)}")
        condition = " AND ".join(["account_id = ?", *where])
        values = [call.account.id, *params]
        with call.read() as db:
            total = db.execute(f"SELECT COUNT(*) FROM channel_order WHERE {condition}", values).fetchone()[0]
            rows = db.execute(f"SELECT * FROM channel_order WHERE {condition} ORDER BY {ordering} LIMIT ? OFFSET ?",
                              (*values, limit, (page - 1) * limit)).fetchall()
            texts = render_rows(call, rows, "", lambda pks: state.order_items(db, pks),
                                lambda row, items: json.dumps(self.render_order(row, items)))
        orders = [json.loads(text) for text in texts]
        spoiled = call.take_malformed(orders)
        if spoiled is not None:
            if spoiled["corrupt"] == "quantity":
                orders[spoiled["index"]]["total_cost"] = "lots"
            else:
                del orders[spoiled["index"]]["id"]
        return wrapped(orders, page=page, per_page=limit, total=total)

    def render_order(self, order, items) -> dict[str, Any]:
        address = json.loads(order["address"])
        totals = state.order_totals(order, items)
        tracking = json.loads(order["tracking"]) if order["tracking"] else {}
        return {
            "id": int(order["order_id"]), "order_number": order["order_number"], "order_date": order["created_at"],
            "last_updated": order["updated_at"], "status": order["status"],
            "payment_status": "SUCCESS" if order["paid"] else "PENDING",
            "delivery_method": order["shipping_tag"],
            "shipping_company": tracking.get("delivery_tracking_company", ""),
            "sub_total": number(totals["subtotal"]), "total_delivery": number(totals["shipping"]),
            "total_tax": number(totals["tax"]), "total_cost": number(totals["total"]),
            "customer_details": {"first_name": address["first_name"], "last_name": address["last_name"],
                                 "email_address": order["buyer_email"] or ""},
            "shipping_address": {"first_name": address["first_name"], "last_name": address["last_name"],
                                 "address_line1": address["line1"], "address_line2": address["line2"],
                                 "town": address["city"], "county": address["region"],
                                 "post_code": address["postcode"], "country": address["country"],
                                 "telephone": address["phone"]},
        }

    def find_order(self, db, call: Call, order_id: str):
        order = state.order_get(db, call.account, order_id)
        if order is None:
            raise self.fail(404, "id", f"Order {order_id} not found")
        return order

    def get_order(self, call: Call, order_id: str) -> Response:
        with call.read() as db:
            order = self.find_order(db, call, order_id)
            items = state.order_items(db, [order["id"]])[order["id"]]
        return wrapped(self.render_order(order, items))

    def order_items(self, call: Call, order_id: str) -> Response:
        with call.read() as db:
            order = self.find_order(db, call, order_id)
            items = state.order_items(db, [order["id"]])[order["id"]]
        rendered = [{
            "id": item["id"], "product_id": item["listing_id"] or 0, "variant_id": item["variant_id"],
            "product_code": item["sku"], "product_name": item["title"], "quantity": item["quantity"],
            "item_price": number(item["price"]),
            "item_tax": number(state.included_tax(Decimal(item["price"]) * item["quantity"])),
            "item_tax_rate": float(state.TAX_RATE),
        } for item in items]
        spoiled = call.take_malformed(rendered)
        if spoiled is not None:
            if spoiled["corrupt"] == "id":
                del rendered[spoiled["index"]]["product_code"]
            else:
                rendered[spoiled["index"]]["quantity"] = "one"
        return wrapped(rendered)

    def json_object(self, call: Call) -> dict[str, Any]:
        body = call.request.json()
        if not isinstance(body, dict):
            raise self.fail(400, "body", "The request body must be a JSON object")
        return body

    def delivery_tracking(self, call: Call, order_id: str) -> Response:
        body = self.json_object(call)
        if not body.get("delivery_tracking_number"):
            raise self.fail(422, "delivery_tracking_number", "delivery_tracking_number is required")
        tracking = {key: body.get(key) or "" for key in ("delivery_tracking_number", "delivery_tracking_company",
                                                         "delivery_tracking_url")}
        with call.write() as db:
            order = self.find_order(db, call, order_id)
            db.execute("UPDATE channel_order SET tracking = ?, updated_at = ?, revision = revision + 1 "
                       "WHERE id = ?", (json.dumps(tracking), state.now_iso(), order["id"]))
        return wrapped(tracking)

    def set_status(self, call: Call, order_id: str) -> Response:
        body = self.json_object(call)
        status = body.get("status")
        if status not in self.statuses(call.account):
            raise self.fail(422, "status", f"Unknown order status {status!r}")
        settings = call.account.settings
        despatched = settings.get("despatch_statuses") or ["DISPATCHED", "COMPLETE"]
        cancelled = settings.get("cancelled_statuses") or ["CANCELLED"]
        with call.write() as db:
            order = self.find_order(db, call, order_id)
            items = state.order_items(db, [order["id"]])[order["id"]]
            lines = [{"line_id": str(item["id"]), "sku": item["sku"], "quantity": item["quantity"]} for item in items]
            state.order_status_set(db, order, status)
            state.event_record(db, call.account, "status", {"order_id": order_id, "status": status,
                                                            "email_customer": bool(body.get("email_customer"))})
            if status in despatched and order["status"] not in despatched:
                tracking = json.loads(order["tracking"]) if order["tracking"] else {}
                state.event_record(db, call.account, "shipment", {
                    "order_id": order_id, "tracking_number": tracking.get("delivery_tracking_number", ""),
                    "carrier": tracking.get("delivery_tracking_company", ""),
                    "tracking_url": tracking.get("delivery_tracking_url", ""),
                    "shipping_method": order["shipping_tag"], "items": lines})
            if status in cancelled and order["status"] not in cancelled:
                state.event_record(db, call.account, "cancellation",
                                   {"order_id": order_id, "reason": status, "items": lines})
        return wrapped({"id": int(order_id), "status": status})

    # Products

    def render_product(self, product, variants) -> dict[str, Any]:
        return {
            "id": product["id"], "name": product["title"], "product_code": product["sku"],
            "number_in_stock": product["quantity"], "price": number(product["price"]), "live": bool(product["live"]),
            "variants": [{"id": variant["id"], "product_code": variant["sku"], "number_in_stock": variant["quantity"],
                          "price": number(variant["price"])} for variant in variants],
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
        return wrapped(products, page=page, per_page=limit, total=total)

    def find_product(self, db, call: Call, product_id: str):
        product = state.listing_by_id(db, call.account, int(product_id)) if product_id.isdigit() else None
        if product is None:
            raise self.fail(404, "id", f"Product {product_id} not found")
        return product

    def get_product(self, call: Call, product_id: str) -> Response:
        with call.read() as db:
            product = self.find_product(db, call, product_id)
            if product["parent_id"]:
                raise self.fail(404, "id", f"Product {product_id} not found")
            variants = self.variants_of(db, [product["id"]])[product["id"]]
        return wrapped(self.render_product(product, variants))

    def read_price(self, value: Any, member: str) -> Decimal:
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise self.fail(422, member, f"{member} must be a number of at least 0")
        return Decimal(str(value))

    def update_product(self, call: Call, product_id: str) -> Response:
        body = self.json_object(call)
        if not isinstance(body.get("name"), str) or not body["name"].strip():
            raise self.fail(422, "name", "The Name field is required.")
        price = self.read_price(body.get("price"), "price")
        with call.write() as db:
            product = self.find_product(db, call, product_id)
            if product["parent_id"]:
                raise self.fail(422, "id", f"{product_id} is a variant, not a product")
            variants = {row["id"]: row for row in self.variants_of(db, [product["id"]])[product["id"]]}
            db.execute("UPDATE listing SET title = ?, live = ? WHERE id = ?",
                       (body["name"], int(bool(body.get("live", product["live"]))), product["id"]))
            if price != Decimal(product["price"]):
                state.stock_record(db, call.account, product, price=price)
            for sent in body.get("variants") or []:
                variant = variants.get(sent.get("id")) if isinstance(sent, dict) else None
                if variant is None:
                    raise self.fail(422, "variants", f"Unknown variant {sent!r}")
                if "price" in sent:
                    variant_price = self.read_price(sent["price"], "variants.price")
                    if variant_price != Decimal(variant["price"]):
                        state.stock_record(db, call.account, variant, price=variant_price)
            product = state.listing_by_id(db, call.account, product["id"])
            rendered = self.render_product(product, self.variants_of(db, [product["id"]])[product["id"]])
        return wrapped(rendered)

    def read_stock(self, call: Call) -> int:
        stock = self.json_object(call).get("stock")
        if isinstance(stock, bool) or not isinstance(stock, int) or stock < 0:
            raise self.fail(422, "stock", "stock must be a whole number of at least 0")
        return stock

    def product_stock(self, call: Call, product_id: str) -> Response:
        stock = self.read_stock(call)
        with call.write() as db:
            product = self.find_product(db, call, product_id)
            if product["parent_id"]:
                raise self.fail(422, "id", f"{product_id} is a variant: use /products/{product['parent_id']}"
                                           f"/variants/{product_id}/stock")
            state.stock_record(db, call.account, product, quantity=stock)
        return wrapped({"id": product["id"], "number_in_stock": stock})

    def variant_stock(self, call: Call, product_id: str, variant_id: str) -> Response:
        stock = self.read_stock(call)
        with call.write() as db:
            variant = self.find_product(db, call, variant_id)
            if str(variant["parent_id"]) != product_id:
                raise self.fail(404, "variant_id", f"Product {product_id} has no variant {variant_id}")
            state.stock_record(db, call.account, variant, quantity=stock)
        return wrapped({"id": variant["id"], "number_in_stock": stock})
