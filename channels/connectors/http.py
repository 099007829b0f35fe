"""The one HTTP client every connector uses.

It owns what each connector would otherwise get wrong once: a timeout on every call, the rate-limit
bucket before every call, one token refresh when the channel says the token has expired, and the
mapping of every failure to the typed errors of `base`. Nothing it logs or raises carries a secret:
known secret values and secret query parameters are replaced by `***` in every message.
"""

from __future__ import annotations

import email.utils
import logging
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

import requests

from channels.connectors.base import (
    ChannelAuthError,
    ChannelPayloadError,
    ChannelRateLimited,
    ChannelRejected,
    ChannelTransientError,
    RateLimit,
    RateLimiter,
)

logger = logging.getLogger(__name__)

T = TypeVar("T")

# (connect, read) seconds. Reports and feed documents can be large, hence the generous read timeout.
DEFAULT_TIMEOUT = (5.0, 60.0)
# A 429 asking for at most this long is waited out once in place; a longer one goes back to the caller.
INLINE_RETRY_SECONDS = 5.0
# How long a call may sleep for its rate-limit bucket before giving up with ChannelRateLimited.
DEFAULT_MAX_WAIT = 30.0
AUTH_ERROR_CODES = {"invalid_grant", "invalid_client", "unauthorized_client", "invalid_token"}
SECRET_PARAM = re.compile(
    r"(?i)\b(pwd|password|token|access_token|refresh_token|client_secret|code|x-amz-signature|signature)"
    r"(=|%3D|\"\s*:\s*\")([^&\s\"',}]+)"
)
XML_DECLARATION = re.compile(r"<\?xml[^>]*\?>")
MARKUP = re.compile(r"<[^>]+>")


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """The text with every known secret and every secret-looking parameter value replaced by ***."""
    # Longest first, so a secret containing another is replaced whole. Very short values would mangle text.
    for secret in sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True):
        text = text.replace(secret, "***")
    return SECRET_PARAM.sub(lambda m: f"{m.group(1)}{m.group(2)}***", text)


class RedactingFilter(logging.Filter):
    """urllib3 logs each request line with its query string, which for Rakuten holds the token."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        return True


_REDACTING_FILTER = RedactingFilter()
logging.getLogger("urllib3.connectionpool").addFilter(_REDACTING_FILTER)


def retry_after_seconds(value: str | None) -> float | None:
    """Retry-After as seconds: either a number of seconds or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def error_reason(response: requests.Response) -> str:
    """The channel's own words for a refusal, from whichever error shape it uses."""
    try:
        body = response.json()
    except ValueError:
        # XML or HTML error pages: their text without the markup.
        return " ".join(MARKUP.sub(" ", XML_DECLARATION.sub("", response.text)).split())[:300]
    reasons: list[str] = []
    if isinstance(body, dict):
        for error in body.get("errors") or []:
            if isinstance(error, dict):
                reasons.append(" ".join(str(error.get(k, "")) for k in ("code", "message") if error.get(k)))
            else:
                reasons.append(str(error))
        for problem in body.get("validation_result") or []:
            if isinstance(problem, dict):
                members = ", ".join(problem.get("member_names") or [])
                reasons.append(f"{members}: {problem.get('error_message', '')}" if members
                               else str(problem.get("error_message", "")))
        if body.get("error"):
            reasons.append(" ".join(str(body[k]) for k in ("error", "error_description") if body.get(k)))
    return "; ".join(r for r in reasons if r)[:300] or f"HTTP {response.status_code}"


def oauth_error(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return ""
    return str(body.get("error", "")) if isinstance(body, dict) else ""


class HttpClient:
    """One channel account's session: rate limits, auth and typed errors around `requests`.

    `auth(refresh)` returns the headers that authenticate a call; it is called again with
    `refresh=True` once when the channel answers 401/403, and the call is repeated with the new headers.
    `secrets()` returns every value to keep out of messages (credentials and the current access token).
    `shared_bucket` names the one bucket every call draws from, for a channel with a single quota (EKM).
    """

    def __init__(
        self,
        *,
        service: str,
        base_url: str,
        limiter: RateLimiter,
        limits: Mapping[str, RateLimit],
        bucket_prefix: str,
        secrets: Callable[[], Iterable[str]],
        auth: Callable[[bool], dict[str, str]] | None = None,
        on_response: Callable[[requests.Response, str], None] | None = None,
        shared_bucket: str = "",
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        max_wait: float = DEFAULT_MAX_WAIT,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.service = service
        self.base_url = base_url.rstrip("/")
        self.limiter = limiter
        self.limits = limits
        self.bucket_prefix = bucket_prefix
        self.secrets = secrets
        self.auth = auth
        self.on_response = on_response
        self.shared_bucket = shared_bucket
        self.timeout = timeout
        self.max_wait = max_wait
        self.session = session or requests.Session()
        self.sleep = sleep

    def redact(self, text: str) -> str:
        return redact(text, self.secrets())

    def bucket(self, operation: str) -> tuple[str, RateLimit | None]:
        """The bucket a call draws from: its operation's, or the one bucket of a channel that has one."""
        name = self.shared_bucket or operation
        return f"{self.bucket_prefix}:{name}", self.limits.get(name)

    def request(
        self,
        method: str,
        path: str,
        *,
        operation: str,
        authenticated: bool = True,
        absolute: bool = False,
        headers: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> requests.Response:
        """Send one call and return its 2xx response, or raise the typed error for its failure."""
        url = path if absolute else self.base_url + path
        where = f"{self.service} {operation}"
        key, limit = self.bucket(operation)
        refreshed = throttled_once = False
        while True:
            if limit is not None:
                self.limiter.acquire(key, limit, max_wait=self.max_wait)
            sent_headers = dict(headers or {})
            if authenticated and self.auth is not None:
                sent_headers |= self.auth(False)
            response = self._send(method, url, where=where, headers=sent_headers, **kwargs)
            if self.on_response is not None:
                self.on_response(response, operation)
            status = response.status_code
            if status in (401, 403) and authenticated and self.auth is not None and not refreshed:
                refreshed = True
                self.auth(True)
                continue
            if status == 429:
                wait = retry_after_seconds(response.headers.get("Retry-After"))
                if wait is None:
                    # The real Amazon API sends no Retry-After: wait for the bucket's next token.
                    wait = 1 / limit.rate if limit is not None else INLINE_RETRY_SECONDS
                if limit is not None:
                    self.limiter.hold_off(key, limit, seconds=wait)
                if wait <= INLINE_RETRY_SECONDS and not throttled_once:
                    throttled_once = True
                    if limit is None:
                        self.sleep(wait)
                    continue
                raise ChannelRateLimited(f"{where}: throttled by the channel, retry in {wait:.0f} s",
                                         retry_after=wait)
            self.raise_for_status(response, where=where)
            return response

    def _send(self, method: str, url: str, *, where: str, **kwargs: Any) -> requests.Response:
        started = time.monotonic()
        try:
            response = self.session.request(method, url, timeout=self.timeout, **kwargs)
        except requests.Timeout as exc:
            raise ChannelTransientError(f"{where}: no answer within {self.timeout[1]:.0f} s") from exc
        except requests.ConnectionError as exc:
            raise ChannelTransientError(f"{where}: could not connect ({self.redact(type(exc).__name__)})") from exc
        except requests.RequestException as exc:
            raise ChannelTransientError(f"{where}: {self.redact(str(exc))[:200]}") from exc
        logger.debug(
            "channels.http.call service=%s method=%s path=%s status=%s seconds=%.2f",
            self.service, method, self.redact(url.split("?", 1)[0]), response.status_code,
            time.monotonic() - started,
        )
        return response

    def raise_for_status(self, response: requests.Response, *, where: str) -> None:
        status = response.status_code
        if status < 400:
            return
        reason = self.redact(error_reason(response))
        logger.warning("channels.http.error service=%s where=%s status=%s reason=%s",
                       self.service, where, status, reason)
        if status in (401, 403) or oauth_error(response) in AUTH_ERROR_CODES:
            raise ChannelAuthError(f"{where}: the channel refused the credentials ({reason}); reauthorise it")
        if status >= 500 or status == 408:
            raise ChannelTransientError(f"{where}: the channel failed (HTTP {status}: {reason})")
        raise ChannelRejected(f"{where}: {reason}")

    def json(self, response: requests.Response, *, what: str) -> Any:
        try:
            return response.json()
        except ValueError as exc:
            raise ChannelPayloadError(f"{self.service} {what}: the answer is not JSON") from exc

    def call_json(self, method: str, path: str, *, operation: str, **kwargs: Any) -> Any:
        return self.json(self.request(method, path, operation=operation, **kwargs), what=operation)


def token_pages(fetch: Callable[[str], tuple[T, str]]) -> Iterator[T]:
    """Pages that each name the next one by a token ("" on the first call and after the last page)."""
    token, seen = "", set()
    while True:
        page, token = fetch(token)
        yield page
        if not token:
            return
        if token in seen:
            raise ChannelPayloadError("the channel sent the same next-page token twice")
        seen.add(token)


def numbered_pages(fetch: Callable[[int], tuple[T, int]]) -> Iterator[T]:
    """Pages numbered from 1, each answer telling how many pages there are in all."""
    number = 1
    while True:
        page, pages_total = fetch(number)
        yield page
        if number >= pages_total:
            return
        number += 1
