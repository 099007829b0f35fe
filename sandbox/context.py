"""What the handlers of a running sandbox share: its store, its rate-limit buckets and its cache of rendered
orders. `app.SandboxApp` makes one and hands it to the control API and, in each `api.Call`, to the channels'
emulations, which therefore need nothing of the app itself."""

from __future__ import annotations

from dataclasses import dataclass, field

from sandbox.ratelimit import RateLimiter
from sandbox.store import Store


class RenderCache:
    """Orders rendered in a channel's wire form, by (channel, order pk, revision, variant).

    Rendering dominates a page of 100 orders; orders rarely change between polls. Cleared when
    accounts are reset or replaced, because primary keys are reused then.
    """

    def __init__(self, limit: int = 200_000) -> None:
        self.limit = limit
        self._entries: dict[tuple, str] = {}

    def get(self, key: tuple) -> str | None:
        return self._entries.get(key)

    def put(self, key: tuple, text: str) -> None:
        if len(self._entries) >= self.limit:
            self._entries.clear()
        self._entries[key] = text

    def clear(self) -> None:
        self._entries.clear()


@dataclass
class SandboxContext:
    store: Store
    limiter: RateLimiter = field(default_factory=RateLimiter)
    render_cache: RenderCache = field(default_factory=RenderCache)
