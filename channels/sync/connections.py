"""The glue between Channel rows and connectors: building one, Test and Reauthorise.

Connectors never touch the database; what they need from it comes through here: a `ConnectorConfig`
from the Channel row, a credential store backed by `Channel.credentials`, and the shared rate limiter.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from functools import cache

import redis
from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings
from django.db import transaction

from channels.connectors import connector_class
from channels.connectors.base import (
    ChannelAuthError,
    ChannelError,
    ChannelTransientError,
    ConnectionResult,
    Connector,
    ConnectorConfig,
    CredentialStore,
    HttpBounds,
    RateLimiter,
)
from channels.connectors.ratelimit import RedisLimiter, in_process_limiter
from channels.endpoints import channel_allowed_hosts
from channels.models import Channel, OrderStatusMapping
from channels.services import channel_status_mappings_add
from channels.sync.locks import channel_lock
from channels.sync.runs import channel_clear_reauthorisation, channel_flag_reauthorisation, reauthorisation_flagged
from channels.sync.text import is_storable

MAX_STATUS_LENGTH = OrderStatusMapping._meta.get_field("channel_status").max_length

logger = logging.getLogger(__name__)

# The account settings every ConnectorConfig carries by name; a kind's others travel in `extra`.
COMMON_ACCOUNT_FIELDS = {"api_base_url", "auth_base_url", "seller_id", "marketplace_id", "shop_url"}
# How long the credentials a Test before Save rotated wait for the Save.
TESTED_CREDENTIALS_TTL = 900


class ChannelCredentialStore:
    """`base.CredentialStore` over `Channel.credentials`, always read fresh: another worker may have rotated it."""

    def __init__(self, channel_id: int, *, lock_wait: float = 30) -> None:
        self.channel_id = channel_id
        self.lock_wait = lock_wait

    def load(self) -> dict[str, str]:
        return dict(Channel.objects.filter(pk=self.channel_id).values_list("credentials", flat=True).first() or {})

    def save(self, credentials: Mapping[str, str]) -> None:
        # Merged under a row lock, so a save never drops a key another save wrote a moment before.
        with transaction.atomic():
            current = (
                Channel.objects.select_for_update().filter(pk=self.channel_id)
                .values_list("credentials", flat=True).first()
            )
            Channel.objects.filter(pk=self.channel_id).update(credentials={**(current or {}), **credentials})

    @contextmanager
    def locked(self) -> Iterator[None]:
        with channel_lock(channel_id=self.channel_id, purpose="credentials", ttl=60, wait=self.lock_wait) as held:
            if not held:
                raise ChannelTransientError("another worker is renewing this channel's tokens; try again shortly")
            yield


@cache
def _redis_limiter(url: str) -> RedisLimiter:
    return RedisLimiter(redis.Redis.from_url(url))


class UnlimitedLimiter:
    """CHANNEL_RATE_LIMITS=off: for benchmarks against the sandbox, which measure the hub, not the quotas."""

    def acquire(self, key: str, limit, *, max_wait: float) -> None:
        return None

    def hold_off(self, key: str, limit, *, seconds: float) -> None:
        return None


def channel_limiter() -> RateLimiter:
    """Buckets in Redis when there is one, so every worker on every machine shares a channel's quota."""
    if settings.CHANNEL_RATE_LIMITS == "off":
        return UnlimitedLimiter()
    return _redis_limiter(settings.REDIS_URL) if settings.REDIS_URL else in_process_limiter()


def channel_http_bounds() -> HttpBounds:
    """The deadlines and sizes of every call to a channel, from the CHANNEL_HTTP_* settings."""
    return HttpBounds(
        deadline=settings.CHANNEL_HTTP_DEADLINE_SECONDS,
        connect_timeout=settings.CHANNEL_HTTP_CONNECT_TIMEOUT,
        max_response_bytes=settings.CHANNEL_HTTP_MAX_RESPONSE_BYTES,
        document_deadline=settings.CHANNEL_HTTP_DOCUMENT_DEADLINE_SECONDS,
        max_document_bytes=settings.CHANNEL_HTTP_MAX_DOCUMENT_BYTES,
    )


def channel_connector(*, channel: Channel, credentials: CredentialStore | None = None) -> Connector:
    """The channel's connector; `credentials` replaces the row's secrets (an unsaved channel has none)."""
    cls = connector_class(channel.kind)
    config = ConnectorConfig(
        channel_id=channel.pk,
        kind=channel.kind,
        name=channel.name,
        api_base_url=channel.api_base_url,
        auth_base_url=channel.auth_base_url or channel.api_base_url,
        seller_id=channel.seller_id,
        marketplace_id=channel.marketplace_id,
        shop_url=channel.shop_url,
        currency=channel.currency,
        allowed_hosts=channel_allowed_hosts(
            kind=channel.kind, urls={field: getattr(channel, field) for field in cls.seller_hosted_urls}),
        extra={name: getattr(channel, name) for name in set(cls.account_fields) - COMMON_ACCOUNT_FIELDS},
        http=channel_http_bounds(),
    )
    store = credentials if credentials is not None else ChannelCredentialStore(channel.pk)
    return cls(config, store, channel_limiter())


def _connection_attempt(*, channel_id: int, attempt) -> ConnectionResult:
    channel = Channel.objects.get(pk=channel_id)
    try:
        result = attempt(channel_connector(channel=channel))
    except ChannelAuthError as exc:
        channel_flag_reauthorisation(channel_id=channel_id, reason=str(exc))
        logger.warning("channels.connection.auth_failed channel=%s", channel_id)
        return ConnectionResult(False, f"Authorisation failed: {exc}")
    except ChannelError as exc:
        return ConnectionResult(False, f"Could not connect: {exc}")
    if result.ok:
        channel_clear_reauthorisation(channel_id=channel_id)
    return result


def channel_order_statuses(*, channel: Channel) -> list[str]:
    """The order statuses the channel offers, for the Order Status Mapping page; those new to the hub are
    stored as Unmapped, as the order download stores those it sees, so the config page's summary counts
    what the mapping page shows. A refused credential flags the channel for reauthorisation like any other
    call; ChannelError is raised for the page to say why."""
    with reauthorisation_flagged(channel_id=channel.pk):
        offered = list(channel_connector(channel=channel).order_statuses())
    storable = [status for status in offered if 0 < len(status) <= MAX_STATUS_LENGTH and is_storable(status)]
    channel_status_mappings_add(channel_id=channel.pk, statuses=storable)
    return offered


def channel_locations_offered(*, channel: Channel) -> list[tuple[str, str]]:
    """The channel's own locations, for the Location Mapping page; a refused credential flags the channel for
    reauthorisation like any other call, and ChannelError is raised for the page to say why."""
    with reauthorisation_flagged(channel_id=channel.pk):
        return channel_connector(channel=channel).channel_locations()


def channel_test(*, channel_id: int) -> ConnectionResult:
    """Call the channel with the stored credentials. A refusal flags the channel for reauthorisation."""
    return _connection_attempt(channel_id=channel_id, attempt=lambda connector: connector.test_connection())


def channel_reauthorise(*, channel_id: int, authorization_code: str = "", redirect_uri: str = "") -> ConnectionResult:
    """Exchange a new authorisation (code or token) for stored credentials, or prove the stored ones work.

    New credentials are tried on a copy of the stored ones and saved only once the channel has not refused
    them: a mistyped token or a stale code is reported, while the channel keeps the credentials it works
    with and its health (a refusal of the new ones says nothing of the stored ones).
    """
    code = authorization_code.strip()
    if not code:
        return _connection_attempt(channel_id=channel_id, attempt=lambda connector: connector.reauthorise())
    channel = Channel.objects.get(pk=channel_id)
    stored = ChannelCredentialStore(channel_id)
    before = stored.load()
    trial = TransientCredentialStore(before)
    try:
        # A code from the consent page is exchanged with the redirect URI it was sent to, as OAuth 2.0 asks.
        consent = {"redirect_uri": redirect_uri} if redirect_uri else {}
        result = channel_connector(channel=channel, credentials=trial).reauthorise(authorization_code=code, **consent)
    except ChannelAuthError as exc:
        logger.warning("channels.connection.reauthorisation_refused channel=%s", channel_id)
        return ConnectionResult(False, f"Authorisation failed: {exc} The stored credentials are unchanged.")
    except ChannelError as exc:
        result = ConnectionResult(False, f"Could not connect: {exc}")
    # Only what the channel issued: a token another worker rotated meanwhile is not put back to the old one.
    issued = {key: value for key, value in trial.credentials.items() if before.get(key) != value}
    if issued:
        stored.save(issued)
    if result.ok:
        channel_clear_reauthorisation(channel_id=channel_id)
    return result


# --- Listing download -------------------------------------------------------------------------------

class TransientCredentialStore:
    """`base.CredentialStore` over credentials typed into a form and not saved yet: a token the
    channel rotates during the test lives only as long as the test."""

    def __init__(self, credentials: Mapping[str, str]) -> None:
        self.credentials = dict(credentials)

    def load(self) -> dict[str, str]:
        return dict(self.credentials)

    def save(self, credentials: Mapping[str, str]) -> None:
        self.credentials.update(credentials)

    @contextmanager
    def locked(self) -> Iterator[None]:
        yield


def _digest(credentials: Mapping[str, str]) -> str:
    return hashlib.sha256(json.dumps(dict(credentials), sort_keys=True).encode()).hexdigest()


def _sealer() -> Fernet:
    # A key of its own, derived from SECRET_KEY: what it seals lives at most TESTED_CREDENTIALS_TTL.
    key = hashlib.sha256(f"channels.tested-credentials:{settings.SECRET_KEY}".encode()).digest()
    return Fernet(base64.urlsafe_b64encode(key))


def channel_test_unsaved(*, channel: Channel, credentials: Mapping[str, str]) -> tuple[ConnectionResult, str]:
    """Test before Save: call the channel with settings and secrets from the add form, storing no channel.

    EKM refresh tokens are single-use: a test that rotated them returns the new ones sealed (encrypted,
    bound to the typed secrets, valid for TESTED_CREDENTIALS_TTL) so that the Save that follows stores
    tokens that still work (`tested_credentials_open`). Returns the result and that seal ("" when
    nothing rotated).
    """
    store = TransientCredentialStore(credentials)
    connector = channel_connector(channel=channel, credentials=store)
    try:
        result = connector.test_connection()
    except ChannelAuthError as exc:
        result = ConnectionResult(False, f"Authorisation failed: {exc}")
    except ChannelError as exc:
        result = ConnectionResult(False, f"Could not connect: {exc}")
    if store.credentials == dict(credentials):
        return result, ""
    sealed = _sealer().encrypt(json.dumps({"typed": _digest(credentials), "credentials": store.credentials}).encode())
    return result, sealed.decode()


def tested_credentials_open(*, sealed: str, typed: Mapping[str, str]) -> dict[str, str] | None:
    """The credentials a Test before Save rotated, if the seal is fresh and the typed secrets are the same."""
    if not sealed:
        return None
    try:
        entry = json.loads(_sealer().decrypt(sealed.encode(), ttl=TESTED_CREDENTIALS_TTL))
    except InvalidToken:
        return None
    return entry["credentials"] if entry["typed"] == _digest(typed) else None
