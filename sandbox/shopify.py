"""Shopify's GraphQL Admin API 2026-04, from the connector's contract: contract/admin_api.json for the HTTP
envelope (the token endpoint, the GraphQL endpoint, webhook deliveries) and contract/admin_2026-04.graphql for the
documents, which are validated and executed against that schema with graphql-core, so every answer has the
schema's shapes.

What it enforces as Shopify does: the client credentials grant (a 24-hour token, no refresh token); the calculated
query cost (channels/connectors/shopify/schema.py) charged to a bucket of points per store (1,000 points, refilled
at 100 a second, the standard plan's), a request the bucket cannot pay for answered THROTTLED; at most 1,000
points a query and 250 items an array input; `inventorySetQuantities` only with @idempotent(key:), a key reused
with other input refused, a key repeated with the same input answered as the first time without applying it
again; `changeFromQuantity` given for every quantity (null skips the check) and compared with what the location
holds (CHANGE_FROM_QUANTITY_STALE, and then nothing of the input is applied).

Stock: each listing is one variant, stocked at the shop's first location only (other locations are listed but
stock nothing). Orders placed, paid, cancelled or fulfilled through the control API (or cancelled and fulfilled
by the hub) are announced to the subscribed webhooks, signed with the app's client secret.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import re
import threading
import time
from decimal import Decimal
from typing import Any

import requests
from graphql import GraphQLError, execute, value_from_ast_untyped

from channels.connectors.shopify.schema import (
    GRAPHQL_PATH,
    MAX_QUERY_COST,
    actual_cost,
    admin_schema,
    document_errors,
    operation_of,
    requested_cost,
)
from sandbox.api import Call, ChannelApi
from sandbox.ratelimit import Limit
from sandbox.state.accounts import access_token_issue, access_token_state
from sandbox.state.common import TAX_RATE, Account, included_tax
from sandbox.state.listings import listing_by_id, stock_record
from sandbox.state.orders import order_get, order_items, order_status_set, order_totals
from sandbox.state.received import call_count, event_record
from sandbox.state.webhooks import subscription_delete, subscription_endpoints, subscriptions_all
from sandbox.store import Store, now_iso, parse_time
from sandbox.web import Response

logger = logging.getLogger("sandbox")

TOKEN_LIFETIME = 86399
BUCKET_SIZE = 1000.0
RESTORE_RATE = 100.0
MAX_INPUT_SIZE = 250
SHOP_LOCATION = 1
DEFAULT_LOCATIONS = [{"id": 1, "name": "Shop location", "fulfills_online_orders": True},
                     {"id": 2, "name": "Pop-up store", "fulfills_online_orders": False}]
QUANTITY_NAMES = ("available", "on_hand")
REASONS = ("correction", "cycle_count_available", "damaged", "movement_created", "movement_updated",
           "movement_received", "movement_canceled", "other", "promotion", "quality_control", "received",
           "reservation_created", "reservation_deleted", "reservation_updated", "restock", "safety_stock", "shrinkage")
UPDATED_AT = re.compile(r"updated_at:([<>]=?)'?([0-9T:\-]+Z?)'?")
ITEM_ID = re.compile(r"\bid:([0-9]{1,19})\b")
# A control API status and what it makes the order: its fulfilment status, or cancelled.
FULFILLED, UNFULFILLED, CANCELLED = "FULFILLED", "UNFULFILLED", "CANCELLED"
# Shopify's schedule for a failed delivery, shortened (Shopify retries 8 times over 4 hours).
WEBHOOK_TIMEOUT = 5.0
WEBHOOK_RETRIES = 8


def gid(kind: str, number: int | str) -> str:
    return f"gid://shopify/{kind}/{number}"


def gid_number(value: Any, kind: str) -> int | None:
    found = re.fullmatch(rf"gid://shopify/{kind}/([0-9]{{1,19}})", value) if isinstance(value, str) else None
    return int(found[1]) if found else None


def money_set(amount: Decimal | str, currency: str) -> dict[str, Any]:
    money = {"amount": str(Decimal(amount).quantize(Decimal("0.01"))), "currencyCode": currency}
    return {"shopMoney": money, "presentmentMoney": money}


def cursor_of(*parts: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(parts).encode()).decode()


def cursor_parts(cursor: str | None) -> list[Any] | None:
    if not cursor:
        return None
    try:
        return json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except ValueError:
        raise GraphQLError("Invalid cursor for current pagination sort.") from None


def signature(secret: str, body: bytes) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def throttle_status(limit: Limit, available: float) -> dict[str, float]:
    return {"maximumAvailable": float(limit.burst), "currentlyAvailable": int(available),
            "restoreRate": limit.rate}


class Deliveries:
    """Signed webhook deliveries, from a thread of their own, each retried on failure."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def send(self, deliveries: list[tuple[str, bytes, dict[str, str]]]) -> None:
        if deliveries:
            threading.Thread(target=self._run, args=(deliveries,), name="sandbox-shopify-webhooks",
                             daemon=True).start()

    def _run(self, deliveries: list[tuple[str, bytes, dict[str, str]]]) -> None:
        pending = [(time.monotonic(), 0, *delivery) for delivery in deliveries]
        while pending and not self.store.closed:
            pending.sort(key=lambda entry: entry[0])
            due, retries, endpoint, body, headers = pending.pop(0)
            while time.monotonic() < due and not self.store.closed:
                time.sleep(min(0.05, due - time.monotonic()))
            try:
                with requests.post(endpoint, data=body, headers=headers, timeout=WEBHOOK_TIMEOUT, stream=True) as r:
                    if 200 <= r.status_code < 300:
                        continue
            except requests.RequestException:
                pass
            if retries < WEBHOOK_RETRIES:
                pending.append((time.monotonic() + 0.5 * 2 ** retries, retries + 1, endpoint, body, headers))
            else:
                logger.warning("sandbox.shopify.webhook_given_up %s", headers.get("X-Shopify-Topic"))


def order_webhooks_send(store: Store, account: Account, topics: list[str], order_ids: list[str]) -> None:
    """Announce orders just committed to every subscription of each topic ("orders/create"...)."""
    deliveries = []
    with store.read() as db:
        for topic in topics:
            endpoints = subscription_endpoints(db, account, topic.replace("/", "_").upper())
            for order_id in order_ids if endpoints else ():
                order = order_get(db, account, order_id)
                if order is None:
                    continue
                body = json.dumps({"id": int(order_id), "admin_graphql_api_id": gid("Order", order_id),
                                   "name": f"#{order['order_number']}", "updated_at": order["updated_at"]}).encode()
                for endpoint in endpoints:
                    deliveries.append((endpoint, body, {
                        "Content-Type": "application/json", "X-Shopify-Topic": topic,
                        "X-Shopify-Hmac-Sha256": signature(account.credentials["client_secret"], body),
                        "X-Shopify-Shop-Domain": f"{account.name}.myshopify.com", "X-Shopify-API-Version": "2026-04",
                        "X-Shopify-Webhook-Id": f"{order_id}-{topic}-{order['revision']}",
                        "X-Shopify-Triggered-At": now_iso()}))
    Deliveries(store).send(deliveries)


def status_topics(status: str, paid_now: bool) -> list[str]:
    """The topics a control API change of an order fires, besides orders/updated."""
    topics = {CANCELLED: ["orders/cancelled"], FULFILLED: ["orders/fulfilled"]}.get(status, [])
    return [*topics, *(["orders/paid"] if paid_now else []), "orders/updated"]


class ShopifyApi(ChannelApi):
    kind = "shopify"

    def routes(self) -> None:
        add = self.router.add
        add("POST", "/admin/oauth/access_token", "token", self.token, authenticated=False, limited=False)
        # Limited by points, in the handler, not by calls.
        add("POST", GRAPHQL_PATH, "graphql", self.graphql, limited=False)

    # The vendor's error shapes

    def error(self, status: int, code: str, message: str) -> Response:
        if status == 401:
            return Response.json({"errors": "[API] Invalid API key or access token (unrecognized login or wrong "
                                            "password)"}, 401)
        return Response.json({"errors": message or code}, status)

    def refuse_invalid(self, call: Call, problems: list[str]) -> Response:
        if call.operation == "token":
            return Response.json({"error": "invalid_request", "error_description": "; ".join(problems)}, 400)
        return Response.json({"errors": {"query": "Required parameter missing or invalid"}}, 400)

    def authenticate(self, call: Call) -> None:
        with call.read() as db:
            state = access_token_state(db, call.account, call.request.header("X-Shopify-Access-Token"))
        if state != "valid":
            raise self.fail(401, "", "")

    def token(self, call: Call) -> Response:
        form = call.request.form()
        credentials = call.account.credentials
        if form.get("client_id") != credentials["client_id"] or form.get("client_secret") != credentials[
                "client_secret"]:
            return Response.json({"error": "invalid_client", "error_description": "Client credentials are invalid"},
                                 400)
        lifetime = int(call.account.settings.get("token_lifetime", TOKEN_LIFETIME))
        with call.write() as db:
            token = access_token_issue(db, call.account, None, "shpat_")
            db.execute("UPDATE access_token SET expires_at = ? WHERE token = ?", (time.time() + lifetime, token))
        return Response.json({"access_token": token, "scope": "read_products,write_products,read_inventory,"
                              "write_inventory,read_locations,read_orders,write_orders,"
                              "write_merchant_managed_fulfillment_orders", "expires_in": lifetime})

    # Points

    def points(self, account: Account) -> Limit | None:
        """The store's bucket of points: 1,000 refilled at 100 a second (standard plans), or the account's
        `rate_limits` "points" (or "*") override as {rate, burst}: points a second, points at most."""
        config = account.settings.get("rate_limits") or {}
        if config.get("profile") == "off":
            return None
        override = config.get("points") or config.get("*")
        if override:
            return Limit(float(override["rate"]), int(override["burst"]))
        return Limit(RESTORE_RATE, int(BUCKET_SIZE))

    # The GraphQL endpoint

    def graphql(self, call: Call) -> Response:
        body = call.request.json()
        name = body.get("operationName")
        parsed, problems = document_errors(body["query"])
        if problems:
            return Response.json({"errors": [{"message": p, "extensions": {"code": "GRAPHQL_VALIDATION_FAILED"}}
                                             for p in problems]})
        operation = operation_of(parsed, name)
        if operation is None:
            return Response.json({"errors": [{"message": "An operation name is required"}]})
        variables = body.get("variables") or {}
        cost = requested_cost(parsed, operation, variables)
        with call.write() as db:
            call_count(db, call.account, f"graphql:{name or 'anonymous'}")
        if cost > MAX_QUERY_COST:
            return Response.json({"errors": [{
                "message": f"Query cost is {cost}, which exceeds the single query max cost limit ({MAX_QUERY_COST}).",
                "extensions": {"code": "MAX_COST_EXCEEDED", "cost": cost, "maxCost": MAX_QUERY_COST}}]})
        limit = self.points(call.account)
        limiter = call.context.limiter
        if limit is not None:
            decision = limiter.take(call.account.id, "points", limit, cost)
            if not decision.allowed:
                return Response.json({"errors": [{"message": "Throttled", "extensions": {
                    "code": "THROTTLED", "documentation": "https://shopify.dev/api/usage/limits"}}],
                    "extensions": {"cost": {"requestedQueryCost": cost, "actualQueryCost": None,
                                            "throttleStatus": throttle_status(limit, decision.remaining)}}})
        result = execute(admin_schema(), parsed, root_value=Root(self, call), variable_values=variables,
                         operation_name=name)
        answer: dict[str, Any] = {"data": result.data}
        if result.errors:
            answer["errors"] = [error.formatted for error in result.errors]
        actual = min(cost, actual_cost(parsed, operation, result.data))
        if limit is not None:
            # The points asked for but not spent go back to the bucket.
            status = throttle_status(limit, limiter.give_back(call.account.id, "points", cost - actual))
        else:
            status = throttle_status(Limit(RESTORE_RATE, int(BUCKET_SIZE)), BUCKET_SIZE)
        answer["extensions"] = {"cost": {"requestedQueryCost": cost, "actualQueryCost": actual,
                                         "throttleStatus": status}}
        return Response.json(answer)


def _locations(account: Account) -> list[dict[str, Any]]:
    return account.settings.get("locations") or DEFAULT_LOCATIONS


def _user_error(field: list[str] | None, message: str, code: str | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"field": field, "message": message}
    if code is not None:
        error["code"] = code
    return error


class Root:
    """The query and mutation roots: each field a method, called by graphql-core's default resolver with the
    field's arguments; what they return is read by the schema's types (dicts, with callables for fields that
    take arguments)."""

    def __init__(self, api: ShopifyApi, call: Call) -> None:
        self.api, self.call, self.account = api, call, call.account

    # Queries

    def shop(self, info) -> dict[str, Any]:
        settings = self.account.settings
        return {"id": gid("Shop", self.account.id), "name": settings.get("shop_name") or self.account.name,
                "myshopifyDomain": f"{self.account.name}.myshopify.com",
                "currencyCode": settings.get("currency", "GBP"),
                "plan": {"displayName": "Basic", "partnerDevelopment": False, "shopifyPlus": False,
                         "publicDisplayName": "Basic"}}

    def locations(self, info, first=None, after=None, **_) -> dict[str, Any]:
        every = _locations(self.account)
        start = int((cursor_parts(after) or [0])[0])
        page = every[start:start + (first or 50)]
        nodes = [{"id": gid("Location", loc["id"]), "name": loc["name"], "isActive": loc.get("active", True),
                  "fulfillsOnlineOrders": loc.get("fulfills_online_orders", True)} for loc in page]
        more = start + len(page) < len(every)
        return {"nodes": nodes, "pageInfo": {"hasNextPage": more, "hasPreviousPage": start > 0,
                                             "endCursor": cursor_of(start + len(page)) if page else None}}

    def _variant_rows(self, db, after_id: int, limit: int) -> list:
        # A listing with variants is a product; the others are variants (of their parent, or of a product of one).
        return db.execute(
            "SELECT l.*, COALESCE(p.title, l.title) AS product_title, COALESCE(p.live, l.live) AS product_live "
            "FROM listing l LEFT JOIN listing p ON p.id = l.parent_id WHERE l.account_id = ? AND l.id > ? AND NOT "
            "EXISTS (SELECT 1 FROM listing c WHERE c.parent_id = l.id) ORDER BY l.id LIMIT ?",
            (self.account.id, after_id, limit)).fetchall()

    def _level(self, row) -> Any:
        def inventory_level(info, locationId, **_):
            if gid_number(locationId, "Location") != SHOP_LOCATION:
                return None
            return {"id": gid("InventoryLevel", f"{row['id']}?inventory_item_id={row['id']}"),
                    "quantities": lambda info, names: [{"id": gid("InventoryQuantity", row["id"]), "name": name,
                                                        "quantity": row["quantity"]}
                                                       for name in names if name in QUANTITY_NAMES]}
        return inventory_level

    def _variant(self, row) -> dict[str, Any]:
        product = row["parent_id"] or row["id"]
        title = row["title"] if row["parent_id"] else "Default Title"
        return {"id": gid("ProductVariant", row["id"]), "sku": row["sku"], "title": title,
                "displayName": f"{row['product_title']} - {title}", "price": str(row["price"]),
                "updatedAt": row["created_at"],
                "product": {"id": gid("Product", product), "title": row["product_title"],
                            "status": "ACTIVE" if row["product_live"] else "DRAFT"},
                "inventoryItem": {"id": gid("InventoryItem", row["id"]), "sku": row["sku"], "tracked": True,
                                  "inventoryLevel": self._level(row)}}

    def productVariants(self, info, first=None, after=None, **_) -> dict[str, Any]:  # noqa: N802 (the schema's name)
        after_id = int((cursor_parts(after) or [0])[0])
        with self.call.read() as db:
            rows = self._variant_rows(db, after_id, (first or 50) + 1)
        page, more = rows[:first or 50], len(rows) > (first or 50)
        spoiled = self.call.take_malformed(page)
        nodes = [self._variant(row) for row in page]
        if spoiled is not None:
            nodes[spoiled["index"]]["sku"] = None if spoiled["corrupt"] == "id" else nodes[spoiled["index"]]["sku"]
            if spoiled["corrupt"] != "id":
                nodes[spoiled["index"]]["inventoryItem"]["id"] = "gid://shopify/InventoryItem/lots"
        return {"nodes": nodes, "pageInfo": {"hasNextPage": more, "hasPreviousPage": after_id > 0,
                                             "endCursor": cursor_of(page[-1]["id"]) if page else None}}

    def productVariantsCount(self, info, **_) -> dict[str, Any]:  # noqa: N802
        with self.call.read() as db:
            count = len(self._variant_rows(db, 0, 10**9))
        return {"count": count, "precision": "EXACT"}

    def inventoryItems(self, info, first=None, query=None, **_) -> dict[str, Any]:  # noqa: N802
        wanted = [int(number) for number in ITEM_ID.findall(query or "")][:first or 50]
        with self.call.read() as db:
            rows = [row for number in wanted if (row := listing_by_id(db, self.account, number)) is not None]
        return {"nodes": [{"id": gid("InventoryItem", row["id"]), "sku": row["sku"], "tracked": True,
                           "inventoryLevel": self._level(row)} for row in rows]}

    def _order(self, db, order, items) -> dict[str, Any]:
        address = json.loads(order["address"])
        currency = order["currency"] or "GBP"
        totals = order_totals(order, items)
        fulfilled, cancelled = order["status"] == FULFILLED, order["status"] == CANCELLED
        lines = {"nodes": [{
            "id": gid("LineItem", item["id"]), "sku": item["sku"], "title": item["title"], "quantity": item["quantity"],
            "currentQuantity": 0 if cancelled else item["quantity"],
            "originalUnitPriceSet": money_set(item["price"], currency),
            "taxLines": lambda info, first=None, item=item: [{
                "title": "VAT", "rate": float(TAX_RATE / 100),
                "priceSet": money_set(included_tax(Decimal(item["price"]) * item["quantity"]), currency)}],
            "variant": {"id": gid("ProductVariant", item["variant_id"] or item["listing_id"])}
            if item["listing_id"] else None,
        } for item in items]}

        def line_items(info, first=None, **_):
            return {"nodes": lines["nodes"][:first], "pageInfo": {
                "hasNextPage": len(lines["nodes"]) > (first or 0), "hasPreviousPage": False,
                "endCursor": None, "startCursor": None}}

        def fulfillment_orders(info, first=None, **_):
            status = "CLOSED" if fulfilled else "CANCELLED" if cancelled else "OPEN"
            return {"nodes": [{"id": gid("FulfillmentOrder", order["id"]), "status": status}]}

        return {
            "id": gid("Order", order["order_id"]), "name": f"#{order['order_number']}",
            "createdAt": order["created_at"], "updatedAt": order["updated_at"],
            "cancelledAt": order["updated_at"] if cancelled else None,
            "displayFinancialStatus": "PAID" if order["paid"] else "PENDING",
            "displayFulfillmentStatus": FULFILLED if fulfilled else UNFULFILLED,
            "currencyCode": currency, "email": order["buyer_email"], "taxesIncluded": True,
            "closed": fulfilled, "test": False,
            "shippingAddress": {"name": f"{address['first_name']} {address['last_name']}", "company": None,
                                "address1": address["line1"], "address2": address["line2"] or None,
                                "city": address["city"], "province": address["region"], "zip": address["postcode"],
                                "countryCodeV2": address["country"], "phone": address["phone"]},
            "shippingLine": {"title": order["shipping_tag"], "code": order["shipping_tag"]},
            "subtotalPriceSet": money_set(totals["subtotal"], currency),
            "totalShippingPriceSet": money_set(totals["shipping"], currency),
            "totalTaxSet": money_set(totals["tax"], currency),
            "totalPriceSet": money_set(totals["total"], currency),
            "lineItems": line_items, "fulfillmentOrders": fulfillment_orders,
        }

    def orders(self, info, first=None, after=None, query=None, sortKey=None, **_) -> dict[str, Any]:  # noqa: N803
        where, params = ["account_id = ?"], [self.account.id]
        for operator, moment in UPDATED_AT.findall(query or ""):
            try:
                params.append(parse_time(moment))
            except ValueError:
                raise GraphQLError(f"Invalid date in query: {moment}") from None
            where.append(f"updated_at {operator} ?")
        start = cursor_parts(after)
        if start:
            where.append("(updated_at > ? OR (updated_at = ? AND id > ?))")
            params += [start[0], start[0], start[1]]
        limit = first or 50
        with self.call.read() as db:
            rows = db.execute(f"SELECT * FROM channel_order WHERE {' AND '.join(where)} ORDER BY updated_at, id "
                              "LIMIT ?", (*params, limit + 1)).fetchall()
            page = rows[:limit]
            items = order_items(db, [row["id"] for row in page])
            nodes = [self._order(db, row, items[row["id"]]) for row in page]
        spoiled = self.call.take_malformed(nodes)
        if spoiled is not None:
            # A Decimal is a string on the wire: the schema lets a broken amount through, as a buggy shop would.
            for line in nodes[spoiled["index"]]["lineItems"](info, first=250)["nodes"]:
                line["originalUnitPriceSet"] = {"shopMoney": {"amount": "lots", "currencyCode": "GBP"},
                                                "presentmentMoney": {"amount": "lots", "currencyCode": "GBP"}}
        return {"nodes": nodes, "pageInfo": {
            "hasNextPage": len(rows) > limit, "hasPreviousPage": bool(start),
            "endCursor": cursor_of(page[-1]["updated_at"], page[-1]["id"]) if page else None}}

    def _order_row(self, db, order_gid):
        number = gid_number(order_gid, "Order")
        return order_get(db, self.account, str(number)) if number is not None else None

    def order(self, info, id) -> dict[str, Any] | None:  # noqa: A002 (the schema's name)
        with self.call.read() as db:
            row = self._order_row(db, id)
            return self._order(db, row, order_items(db, [row["id"]])[row["id"]]) if row else None

    def webhookSubscriptions(self, info, first=None, **_) -> dict[str, Any]:  # noqa: N802
        with self.call.read() as db:
            subscriptions = subscriptions_all(db, self.account)[:first or 50]
        return {"nodes": [{"id": s["id"], "topic": s["topic"], "uri": s["endpoint"]} for s in subscriptions]}

    # Mutations

    def inventorySetQuantities(self, info, input) -> dict[str, Any]:  # noqa: N802, A002
        key = idempotency_key(info)
        quantities = input["quantities"]
        if len(quantities) > MAX_INPUT_SIZE:
            raise GraphQLError(f"The input array size of {len(quantities)} is greater than the maximum allowed of "
                               f"{MAX_INPUT_SIZE}.", extensions={"code": "MAX_INPUT_SIZE_EXCEEDED"})
        fingerprint = hashlib.sha256(json.dumps(input, sort_keys=True).encode()).hexdigest()
        with self.call.write() as db:
            seen = db.execute("SELECT request, response FROM shopify_idempotency WHERE account_id = ? AND key = ?",
                              (self.account.id, key)).fetchone()
            if seen is not None:
                if seen["request"] != fingerprint:
                    return {"inventoryAdjustmentGroup": None, "userErrors": [_user_error(
                        None, "The same idempotency key was used with different parameters.",
                        "IDEMPOTENCY_KEY_PARAMETER_MISMATCH")]}
                return json.loads(seen["response"])
            answer = self._set_quantities(db, input)
            db.execute("INSERT INTO shopify_idempotency (account_id, key, request, response) VALUES (?, ?, ?, ?)",
                       (self.account.id, key, fingerprint, json.dumps(answer)))
        return answer

    def _set_quantities(self, db, input) -> dict[str, Any]:  # noqa: A002
        errors, changes = [], []
        if input["name"] not in QUANTITY_NAMES:
            errors.append(_user_error(["input", "name"], "The quantity name must be available or on_hand.",
                                      "INVALID_NAME"))
        if input["reason"] not in REASONS:
            errors.append(_user_error(["input", "reason"], "The reason is not valid.", "INVALID_REASON"))
        locations = {loc["id"] for loc in _locations(self.account)}
        for index, quantity in enumerate(input["quantities"]):
            where = ["input", "quantities", str(index)]
            listing = None
            item = gid_number(quantity["inventoryItemId"], "InventoryItem")
            if item is not None:
                listing = listing_by_id(db, self.account, item)
            location = gid_number(quantity["locationId"], "Location")
            if listing is None:
                errors.append(_user_error([*where, "inventoryItemId"], "The specified inventory item could not be "
                                          "found.", "INVALID_INVENTORY_ITEM"))
            elif location not in locations:
                errors.append(_user_error([*where, "locationId"], "The specified location could not be found.",
                                          "INVALID_LOCATION"))
            elif location != SHOP_LOCATION:
                errors.append(_user_error([*where, "locationId"], "The specified inventory item is not stocked at "
                                          "the location.", "ITEM_NOT_STOCKED_AT_LOCATION"))
            elif quantity["quantity"] < 0:
                errors.append(_user_error([*where, "quantity"], "The quantity can't be negative.",
                                          "INVALID_QUANTITY_NEGATIVE"))
            elif "changeFromQuantity" not in quantity:
                errors.append(_user_error([*where, "changeFromQuantity"], "changeFromQuantity must be given, null to "
                                          "skip the check.", "CHANGE_FROM_QUANTITY_STALE"))
            elif quantity["changeFromQuantity"] is not None and quantity["changeFromQuantity"] != listing["quantity"]:
                errors.append(_user_error([*where, "changeFromQuantity"], "The specified compare quantity is stale.",
                                          "CHANGE_FROM_QUANTITY_STALE"))
            else:
                changes.append((listing, quantity["quantity"]))
        if errors:
            return {"inventoryAdjustmentGroup": None, "userErrors": errors}
        for listing, quantity in changes:
            stock_record(db, self.account, listing, quantity=quantity)
        group = db.execute("SELECT COUNT(*) FROM shopify_idempotency WHERE account_id = ?",
                           (self.account.id,)).fetchone()[0] + 1
        return {"inventoryAdjustmentGroup": {"id": gid("InventoryAdjustmentGroup", group), "reason": input["reason"],
                                             "createdAt": now_iso()}, "userErrors": []}

    def productVariantsBulkUpdate(self, info, productId, variants, **_) -> dict[str, Any]:  # noqa: N802, N803
        if len(variants) > MAX_INPUT_SIZE:
            raise GraphQLError("The input array size is greater than the maximum allowed of 250.",
                               extensions={"code": "MAX_INPUT_SIZE_EXCEEDED"})
        product = gid_number(productId, "Product")
        updated, errors = [], []
        with self.call.write() as db:
            for index, variant in enumerate(variants):
                number = gid_number(variant.get("id"), "ProductVariant")
                row = listing_by_id(db, self.account, number) if number is not None else None
                if row is None or (row["parent_id"] or row["id"]) != product:
                    errors.append(_user_error(["variants", str(index), "id"], "Product variant does not exist",
                                              "PRODUCT_VARIANT_DOES_NOT_EXIST"))
                    continue
                if variant.get("price") is not None:
                    stock_record(db, self.account, row, price=Decimal(str(variant["price"])))
                updated.append(row["id"])
            rows = [listing_by_id(db, self.account, number) for number in updated]
        return {"product": None, "productVariants": None if errors else [
            {"id": gid("ProductVariant", row["id"]), "price": str(row["price"])} for row in rows], "userErrors": errors}

    def fulfillmentCreate(self, info, fulfillment, **_) -> dict[str, Any]:  # noqa: N802
        groups = fulfillment["lineItemsByFulfillmentOrder"]
        with self.call.write() as db:
            rows = [db.execute("SELECT * FROM channel_order WHERE id = ? AND account_id = ?",
                               (gid_number(group["fulfillmentOrderId"], "FulfillmentOrder") or 0,
                                self.account.id)).fetchone() for group in groups]
            if not rows or any(row is None for row in rows):
                return {"fulfillment": None, "userErrors": [_user_error(
                    ["fulfillment", "lineItemsByFulfillmentOrder"], "Fulfillment order does not exist.")]}
            if any(row["status"] != UNFULFILLED for row in rows):
                return {"fulfillment": None, "userErrors": [_user_error(
                    ["fulfillment"], "Fulfillment order is not in an open state.")]}
            tracking = fulfillment.get("trackingInfo") or {}
            for row in rows:
                db.execute("UPDATE channel_order SET tracking = ? WHERE id = ?", (json.dumps(tracking), row["id"]))
                order_status_set(db, row, FULFILLED)
                event_record(db, self.account, "shipment", {
                    "order_id": row["order_id"], "tracking_number": tracking.get("number") or "",
                    "carrier": tracking.get("company") or "", "tracking_url": tracking.get("url") or "",
                    "notify_customer": bool(fulfillment.get("notifyCustomer"))})
        order_webhooks_send(self.call.context.store, self.account, ["orders/fulfilled", "orders/updated"],
                            [row["order_id"] for row in rows])
        return {"fulfillment": {"id": gid("Fulfillment", rows[0]["id"]), "status": "SUCCESS"}, "userErrors": []}

    def orderCancel(self, info, orderId, reason, restock, **options) -> dict[str, Any]:  # noqa: N802, N803
        with self.call.write() as db:
            row = self._order_row(db, orderId)
            if row is None:
                return {"job": None, "orderCancelUserErrors": [_user_error(["orderId"], "Order does not exist",
                                                                           "NOT_FOUND")], "userErrors": []}
            if row["status"] == CANCELLED:
                return {"job": None, "orderCancelUserErrors": [_user_error(
                    ["orderId"], "Cannot cancel an order that is already cancelled", "INVALID")], "userErrors": []}
            order_status_set(db, row, CANCELLED)
            event_record(db, self.account, "cancellation", {
                "order_id": row["order_id"], "reason": reason, "restock": restock,
                "notify_customer": bool(options.get("notifyCustomer")), "staff_note": options.get("staffNote")})
        order_webhooks_send(self.call.context.store, self.account, ["orders/cancelled", "orders/updated"],
                            [row["order_id"]])
        return {"job": {"id": gid("Job", row["id"]), "done": False}, "orderCancelUserErrors": [], "userErrors": []}

    def webhookSubscriptionCreate(self, info, topic, webhookSubscription) -> dict[str, Any]:  # noqa: N802, N803
        uri = webhookSubscription.get("uri") or webhookSubscription.get("callbackUrl")
        if not uri or not re.match(r"^https?://", uri):
            return {"webhookSubscription": None, "userErrors": [_user_error(
                ["webhookSubscription", "uri"], "Address is invalid")]}
        with self.call.write() as db:
            number = db.execute("SELECT COUNT(*) FROM webhook_subscription").fetchone()[0] + 1
            db.execute("INSERT INTO webhook_subscription (id, account_id, topic, endpoint, is_enabled) "
                       "VALUES (?, ?, ?, ?, 1)", (gid("WebhookSubscription", number), self.account.id, topic, uri))
        return {"webhookSubscription": {"id": gid("WebhookSubscription", number), "topic": topic, "uri": uri},
                "userErrors": []}

    def webhookSubscriptionDelete(self, info, id) -> dict[str, Any]:  # noqa: N802, A002
        with self.call.write() as db:
            found = subscription_delete(db, self.account, id)
        if not found:
            return {"deletedWebhookSubscriptionId": None, "userErrors": [_user_error(
                ["id"], "Webhook subscription does not exist")]}
        return {"deletedWebhookSubscriptionId": id, "userErrors": []}


def idempotency_key(info) -> str:
    """The @idempotent key on the mutation's field; a refusal, as from 2026-04, when it is missing or blank."""
    for directive in info.field_nodes[0].directives or ():
        if directive.name.value == "idempotent":
            for argument in directive.arguments:
                if argument.name.value == "key":
                    key = value_from_ast_untyped(argument.value, info.variable_values)
                    if isinstance(key, str) and key.strip():
                        return key
            raise GraphQLError("The idempotency key cannot be an empty string or whitespace only.",
                               extensions={"code": "BAD_REQUEST"})
    raise GraphQLError(f"The @idempotent directive is required for {info.field_name} as of 2026-04.",
                       extensions={"code": "BAD_REQUEST"})

