"""Rate-limit buckets, kept in memory: they describe the last seconds, not state worth keeping.

Amazon gives each operation a token bucket (`rate` tokens a second, at most `burst`); EKM's
leaky bucket of 40 draining 2 a second is the same arithmetic seen from the other side
(remaining = burst - level), so one class serves both.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class Limit:
    rate: float
    burst: int


@dataclass(frozen=True)
class Decision:
    allowed: bool
    limit: Limit
    remaining: int
    retry_after: int


class Bucket:
    def __init__(self, limit: Limit) -> None:
        self.limit = limit
        self.tokens = float(limit.burst)
        self.updated = time.monotonic()

    def take(self, cost: float = 1.0) -> Decision:
        now = time.monotonic()
        self.tokens = min(float(self.limit.burst), self.tokens + (now - self.updated) * self.limit.rate)
        self.updated = now
        if self.tokens >= cost:
            self.tokens -= cost
            return Decision(True, self.limit, int(self.tokens), 0)
        wait = (cost - self.tokens) / self.limit.rate if self.limit.rate > 0 else 3600
        return Decision(False, self.limit, int(self.tokens), max(1, math.ceil(wait)))


class RateLimiter:
    """Buckets by (account id, bucket key); a bucket is rebuilt when its configured limit changes."""

    def __init__(self) -> None:
        self._buckets: dict[tuple[int, str], Bucket] = {}
        self._lock = threading.Lock()

    def take(self, account_id: int, key: str, limit: Limit, cost: float = 1.0) -> Decision:
        with self._lock:
            bucket = self._buckets.get((account_id, key))
            if bucket is None or bucket.limit != limit:
                bucket = self._buckets[(account_id, key)] = Bucket(limit)
            return bucket.take(cost)

    def give_back(self, account_id: int, key: str, amount: float) -> float:
        """Return part of a charge (Shopify refunds what a query did not use); the tokens now held."""
        with self._lock:
            bucket = self._buckets.get((account_id, key))
            if bucket is None:
                return 0.0
            bucket.tokens = min(float(bucket.limit.burst), bucket.tokens + amount)
            return bucket.tokens

    def forget(self, account_id: int | None = None) -> None:
        with self._lock:
            if account_id is None:
                self._buckets.clear()
            else:
                for key in [key for key in self._buckets if key[0] == account_id]:
                    del self._buckets[key]
