"""Amazon SP-API (and its Login with Amazon token endpoint) as sandbox/README.md describes it."""

from __future__ import annotations

import base64
import binascii
import json
import secrets
import time
import uuid
from decimal import Decimal
from typing import Any

from sandbox import state
from sandbox.api import Call, ChannelApi, render_rows
from sandbox.ratelimit import Decision, Limit
from sandbox.store import parse_time
from sandbox.web import Response

ORDER_ITEM_ID_BASE = 10**13
INCLUDABLE = ("BUYER", "RECIPIENT", "PROCEEDS", "FULFILLMENT")
REPORT_COLUMNS = ("item-name", "listing-id", "seller-sku", "price", "quantity", "open-date", "asin1",
                  "fulfillment-channel", "status")
FEED_TYPES = ("JSON_LISTINGS_FEED", "POST_FLAT_FILE_ORDER_ACKNOWLEDGEMENT_DATA")
SHIPPING_SPEEDS = ("Standard", "Expedited", "Priority", "ScheduledDelivery")
FULFILLMENT_STATUS_NAMES = {"RECEIVED": "Received", "PLANNING": "Planning", "PROCESSING": "Processing",
                            "COMPLETE": "Complete"}
# Amazon answers at most this many inventory summaries a page; a nextToken lives this many seconds.
SUMMARIES_PAGE = 50
SUMMARIES_TOKEN_LIFETIME = 30
MARKETPLACES = {"A1F83G8C2ARO7P": ("Amazon.co.uk", "GB", "GBP"), "A13V1IB3VIYZZH": ("Amazon.fr", "FR", "EUR"),
                "A1PA6795UKMFR9": ("Amazon.de", "DE", "EUR")}


def order_item_id(item_pk: int) -> str:
    return str(ORDER_ITEM_ID_BASE + item_pk)


def item_pk_from(order_item_code: str) -> int | None:
    try:
        return int(order_item_code) - ORDER_ITEM_ID_BASE
    except (TypeError, ValueError):
        return None


def encode_token(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode()


def decode_token(token: str) -> dict[str, Any] | None:
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode()))
    except (ValueError, binascii.Error):
        return None
    return data if isinstance(data, dict) else None


def amount(value: Decimal, currency: str | None) -> dict[str, str]:
    return {"amount": str(value), "currencyCode": currency or "GBP"}


class AmazonApi(ChannelApi):
    kind = "amazon"
    published_limits = {
        "getMarketplaceParticipations": Limit(0.016, 15),
        "getOrders": Limit(0.0056, 20),
        "patchListingsItem": Limit(5, 5),
        "createFeedDocument": Limit(0.5, 15),
        "createFeed": Limit(0.0083, 15),
        "getFeed": Limit(2, 15),
        "getFeedDocument": Limit(0.0222, 10),
        "createReport": Limit(0.0167, 15),
        "getReport": Limit(2, 15),
        "getReportDocument": Limit(0.0167, 15),
        "confirmShipment": Limit(2, 10),
        "getInventorySummaries": Limit(2, 2),
        "createFulfillmentOrder": Limit(2, 30),
        "getFulfillmentOrder": Limit(2, 30),
    }

    def routes(self) -> None:
        add = self.router.add
        add("POST", "/auth/o2/token", "token", self.token, authenticated=False, limited=False)
        add("GET", "/sellers/v1/marketplaceParticipations", "getMarketplaceParticipations", self.participations)
        add("GET", "/orders/2026-01-01/orders", "getOrders", self.orders)
        add("PATCH", "/listings/2021-08-01/items/{seller_id}/{sku}", "patchListingsItem", self.patch_listing)
        add("POST", "/feeds/2021-06-30/documents", "createFeedDocument", self.create_feed_document)
        add("GET", "/feeds/2021-06-30/documents/{document_id}", "getFeedDocument", self.get_document)
        add("POST", "/feeds/2021-06-30/feeds", "createFeed", self.create_feed)
        add("GET", "/feeds/2021-06-30/feeds/{feed_id}", "getFeed", self.get_feed)
        add("POST", "/reports/2021-06-30/reports", "createReport", self.create_report)
        add("GET", "/reports/2021-06-30/reports/{report_id}", "getReport", self.get_report)
        add("GET", "/reports/2021-06-30/documents/{document_id}", "getReportDocument", self.get_document)
        add("POST", "/orders/v0/orders/{order_id}/shipmentConfirmation", "confirmShipment", self.confirm_shipment)
        add("GET", "/fba/inventory/v1/summaries", "getInventorySummaries", self.inventory_summaries)
        add("POST", "/fba/outbound/2020-07-01/fulfillmentOrders", "createFulfillmentOrder",
            self.create_fulfillment_order)
        add("GET", "/fba/outbound/2020-07-01/fulfillmentOrders/{order_id}", "getFulfillmentOrder",
            self.get_fulfillment_order)
        add("PUT", "/_documents/{document_id}", "uploadDocument", self.upload_document,
            authenticated=False, limited=False)
        add("GET", "/_documents/{document_id}", "downloadDocument", self.download_document,
            authenticated=False, limited=False)

    # Shapes shared by every operation

    def error(self, status: int, code: str, message: str) -> Response:
        return Response.json({"errors": [{"code": code, "message": message, "details": ""}]}, status)

    def rate_headers(self, decision: Decision | None) -> list[tuple[str, str]]:
        headers = [("x-amzn-RequestId", str(uuid.uuid4()))]
        if decision is not None:
            headers.append(("x-amzn-RateLimit-Limit", f"{decision.limit.rate:g}"))
        return headers

    def invalid_credentials(self, call: Call) -> Response:
        return self.unauthorized()

    def unauthorized(self) -> Response:
        return self.error(403, "Unauthorized", "Access to requested resource is denied.")

    def authenticate(self, call: Call) -> None:
        token = call.request.header("x-amz-access-token")
        with call.read() as db:
            if state.access_token_state(db, call.account, token) != "valid":
                raise self.fail(403, "Unauthorized", "Access to requested resource is denied.")

    def require_marketplace(self, call: Call, marketplace_ids: Any) -> None:
        if isinstance(marketplace_ids, str):
            marketplace_ids = marketplace_ids.split(",")
        if not marketplace_ids or call.account.marketplace_id not in marketplace_ids:
            raise self.fail(400, "InvalidInput", f"marketplaceIds must include {call.account.marketplace_id}")

    def json_body(self, call: Call) -> dict[str, Any]:
        body = call.request.json()
        if not isinstance(body, dict):
            raise self.fail(400, "InvalidInput", "The request body must be a JSON object.")
        return body

    # Login with Amazon

    def token(self, call: Call) -> Response:
        form = call.request.form()
        account = call.account
        credentials = account.credentials
        if form.get("client_id") != credentials["client_id"] or form.get("client_secret") != credentials[
                "client_secret"]:
            return Response.json({"error": "invalid_client", "error_description": "Client authentication failed"},
                                 401)
        grant_type = form.get("grant_type")
        with call.write() as db:
            if grant_type == "refresh_token":
                row = db.execute("SELECT grant_id FROM refresh_token WHERE token = ? AND account_id = ?",
                                 (form.get("refresh_token", ""), account.id)).fetchone()
                if row is None:
                    return self.invalid_grant("The request has an invalid grant parameter : refresh_token")
                state.refresh_tokens_used_bump(db, account)
                access = state.access_token_issue(db, account, row["grant_id"], "Atza|")
                return Response.json({"access_token": access, "token_type": "bearer",
                                      "expires_in": account.token_lifetime})
            if grant_type == "authorization_code":
                if not state.authorization_code_use(db, account, form.get("code", "")):
                    return self.invalid_grant("The request has an invalid grant parameter : code")
                grant_id = state.grant_create(db, account)
                refresh = state.refresh_token_issue(db, account, grant_id, "Atzr|")
                access = state.access_token_issue(db, account, grant_id, "Atza|")
                return Response.json({"access_token": access, "token_type": "bearer",
                                      "expires_in": account.token_lifetime, "refresh_token": refresh})
        return Response.json({"error": "unsupported_grant_type", "error_description": "Unknown grant_type"}, 400)

    def invalid_grant(self, description: str) -> Response:
        return Response.json({"error": "invalid_grant", "error_description": description}, 400)

    # Sellers

    def participations(self, call: Call) -> Response:
        name, country, currency = MARKETPLACES.get(call.account.marketplace_id, ("Amazon", "GB", "GBP"))
        return Response.json({"payload": [{
            "marketplace": {"id": call.account.marketplace_id, "name": name, "countryCode": country,
                            "defaultCurrencyCode": currency, "defaultLanguageCode": "en_GB",
                            "domainName": "www.amazon.co.uk"},
            "participation": {"isParticipating": True, "hasSuspendedListings": False},
        }]})

    # Orders

    def orders(self, call: Call) -> Response:
        request = call.request
        self.require_marketplace(call, request.arg("marketplaceIds"))
        token = request.arg("paginationToken")
        if token:
            query = decode_token(token)
            if query is None:
                raise self.fail(400, "InvalidInput", "Invalid paginationToken.")
        else:
            query = self.order_query(call)
        size = request.arg("maxResultsPerPage") or str(query.get("size", 100))
        if not size.isdigit() or not 1 <= int(size) <= 100:
            raise self.fail(400, "InvalidInput", "maxResultsPerPage must be between 1 and 100.")
        size = int(size)
        # A token carries the query it continues, includedData too, so a client may send the token alone.
        query["included"] = request.arg("includedData") or query.get("included", "")
        included = set(query["included"].split(","))
        field = query["field"]
        where = [f"account_id = ? AND {field} >= ?"]
        params: list[Any] = [call.account.id, query["after"]]
        if query.get("before"):
            where.append(f"{field} <= ?")
            params.append(query["before"])
        if query.get("statuses"):
            where.append(f"status IN ({','.join('?' * len(query['statuses']))})")
            params.extend(query["statuses"])
        if query.get("fulfilled_by"):
            where.append("fulfilled_by_channel = ?")
            params.append(int(query["fulfilled_by"] == "AMAZON"))
        if query.get("cursor"):
            where.append(f"({field}, id) > (?, ?)")
            params.extend(query["cursor"])
        with call.read() as db:
            rows = db.execute(f"SELECT * FROM channel_order WHERE {' AND '.join(where)} ORDER BY {field}, id "
                              f"LIMIT ?", (*params, size + 1)).fetchall()
            page = rows[:size]
            orders = render_rows(call, page, ",".join(sorted(included)), lambda pks: state.order_items(db, pks),
                                 lambda row, items: json.dumps(self.render_order(call, row, items, included)))
        self.spoil(call, orders)
        pagination: dict[str, str] = {}
        if len(rows) > size:
            last = page[-1]
            pagination["nextToken"] = encode_token({**query, "size": size, "cursor": [last[field], last["id"]]})
        body = '{"orders":[' + ",".join(orders) + '],"pagination":' + json.dumps(pagination) + "}"
        return Response.raw(body.encode(), "application/json")

    def order_query(self, call: Call) -> dict[str, Any]:
        request = call.request
        created_after, updated_after = request.arg("createdAfter"), request.arg("lastUpdatedAfter")
        if bool(created_after) == bool(updated_after):
            raise self.fail(400, "InvalidInput", "Exactly one of createdAfter and lastUpdatedAfter is required.")
        before = request.arg("createdBefore") if created_after else request.arg("lastUpdatedBefore")
        try:
            query: dict[str, Any] = {
                "field": "created_at" if created_after else "updated_at",
                "after": parse_time(created_after or updated_after),
                "before": parse_time(before) if before else None,
            }
        except ValueError:
            raise self.fail(400, "InvalidInput", "Dates must be ISO 8601.") from None
        if request.arg("fulfillmentStatuses"):
            query["statuses"] = request.arg("fulfillmentStatuses").split(",")
        if request.arg("fulfilledBy"):
            query["fulfilled_by"] = request.arg("fulfilledBy")
        return query

    def render_order(self, call: Call, order, items, included: set[str]) -> dict[str, Any]:
        address = json.loads(order["address"])
        name = f"{address['first_name']} {address['last_name']}"
        currency = order["currency"]
        rendered: dict[str, Any] = {
            "orderId": order["order_id"],
            "createdTime": order["created_at"],
            "lastUpdatedTime": order["updated_at"],
            "salesChannel": {"marketplaceId": call.account.marketplace_id},
        }
        if "BUYER" in included:
            buyer = {"buyerName": name}
            if order["buyer_email"]:
                buyer["buyerEmail"] = order["buyer_email"]
            rendered["buyer"] = buyer
        if "RECIPIENT" in included:
            rendered["recipient"] = {"deliveryAddress": {
                "name": name, "addressLine1": address["line1"], "addressLine2": address["line2"],
                "city": address["city"], "stateOrRegion": address["region"], "postalCode": address["postcode"],
                "countryCode": address["country"], "phone": address["phone"]}}
        if "PROCEEDS" in included:
            rendered["proceeds"] = {"grandTotal": amount(state.order_totals(order, items)["total"], currency)}
        if "FULFILLMENT" in included:
            rendered["fulfillment"] = {
                "fulfillmentStatus": order["status"],
                "fulfilledBy": "AMAZON" if order["fulfilled_by_channel"] else "MERCHANT",
                "fulfillmentServiceLevel": order["shipping_tag"]}
        rendered["orderItems"] = []
        for item in items:
            line = {"orderItemId": order_item_id(item["id"]), "quantityOrdered": item["quantity"],
                    "product": {"sellerSku": item["sku"], "asin": state.asin_for(item["variant_id"]
                                                                                 or item["listing_id"] or 0),
                                "title": item["title"],
                                "price": {"unitPrice": amount(Decimal(item["price"]), currency)}}}
            if "PROCEEDS" in included:
                gross = Decimal(item["price"]) * item["quantity"]
                line["proceeds"] = {"itemTax": amount(state.included_tax(gross), currency)}
            rendered["orderItems"].append(line)
        return rendered

    def spoil(self, call: Call, orders: list[str]) -> None:
        spoiled = call.take_malformed(orders)
        if spoiled is None:
            return
        order = json.loads(orders[spoiled["index"]])
        if spoiled["corrupt"] == "id" or not order["orderItems"]:
            del order["orderId"]
        else:
            order["orderItems"][0]["quantityOrdered"] = "one"
        orders[spoiled["index"]] = json.dumps(order)

    # Listings

    def patch_listing(self, call: Call, seller_id: str, sku: str) -> Response:
        self.require_marketplace(call, call.request.arg("marketplaceIds"))
        if seller_id != call.account.seller_id:
            raise self.fail(403, "Unauthorized", "Access to requested resource is denied.")
        body = self.json_body(call)
        with call.write() as db:
            issues = self.apply_patches(db, call.account, sku, body.get("productType"), body.get("patches"))
        return Response.json({"sku": sku, "status": "INVALID" if issues else "ACCEPTED",
                              "submissionId": uuid.uuid4().hex, "issues": issues})

    def apply_patches(self, db, account: state.Account, sku: str, product_type: Any,
                      patches: Any) -> list[dict[str, str]]:
        """Apply one listing's patches; the issues that made it INVALID (nothing applied then)."""
        listing = state.listing_by_sku(db, account, sku)
        if listing is None:
            return [issue("4000001", "SKU not found")]
        if not product_type:
            return [issue("4000002", "productType is required")]
        if not isinstance(patches, list) or not patches:
            return [issue("4000003", "patches must be a non-empty list")]
        changes: dict[str, Any] = {}
        problems = []
        for patch in patches:
            if not isinstance(patch, dict) or patch.get("op") not in ("merge", "replace", "add"):
                problems.append(issue("4000003", "Each patch needs op merge, replace or add"))
                continue
            value = patch.get("value")
            first = value[0] if isinstance(value, list) and value and isinstance(value[0], dict) else None
            if patch.get("path") == "/attributes/fulfillment_availability":
                problems += self.read_availability(first, changes)
            elif patch.get("path") == "/attributes/purchasable_offer":
                problems += self.read_offer(first, changes)
        if problems:
            return problems
        state.stock_record(db, account, listing, **changes)
        return []

    def read_availability(self, entry: dict[str, Any] | None, changes: dict[str, Any]) -> list[dict[str, str]]:
        if entry is None:
            return [issue("90220", "fulfillment_availability needs one value object")]
        problems = []
        if entry.get("fulfillment_channel_code", "DEFAULT") != "DEFAULT":
            problems.append(issue("90220", "fulfillment_channel_code must be DEFAULT for a merchant listing"))
        for key, target in (("quantity", "quantity"), ("lead_time_to_ship_max_days", "latency")):
            if key not in entry:
                continue
            number = entry[key]
            if isinstance(number, bool) or not isinstance(number, int) or number < 0:
                problems.append(issue("90220", f"{key} must be a non-negative integer"))
            else:
                changes[target] = number
        return problems

    def read_offer(self, entry: dict[str, Any] | None, changes: dict[str, Any]) -> list[dict[str, str]]:
        try:
            price = entry["our_price"][0]["schedule"][0]["value_with_tax"]
        except (TypeError, KeyError, IndexError):
            return [issue("90220", "purchasable_offer needs our_price[0].schedule[0].value_with_tax")]
        if isinstance(price, bool) or not isinstance(price, int | float) or price <= 0:
            return [issue("90220", "value_with_tax must be a positive number")]
        changes["price"] = Decimal(str(price))
        return []

    # Documents (feeds and reports)

    def document_url(self, call: Call, document_id: str) -> str:
        return f"{call.base_url}/_documents/{document_id}"

    def create_feed_document(self, call: Call) -> Response:
        body = self.json_body(call)
        if not body.get("contentType"):
            raise self.fail(400, "InvalidInput", "contentType is required.")
        document_id = f"amzn1.tortuga.4.eu.{uuid.uuid4()}"
        with call.write() as db:
            db.execute("INSERT INTO document (id, account_id, content_type, content) VALUES (?, ?, ?, NULL)",
                       (document_id, call.account.id, body["contentType"]))
        return Response.json({"feedDocumentId": document_id, "url": self.document_url(call, document_id)}, 201)

    def get_document(self, call: Call, document_id: str) -> Response:
        with call.read() as db:
            found = db.execute("SELECT 1 FROM document WHERE id = ? AND account_id = ?",
                               (document_id, call.account.id)).fetchone()
        if not found:
            raise self.fail(404, "NotFound", "The requested document was not found.")
        key = "reportDocumentId" if call.operation == "getReportDocument" else "feedDocumentId"
        return Response.json({key: document_id, "url": self.document_url(call, document_id)})

    def upload_document(self, call: Call, document_id: str) -> Response:
        with call.write() as db:
            updated = db.execute("UPDATE document SET content = ? WHERE id = ? AND account_id = ?",
                                 (call.request.body, document_id, call.account.id)).rowcount
        if not updated:
            return Response.raw(b"<Error><Code>NoSuchKey</Code></Error>", "application/xml", 404)
        return Response.empty(200)

    def download_document(self, call: Call, document_id: str) -> Response:
        with call.read() as db:
            row = db.execute("SELECT content_type, content FROM document WHERE id = ? AND account_id = ?",
                             (document_id, call.account.id)).fetchone()
        if row is None or row["content"] is None:
            return Response.raw(b"<Error><Code>NoSuchKey</Code></Error>", "application/xml", 404)
        content = bytes(row["content"])
        if row["content_type"].startswith("text/tab-separated-values"):
            content = self.spoil_report(call, content)
        return Response.raw(content, row["content_type"])

    def spoil_report(self, call: Call, content: bytes) -> bytes:
        lines = content.decode().split("\n")
        rows = [line for line in lines[1:] if line]
        spoiled = call.take_malformed(rows)
        if spoiled is None:
            return content
        cells = rows[spoiled["index"]].split("\t")
        if spoiled["corrupt"] == "id":
            cells[REPORT_COLUMNS.index("seller-sku")] = ""
        else:
            cells[REPORT_COLUMNS.index("quantity")] = "lots"
        rows[spoiled["index"]] = "\t".join(cells)
        return ("\n".join([lines[0], *rows]) + "\n").encode()

    def store_document(self, db, call: Call, content: bytes, content_type: str) -> str:
        document_id = f"amzn1.tortuga.4.eu.{uuid.uuid4()}"
        db.execute("INSERT INTO document (id, account_id, content_type, content) VALUES (?, ?, ?, ?)",
                   (document_id, call.account.id, content_type, content))
        return document_id

    # Feeds

    def create_feed(self, call: Call) -> Response:
        body = self.json_body(call)
        self.require_marketplace(call, body.get("marketplaceIds"))
        if body.get("feedType") not in FEED_TYPES:
            raise self.fail(400, "InvalidInput", f"feedType must be one of {', '.join(FEED_TYPES)}.")
        feed_id = str(50000000000 + secrets.randbelow(10**10))
        with call.write() as db:
            if not db.execute("SELECT 1 FROM document WHERE id = ? AND account_id = ?",
                              (body.get("inputFeedDocumentId"), call.account.id)).fetchone():
                raise self.fail(400, "InvalidInput", "inputFeedDocumentId is not a feed document of yours.")
            db.execute("INSERT INTO job (id, account_id, kind, type, input_document, status) "
                       "VALUES (?, ?, 'feed', ?, ?, 'IN_QUEUE')",
                       (feed_id, call.account.id, body["feedType"], body["inputFeedDocumentId"]))
        return Response.json({"feedId": feed_id}, 202)

    def get_feed(self, call: Call, feed_id: str) -> Response:
        with call.write() as db:
            job = db.execute("SELECT * FROM job WHERE id = ? AND account_id = ? AND kind = 'feed'",
                             (feed_id, call.account.id)).fetchone()
            if job is None:
                raise self.fail(404, "NotFound", "The requested feed was not found.")
            status, result = job["status"], job["result_document"]
            polls = job["polls"] + 1
            # Processed on the second poll, so a client has to poll at least once more.
            if status == "IN_QUEUE":
                status = "IN_PROGRESS"
            elif status == "IN_PROGRESS":
                status, result = self.process_feed(db, call, job)
            db.execute("UPDATE job SET status = ?, polls = ?, result_document = ? WHERE id = ?",
                       (status, polls, result, feed_id))
        feed = {"feedId": feed_id, "feedType": job["type"], "marketplaceIds": [call.account.marketplace_id],
                "createdTime": state.now_iso(), "processingStatus": status}
        if result:
            feed["resultFeedDocumentId"] = result
        return Response.json(feed)

    def process_feed(self, db, call: Call, job) -> tuple[str, str]:
        row = db.execute("SELECT content FROM document WHERE id = ?", (job["input_document"],)).fetchone()
        content = bytes(row["content"]) if row and row["content"] is not None else None
        if job["type"] == "JSON_LISTINGS_FEED":
            status, report = self.process_listings_feed(db, call, job["id"], content)
            return status, self.store_document(db, call, json.dumps(report).encode(), "application/json")
        status, text = self.process_acknowledgements(db, call, content)
        return status, self.store_document(db, call, text.encode(), "text/plain; charset=UTF-8")

    def process_listings_feed(self, db, call: Call, feed_id: str, content: bytes | None) -> tuple[str, dict]:
        header = {"sellerId": call.account.seller_id, "version": "2.0", "feedId": feed_id}
        try:
            feed = json.loads(content or b"")
            messages = feed["messages"]
            if not isinstance(messages, list):
                raise TypeError("messages")
        except (ValueError, TypeError, KeyError):
            return "FATAL", {"header": header, "issues": [
                {"messageId": 0, "code": "100001", "severity": "ERROR",
                 "message": "The feed document is not a JSON listings feed."}],
                "summary": {"errors": 1, "warnings": 0, "messagesProcessed": 0, "messagesAccepted": 0,
                            "messagesInvalid": 0}}
        issues, invalid = [], 0
        for message in messages:
            message_id = message.get("messageId") if isinstance(message, dict) else None
            if not isinstance(message, dict) or message.get("operationType") != "PATCH":
                found = [issue("4000003", "Only operationType PATCH is supported by the sandbox")]
            else:
                found = self.apply_patches(db, call.account, str(message.get("sku", "")),
                                           message.get("productType"), message.get("patches"))
            if found:
                invalid += 1
                issues += [{"messageId": message_id, **problem} for problem in found]
        return "DONE", {"header": header, "issues": issues, "summary": {
            "errors": len(issues), "warnings": 0, "messagesProcessed": len(messages),
            "messagesAccepted": len(messages) - invalid, "messagesInvalid": invalid}}

    def process_acknowledgements(self, db, call: Call, content: bytes | None) -> tuple[str, str]:
        """Cancel the orders named in an order acknowledgement flat file (lines with a reason code)."""
        lines = (content or b"").decode("utf-8", "replace").splitlines()
        columns = lines[0].split("\t") if lines else []
        if "order-id" not in columns:
            return "FATAL", "Feed Processing Summary:\n\tThe file has no order-id header line.\n"
        errors, cancelled = [], {}
        records = [dict(zip(columns, line.split("\t"), strict=False)) for line in lines[1:] if line.strip()]
        for number, record in enumerate(records, start=1):
            order = state.order_get(db, call.account, record.get("order-id", ""))
            reason = record.get("cancellation-reason-code", "")
            if order is None:
                errors.append((number, record.get("order-id", ""), "18028", "The order id was not found."))
                continue
            if not reason:
                continue
            if order["status"] in ("SHIPPED", "PARTIALLY_SHIPPED"):
                errors.append((number, order["order_id"], "18029", "A shipped order cannot be cancelled."))
                continue
            item_pk = item_pk_from(record.get("amazon-order-item-code", ""))
            item = db.execute("SELECT * FROM order_item WHERE id = ? AND order_pk = ?",
                              (item_pk, order["id"])).fetchone()
            if item is None:
                errors.append((number, order["order_id"], "18030", "The order item code was not found."))
                continue
            entry = cancelled.setdefault(order["order_id"], {"order": order, "reason": reason, "items": []})
            entry["items"].append({"line_id": order_item_id(item["id"]), "sku": item["sku"],
                                   "quantity": item["quantity"]})
        for order_id, entry in cancelled.items():
            if entry["order"]["status"] != "CANCELLED":
                state.order_status_set(db, entry["order"], "CANCELLED")
            state.event_record(db, call.account, "cancellation",
                               {"order_id": order_id, "reason": entry["reason"], "items": entry["items"]})
        report = ["Feed Processing Summary:", f"\tNumber of records processed\t\t{len(records)}",
                  f"\tNumber of records successful\t\t{len(records) - len(errors)}", "",
                  "original-record-number\torder-id\terror-code\terror-type\terror-message"]
        report += [f"{number}\t{order_id}\t{code}\tError\t{message}" for number, order_id, code, message in errors]
        return "DONE", "\n".join(report) + "\n"

    # Reports

    def create_report(self, call: Call) -> Response:
        body = self.json_body(call)
        self.require_marketplace(call, body.get("marketplaceIds"))
        if body.get("reportType") != "GET_MERCHANT_LISTINGS_ALL_DATA":
            raise self.fail(400, "InvalidInput", "The sandbox only produces GET_MERCHANT_LISTINGS_ALL_DATA.")
        report_id = str(60000000000 + secrets.randbelow(10**10))
        with call.write() as db:
            db.execute("INSERT INTO job (id, account_id, kind, type, status) VALUES (?, ?, 'report', ?, 'IN_QUEUE')",
                       (report_id, call.account.id, body["reportType"]))
        return Response.json({"reportId": report_id}, 202)

    def get_report(self, call: Call, report_id: str) -> Response:
        with call.write() as db:
            job = db.execute("SELECT * FROM job WHERE id = ? AND account_id = ? AND kind = 'report'",
                             (report_id, call.account.id)).fetchone()
            if job is None:
                raise self.fail(404, "NotFound", "The requested report was not found.")
            status, document = job["status"], job["result_document"]
            if status == "IN_QUEUE":
                status = "IN_PROGRESS"
            elif status == "IN_PROGRESS":
                status = "DONE"
                document = self.store_document(db, call, self.listings_report(db, call.account),
                                               "text/tab-separated-values; charset=UTF-8")
            db.execute("UPDATE job SET status = ?, polls = polls + 1, result_document = ? WHERE id = ?",
                       (status, document, report_id))
        report = {"reportId": report_id, "reportType": job["type"], "processingStatus": status,
                  "marketplaceIds": [call.account.marketplace_id], "createdTime": state.now_iso()}
        if document:
            report["reportDocumentId"] = document
        return Response.json(report)

    def listings_report(self, db, account: state.Account) -> bytes:
        lines = ["\t".join(REPORT_COLUMNS)]
        for row in db.execute("SELECT * FROM listing WHERE account_id = ? ORDER BY id", (account.id,)):
            afn = bool(row["fulfilled_by_channel"])
            # Amazon leaves the quantity of an FBA listing blank: Amazon holds that stock.
            active = row["live"] and (afn or row["quantity"] > 0)
            lines.append("\t".join([
                row["title"].replace("\t", " "), state.amazon_listing_id(row["id"]), row["sku"], row["price"],
                "" if afn else str(row["quantity"]), row["created_at"], state.asin_for(row["id"]),
                "AMAZON_EU" if afn else "DEFAULT", "Active" if active else "Inactive"]))
        return ("\n".join(lines) + "\n").encode()

    # Despatch

    def confirm_shipment(self, call: Call, order_id: str) -> Response:
        body = self.json_body(call)
        self.require_marketplace(call, [body.get("marketplaceId")])
        package = body.get("packageDetail")
        if not isinstance(package, dict) or not package.get("trackingNumber") or not isinstance(
                package.get("orderItems"), list):
            raise self.fail(400, "InvalidInput", "packageDetail needs trackingNumber and orderItems.")
        with call.write() as db:
            order = state.order_get(db, call.account, order_id)
            if order is None:
                raise self.fail(404, "NotFound", f"Order {order_id} was not found.")
            if order["status"] != "UNSHIPPED":
                raise self.fail(400, "InvalidInput", f"Order {order_id} is {order['status']}, not UNSHIPPED.")
            shipped = []
            for line in package["orderItems"]:
                item = db.execute("SELECT * FROM order_item WHERE id = ? AND order_pk = ?",
                                  (item_pk_from(line.get("orderItemId")), order["id"])).fetchone()
                if item is None:
                    raise self.fail(400, "InvalidInput", f"orderItemId {line.get('orderItemId')} is not on the order.")
                shipped.append({"line_id": order_item_id(item["id"]), "sku": item["sku"],
                                "quantity": int(line.get("quantity", item["quantity"]))})
            state.order_status_set(db, order, "SHIPPED")
            carrier = package.get("carrierName") if package.get("carrierCode") in (None, "", "Other") else package[
                "carrierCode"]
            state.event_record(db, call.account, "shipment", {
                "order_id": order_id, "tracking_number": package["trackingNumber"], "carrier": carrier or "",
                "shipping_method": package.get("shippingMethod", ""), "items": shipped,
                "ship_date": package.get("shipDate")})
        return Response.empty(204)

    # FBA inventory

    def inventory_summaries(self, call: Call) -> Response:
        request = call.request
        marketplace = call.account.marketplace_id
        self.require_marketplace(call, request.arg("marketplaceIds"))
        if request.arg("granularityType") != "Marketplace" or request.arg("granularityId") != marketplace:
            raise self.fail(400, "InvalidInput",
                            f"granularityType must be Marketplace and granularityId {marketplace}.")
        token = request.arg("nextToken")
        start = 0
        if token:
            data = decode_token(token)
            if data is None or not isinstance(data.get("start"), int):
                raise self.fail(400, "InvalidInput", "Invalid nextToken.")
            if time.time() - float(data.get("issued", 0)) > SUMMARIES_TOKEN_LIFETIME:
                raise self.fail(400, "InvalidInput", "The nextToken has expired: tokens live 30 seconds.")
            start = data["start"]
        skus = set(filter(None, (request.arg("sellerSkus") or "").split(",")))
        with call.read() as db:
            stock = [row for row in state.fba_inventory(db, call.account) if not skus or row["sku"] in skus]
        page = stock[start:start + SUMMARIES_PAGE]
        details = (request.arg("details") or "").lower() == "true"
        summaries = [self.render_summary(row, details) for row in page]
        self.spoil_summaries(call, summaries)
        body: dict[str, Any] = {"payload": {"granularity": {"granularityType": "Marketplace",
                                                            "granularityId": marketplace},
                                            "inventorySummaries": summaries}}
        if start + SUMMARIES_PAGE < len(stock):
            body["pagination"] = {"nextToken": encode_token({"start": start + SUMMARIES_PAGE, "issued": time.time()})}
        return Response.json(body)

    def render_summary(self, row: dict[str, Any], details: bool) -> dict[str, Any]:
        summary: dict[str, Any] = {
            "asin": state.asin_for(row["id"]), "fnSku": f"X00{row['id']:07d}", "sellerSku": row["sku"],
            "condition": "NewItem", "lastUpdatedTime": state.now_iso(), "productName": row["title"],
            "totalQuantity": row["fulfillable"] + row["reserved"],
        }
        if details:
            summary["inventoryDetails"] = {
                "fulfillableQuantity": row["fulfillable"], "inboundWorkingQuantity": 0, "inboundShippedQuantity": 0,
                "inboundReceivingQuantity": 0,
                "reservedQuantity": {"totalReservedQuantity": row["reserved"],
                                     "pendingCustomerOrderQuantity": row["reserved"],
                                     "pendingTransshipmentQuantity": 0, "fcProcessingQuantity": 0},
                "researchingQuantity": {"totalResearchingQuantity": 0, "researchingQuantityBreakdown": []},
                "unfulfillableQuantity": {"totalUnfulfillableQuantity": 0},
            }
        return summary

    def spoil_summaries(self, call: Call, summaries: list[dict[str, Any]]) -> None:
        spoiled = call.take_malformed(summaries)
        if spoiled is None:
            return
        summary = summaries[spoiled["index"]]
        if spoiled["corrupt"] == "id" or "inventoryDetails" not in summary:
            summary["sellerSku"] = ""
        else:
            summary["inventoryDetails"]["fulfillableQuantity"] = "lots"

    # Multi-channel fulfilment (Fulfillment Outbound 2020-07-01)

    def create_fulfillment_order(self, call: Call) -> Response:
        body = self.json_body(call)
        account = call.account
        self.validate_fulfillment_order(call, body)
        with call.write() as db:
            if state.fulfillment_order_get(db, account, body["sellerFulfillmentOrderId"]) is not None:
                raise self.fail(400, "InvalidInput", f"A fulfillment order with sellerFulfillmentOrderId "
                                                     f"{body['sellerFulfillmentOrderId']} already exists.")
            fulfillable = {row["sku"]: row["fulfillable"] for row in state.fba_inventory(db, account)}
            wanted: dict[str, int] = {}
            for item in body["items"]:
                wanted[item["sellerSku"]] = wanted.get(item["sellerSku"], 0) + item["quantity"]
            for sku, quantity in wanted.items():
                if sku not in fulfillable:
                    raise self.fail(400, "InvalidInput", f"sellerSku {sku} is not in your FBA inventory.")
                if fulfillable[sku] < quantity:
                    raise self.fail(400, "InvalidInput", f"sellerSku {sku}: {fulfillable[sku]} fulfillable, "
                                                         f"{quantity} requested.")
            state.fulfillment_order_create(db, account, body)
        return Response.json({})

    def validate_fulfillment_order(self, call: Call, body: dict[str, Any]) -> None:
        marketplace = call.account.marketplace_id
        if body.get("marketplaceId") not in (None, marketplace):
            raise self.fail(400, "InvalidInput", f"marketplaceId must be {marketplace}.")
        order_id = body.get("sellerFulfillmentOrderId")
        if not isinstance(order_id, str) or not 1 <= len(order_id) <= 40:
            raise self.fail(400, "InvalidInput", "sellerFulfillmentOrderId is required (at most 40 characters).")
        for key, limit in (("displayableOrderId", 40), ("displayableOrderComment", 750)):
            if not isinstance(body.get(key), str) or not 1 <= len(body[key]) <= limit:
                raise self.fail(400, "InvalidInput", f"{key} is required (at most {limit} characters).")
        try:
            parse_time(str(body.get("displayableOrderDate") or ""))
        except ValueError:
            raise self.fail(400, "InvalidInput", "displayableOrderDate must be ISO 8601.") from None
        if body.get("shippingSpeedCategory") not in SHIPPING_SPEEDS:
            raise self.fail(400, "InvalidInput", f"shippingSpeedCategory must be one of {', '.join(SHIPPING_SPEEDS)}.")
        address = body.get("destinationAddress")
        missing = [key for key in ("name", "addressLine1", "countryCode")
                   if not isinstance(address, dict) or not address.get(key)]
        if missing:
            raise self.fail(400, "InvalidInput", f"destinationAddress needs {', '.join(missing)}.")
        items = body.get("items")
        if not isinstance(items, list) or not items:
            raise self.fail(400, "InvalidInput", "items must be a non-empty list.")
        currency = MARKETPLACES.get(marketplace, ("", "", "GBP"))[2]
        for item in items:
            quantity = item.get("quantity") if isinstance(item, dict) else None
            if (not isinstance(item, dict) or not item.get("sellerSku") or not item.get("sellerFulfillmentOrderItemId")
                    or isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 1):
                raise self.fail(400, "InvalidInput", "Each item needs sellerSku, sellerFulfillmentOrderItemId and a "
                                                     "positive quantity.")
            declared = item.get("perUnitDeclaredValue")
            declared_currency = declared.get("currencyCode") if isinstance(declared, dict) else None
            if declared is not None and declared_currency != currency:
                raise self.fail(400, "InvalidInput", f"perUnitDeclaredValue for {item['sellerSku']} must be in "
                                                     f"{currency}, the currency of marketplace {marketplace}.")

    def get_fulfillment_order(self, call: Call, order_id: str) -> Response:
        with call.write() as db:
            order = state.fulfillment_order_get(db, call.account, order_id)
            if order is None:
                raise self.fail(404, "NotFound", f"Fulfillment order {order_id} was not found.")
            # Amazon works on the order between polls: each poll finds it one step further on.
            order = state.fulfillment_order_advance(db, order)
        return Response.json({"payload": self.render_fulfillment_order(call, order)})

    def render_fulfillment_order(self, call: Call, order) -> dict[str, Any]:
        request = json.loads(order["input_document"])
        items = [{"sellerSku": item["sellerSku"], "sellerFulfillmentOrderItemId": item["sellerFulfillmentOrderItemId"],
                  "quantity": item["quantity"], "cancelledQuantity": 0, "unfulfillableQuantity": 0,
                  **({"perUnitDeclaredValue": item["perUnitDeclaredValue"]} if item.get("perUnitDeclaredValue")
                     else {})}
                 for item in request["items"]]
        shipments = []
        if order["status"] == "COMPLETE":
            shipment = json.loads(order["result_document"])
            shipments.append({
                "amazonShipmentId": shipment["shipment_id"], "fulfillmentCenterId": "LTN1",
                "fulfillmentShipmentStatus": "SHIPPED", "shippingDate": shipment["shipped_at"],
                "fulfillmentShipmentItem": [{"sellerSku": item["sellerSku"], "quantity": item["quantity"],
                                             "sellerFulfillmentOrderItemId": item["sellerFulfillmentOrderItemId"],
                                             "packageNumber": 1} for item in request["items"]],
                "fulfillmentShipmentPackage": [{"packageNumber": 1, "carrierCode": shipment["carrier"],
                                                "trackingNumber": shipment["tracking_number"]}],
            })
        return {
            "fulfillmentOrder": {
                "sellerFulfillmentOrderId": request["sellerFulfillmentOrderId"],
                "marketplaceId": call.account.marketplace_id,
                "displayableOrderId": request["displayableOrderId"],
                "displayableOrderDate": request["displayableOrderDate"],
                "displayableOrderComment": request["displayableOrderComment"],
                "shippingSpeedCategory": request["shippingSpeedCategory"],
                "destinationAddress": request["destinationAddress"],
                "fulfillmentAction": request.get("fulfillmentAction", "Ship"),
                "receivedDate": request["receivedDate"],
                "fulfillmentOrderStatus": FULFILLMENT_STATUS_NAMES[order["status"]],
                "statusUpdatedDate": state.now_iso(),
            },
            "fulfillmentOrderItems": items,
            "fulfillmentShipments": shipments,
            "returnItems": [],
            "returnAuthorizations": [],
        }


def issue(code: str, message: str) -> dict[str, str]:
    return {"code": code, "message": message, "severity": "ERROR"}
