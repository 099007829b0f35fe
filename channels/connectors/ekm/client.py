"""EKM Partner API over HTTP: OAuth2 with single-use refresh tokens, EKM's response wrapper, its leaky bucket.

Every call of an app to one shop draws from one leaky bucket (40 tokens, leaking 2 every second), so the
client has one rate-limit bucket, and also slows down when X-EKM-RateLimit-Remaining says the shop's bucket
is nearly full (other apps or workers). Operation names are the contract's (contract/*.json).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import requests

from channels.connectors.base import (
    ChannelPayloadError,
    ConnectorConfig,
    CredentialStore,
    RateLimit,
    RateLimiter,
)
from channels.connectors.http import HttpClient
from channels.connectors.oauth import OAuthClient

SCOPES = (
    "tempest.orders.read tempest.orders.write tempest.products.read tempest.products.write "
    "tempest.settings.orderstatuses.read tempest.settings.currency.read offline_access"
)
RATE_LIMITS: Mapping[str, RateLimit] = {"api": RateLimit(2, 40)}
# Below this many calls left in EKM's bucket the client pauses until the bucket has leaked that much.
LOW_REMAINING = 5


def leak_per_second(headers: Mapping[str, str]) -> float | None:
    """Tokens the bucket leaks a second: X-EKM-RateLimit-LeakAmount every X-EKM-RateLimit-LeakRate seconds.

    LeakRate is the leak interval, not a rate (EKM's 'Rate Limits' section). None when either is unreadable.
    """
    try:
        interval = float(headers["X-EKM-RateLimit-LeakRate"])
        amount = float(headers["X-EKM-RateLimit-LeakAmount"])
    except (KeyError, ValueError):
        return None
    return amount / interval if interval > 0 and amount > 0 else None


class EkmClient(OAuthClient):
    """Auth is connect.json's token endpoint, through the OAuthClient base (Bearer tokens)."""

    service = "EKM"
    token_path = "/connect/token"
    # Each refresh returns a new refresh token and spends the old one.
    single_use_refresh = True
    refresh_form: ClassVar[Mapping[str, str]] = {"scope": SCOPES}

    def __init__(self, config: ConnectorConfig, credentials: CredentialStore, limiter: RateLimiter, *,
                 sleep: Callable[[float], None]) -> None:
        super().__init__(config, credentials, limiter, sleep=sleep)
        self.http = HttpClient.for_channel(
            config, service="EKM", limiter=limiter, limits=RATE_LIMITS, shared_bucket="api",
            secrets=lambda: self.tokens.known_secrets, auth=self.auth_headers, on_response=self._watch_quota,
            sleep=sleep,
        )

    def _watch_quota(self, response: requests.Response, operation: str) -> None:
        try:
            remaining = float(response.headers["X-EKM-RateLimit-Remaining"])
        except (KeyError, ValueError):
            return
        leak = leak_per_second(response.headers)
        if remaining < LOW_REMAINING and leak:
            key, limit = self.http.bucket(operation)
            if limit is not None:
                self.limiter.hold_off(key, limit, seconds=(LOW_REMAINING - remaining) / leak)

    # The Partner API (partner_api.json): every answer is the wrapper {meta, links, validation_result, errors, data}

    def get(self, path: str, *, operation: str, params: Mapping[str, Any] | None = None) -> tuple[Any, dict]:
        """The answer's `data` and `meta` ({} when EKM sends none)."""
        body = self.http.call_json("GET", path, operation=operation, params=params)
        if not isinstance(body, dict) or "data" not in body:
            raise ChannelPayloadError(f"EKM {operation}: the answer has no data")
        meta = body.get("meta")
        return body["data"], meta if isinstance(meta, dict) else {}

    def put(self, path: str, *, operation: str, body: Mapping[str, Any]) -> None:
        self.send("PUT", path, operation=operation, body=body)

    def send(self, method: str, path: str, *, operation: str, body: Mapping[str, Any] | None = None) -> None:
        # Only the status matters: the answer is the updated record or nothing, which the hub does not need.
        self.http.request(method, path, operation=operation, **({"json": body} if body is not None else {}))
