"""Amazon SP-API over HTTP: Login with Amazon tokens, one bucket per operation, feeds, reports and documents.

Every call is named by its operation id in the contract (`contract/*.json`), which gives its method, path and
default usage plan. A response's `x-amzn-RateLimit-Limit` is the seller's actual rate for that operation: the
bucket follows it from the next call on, so a seller with raised quotas is not held to the defaults.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote

import requests

from channels.connectors.base import (
    ChannelPayloadError,
    ChannelTransientError,
    ConnectorConfig,
    CredentialStore,
    RateLimit,
    RateLimiter,
)
from channels.connectors.contracts import contract_load
from channels.connectors.http import HttpClient
from channels.connectors.oauth import OAuthClient

CONTRACT = contract_load("amazon")
# Each operation's default usage plan, from its model.
RATE_LIMITS: Mapping[str, RateLimit] = {
    operation_id: RateLimit(float(operation.spec["usage_plan"]["rate"]), int(operation.spec["usage_plan"]["burst"]))
    for operation_id, operation in CONTRACT.operations.items()
    if "usage_plan" in operation.spec
}
RATE_LIMIT_HEADER = "x-amzn-RateLimit-Limit"
POLL_FIRST_DELAY = 2.0
POLL_MAX_DELAY = 30.0
POLL_GIVE_UP_AFTER = 300.0
FINISHED = ("DONE", "FATAL", "CANCELLED")


class AmazonClient(OAuthClient):
    service = "Amazon"
    token_path = CONTRACT.operation("token").path

    def __init__(self, config: ConnectorConfig, credentials: CredentialStore, limiter: RateLimiter, *,
                 sleep: Callable[[float], None]) -> None:
        super().__init__(config, credentials, limiter, sleep=sleep)
        # This connection's buckets: the published plans until Amazon announces the seller's own.
        self.limits: dict[str, RateLimit] = dict(RATE_LIMITS)
        self.http = HttpClient.for_channel(
            config, service="Amazon", limiter=limiter, limits=self.limits, secrets=lambda: self.tokens.known_secrets,
            auth=self.auth_headers, on_response=self._follow_rate_limit, sleep=sleep,
        )

    def _follow_rate_limit(self, response: requests.Response, operation: str) -> None:
        published = self.limits.get(operation)
        try:
            rate = float(response.headers.get(RATE_LIMIT_HEADER, ""))
        except ValueError:
            return
        if published is not None and math.isfinite(rate) and rate > 0 and rate != published.rate:
            self.limits[operation] = RateLimit(rate, published.burst)

    # Login with Amazon: the OAuthClient base

    def access_headers(self, token: str) -> dict[str, str]:
        return {"x-amz-access-token": token}

    # SP-API operations

    def path(self, operation_id: str, **params: str) -> str:
        return CONTRACT.operation(operation_id).path.format(**{k: quote(v, safe="") for k, v in params.items()})

    def send(self, operation_id: str, *, path_params: Mapping[str, str] | None = None, **kwargs: Any
             ) -> requests.Response:
        operation = CONTRACT.operation(operation_id)
        return self.http.request(operation.method, self.path(operation_id, **(path_params or {})),
                                 operation=operation_id, **kwargs)

    def call(self, operation_id: str, *, path_params: Mapping[str, str] | None = None, **kwargs: Any) -> Any:
        return self.http.json(self.send(operation_id, path_params=path_params, **kwargs), what=operation_id)

    def call_object(self, operation_id: str, **kwargs: Any) -> dict[str, Any]:
        body = self.call(operation_id, **kwargs)
        if not isinstance(body, dict):
            raise ChannelPayloadError(f"Amazon {operation_id}: unexpected answer")
        return body

    def poll(self, operation_id: str, *, what: str, **path_params: str) -> dict[str, Any]:
        """Poll a feed or report with growing pauses until Amazon has finished with it."""
        delay, waited = POLL_FIRST_DELAY, 0.0
        while True:
            body = self.call_object(operation_id, path_params=path_params)
            status = body.get("processingStatus")
            if status in FINISHED:
                return body
            if waited >= POLL_GIVE_UP_AFTER:
                raise ChannelTransientError(f"Amazon {what}: still {status} after {waited:.0f} s")
            self.sleep(delay)
            waited += delay
            delay = min(delay * 2, POLL_MAX_DELAY)

    def document(self, operation_id: str, download_operation: str, **path_params: str) -> str:
        """A feed result or report document: its presigned url from Amazon, then its content (no SP-API token)."""
        info = self.call_object(operation_id, path_params=path_params)
        if not info.get("url"):
            raise ChannelPayloadError(f"Amazon {operation_id}: no download url")
        content = self.http.download(info["url"], operation=download_operation,
                                     gunzip=(info.get("compressionAlgorithm") or "").upper() == "GZIP")
        try:
            return content.decode("utf-8")
        except UnicodeDecodeError:
            # Amazon's European reports come in Windows-1252 for some marketplaces.
            return content.decode("cp1252", errors="replace")

    # Feeds and reports

    def submit_feed(self, feed_type: str, content: bytes, content_type: str) -> dict[str, Any]:
        """Upload a feed document, submit it and wait for Amazon to finish processing it."""
        document = self.call_object("createFeedDocument", json={"contentType": content_type})
        try:
            document_id, url = document["feedDocumentId"], document["url"]
        except KeyError as exc:
            raise ChannelPayloadError("Amazon createFeedDocument: no document id or url") from exc
        # The upload URL is presigned (S3) for this content type: it must not get the access token.
        self.http.upload(url, operation="uploadFeedDocument", data=content, content_type=content_type)
        created = self.call_object("createFeed", json={
            "feedType": feed_type, "marketplaceIds": [self.config.marketplace_id], "inputFeedDocumentId": document_id,
        })
        if not created.get("feedId"):
            raise ChannelPayloadError("Amazon createFeed: no feed id")
        return self.poll("getFeed", what="feed", feedId=str(created["feedId"]))

    def feed_result(self, feed: Mapping[str, Any]) -> str:
        document_id = feed.get("resultFeedDocumentId")
        if not document_id:
            raise ChannelPayloadError(f"Amazon feed {feed.get('feedId')}: no result document")
        return self.document("getFeedDocument", "downloadFeedDocument", feedDocumentId=str(document_id))

    def report(self, report_type: str) -> dict[str, Any]:
        """Request a report and wait for Amazon to finish it."""
        created = self.call_object("createReport", json={
            "reportType": report_type, "marketplaceIds": [self.config.marketplace_id],
        })
        if not created.get("reportId"):
            raise ChannelPayloadError("Amazon createReport: no report id")
        return self.poll("getReport", what="report", reportId=str(created["reportId"]))

    def report_document(self, report: Mapping[str, Any]) -> str:
        return self.document("getReportDocument", "downloadReportDocument",
                             reportDocumentId=str(report["reportDocumentId"]))
