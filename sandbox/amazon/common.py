"""What every Amazon operation shares: SP-API's error shape, its headers, the access token, the contract, and the
feed and report documents behind their presigned urls."""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from sandbox.api import Call, ChannelApi
from sandbox.ratelimit import Decision, Limit
from sandbox.state.accounts import access_token_state
from sandbox.state.common import UK_MARKETPLACE
from sandbox.web import Request, Response

ORDER_ITEM_ID_BASE = 10**13
# The marketplaces the sandbox knows: name, country, currency, language, domain.
MARKETPLACES = {
    "A1F83G8C2ARO7P": ("Amazon.co.uk", "GB", "GBP", "en_GB", "www.amazon.co.uk"),
    "A13V1IB3VIYZZH": ("Amazon.fr", "FR", "EUR", "fr_FR", "www.amazon.fr"),
    "A1PA6795UKMFR9": ("Amazon.de", "DE", "EUR", "de_DE", "www.amazon.de"),
}
# The presigned document urls stand for S3, which answers in XML and takes no SP-API token.
DOCUMENT_PATH = "/_documents/"
# How each family's answers name a document (createFeedDocument, getFeedDocument, getReportDocument).
DOCUMENT_ID_FIELDS = {"feeds": "feedDocumentId", "reports": "reportDocumentId"}


def marketplace(marketplace_id: str) -> tuple[str, str, str, str, str]:
    return MARKETPLACES.get(marketplace_id, MARKETPLACES[UK_MARKETPLACE])


def order_item_id(item_pk: int) -> str:
    return str(ORDER_ITEM_ID_BASE + item_pk)


def item_pk_from(order_item_code: Any) -> int | None:
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


def s3_error(status: int, code: str, message: str) -> Response:
    body = f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{message}</Message></Error>'
    return Response.raw(body.encode(), "application/xml", status)


class AmazonBase(ChannelApi):
    kind = "amazon"

    def __init__(self) -> None:
        # Each operation's default usage plan, from the contract.
        self.published_limits = {
            operation_id: Limit(float(operation.spec["usage_plan"]["rate"]), int(operation.spec["usage_plan"]["burst"]))
            for operation_id, operation in self.contract.operations.items() if "usage_plan" in operation.spec
        }
        super().__init__()

    def error(self, status: int, code: str, message: str) -> Response:
        return Response.json({"errors": [{"code": code, "message": message, "details": ""}]}, status)

    def refuse_invalid(self, call: Call, problems: list[str]) -> Response:
        message = "; ".join(problems)
        if call.operation == "token":
            return Response.json({"error": "invalid_request", "error_description": message}, 400)
        if call.operation == "uploadFeedDocument":
            # The url is signed for the document's content type: S3 refuses any other.
            return s3_error(403, "SignatureDoesNotMatch", message)
        return self.error(400, "InvalidInput", message)

    def request_parts(self, request: Request) -> dict[str, Any]:
        parts = super().request_parts(request)
        if DOCUMENT_PATH in request.path:
            # S3 stores whatever bytes it is given.
            parts.pop("body", None)
            if request.body:
                parts["body"] = request.body
        return parts

    def response_document(self, response: Response) -> Any:
        content_type = dict((k.lower(), v) for k, v in response.headers).get("content-type", "")
        if response.body and "json" not in content_type:
            return response.body.decode("utf-8", "replace")
        return super().response_document(response)

    def rate_headers(self, decision: Decision | None) -> list[tuple[str, str]]:
        headers = [("x-amzn-RequestId", str(uuid.uuid4()))]
        if decision is not None:
            # The account's configured rate: what a seller's usage plan gives, which a client may follow.
            headers.append(("x-amzn-RateLimit-Limit", f"{decision.limit.rate:g}"))
        return headers

    def invalid_credentials(self, call: Call) -> Response:
        return self.unauthorized()

    def unauthorized(self) -> Response:
        return self.error(403, "Unauthorized", "Access to requested resource is denied.")

    def authenticate(self, call: Call) -> None:
        token = call.request.header("x-amz-access-token")
        with call.read() as db:
            if access_token_state(db, call.account, token) != "valid":
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

    # Feed and report documents

    def document_answer(self, call: Call, family: str, document_id: str) -> dict[str, str]:
        """A document's id and presigned url, as the family's (feeds, reports) operations give them."""
        return {DOCUMENT_ID_FIELDS[family]: document_id, "url": f"{call.base_url}{DOCUMENT_PATH}{family}/{document_id}"}

    def get_document(self, call: Call, family: str, document_id: str) -> Response:
        with call.read() as db:
            found = db.execute("SELECT 1 FROM document WHERE id = ? AND account_id = ?",
                               (document_id, call.account.id)).fetchone()
        if not found:
            raise self.fail(404, "NotFound", "The requested document was not found.")
        return Response.json(self.document_answer(call, family, document_id))

    def download_document(self, call: Call, document_id: str,
                          spoil: Callable[[Call, bytes], bytes] | None = None) -> Response:
        """What S3 answers a GET of a presigned url with: the document (through `spoil`, for malformed faults)."""
        with call.read() as db:
            row = db.execute("SELECT content_type, content FROM document WHERE id = ? AND account_id = ?",
                             (document_id, call.account.id)).fetchone()
        if row is None or row["content"] is None:
            return s3_error(404, "NoSuchKey", "The specified key does not exist.")
        content = bytes(row["content"])
        return Response.raw(spoil(call, content) if spoil else content, row["content_type"])

    def store_document(self, db, call: Call, content: bytes, content_type: str) -> str:
        document_id = f"amzn1.tortuga.4.eu.{uuid.uuid4()}"
        db.execute("INSERT INTO document (id, account_id, content_type, content) VALUES (?, ?, ?, ?)",
                   (document_id, call.account.id, content_type, content))
        return document_id
