"""Per-channel locks that hold across every worker: one order download and one push per channel at a time.

With REDIS_URL set the lock is a Redis key taken with SET NX and an expiry (so a killed worker cannot
hold it forever) and released only by its owner. Without Redis (the single-machine default) it is an
advisory file lock under var/locks, which the operating system drops when the process dies.
"""

from __future__ import annotations

import fcntl
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from functools import cache

import redis
from django.conf import settings

from channels.connectors.base import ChannelTransientError

RELEASE_IF_OWNER = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end
"""
# Taken when free, or taken over from the same owner: a task delivered again after its worker died.
TAKE = """
if redis.call('set', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2]) then return 1 end
if redis.call('get', KEYS[1]) == ARGV[1] then redis.call('expire', KEYS[1], ARGV[2]) return 1 end
return 0
"""


@cache
def _redis() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL)


@contextmanager
def channel_lock(
    *, channel_id: int, purpose: str, ttl: int = 900, wait: float = 0, owner: str = ""
) -> Iterator[bool]:
    """Yield True when this caller holds the lock, False when another holds it for longer than `wait` s.

    `owner` (a Celery task id) lets the same task take back a lock its killed worker left behind: with
    acks_late the task is delivered again at once, while the dead worker's lock would stand for `ttl`.
    """
    deadline = time.monotonic() + wait
    if settings.REDIS_URL:
        key, token = f"stockline:lock:{purpose}:{channel_id}", owner or uuid.uuid4().hex
        client = _redis()
        try:
            while not (held := bool(client.eval(TAKE, 1, key, token, ttl))) and time.monotonic() < deadline:
                time.sleep(0.05)
        except redis.RedisError as exc:
            # Nothing has started yet: the caller stops cleanly and its task retries once Redis is back.
            raise ChannelTransientError(f"the channel lock's Redis is unavailable ({type(exc).__name__})") from exc
        try:
            yield held
        finally:
            if held:
                # If Redis went away meanwhile the lock expires on its own after `ttl`.
                with suppress(redis.RedisError):
                    client.eval(RELEASE_IF_OWNER, 1, key, token)
        return
    folder = settings.VAR_DIR / "locks"
    folder.mkdir(exist_ok=True)
    with open(folder / f"{purpose}-{channel_id}.lock", "a+") as handle:
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                held = True
            except BlockingIOError:
                held = False
            if held or time.monotonic() >= deadline:
                break
            time.sleep(0.05)
        try:
            yield held
        finally:
            if held:
                fcntl.flock(handle, fcntl.LOCK_UN)
