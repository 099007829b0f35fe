"""What a connector raises, and the token bucket a rate limit is; below `base` and `ratelimit`, which both
use them. `base` re-exports every name, so callers import them from there."""

from __future__ import annotations

from dataclasses import dataclass


class ChannelError(Exception):
    """Base of every error a connector raises. Its text never carries a secret."""


class ChannelAuthError(ChannelError):
    """401/403 or invalid_grant: the channel needs reauthorising by the seller."""


class ChannelRateLimited(ChannelError):
    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ChannelTransientError(ChannelError):
    """5xx, timeouts, connection errors: worth retrying with backoff."""


class ChannelPayloadError(ChannelError):
    """A response or one record that does not parse."""

    def __init__(self, message: str, *, record_id: str = "") -> None:
        super().__init__(message)
        self.record_id = record_id


class ChannelRejected(ChannelError):
    """The channel understood the request and refused it (4xx with a reason)."""


class ChannelResponseTooLarge(ChannelPayloadError):
    """An answer or document larger than the hub reads, on the wire or once decompressed."""


class ChannelHostRefused(ChannelError):
    """A call the hub would not send: to a host the channel's credentials may not go to, or across a redirect."""


@dataclass(frozen=True)
class RateLimit:
    """A token bucket: `rate` calls per second refilled, at most `burst` at once."""

    rate: float
    burst: int
