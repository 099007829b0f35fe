"""Rakuten France web services over HTTP: sales_ws and stock_ws, each action at its own version.

The login and token travel in the query string (`login`, `pwd`), as the service requires; the HTTP client
redacts them from every message. Every answer is read through `mapper.xml_document`, and an errorresponse
becomes the typed error of `base`. Operation names are the contract's (contract/*.json): the actions.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from channels.connectors.base import (
    ChannelAuthError,
    ChannelError,
    ChannelPayloadError,
    ChannelRateLimited,
    ChannelRejected,
    ChannelTransientError,
    ConnectorConfig,
    RateLimit,
    RateLimiter,
)
from channels.connectors.http import HttpClient
from channels.connectors.rakuten.mapper import RakutenError, rakuten_error, xml_document

# Each action's version (contract: the `version` constant of each operation's query).
VERSIONS: Mapping[str, str] = {
    "getnewsales": "2017-08-07",
    "getcurrentsales": "2017-08-07",
    "acceptsale": "2010-09-20",
    "refusesale": "2010-09-20",
    "settrackingpackageinfos": "2016-03-16",
    "cancelitem": "2011-02-02",
    "export": "2018-06-29",
    "import": "2010-09-20",
    "importreport": "2017-02-10",
}
STOCK_ACTIONS = frozenset({"export", "import", "importreport"})
# Rakuten publishes no rate limits (CHANNEL_APIS.md). What is known: it counts requests per hour and answers past
# its quota with InvalidUserRights "Quota exceeded." ("the maximum number of requests per hour", [SHB]'s
# quota_exceeded_message.xml), sized nowhere; [PRF], a production client, reads sales and imports stock every 15
# minutes. The sandbox's 20 calls/s was its own invention (now gone). So these are the hub's choices, per hour as
# Rakuten counts: the burst is what may go at once, the rate what may follow, a quota answer holds off QUOTA_WAIT.
# - import (one file carries a whole push): was 1 every 10 s, burst 3, so the fourth push of a flurry (baseline,
#   one per order page, the channel's own orders) waited 10 s where Amazon's PATCHes took ~1 s in bench_sync. Now
#   a flurry of 10 goes at once, then one every 30 s (120 an hour): the longest a push may wait for its turn
#   without giving up (HttpClient's max_wait), so a busy shop's pushes queue rather than fail.
# - getnewsales (the first call of every order download, and Test): one a minute sustained, so orders are polled
#   every 80 s (Connector.order_download_interval) where the hub polled every 5 minutes before; the burst covers
#   Test, Download orders now and a second page.
RATE_LIMITS: Mapping[str, RateLimit] = {
    "getnewsales": RateLimit(1 / 60, 5),
    "getcurrentsales": RateLimit(1, 10),
    "acceptsale": RateLimit(2, 10),
    "refusesale": RateLimit(2, 10),
    "settrackingpackageinfos": RateLimit(2, 10),
    "cancelitem": RateLimit(2, 10),
    "export": RateLimit(1, 10),
    "import": RateLimit(1 / 30, 10),
    "importreport": RateLimit(1, 10),
}
# Rakuten's quota is per hour and it does not say when it resets.
QUOTA_WAIT = 900.0
SERVICE_FAILURES = frozenset({"servererror", "unknown error"})


class RakutenClient:
    """One seller account's calls. `token()` gives the stored web services token (read on first use)."""

    def __init__(self, config: ConnectorConfig, token: Callable[[], str], limiter: RateLimiter,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.login = config.seller_id
        self.token = token
        # Every token sent so far, so that no message carries one (a new one is tried before it is saved).
        self.sent_tokens: set[str] = set()
        self.http = HttpClient.for_channel(
            config, service="Rakuten", limiter=limiter, limits=RATE_LIMITS, secrets=lambda: self.sent_tokens,
            sleep=sleep,
        )

    def call(self, action: str, params: Mapping[str, str] | None = None, *, file: bytes | None = None,
             token: str = "") -> dict[str, Any]:
        """The answer's document, or the typed error of the errorresponse Rakuten sent instead."""
        token = token or self.token()
        if not token or not self.login:
            raise ChannelAuthError("Rakuten needs the seller's login and web services token")
        self.sent_tokens.add(token)
        query = {"action": action, "login": self.login, "pwd": token, "version": VERSIONS[action], **(params or {})}
        service = "stock_ws" if action in STOCK_ACTIONS else "sales_ws"
        extra: dict[str, Any] = {}
        if file is not None:
            extra["files"] = {"file": ("stock.csv", file, "text/csv; charset=utf-8")}
        response = self.http.request("POST" if file is not None else "GET", f"/{service}", operation=action,
                                     authenticated=False, params=query, **extra)
        try:
            document = xml_document(response.content)
        except ChannelPayloadError as exc:
            raise ChannelPayloadError(f"Rakuten {action}: {exc}") from exc
        error = rakuten_error(document)
        if error is not None:
            raise self.refusal(action, error)
        return document

    def refusal(self, action: str, error: RakutenError) -> ChannelError:
        """The typed error for an errorresponse; its words may echo the request, so they are redacted."""
        words = self.http.redact(error.describe())[:500]
        if error.code == "InvalidUserConnection":
            return ChannelAuthError(f"Rakuten refused the login or web services token ({words}); enter a new token")
        if error.code == "InvalidUserRights" and "quota" in error.message.casefold():
            return ChannelRateLimited(f"Rakuten {action}: quota reached ({words})", retry_after=QUOTA_WAIT)
        if {error.type.casefold(), error.code.casefold()} & SERVICE_FAILURES:
            return ChannelTransientError(f"Rakuten {action}: the service failed ({words})")
        return ChannelRejected(f"Rakuten {action}: {error.code or error.type or 'error'}: {words}")
