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
from contextlib import contextmanager
from functools import cache

import redis
from django.conf import settings

RELEASE_IF_OWNER = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end
"""


@cache
def _redis() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL)


@contextmanager
def channel_lock(*, channel_id: int, purpose: str, ttl: int = 900, wait: float = 0) -> Iterator[bool]:
    """Yield True when this caller holds the lock, False when another holds it for longer than `wait` s."""
    deadline = time.monotonic() + wait
    if settings.REDIS_URL:
        key, token = f"stockline:lock:{purpose}:{channel_id}", uuid.uuid4().hex
        client = _redis()
        while not (held := bool(client.set(key, token, nx=True, ex=ttl))) and time.monotonic() < deadline:
            time.sleep(0.05)
        try:
            yield held
        finally:
            if held:
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
