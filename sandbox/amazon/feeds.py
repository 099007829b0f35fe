"""Feeds 2021-06-30, the JSON_LISTINGS_FEED and the order acknowledgement feed: contract/feeds.json.

Feed and result documents live behind presigned urls (S3 in real life): PUT to upload, GET to download, no
SP-API token. A feed is processed on its second poll, so a client has to poll at least once more.
"""

from __future__ import annotations

import functools
import json
import secrets
from typing import Any

import jsonschema

from sandbox.amazon.common import AmazonBase, item_pk_from, order_item_id, s3_error
from sandbox.api import Call
from sandbox.state.orders import order_get, order_status_set
from sandbox.state.received import event_record
from sandbox.store import now_iso
from sandbox.web import Response

FEED_TYPES = ("JSON_LISTINGS_FEED", "POST_FLAT_FILE_ORDER_ACKNOWLEDGEMENT_DATA")


def feed_issue(code: str, message: str, *, message_id: int | None = None, sku: str = "") -> dict[str, Any]:
    """A processing-report issue: without messageId it concerns the whole feed."""
    found: dict[str, Any] = {"code": code, "severity": "ERROR", "message": message}
    if message_id is not None:
        found["messageId"] = message_id
    if sku:
        found["sku"] = sku
    return found


class FeedsApi(AmazonBase):
    @functools.cached_property
    def listings_feed_validator(self) -> jsonschema.Draft202012Validator:
        defs = self.contract.files["feeds"]["$defs"]
        return jsonschema.Draft202012Validator({"$defs": defs, "$ref": "#/$defs/ListingsFeed"})

    def create_feed_document(self, call: Call) -> Response:
        content_type = call.request.json()["contentType"]
        document_id = f"amzn1.tortuga.4.eu.{secrets.token_hex(16)}"
        with call.write() as db:
            db.execute("INSERT INTO document (id, account_id, content_type, content) VALUES (?, ?, ?, NULL)",
                       (document_id, call.account.id, content_type))
        return Response.json(self.document_answer(call, "feeds", document_id), 201)

    def get_feed_document(self, call: Call, document_id: str) -> Response:
        return self.get_document(call, "feeds", document_id)

    def upload_document(self, call: Call, document_id: str) -> Response:
        with call.write() as db:
            row = db.execute("SELECT content_type FROM document WHERE id = ? AND account_id = ?",
                             (document_id, call.account.id)).fetchone()
            if row is None:
                return s3_error(404, "NoSuchKey", "The specified key does not exist.")
            if call.request.header("Content-Type") != row["content_type"]:
                return s3_error(403, "SignatureDoesNotMatch",
                                f"The url is signed for Content-Type {row['content_type']}.")
            db.execute("UPDATE document SET content = ? WHERE id = ?", (call.request.body, document_id))
        return Response.empty(200)

    def download_feed_document(self, call: Call, document_id: str) -> Response:
        return self.download_document(call, document_id)

    def create_feed(self, call: Call) -> Response:
        body = call.request.json()
        self.require_marketplace(call, body["marketplaceIds"])
        if body["feedType"] not in FEED_TYPES:
            raise self.fail(400, "InvalidInput", f"feedType must be one of {', '.join(FEED_TYPES)}.")
        feed_id = str(50000000000 + secrets.randbelow(10**10))
        with call.write() as db:
            if not db.execute("SELECT 1 FROM document WHERE id = ? AND account_id = ?",
                              (body["inputFeedDocumentId"], call.account.id)).fetchone():
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
            if status == "IN_QUEUE":
                status = "IN_PROGRESS"
            elif status == "IN_PROGRESS":
                status, result = self.process_feed(db, call, job)
            db.execute("UPDATE job SET status = ?, polls = polls + 1, result_document = ? WHERE id = ?",
                       (status, result, feed_id))
        feed = {"feedId": feed_id, "feedType": job["type"], "marketplaceIds": [call.account.marketplace_id],
                "createdTime": now_iso(), "processingStatus": status}
        if result:
            feed["resultFeedDocumentId"] = result
        return Response.json(feed)

    def process_feed(self, db, call: Call, job) -> tuple[str, str]:
        row = db.execute("SELECT content FROM document WHERE id = ?", (job["input_document"],)).fetchone()
        content = bytes(row["content"]) if row and row["content"] is not None else b""
        if job["type"] == "JSON_LISTINGS_FEED":
            status, report = self.process_listings_feed(db, call, job["id"], content)
            return status, self.store_document(db, call, json.dumps(report).encode(), "application/json")
        status, text = self.process_acknowledgements(db, call, content)
        return status, self.store_document(db, call, text.encode(), "text/plain; charset=UTF-8")

    def process_listings_feed(self, db, call: Call, feed_id: str, content: bytes) -> tuple[str, dict]:
        """Apply each valid PATCH message; an invalid message is an issue with its messageId, and a feed whose
        header or structure is wrong has issues without one and applies nothing."""
        header = {"sellerId": call.account.seller_id, "version": "2.0", "feedId": feed_id}
        try:
            feed = json.loads(content)
        except ValueError:
            return "FATAL", self.processing_report(header, [feed_issue("100001", "The feed document is not JSON.")], 0)
        feed_issues, invalid_messages = [], {}
        for error in self.listings_feed_validator.iter_errors(feed):
            path = list(error.absolute_path)
            if len(path) >= 2 and path[0] == "messages" and isinstance(path[1], int):
                invalid_messages.setdefault(path[1], error.message)
            else:
                feed_issues.append(feed_issue("100002", f"{'.'.join(map(str, path)) or 'feed'}: {error.message}"))
        if not feed_issues and feed["header"]["sellerId"] != call.account.seller_id:
            feed_issues.append(feed_issue("100003", f"header.sellerId must be {call.account.seller_id}."))
        if feed_issues:
            return "DONE", self.processing_report(header, feed_issues, 0)
        issues, invalid = [], 0
        for index, message in enumerate(feed["messages"]):
            message_id = message.get("messageId") if isinstance(message, dict) else None
            if not isinstance(message_id, int) or isinstance(message_id, bool) or message_id < 1:
                message_id = None
            sku = message.get("sku") if isinstance(message, dict) and isinstance(message.get("sku"), str) else ""
            if index in invalid_messages:
                found = [{"code": "100004", "message": invalid_messages[index]}]
            elif message["operationType"] != "PATCH":
                found = [{"code": "100005", "message": "The sandbox applies PATCH messages only."}]
            else:
                found = self.apply_patches(db, call.account, sku, message["patches"])
            if found:
                invalid += 1
                issues += [feed_issue(problem["code"], problem["message"], message_id=message_id, sku=sku)
                           for problem in found]
        return "DONE", self.processing_report(header, issues, len(feed["messages"]), invalid=invalid)

    def processing_report(self, header: dict, issues: list[dict], processed: int, *, invalid: int = 0) -> dict:
        return {"header": header, "issues": issues, "summary": {
            "errors": len(issues), "warnings": 0, "messagesProcessed": processed,
            "messagesAccepted": processed - invalid, "messagesInvalid": invalid}}

    def process_acknowledgements(self, db, call: Call, content: bytes) -> tuple[str, str]:
        """Cancel the orders named in an order acknowledgement flat file (lines with a reason code)."""
        lines = content.decode("utf-8", "replace").splitlines()
        columns = lines[0].split("\t") if lines else []
        if "order-id" not in columns:
            return "FATAL", "Feed Processing Summary:\n\tThe file has no order-id header line.\n"
        errors, cancelled = [], {}
        records = [dict(zip(columns, line.split("\t"), strict=False)) for line in lines[1:] if line.strip()]
        for number, record in enumerate(records, start=1):
            order = order_get(db, call.account, record.get("order-id", ""))
            reason = record.get("cancellation-reason-code", "")
            if order is None:
                errors.append((number, record.get("order-id", ""), "18028", "The order id was not found."))
                continue
            if not reason:
                continue
            if order["status"] in ("SHIPPED", "PARTIALLY_SHIPPED"):
                errors.append((number, order["order_id"], "18029", "A shipped order cannot be cancelled."))
                continue
            item = db.execute("SELECT * FROM order_item WHERE id = ? AND order_pk = ?",
                              (item_pk_from(record.get("amazon-order-item-code", "")), order["id"])).fetchone()
            if item is None:
                errors.append((number, order["order_id"], "18030", "The order item code was not found."))
                continue
            entry = cancelled.setdefault(order["order_id"], {"order": order, "reason": reason, "items": []})
            entry["items"].append({"line_id": order_item_id(item["id"]), "sku": item["sku"],
                                   "quantity": item["quantity"]})
        for order_id, entry in cancelled.items():
            if entry["order"]["status"] != "CANCELLED":
                order_status_set(db, entry["order"], "CANCELLED")
            event_record(db, call.account, "cancellation",
                               {"order_id": order_id, "reason": entry["reason"], "items": entry["items"]})
        report = ["Feed Processing Summary:", f"\tNumber of records processed\t\t{len(records)}",
                  f"\tNumber of records successful\t\t{len(records) - len(errors)}", "",
                  "original-record-number\torder-id\terror-code\terror-type\terror-message"]
        report += [f"{number}\t{order_id}\t{code}\tError\t{message}" for number, order_id, code, message in errors]
        return "DONE", "\n".join(report) + "\n"
