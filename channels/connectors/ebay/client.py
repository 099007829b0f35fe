"""eBay's REST APIs over HTTP: OAuth user tokens (Basic client auth), one daily quota per API.

eBay counts calls per application per day and per API, so the client has one bucket per API (Sell Inventory,
Sell Fulfillment), each spread over the day; a 429 (errorId 2001) holds the bucket off as its Retry-After says.
Operation names and paths are the contract's (contract/*.json).
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Mapping
from typing import Any, ClassVar
from urllib.parse import quote

import requests

from channels.connectors.base import ChannelPayloadError, ConnectorConfig, CredentialStore, RateLimit, RateLimiter
from channels.connectors.contracts import contract_load
from channels.connectors.http import HttpClient
from channels.connectors.oauth import OAuthClient, TokenGrant

CONTRACT = contract_load("ebay")
SCOPES = " ".join(f"https://api.ebay.com/oauth/api_scope/{scope}" for scope in (
    "sell.inventory", "sell.fulfillment",
))
DAY = 24 * 3600
# Default daily call limits (developer.ebay.com's API Call Limits page; unconfirmed, see the contract notes),
# spread over the day, with a burst so a listing download or a backlog of pushes is not paced call by call.
RATE_LIMITS: Mapping[str, RateLimit] = {
    "inventory": RateLimit(2_000_000 / DAY, 200),
    "fulfillment": RateLimit(100_000 / DAY, 50),
}
API_OF = {operation_id: operation.family for operation_id, operation in CONTRACT.operations.items()}
APPLICATION_SCOPE = "https://api.ebay.com/oauth/api_scope"
# Notification signing keys change rarely: each is asked for once an hour at most, per process.
PUBLIC_KEY_TTL = 3600.0
_public_keys: dict[tuple[str, str], tuple[float, str]] = {}


class EbayClient(OAuthClient):
    service = "eBay"
    token_path = CONTRACT.operation("token").path
    refresh_form: ClassVar[Mapping[str, str]] = {"scope": SCOPES}

    def __init__(self, config: ConnectorConfig, credentials: CredentialStore, limiter: RateLimiter, *,
                 sleep: Callable[[float], None]) -> None:
        super().__init__(config, credentials, limiter, sleep=sleep)
        self.credentials = credentials

        def api_client(bucket: str) -> HttpClient:
            return HttpClient.for_channel(
                config, service="eBay", limiter=limiter, limits=RATE_LIMITS, shared_bucket=bucket,
                secrets=lambda: self.tokens.known_secrets, auth=self.auth_headers, sleep=sleep,
            )

        self.apis = {"inventory": api_client("inventory"), "fulfillment": api_client("fulfillment")}
        # The token endpoint is not metered by either API's quota (eBay's OAuth limits are its own).
        self.http = HttpClient.for_channel(config, service="eBay", limiter=limiter, limits={},
                                           secrets=lambda: self.tokens.known_secrets, sleep=sleep)

    # OAuth: the client id and secret go as HTTP Basic auth, never in the form (contract/identity.json)

    def _basic(self) -> str:
        credentials = self.credentials.load()
        self.tokens.known_secrets |= {credentials.get("client_secret", "")} - {""}
        pair = f"{credentials.get('client_id', '')}:{credentials.get('client_secret', '')}"
        return "Basic " + base64.b64encode(pair.encode()).decode()

    @staticmethod
    def _client_form(credentials: Mapping[str, str]) -> dict[str, str]:
        return {}

    def token_call(self, form: Mapping[str, str]) -> TokenGrant:
        response = self.http.request(
            "POST", self.config.auth_base_url.rstrip("/") + self.token_path, operation="token", authenticated=False,
            absolute=True, data=dict(form), headers={"Authorization": self._basic()},
        )
        body = self.http.json(response, what="token")
        try:
            return TokenGrant(str(body["access_token"]), int(body.get("expires_in", 7200)),
                              str(body.get("refresh_token") or ""))
        except (KeyError, TypeError, ValueError) as exc:
            raise ChannelPayloadError("eBay token: the answer has no access token") from exc

    def exchange_code(self, authorization_code: str, redirect_uri: str = "") -> None:
        # eBay wants the application's RuName as redirect_uri, not the URL the seller came back to.
        super().exchange_code(authorization_code, self.credentials.load().get("ru_name", "") or redirect_uri)

    # Notifications: an application token (client credentials) reads the key that signs them

    def public_key(self, key_id: str) -> str:
        cache_key = (self.config.api_base_url, key_id)
        cached = _public_keys.get(cache_key)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        grant = self.token_call({"grant_type": "client_credentials", "scope": APPLICATION_SCOPE})
        self.tokens.known_secrets.add(grant.access_token)
        path = CONTRACT.operation("getPublicKey").path.format(public_key_id=quote(key_id, safe=""))
        response = self.http.request("GET", path, operation="getPublicKey", authenticated=False,
                                     headers={"Authorization": f"Bearer {grant.access_token}"})
        body = self.http.json(response, what="getPublicKey")
        key = body.get("key") if isinstance(body, dict) else None
        if not isinstance(key, str) or not key:
            raise ChannelPayloadError("eBay getPublicKey: the answer has no key")
        _public_keys[cache_key] = (time.monotonic() + PUBLIC_KEY_TTL, key)
        return key

    # The Sell APIs

    def send(self, operation_id: str, *, path_params: Mapping[str, str] | None = None,
             **kwargs: Any) -> requests.Response:
        operation = CONTRACT.operation(operation_id)
        path = operation.path.format(**{k: quote(v, safe="") for k, v in (path_params or {}).items()})
        return self.apis[API_OF[operation_id]].request(operation.method, path, operation=operation_id, **kwargs)

    def call_object(self, operation_id: str, **kwargs: Any) -> dict[str, Any]:
        response = self.send(operation_id, **kwargs)
        body = self.http.json(response, what=operation_id)
        if not isinstance(body, dict):
            raise ChannelPayloadError(f"eBay {operation_id}: the answer is not an object")
        return body
