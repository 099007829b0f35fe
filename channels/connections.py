"""The glue between Channel rows and connectors: building one, testing, reauthorising, downloading listings.

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
from datetime import timedelta
from functools import cache

import redis
from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings
from django.db import transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone

from channels.connectors import connector_class
from channels.connectors.base import (
    ChannelAuthError,
    ChannelError,
    ChannelTransientError,
    ConnectionResult,
    Connector,
    ConnectorConfig,
    CredentialStore,
    ExternalListing,
    HttpBounds,
    RateLimiter,
    RecordError,
)
from channels.connectors.ratelimit import RedisLimiter, in_process_limiter
from channels.endpoints import channel_allowed_hosts
from channels.locks import channel_lock
from channels.models import Channel, ChannelListing, SyncRun
from channels.services import listings_link_downloaded, sync_runs_interrupted_close

logger = logging.getLogger(__name__)

# A download flagged as running for longer than this died without clearing its flag: the next may start.
# The account settings every ConnectorConfig carries by name; a kind's others travel in `extra`.
COMMON_ACCOUNT_FIELDS = {"api_base_url", "auth_base_url", "seller_id", "marketplace_id", "shop_url"}
STALE_DOWNLOAD_AFTER = timedelta(hours=6)
MAX_RECORDED_ERRORS = 500
# How long the credentials a Test before Save rotated wait for the Save.
TESTED_CREDENTIALS_TTL = 900
LISTING_UPDATE_FIELDS = [
    "title", "external_id", "is_active", "fulfilled_by_channel", "channel_quantity", "channel_price", "downloaded_at",
]


class ListingDownloadRunning(Exception):
    """A listing download for this channel is already under way."""


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
        allowed_hosts=channel_allowed_hosts(kind=channel.kind),
        extra={name: getattr(channel, name) for name in set(cls.account_fields) - COMMON_ACCOUNT_FIELDS},
        http=channel_http_bounds(),
    )
    store = credentials if credentials is not None else ChannelCredentialStore(channel.pk)
    return cls(config, store, channel_limiter())


def _flag_reauthorisation(*, channel_id: int, reason: str) -> None:
    Channel.objects.filter(pk=channel_id).update(needs_reauthorisation=True, reauthorisation_reason=reason[:255])


def _clear_reauthorisation(*, channel_id: int) -> None:
    Channel.objects.filter(pk=channel_id).update(needs_reauthorisation=False, reauthorisation_reason="")


def _connection_attempt(*, channel_id: int, attempt) -> ConnectionResult:
    channel = Channel.objects.get(pk=channel_id)
    try:
        result = attempt(channel_connector(channel=channel))
    except ChannelAuthError as exc:
        _flag_reauthorisation(channel_id=channel_id, reason=str(exc))
        logger.warning("channels.connection.auth_failed channel=%s", channel_id)
        return ConnectionResult(False, f"Authorisation failed: {exc}")
    except ChannelError as exc:
        return ConnectionResult(False, f"Could not connect: {exc}")
    if result.ok:
        _clear_reauthorisation(channel_id=channel_id)
    return result


def channel_test(*, channel_id: int) -> ConnectionResult:
    """Call the channel with the stored credentials. A refusal flags the channel for reauthorisation."""
    return _connection_attempt(channel_id=channel_id, attempt=lambda connector: connector.test_connection())


def channel_reauthorise(*, channel_id: int, authorization_code: str = "") -> ConnectionResult:
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
        result = channel_connector(channel=channel, credentials=trial).reauthorise(authorization_code=code)
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
        _clear_reauthorisation(channel_id=channel_id)
    return result


# --- Listing download -------------------------------------------------------------------------------


def listings_with_drift(*, channel_id: int) -> QuerySet[ChannelListing]:
    """Listings whose quantity on the channel is not what the hub last sent (changed there, or lost)."""
    return ChannelListing.objects.filter(
        channel_id=channel_id, channel_quantity__isnull=False, last_pushed_quantity__isnull=False,
    ).exclude(channel_quantity=F("last_pushed_quantity"))


def _download_claim(*, channel_id: int) -> bool:
    """Set the in-progress flag unless another download holds it; one conditional UPDATE, so only one wins."""
    now = timezone.now()
    free = (
        Q(listing_download_in_progress=False)
        | Q(listing_download_started_at__isnull=True)
        | Q(listing_download_started_at__lt=now - STALE_DOWNLOAD_AFTER)
    )
    return bool(Channel.objects.filter(free, pk=channel_id).update(
        listing_download_in_progress=True,
        listing_download_started_at=now,
        listing_download_completed_at=None,
        listing_download_estimated_completion=None,
        listing_download_done=0,
        listing_download_total=0,
    ))


def listings_store_page(*, channel_id: int, listings: tuple[ExternalListing, ...]) -> int:
    """Upsert one page by (channel, SKU) and link the unlinked to the stock item with the same SKU (marked for
    a push, the channel's push scheduled on commit).

    Staff's settings on a listing (its stock item, overrides, push state) are never overwritten.
    Returns how many listings the page held.
    """
    now = timezone.now()
    # One row per SKU: PostgreSQL refuses to update the same row twice in one statement.
    by_sku = {listing.channel_sku[:100]: listing for listing in listings if listing.channel_sku.strip()}
    rows = [
        ChannelListing(
            channel_id=channel_id,
            channel_sku=sku,
            external_id=listing.external_id[:100],
            title=listing.title[:255],
            is_active=listing.is_active,
            fulfilled_by_channel=listing.fulfilled_by_channel,
            channel_quantity=listing.quantity,
            channel_price=listing.price,
            downloaded_at=now,
        )
        for sku, listing in by_sku.items()
    ]
    with transaction.atomic():
        ChannelListing.objects.bulk_create(
            rows, update_conflicts=True, unique_fields=["channel", "channel_sku"], update_fields=LISTING_UPDATE_FIELDS,
        )
        listings_link_downloaded(channel_id=channel_id, channel_skus=by_sku)
    return len(rows)


def _progress(*, channel_id: int, started, done: int, total: int) -> None:
    now = timezone.now()
    # Linear: if `done` of `total` took this long, the rest takes proportionally as long.
    estimate = started + (now - started) * (total / done) if done and total else None
    Channel.objects.filter(pk=channel_id).update(
        listing_download_done=done, listing_download_total=max(total, done),
        listing_download_estimated_completion=estimate,
    )


def _finish(run: SyncRun, *, processed: int, errors: list[RecordError], error: str = "") -> SyncRun:
    run.processed = processed
    run.failed = len(errors)
    run.errors = [{"record_id": e.record_id, "reason": e.reason} for e in errors[:MAX_RECORDED_ERRORS]]
    run.error = error
    if error:
        run.status = SyncRun.Status.PARTIAL if processed else SyncRun.Status.FAILED
    else:
        run.status = SyncRun.Status.PARTIAL if errors else SyncRun.Status.SUCCESS
    run.finished_at = timezone.now()
    run.save()
    return run


def listings_download(*, channel_id: int) -> SyncRun:
    """Download every listing of the channel, upsert and link them, with progress on the channel row.

    Raises ListingDownloadRunning when another download holds the channel, and re-raises any failure
    after recording it in the SyncRun (a task retries on transient errors).
    """
    channel = Channel.objects.get(pk=channel_id)
    if not _download_claim(channel_id=channel_id):
        raise ListingDownloadRunning(f"A listing download for {channel.name} is already running.")
    sync_runs_interrupted_close(channel_id=channel_id, kind=SyncRun.Kind.LISTINGS)
    run = SyncRun.objects.create(channel=channel, kind=SyncRun.Kind.LISTINGS)
    processed, errors = 0, []
    try:
        connector = channel_connector(channel=channel)
        for page in connector.fetch_listings():
            processed += listings_store_page(channel_id=channel_id, listings=page.listings)
            errors.extend(page.errors)
            _progress(channel_id=channel_id, started=run.started_at, done=page.done, total=page.total)
    except Exception as exc:
        if isinstance(exc, ChannelAuthError):
            _flag_reauthorisation(channel_id=channel_id, reason=str(exc))
        _finish(run, processed=processed, errors=errors, error=f"{type(exc).__name__}: {exc}")
        raise
    finally:
        Channel.objects.filter(pk=channel_id).update(
            listing_download_in_progress=False, listing_download_completed_at=timezone.now(),
        )
    # A listing the complete download did not see is gone from the channel.
    ChannelListing.objects.filter(channel_id=channel_id, downloaded_at__lt=run.started_at, is_active=True).update(
        is_active=False
    )
    logger.info("channels.listings.downloaded channel=%s listings=%s errors=%s", channel_id, processed, len(errors))
    return _finish(run, processed=processed, errors=errors)


def listings_download_summary(*, run: SyncRun) -> str:
    """One line for staff: what the download stored, linked, could not read, and where quantities drifted."""
    listings = ChannelListing.objects.filter(channel_id=run.channel_id)
    unlinked = listings.filter(stock_item__isnull=True).count()
    drift = listings_with_drift(channel_id=run.channel_id).count()
    return (
        f"Downloaded {run.processed} listing(s) for {run.channel.name}: {unlinked} not linked to a stock item, "
        f"{run.failed} unreadable, {drift} with a channel quantity different from the last one sent."
    )


def channel_by_name(*, name: str) -> Channel:
    try:
        return Channel.objects.get(name=name)
    except Channel.DoesNotExist:
        known = ", ".join(Channel.objects.order_by("name").values_list("name", flat=True)[:20]) or "none"
        raise Channel.DoesNotExist(f"No channel is named {name!r} (channels: {known}).") from None


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
