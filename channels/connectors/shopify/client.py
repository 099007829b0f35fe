"""Shopify's GraphQL Admin API 2026-04 over HTTP: the client credentials token, one endpoint, a bucket of points.

Authentication follows what Shopify documents for an app a merchant makes in 2026 (contract/admin_api.json, notes):
the app, made in the Dev Dashboard and installed on the store, asks POST /admin/oauth/access_token with
grant_type=client_credentials, its client id and its client secret, and gets a token of 24 hours with no refresh
token; it asks again when the token is near its end or refused. The token travels in X-Shopify-Access-Token.

Shopify's rate limit counts points, not calls: every answer's extensions.cost.throttleStatus says how many the
store's bucket holds and how fast it refills. The client remembers that and what each operation cost last, waits
before a call the bucket cannot pay for yet, and after a THROTTLED answer holds every worker of the channel off
(through the shared limiter) for as long as the bucket needs to refill.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from channels.connectors.base import (
    ChannelPayloadError,
    ChannelRateLimited,
    ChannelRejected,
    ConnectorConfig,
    CredentialStore,
    RateLimit,
    RateLimiter,
)
from channels.connectors.http import DEFAULT_MAX_WAIT, HttpClient
from channels.connectors.oauth import AccessTokens, TokenGrant
from channels.connectors.shopify.schema import GRAPHQL_PATH, document

TOKEN_PATH = "/admin/oauth/access_token"
# Calls, not points: a guard so a loop of cheap calls cannot hammer the store; the points are watched below.
RATE_LIMITS: Mapping[str, RateLimit] = {"graphql": RateLimit(20, 40)}
THROTTLED = "THROTTLED"


@dataclass
class Bucket:
    """The store's bucket of points as the last answer described it."""

    maximum: float
    available: float
    restore_rate: float
    at: float

    def now(self, clock: float) -> float:
        return min(self.maximum, self.available + max(0.0, clock - self.at) * self.restore_rate)


def throttle_status(extensions: object) -> Bucket | None:
    cost = extensions.get("cost") if isinstance(extensions, Mapping) else None
    status = cost.get("throttleStatus") if isinstance(cost, Mapping) else None
    try:
        return Bucket(float(status["maximumAvailable"]), float(status["currentlyAvailable"]),
                      float(status["restoreRate"]), time.monotonic())
    except (KeyError, TypeError, ValueError):
        return None


def requested_cost(extensions: object) -> float | None:
    cost = extensions.get("cost") if isinstance(extensions, Mapping) else None
    value = cost.get("requestedQueryCost") if isinstance(cost, Mapping) else None
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


class ShopifyClient:
    service = "Shopify"

    def __init__(self, config: ConnectorConfig, credentials: CredentialStore, limiter: RateLimiter, *,
                 sleep: Callable[[float], None], max_wait: float = DEFAULT_MAX_WAIT) -> None:
        self.config = config
        self.limiter = limiter
        self.sleep = sleep
        self.max_wait = max_wait
        self.tokens = AccessTokens(credentials, self._client_credentials, single_use_refresh=False,
                                   needs_refresh_token=False)
        self.http = HttpClient.for_channel(
            config, service="Shopify", limiter=limiter, limits=RATE_LIMITS, shared_bucket="graphql",
            secrets=lambda: self.tokens.known_secrets, auth=self.auth_headers, sleep=sleep,
        )
        self.bucket: Bucket | None = None
        self.costs: dict[str, float] = {}

    # The access token (contract/admin_api.json `token`)

    def auth_headers(self, refresh: bool) -> dict[str, str]:
        if refresh:
            self.tokens.renew(stale=self.tokens.held)
        return {"X-Shopify-Access-Token": self.tokens.current()}

    def _client_credentials(self, credentials: dict[str, str]) -> TokenGrant:
        form = {"grant_type": "client_credentials", "client_id": credentials.get("client_id", ""),
                "client_secret": credentials.get("client_secret", "")}
        response = self.http.request("POST", TOKEN_PATH, operation="token", authenticated=False, data=form)
        body = self.http.json(response, what="token")
        try:
            return TokenGrant(str(body["access_token"]), int(body["expires_in"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise ChannelPayloadError("Shopify token: the answer has no access token") from exc

    def renew_token(self) -> None:
        self.tokens.renew(stale=self.tokens.held, force=True)

    # The GraphQL endpoint (contract/admin_api.json `graphql`, documents in contract/operations.graphql)

    def _wait_for_points(self, name: str) -> None:
        needed = self.costs.get(name)
        if self.bucket is None or needed is None:
            return
        available = self.bucket.now(time.monotonic())
        if available >= needed or self.bucket.restore_rate <= 0:
            return
        wait = (needed - available) / self.bucket.restore_rate
        if wait > self.max_wait:
            raise ChannelRateLimited(f"Shopify {name}: the store's bucket refills in {wait:.0f} s", retry_after=wait)
        self.sleep(wait)

    def query(self, name: str, variables: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The `data` of one operation of operations.graphql. Raises ChannelRateLimited when Shopify throttles
        longer than a moment, ChannelRejected with Shopify's messages for any other top-level error."""
        body = {"query": document(name), "variables": dict(variables or {}), "operationName": name}
        for attempt in range(2):
            self._wait_for_points(name)
            answer = self.http.call_json("POST", GRAPHQL_PATH, operation="graphql", json=body)
            if not isinstance(answer, dict):
                raise ChannelPayloadError(f"Shopify {name}: the answer is not a JSON object")
            extensions = answer.get("extensions")
            self.bucket = throttle_status(extensions) or self.bucket
            cost = requested_cost(extensions)
            if cost is not None:
                self.costs[name] = cost
            errors = [e for e in answer.get("errors") or [] if isinstance(e, dict)]
            if any((e.get("extensions") or {}).get("code") == THROTTLED for e in errors):
                wait = self._refill_seconds(name)
                key, limit = self.http.bucket("graphql")
                if limit is not None:
                    self.limiter.hold_off(key, limit, seconds=wait)
                # Shopify says how fast the bucket refills: a wait the limiter would sleep through is slept here too.
                if attempt == 0 and wait <= self.max_wait:
                    self.sleep(wait)
                    continue
                raise ChannelRateLimited(f"Shopify {name}: throttled, retry in {wait:.0f} s", retry_after=wait)
            if errors:
                reasons = "; ".join(str(e.get("message", "")) for e in errors)[:300]
                raise ChannelRejected(f"Shopify {name}: {self.http.redact(reasons)}")
            data = answer.get("data")
            if not isinstance(data, dict):
                raise ChannelPayloadError(f"Shopify {name}: the answer has no data")
            return data
        raise AssertionError("unreachable")

    def _refill_seconds(self, name: str) -> float:
        """How long until the bucket holds what `name` asked for (1 s when Shopify did not say)."""
        needed, bucket = self.costs.get(name), self.bucket
        if needed is None or bucket is None or bucket.restore_rate <= 0:
            return 1.0
        return max(0.0, (needed - bucket.now(time.monotonic())) / bucket.restore_rate)
