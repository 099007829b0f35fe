"""The one HTTP client every connector uses.

It owns what each connector would otherwise get wrong once: the rate-limit bucket before every call, one
token refresh when the channel says the token has expired, the mapping of every failure to the typed errors
of `base`, and the bounds on what an endpoint, broken or hostile, can make the hub do:

- Credentials go only to the channel's allowed hosts, over https (plain http only to this machine). Every
  `request` is checked before anything is sent, whatever its `authenticated`: token calls carry the client
  secret in their form and Rakuten's calls the token in their query. Only `download` and `upload` reach other
  hosts (pre-signed document URLs), and never with a credential.
- No call follows a redirect to another origin (scheme, host and port): requests would only drop
  `Authorization` there, not `x-amz-access-token` nor a secret in a re-posted form. A same-origin redirect is
  followed up to MAX_REDIRECTS times, each hop checked again.
- Each exchange (connecting, its redirects and its whole answer) ends within a deadline, even against a server
  that drips its answer a byte at a time, which no read timeout catches: a timer shuts the exchange's socket.
- An answer is read up to a size, counted on the wire and once decompressed while it streams, so a small gzip
  bomb cannot inflate in memory.

Nothing it logs or raises carries a secret: known secret values and secret query parameters are replaced by
`***` in every message.
"""

from __future__ import annotations

import contextlib
import email.utils
import http.client
import io
import logging
import re
import socket
import threading
import time
import zlib
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import urljoin, urlsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter

from channels.connectors.base import (
    MIB,
    ChannelAuthError,
    ChannelError,
    ChannelHostRefused,
    ChannelPayloadError,
    ChannelRateLimited,
    ChannelRejected,
    ChannelResponseTooLarge,
    ChannelTransientError,
    ConnectorConfig,
    HttpBounds,
    RateLimit,
    RateLimiter,
)

logger = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_BOUNDS = HttpBounds()
# (connect, read) seconds: the longest wait to connect and for any one read. The deadline bounds the whole.
DEFAULT_TIMEOUT = (DEFAULT_BOUNDS.connect_timeout, 60.0)
# A 429 asking for at most this long is waited out once in place; a longer one goes back to the caller.
INLINE_RETRY_SECONDS = 5.0
# How long a call may sleep for its rate-limit bucket before giving up with ChannelRateLimited.
DEFAULT_MAX_WAIT = 30.0
MAX_REDIRECTS = 5
READ_CHUNK = 64 * 1024
# Plain http is only for this machine (the sandbox); every other host is reached over https.
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
# Only the encodings the client decompresses within its bounds (requests would also offer br and zstd).
ACCEPT_ENCODING = "gzip, deflate"
GZIP_WBITS = 16 + zlib.MAX_WBITS
# Content-Encoding "deflate" is zlib-wrapped by the standard; the header detection also takes gzip.
ZLIB_OR_GZIP_WBITS = 32 + zlib.MAX_WBITS
# A secret this short could turn up by chance in a pre-signed URL's signature.
MIN_SECRET_IN_URL = 8
AUTH_ERROR_CODES = {"invalid_grant", "invalid_client", "unauthorized_client", "invalid_token"}
SECRET_PARAM = re.compile(
    r"(?i)\b(pwd|password|token|access_token|refresh_token|client_secret|code|x-amz-signature|signature)"
    r"(=|%3D|\"\s*:\s*\")([^&\s\"',}]+)"
)
# A field of an error answer named like this may echo a secret in its message (refreshToken: "... is spent").
SECRET_FIELD = re.compile(r"(?i)pwd|password|token|secret|signature")
# The longest reason a refusal shows, and the longest message of one field in it (one leaves room for others).
MAX_REASON = 300
MAX_FIELD_MESSAGE = 100
XML_DECLARATION = re.compile(r"<\?xml[^>]*\?>")
MARKUP = re.compile(r"<[^>]+>")
# One label of a host name, what "*." stands for in an allowed host.
HOST_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
# What a connection broken under a read raises, besides requests' own errors.
READ_FAILURES = (requests.RequestException, urllib3.exceptions.HTTPError, http.client.HTTPException, OSError)


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
        return " ".join(MARKUP.sub(" ", XML_DECLARATION.sub("", response.text)).split())[:MAX_REASON]
    reasons: list[str] = []
    if isinstance(body, dict):
        errors = body.get("errors") or []
        if isinstance(errors, dict):
            # EKM's `errors` object: each field with its message.
            reasons += [field_reason(str(name), message) for name, message in errors.items()]
        elif isinstance(errors, str):
            reasons.append(errors)
        else:
            for error in errors:
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
        if isinstance(body.get("code"), str) and isinstance(body.get("message"), str):
            # WordPress's REST errors (WooCommerce): {code, message, data:{status}}.
            reasons.append(f"{body['code']}: {body['message']}")
    return "; ".join(r for r in reasons if r)[:MAX_REASON] or f"HTTP {response.status_code}"


def field_reason(name: str, message: object) -> str:
    """The field and its message ("Quantity: must be >= 0"); a field named like a secret only by its name."""
    text = "" if message is None else " ".join(str(message).split())[:MAX_FIELD_MESSAGE]
    return f"{name}: {text}" if text and not SECRET_FIELD.search(name) else name


def oauth_error(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return ""
    return str(body.get("error", "")) if isinstance(body, dict) else ""


def size_text(size: int) -> str:
    return f"{size / MIB:g} MiB" if size >= MIB else f"{size} bytes"


def host_allowed(host: str, allowed: Collection[str]) -> bool:
    """Whether `host` is one of `allowed`: a name, or "*.example.com" for any one label under example.com (each
    Shopify shop is its own host under myshopify.com)."""
    host = host.lower()
    if host in allowed:
        return True
    label, _, parent = host.partition(".")
    return bool(parent) and f"*.{parent}" in allowed and HOST_LABEL.fullmatch(label) is not None


def origin(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) with the default port filled in: what a redirect may not change.

    Raises ValueError for a port that is not a number."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), parts.port or {"http": 80, "https": 443}.get(scheme, 0)


def origin_text(url: str) -> str:
    try:
        scheme, host, port = origin(url)
    except ValueError:
        return "an address that does not parse"
    return f"{scheme}://{host}:{port}"


# --- Deadline ---------------------------------------------------------------------------------------------

_exchange = threading.local()


def _shut(connection: Any) -> None:
    sock = getattr(connection, "sock", None)
    if sock is None:
        return
    # The plain socket's shutdown, under TLS too: SSLSocket.shutdown would drop its TLS state under the
    # thread that is reading from it. A blocked read then returns at once.
    with contextlib.suppress(OSError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


class Deadline:
    """One exchange's deadline, held by a timer that shuts the sockets of the exchange when it passes.

    A read timeout applies to each read, so a server sending a byte every few seconds never trips it. While
    a deadline is entered, every connection of a `WatchedAdapter` that this thread connects or sends on is
    registered with it."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.ends = time.monotonic() + seconds
        self.expired = False
        self._connections: list[Any] = []
        self._lock = threading.Lock()
        self._over = False
        self._outer: Deadline | None = None
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def remaining(self) -> float:
        return self.ends - time.monotonic()

    def passed(self) -> bool:
        return self.expired or self.remaining() <= 0

    def __enter__(self) -> Deadline:
        self._outer = getattr(_exchange, "deadline", None)
        _exchange.deadline = self
        self._timer.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        _exchange.deadline = self._outer
        with self._lock:
            self._over = True
            self._timer.cancel()

    def watch(self, connection: Any) -> None:
        with self._lock:
            if self._over or any(known is connection for known in self._connections):
                return
            self._connections.append(connection)
            if self.expired:
                _shut(connection)

    def _expire(self) -> None:
        with self._lock:
            if self._over:
                return
            self.expired = True
            for connection in self._connections:
                _shut(connection)


def _watch(connection: Any) -> None:
    deadline = getattr(_exchange, "deadline", None)
    if deadline is not None:
        deadline.watch(connection)


class _WatchedConnection:
    """Registers the connection with the exchange's deadline when it connects (TLS handshake included) and
    when it sends a request (a kept-alive connection does not connect again)."""

    def connect(self) -> None:
        _watch(self)
        super().connect()  # type: ignore[misc]

    def request(self, *args: Any, **kwargs: Any) -> None:
        _watch(self)
        super().request(*args, **kwargs)  # type: ignore[misc]


class _WatchedHTTPConnection(_WatchedConnection, urllib3.connection.HTTPConnection):
    pass


class _WatchedHTTPSConnection(_WatchedConnection, urllib3.connection.HTTPSConnection):
    pass


class _WatchedHTTPConnectionPool(urllib3.HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSConnectionPool(urllib3.HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


WATCHED_POOLS = {"http": _WatchedHTTPConnectionPool, "https": _WatchedHTTPSConnectionPool}


class WatchedAdapter(HTTPAdapter):
    """requests' adapter, with connections a `Deadline` can shut."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = WATCHED_POOLS

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if not proxy.lower().startswith("socks"):
            manager.pool_classes_by_scheme = WATCHED_POOLS
        return manager


# --- Bounded decompression --------------------------------------------------------------------------------


class BoundedInflater:
    """zlib or gzip decompression that stops with ChannelResponseTooLarge past `limit` bytes of output in all.

    Each step asks zlib for at most what is left of the limit, so memory never holds more than the limit,
    however far the input would inflate (1 MB of gzip can hold 1 GB of zeros)."""

    def __init__(self, *, limit: int, wbits: int, what: str) -> None:
        self.limit = limit
        self.wbits = wbits
        self.what = what
        self.produced = 0
        self._fed = False
        self._inflate = zlib.decompressobj(wbits)

    def feed(self, data: bytes) -> bytes:
        pieces = []
        self._fed = self._fed or bool(data)
        try:
            while data:
                if self._inflate.eof:
                    # gzip allows members one after another (gzip.decompress reads them all), padded with zeros.
                    data = data.lstrip(b"\0")
                    if not data:
                        break
                    self._inflate = zlib.decompressobj(self.wbits)
                piece = self._inflate.decompress(data, self.limit - self.produced + 1)
                self.produced += len(piece)
                if self.produced > self.limit:
                    raise ChannelResponseTooLarge(
                        f"{self.what}: larger than {size_text(self.limit)} once decompressed; not read further"
                    )
                pieces.append(piece)
                data = self._inflate.unused_data if self._inflate.eof else self._inflate.unconsumed_tail
        except zlib.error as exc:
            raise ChannelPayloadError(f"{self.what}: the compressed data is corrupt ({exc})") from exc
        return b"".join(pieces)

    def finish(self) -> None:
        if self._fed and not self._inflate.eof:
            raise ChannelPayloadError(f"{self.what}: the compressed data is cut short")


def gunzip_bounded(data: bytes, *, limit: int, what: str = "the document") -> bytes:
    """`data` gunzipped, refused with ChannelResponseTooLarge past `limit` bytes, unlike gzip.decompress."""
    inflater = BoundedInflater(limit=limit, wbits=GZIP_WBITS, what=what)
    content = inflater.feed(data)
    inflater.finish()
    return content


def content_decoders(response: requests.Response, *, limit: int, what: str) -> list[BoundedInflater]:
    """The decompressors that undo the answer's Content-Encoding, in the order they apply."""
    decoders = []
    # The header lists the codings in the order they were applied: the last is undone first.
    for coding in reversed(response.headers.get("Content-Encoding", "").split(",")):
        coding = coding.strip().lower()
        if coding in ("", "identity"):
            continue
        if coding in ("gzip", "x-gzip"):
            wbits = GZIP_WBITS
        elif coding == "deflate":
            wbits = ZLIB_OR_GZIP_WBITS
        else:
            raise ChannelPayloadError(f"{what}: the answer is encoded as {coding[:40]!r}, which the hub cannot read")
        decoders.append(BoundedInflater(limit=limit, wbits=wbits, what=what))
    return decoders


# --- The client -------------------------------------------------------------------------------------------


class HttpClient:
    """One channel account's session: rate limits, auth, bounds and typed errors around `requests`.

    `auth(refresh)` returns the headers that authenticate a call; it is called again with
    `refresh=True` once when the channel answers 401/403, and the call is repeated with the new headers.
    `secrets()` returns every value to keep out of messages (credentials and the current access token).
    `shared_bucket` names the one bucket every call draws from, for a channel with a single quota (EKM).
    `allowed_hosts`: the only hosts `request` sends to (empty: none); `for_channel` fills it, and the bounds,
    from the channel's ConnectorConfig.
    `deadline` and `max_response_bytes` bound each `request`; `document_deadline` and `max_document_bytes`
    each `download` and `upload`. A session passed in keeps its own adapters: its exchanges then have their
    deadline checked between reads only, which a server sending headers a byte at a time escapes.
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
        allowed_hosts: Collection[str],
        auth: Callable[[bool], dict[str, str]] | None = None,
        on_response: Callable[[requests.Response, str], None] | None = None,
        shared_bucket: str = "",
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        max_wait: float = DEFAULT_MAX_WAIT,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        deadline: float = DEFAULT_BOUNDS.deadline,
        max_response_bytes: int = DEFAULT_BOUNDS.max_response_bytes,
        document_deadline: float = DEFAULT_BOUNDS.document_deadline,
        max_document_bytes: int = DEFAULT_BOUNDS.max_document_bytes,
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
        if session is None:
            session = requests.Session()
            session.mount("https://", WatchedAdapter())
            session.mount("http://", WatchedAdapter())
        self.session = session
        self.sleep = sleep
        self.allowed_hosts = frozenset(h.lower() for h in allowed_hosts)
        self.deadline = deadline
        self.max_response_bytes = max_response_bytes
        self.document_deadline = document_deadline
        self.max_document_bytes = max_document_bytes
        # Tokens taken ahead by `turn_take`, per bucket, each spent by the next call that draws from it.
        self._turns: dict[str, int] = {}

    @classmethod
    def for_channel(
        cls,
        config: ConnectorConfig,
        *,
        service: str,
        limiter: RateLimiter,
        limits: Mapping[str, RateLimit],
        secrets: Callable[[], Iterable[str]],
        **options: Any,
    ) -> HttpClient:
        """The client of one channel: its API address and buckets, credentials only to its allowed hosts, and
        the deadlines and sizes of its config. `options`: auth, on_response, shared_bucket, sleep, max_wait."""
        bounds = config.http
        return cls(
            service=service, base_url=config.api_base_url, limiter=limiter, limits=limits,
            bucket_prefix=str(config.channel_id), secrets=secrets, allowed_hosts=config.allowed_hosts,
            timeout=(bounds.connect_timeout, DEFAULT_TIMEOUT[1]), deadline=bounds.deadline,
            max_response_bytes=bounds.max_response_bytes, document_deadline=bounds.document_deadline,
            max_document_bytes=bounds.max_document_bytes, **options,
        )

    def redact(self, text: str) -> str:
        return redact(text, self.secrets())

    def bucket(self, operation: str) -> tuple[str, RateLimit | None]:
        """The bucket a call draws from: its operation's, or the one bucket of a channel that has one."""
        name = self.shared_bucket or operation
        return f"{self.bucket_prefix}:{name}", self.limits.get(name)

    def _refuse(self, where: str, message: str) -> ChannelHostRefused:
        message = self.redact(message)
        logger.warning("channels.http.refused service=%s where=%s reason=%s", self.service, where, message)
        return ChannelHostRefused(f"{where}: {message}")

    def _check_host(self, url: str, *, where: str) -> None:
        """Refuse, before anything is sent, a call to where the channel's credentials may not go."""
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        if not host_allowed(host, self.allowed_hosts):
            allowed = ", ".join(sorted(self.allowed_hosts)) or "none is set"
            named = host or "an address without a host"
            raise self._refuse(where, f"refused to send the channel's credentials to {named}, "
                                      f"which is not one of its hosts ({allowed})")
        if parts.scheme != "https" and not (parts.scheme == "http" and host in LOOPBACK_HOSTS):
            raise self._refuse(where, f"refused to send the channel's credentials to {host} without https")

    def check_host(self, url: str, *, operation: str) -> None:
        """Refuse a call to `url` as `request` would, for a client that must know before it reads a secret to
        sign the call with (WooCommerce's OAuth 1.0a over plain http)."""
        self._check_host(url, where=f"{self.service} {operation}")

    def _check_document_url(self, url: str, *, where: str) -> None:
        """A document address (pre-signed) gets no credential, so any https host will do; it must not carry one."""
        if any(len(secret) >= MIN_SECRET_IN_URL and secret in url for secret in self.secrets()):
            raise self._refuse(where, "refused a document address that carries one of the channel's secrets")
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        if parts.scheme == "https" and host:
            return
        if parts.scheme == "http" and host in LOOPBACK_HOSTS and host in self.allowed_hosts:
            return
        raise self._refuse(where, f"refused to fetch a document from {origin_text(url)} without https")

    def turn_take(self, operation: str) -> None:
        """Take the token of the next call of `operation` now, sleeping up to `max_wait` for it (ChannelRateLimited
        beyond): that call then goes at once. A caller waits for its turn first and decides what to send after."""
        key, limit = self.bucket(operation)
        if limit is not None:
            self.limiter.acquire(key, limit, max_wait=self.max_wait)
            self._turns[key] = self._turns.get(key, 0) + 1

    def _take_token(self, operation: str) -> tuple[str, RateLimit | None]:
        key, limit = self.bucket(operation)
        if limit is not None:
            if self._turns.get(key):
                self._turns[key] -= 1
            else:
                self.limiter.acquire(key, limit, max_wait=self.max_wait)
        return key, limit

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
        """Send one call to an allowed host and return its 2xx response, or raise the typed error for its failure.

        Every call may carry a credential (a token call its form, Rakuten its query), so every one is checked,
        `authenticated=False` ones too: that only means no `auth` headers."""
        url = path if absolute else self.base_url + path
        where = f"{self.service} {operation}"
        self._check_host(url, where=where)
        refreshed = throttled_once = False
        while True:
            key, limit = self._take_token(operation)
            sent_headers = dict(headers or {})
            if authenticated and self.auth is not None:
                sent_headers |= self.auth(False)
            response = self._send(method, url, where=where, seconds=self.deadline, limit=self.max_response_bytes,
                                  headers=sent_headers, **kwargs)
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

    def download(self, url: str, *, operation: str, gunzip: bool = False) -> bytes:
        """A document from the address the channel gave for it (Amazon's pre-signed report and feed-result URLs):
        fetched without credentials, within the document deadline and at most `max_document_bytes` both on
        the wire and once decompressed (`gunzip`: the document itself is gzip, as compressionAlgorithm says)."""
        where = f"{self.service} {operation}"
        self._check_document_url(url, where=where)
        self._take_token(operation)
        response = self._send("GET", url, where=where, seconds=self.document_deadline,
                              limit=self.max_document_bytes, gunzip=gunzip, headers={})
        self._raise_for_document_status(response, where=where)
        return response.content

    def upload(self, url: str, *, operation: str, data: bytes, content_type: str) -> None:
        """PUT a document to the address the channel gave for it (Amazon's pre-signed feed upload URL), without
        credentials and within the document deadline."""
        where = f"{self.service} {operation}"
        self._check_document_url(url, where=where)
        self._take_token(operation)
        response = self._send("PUT", url, where=where, seconds=self.document_deadline,
                              limit=self.max_response_bytes, headers={"Content-Type": content_type}, data=data)
        self._raise_for_document_status(response, where=where)

    def _raise_for_document_status(self, response: requests.Response, *, where: str) -> None:
        # A pre-signed address carries no credential of the seller's: refused, it has expired, and asking the
        # channel again gives a new one. Reauthorising would not help.
        if response.status_code in (401, 403):
            reason = self.redact(error_reason(response))
            raise ChannelTransientError(f"{where}: the document's address was refused (HTTP {response.status_code}: "
                                        f"{reason}); it may have expired")
        self.raise_for_status(response, where=where)

    def _send(
        self, method: str, url: str, *, where: str, seconds: float, limit: int, headers: Mapping[str, str],
        gunzip: bool = False, **kwargs: Any,
    ) -> requests.Response:
        """One exchange, redirects and whole answer included, within `seconds`; the answer's body is read."""
        started = time.monotonic()
        with Deadline(seconds) as deadline:
            try:
                response = self._follow(method, url, where=where, deadline=deadline, headers=headers, **kwargs)
                try:
                    body = self._read_body(response, where=where, deadline=deadline, limit=limit,
                                           gunzip=gunzip and 200 <= response.status_code < 300)
                except BaseException:
                    response.close()
                    raise
            except ChannelError:
                raise
            except READ_FAILURES as exc:
                raise self._failure(exc, where=where, deadline=deadline) from exc
        response._content, response._content_consumed = body, True
        # Returns the connection to the pool: the body is read to its end.
        response.close()
        logger.debug(
            "channels.http.call service=%s method=%s path=%s status=%s bytes=%s seconds=%.2f",
            self.service, method, self.redact(response.url.split("?", 1)[0]), response.status_code, len(body),
            time.monotonic() - started,
        )
        return response

    def _late(self, where: str, deadline: Deadline) -> ChannelTransientError:
        return ChannelTransientError(f"{where}: no complete answer within {deadline.seconds:g} s")

    def _failure(self, exc: Exception, *, where: str, deadline: Deadline) -> ChannelTransientError:
        if deadline.passed():
            return self._late(where, deadline)
        if isinstance(exc, requests.Timeout | urllib3.exceptions.TimeoutError | TimeoutError):
            return ChannelTransientError(f"{where}: no answer within {self.timeout[1]:g} s")
        if isinstance(exc, requests.ConnectionError):
            return ChannelTransientError(f"{where}: could not connect ({self.redact(type(exc).__name__)})")
        if isinstance(exc, requests.RequestException):
            return ChannelTransientError(f"{where}: {self.redact(str(exc))[:200]}")
        return ChannelTransientError(f"{where}: the answer broke off ({type(exc).__name__})")

    def _follow(
        self, method: str, url: str, *, where: str, deadline: Deadline, headers: Mapping[str, str], **kwargs: Any
    ) -> requests.Response:
        """Send with redirects off, then follow a same-origin Location ourselves: requests would follow any."""
        start = origin(url)
        headers = {"Accept-Encoding": ACCEPT_ENCODING, **headers}
        for _hop in range(MAX_REDIRECTS + 1):
            left = deadline.remaining()
            if left <= 0:
                raise self._late(where, deadline)
            connect, read = self.timeout
            response = self.session.request(method, url, headers=headers, timeout=(min(connect, left), min(read, left)),
                                            allow_redirects=False, stream=True, **kwargs)
            target = self.session.get_redirect_target(response)
            if target is None:
                return response
            response.close()
            target = urljoin(url, target)
            try:
                same_origin = origin(target) == start
            except ValueError:
                same_origin = False
            if not same_origin:
                raise self._refuse(where, f"the channel redirected the call to {origin_text(target)}, away from "
                                          f"{origin_text(url)}: not followed, nothing was sent there")
            url = target
            # The Location is the whole new address; 301-303 are asked again with GET and no body, as requests
            # and browsers do, 307 and 308 as they were.
            kwargs.pop("params", None)
            if response.status_code not in (307, 308):
                if method != "HEAD" and (response.status_code in (302, 303) or method == "POST"):
                    method = "GET"
                for body_argument in ("data", "json", "files"):
                    kwargs.pop(body_argument, None)
                headers = {k: v for k, v in headers.items() if k.lower() not in ("content-type", "content-length")}
        raise ChannelTransientError(f"{where}: the channel redirected the call more than {MAX_REDIRECTS} times")

    def _read_body(self, response: requests.Response, *, where: str, deadline: Deadline, limit: int,
                   gunzip: bool) -> bytes:
        """The whole body, undoing its Content-Encoding (and gzip when `gunzip`), at most `limit` bytes both as
        received and once decompressed, and no later than the deadline."""
        too_large = f"{where}: the answer is larger than the {size_text(limit)} the hub reads; not read further"
        declared = response.headers.get("Content-Length", "").strip()
        if declared.isdigit() and int(declared) > limit:
            raise ChannelResponseTooLarge(too_large)
        decoders = content_decoders(response, limit=limit, what=where)
        if gunzip:
            decoders.append(BoundedInflater(limit=limit, wbits=GZIP_WBITS, what=f"{where} (gzip document)"))
        body = io.BytesIO()
        received = 0
        while True:
            if deadline.passed():
                raise self._late(where, deadline)
            # read1: at most one read from the socket, so the deadline is checked between the bytes of a drip.
            chunk = response.raw.read1(READ_CHUNK, decode_content=False)
            if not chunk:
                break
            received += len(chunk)
            if received > limit:
                raise ChannelResponseTooLarge(too_large)
            for decoder in decoders:
                chunk = decoder.feed(chunk)
            body.write(chunk)
        for decoder in decoders:
            decoder.finish()
        return body.getvalue()

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
