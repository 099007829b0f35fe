"""Token buckets per (channel, operation), so a connector stays under each channel's quotas.

Two implementations of `base.RateLimiter`: one in process memory (the single-machine default, shared by
every connector in the process) and one in Redis (an atomic Lua script), shared by every worker on every
machine. A caller that would have to wait longer than its `max_wait` does not sleep: it gets
ChannelRateLimited with the wait, so a Celery task can retry later instead of holding a worker.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from functools import cache

import redis

from channels.connectors.errors import ChannelRateLimited, ChannelTransientError, RateLimit


def _refill(tokens: float, elapsed: float, limit: RateLimit) -> float:
    return min(float(limit.burst), tokens + max(0.0, elapsed) * limit.rate)


class InProcessLimiter:
    def __init__(
        self, *, clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep
    ) -> None:
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._buckets: dict[str, tuple[float, float]] = {}

    def _state(self, key: str, limit: RateLimit, now: float) -> float:
        tokens, at = self._buckets.get(key, (float(limit.burst), now))
        return _refill(tokens, now - at, limit)

    def acquire(self, key: str, limit: RateLimit, *, max_wait: float) -> None:
        with self._lock:
            now = self._clock()
            tokens = self._state(key, limit, now)
            wait = 0.0 if tokens >= 1 else (1 - tokens) / limit.rate
            if wait > max_wait:
                self._buckets[key] = (tokens, now)
                raise ChannelRateLimited(f"rate limit for {key.split(':')[-1]}: next call in {wait:.0f} s",
                                         retry_after=wait)
            # The token is taken now (the bucket may go below zero), so concurrent callers queue up in turn.
            self._buckets[key] = (tokens - 1, now)
        if wait > 0:
            self._sleep(wait)

    def hold_off(self, key: str, limit: RateLimit, *, seconds: float) -> None:
        with self._lock:
            now = self._clock()
            tokens = self._state(key, limit, now)
            self._buckets[key] = (min(tokens, 1 - seconds * limit.rate), now)

    def reset(self) -> None:
        with self._lock:
            self._buckets.clear()


@cache
def in_process_limiter() -> InProcessLimiter:
    """The process-wide limiter: every connector of a channel in this process shares its buckets."""
    return InProcessLimiter()


# KEYS[1] bucket; ARGV rate, burst, mode ("acquire" | "hold_off"), max_wait or seconds.
# Redis's own clock, so every machine agrees; floats go back as strings (Lua numbers become integers).
BUCKET_SCRIPT = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local arg = tonumber(ARGV[4])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or burst
local at = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
local wait = 0
local granted = 1
if ARGV[3] == 'acquire' then
  if tokens < 1 then wait = (1 - tokens) / rate end
  if wait <= arg then tokens = tokens - 1 else granted = 0 end
else
  tokens = math.min(tokens, 1 - arg * rate)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('EXPIRE', KEYS[1], math.ceil((burst - tokens) / rate) + 60)
return {granted, tostring(wait)}
"""


class RedisLimiter:
    def __init__(self, client, *, prefix: str = "stockline:ratelimit:", sleep: Callable[[float], None] = time.sleep):
        self._script = client.register_script(BUCKET_SCRIPT)
        self._prefix = prefix
        self._sleep = sleep

    def _run(self, key: str, args: list) -> list:
        try:
            return self._script(keys=[self._prefix + key], args=args)
        except redis.RedisError as exc:
            # A Redis restart is a moment's outage: the caller stops cleanly and its task retries.
            raise ChannelTransientError(f"the rate limiter's Redis is unavailable ({type(exc).__name__})") from exc

    def acquire(self, key: str, limit: RateLimit, *, max_wait: float) -> None:
        granted, wait = self._run(key, [limit.rate, limit.burst, "acquire", max_wait])
        wait = float(wait)
        if not int(granted):
            raise ChannelRateLimited(
                f"rate limit for {key.split(':')[-1]}: next call in {math.ceil(wait)} s", retry_after=wait
            )
        if wait > 0:
            self._sleep(wait)

    def hold_off(self, key: str, limit: RateLimit, *, seconds: float) -> None:
        self._run(key, [limit.rate, limit.burst, "hold_off", seconds])
