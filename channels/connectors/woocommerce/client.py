"""WooCommerce REST API (wc/v3) over HTTP, on the seller's own WordPress server.

Over https the consumer key and secret go as HTTP Basic; over plain http (only ever to this machine: the
sandbox) WooCommerce refuses Basic, so each call is signed with OAuth 1.0a one-legged in its query
(contract/wc_v3.json notes). A shop is a WordPress site behind whatever its host puts in front of it, so an
answer that is an HTML page (a WordPress error, a login wall, a maintenance or cache page) is refused here
with the page's title, before anything tries to read it as JSON. Operation names are the contract's.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import re
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

import requests

from channels.connectors.base import (
    ChannelAuthError,
    ChannelPayloadError,
    ChannelRejected,
    ChannelTransientError,
    ConnectorConfig,
    RateLimit,
    RateLimiter,
)
from channels.connectors.http import HttpClient

# WooCommerce publishes no rate limit for wc/v3; a shop's host may have its own (429, with or without
# Retry-After, which the HTTP client honours). The hub keeps to 5 calls a second, 10 at once, so that one
# seller's WordPress server is never hammered by the hub's workers together.
RATE_LIMITS: Mapping[str, RateLimit] = {"api": RateLimit(5, 10)}
TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
HEADING = re.compile(r"<h1[^>]*>(.*?)</h1>", re.IGNORECASE | re.DOTALL)
MARKUP = re.compile(r"<[^>]+>")
MAX_TITLE = 120


@dataclass(frozen=True)
class ListPage:
    """One page of a list route with the totals its headers announce (None when a proxy stripped them)."""

    items: list[Any]
    total: int | None
    total_pages: int | None


def oauth_signature(method: str, url: str, params: Mapping[str, str], secret: str, *, algorithm: str) -> str:
    """OAuth 1.0a's signature as WooCommerce checks it: METHOD&pct(url)&pct(sorted name=value pairs)."""

    def pct(value: str) -> str:
        return quote(value, safe="~")

    # Names and values encoded, then sorted by name (WooCommerce's uksort), then the whole encoded again.
    pairs = "&".join(f"{k}={v}" for k, v in sorted((pct(k), pct(v)) for k, v in params.items()))
    base = "&".join((method.upper(), pct(url), pct(pairs)))
    digest = hmac.new(f"{secret}&".encode(), base.encode(), hashlib.sha256 if algorithm == "HMAC-SHA256"
                      else hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def page_title(body: bytes) -> str:
    """What an HTML page calls itself: its <title>, else its first heading, else its first words."""
    text = body[:65536].decode("utf-8", "replace")
    found = TITLE.search(text) or HEADING.search(text)
    words = MARKUP.sub(" ", found.group(1) if found else text)
    words = " ".join(html.unescape(words).split())
    return words[:MAX_TITLE] + ("..." if len(words) > MAX_TITLE else "")


def looks_like_html(response: requests.Response) -> bool:
    content_type = response.headers.get("Content-Type", "").lower()
    start = response.content[:512].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    return "html" in content_type or start.startswith((b"<!doctype", b"<html", b"<head", b"<body"))


class WooClient:
    """One shop's calls. `credentials()` gives the stored consumer key and secret (read on each call)."""

    def __init__(self, config: ConnectorConfig, credentials: Callable[[], Mapping[str, str]], limiter: RateLimiter,
                 *, sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.time) -> None:
        self.credentials = credentials
        self.clock = clock
        self.signed_in_query = urlsplit(config.api_base_url).scheme == "http"
        self.known_secrets: set[str] = set()
        self.http = HttpClient.for_channel(
            config, service="WooCommerce", limiter=limiter, limits=RATE_LIMITS, shared_bucket="api",
            secrets=lambda: self.known_secrets, auth=None if self.signed_in_query else self._basic,
            on_response=self._refuse_html, sleep=sleep,
        )

    def _keys(self) -> tuple[str, str]:
        stored = self.credentials()
        key, secret = str(stored.get("consumer_key") or ""), str(stored.get("consumer_secret") or "")
        if not key or not secret:
            raise ChannelAuthError("WooCommerce needs the shop's consumer key and consumer secret")
        self.known_secrets |= {key, secret}
        return key, secret

    def _basic(self, refresh: bool) -> dict[str, str]:
        key, secret = self._keys()
        return {"Authorization": "Basic " + base64.b64encode(f"{key}:{secret}".encode()).decode()}

    def _signed(self, method: str, path: str, params: Mapping[str, Any]) -> dict[str, str]:
        key, secret = self._keys()
        query = {name: str(value) for name, value in params.items()}
        query.update(oauth_consumer_key=key, oauth_timestamp=str(int(self.clock())),
                     oauth_nonce=secrets.token_hex(16), oauth_signature_method="HMAC-SHA256")
        query["oauth_signature"] = oauth_signature(method, self.http.base_url + path, query, secret,
                                                   algorithm="HMAC-SHA256")
        return query

    def _refuse_html(self, response: requests.Response, operation: str) -> None:
        """A WordPress site answers many failures with a page, not the API's JSON: say which page came back."""
        status = response.status_code
        if status == 429 or not looks_like_html(response):
            return
        title = self.http.redact(page_title(response.content))
        said = f"the shop answered HTTP {status} with an HTML page" + (f" (“{title}”)" if title else "")
        where = f"WooCommerce {operation}"
        if status >= 500:
            raise ChannelTransientError(f"{where}: {said} instead of the REST API's JSON: the shop's WordPress failed")
        if status in (401, 403):
            raise ChannelRejected(f"{where}: {said} instead of the REST API's JSON: a login page, a security plugin "
                                  "or a firewall stands in front of /wp-json/; let the API through")
        if status == 404:
            raise ChannelRejected(f"{where}: {said}: is this the shop's address, with WooCommerce active and pretty "
                                  "permalinks on (Settings > Permalinks), so that /wp-json/ answers?")
        raise ChannelPayloadError(f"{where}: {said} instead of the REST API's JSON (a maintenance, cache or login "
                                  "page?)")

    def request(self, method: str, path: str, *, operation: str, params: Mapping[str, Any] | None = None,
                body: Any = None) -> requests.Response:
        params = dict(params or {})
        if self.signed_in_query:
            # The host is checked before the secret is read to sign the call.
            self.http.check_host(self.http.base_url + path, operation=operation)
            params = self._signed(method, path, params)
        extra: dict[str, Any] = {"params": params} if params else {}
        if body is not None:
            extra["json"] = body
        return self.http.request(method, path, operation=operation, **extra)

    def call(self, method: str, path: str, *, operation: str, params: Mapping[str, Any] | None = None,
             body: Any = None) -> Any:
        return self.http.json(self.request(method, path, operation=operation, params=params, body=body),
                              what=operation)

    def list_page(self, path: str, *, operation: str, params: Mapping[str, Any]) -> ListPage:
        response = self.request("GET", path, operation=operation, params=params)
        items = self.http.json(response, what=operation)
        if not isinstance(items, list):
            raise ChannelPayloadError(f"WooCommerce {operation}: the answer is not a list")
        return ListPage(items, _header_int(response, "X-WP-Total"), _header_int(response, "X-WP-TotalPages"))


def _header_int(response: requests.Response, name: str) -> int | None:
    value = response.headers.get(name, "").strip()
    return int(value) if value.isdigit() else None
