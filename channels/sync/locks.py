"""Locks that hold across every worker: one order download and one push per channel at a time, one
despatch message per order at a time.

With REDIS_URL set a lock is a Redis key taken with SET NX and a short expiry (`LOCK_TTL`), which a
heartbeat thread of the holder renews every third of it while the work goes on. A holder that dies
(SIGKILL, a power cut) stops renewing, so its lock is gone within `LOCK_TTL` however long the work would
have taken. The key holds a token of this holding alone, and renewal and release compare it first: a holder
whose lock lapsed (its process stalled for longer than `LOCK_TTL`) can neither renew nor delete the lock a
newer holder has taken. Without Redis (the single-machine default) it is an advisory file lock under
var/locks, which the operating system drops the moment its process dies.

`owner` names the Celery task holding the lock (its id). A task delivered again while a delivery of itself
still holds the lock (the broker gave it out again after its visibility timeout while it runs, or its worker
died less than `LOCK_TTL` ago) gets `LockHeldByItself`, and retries rather than drops the message: a copy
of it stays queued until the holder finishes or its lock lapses.
"""

from __future__ import annotations

import fcntl
import logging
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from functools import cache

import redis
from django.conf import settings

from channels.connectors.base import ChannelTransientError

logger = logging.getLogger(__name__)

# How long a dead holder's lock outlives it at most. The heartbeat renews every third of it, so a holder
# must stall for two thirds of it (20 s) before it loses its lock.
LOCK_TTL = 30

# Returns 1 when taken, else who holds it ("" if it lapsed meanwhile).
TAKE = """
if redis.call('set', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2]) then return 1 end
return redis.call('get', KEYS[1]) or ''
"""
RENEW_IF_OWNER = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('expire', KEYS[1], ARGV[2]) else return 0 end
"""
RELEASE_IF_OWNER = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end
"""


class LockHeldByItself(Exception):
    """Another delivery of the same task holds the lock: it still runs, or it died less than LOCK_TTL ago."""


@cache
def _redis() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL)


def _owner_of(token: str) -> str:
    return token.rpartition("/")[0]


def _heartbeat(*, client: redis.Redis, key: str, token: str, ttl: int, stop: threading.Event) -> None:
    while not stop.wait(ttl / 3):
        try:
            if not client.eval(RENEW_IF_OWNER, 1, key, token, ttl):
                # Lapsed while this process stalled, perhaps taken by another: the work goes on unguarded, which
                # every service guarded by a lock survives (they are safe to run twice), but it is worth knowing.
                logger.error("channels.lock.lost key=%s", key)
                return
        except redis.RedisError as exc:
            # The lock lapses on its own if Redis stays away for LOCK_TTL; until then keep trying.
            logger.warning("channels.lock.renewal_failed key=%s error=%s", key, type(exc).__name__)


@contextmanager
def _redis_lock(*, name: str, ttl: int, wait: float, owner: str) -> Iterator[bool]:
    key, token = f"stockline:lock:{name}", f"{owner}/{uuid.uuid4().hex}"
    client = _redis()
    deadline = time.monotonic() + wait
    try:
        while (holder := client.eval(TAKE, 1, key, token, ttl)) != 1 and time.monotonic() < deadline:
            time.sleep(0.05)
    except redis.RedisError as exc:
        # Nothing has started yet: the caller stops cleanly and its task retries once Redis is back.
        raise ChannelTransientError(f"the channel lock's Redis is unavailable ({type(exc).__name__})") from exc
    if holder != 1:
        if owner and _owner_of(holder.decode()) == owner:
            raise LockHeldByItself(name)
        yield False
        return
    stop = threading.Event()
    renewal = threading.Thread(
        target=_heartbeat, kwargs={"client": client, "key": key, "token": token, "ttl": ttl, "stop": stop},
        name=f"lock {name}", daemon=True,
    )
    renewal.start()
    try:
        yield True
    finally:
        stop.set()
        renewal.join()
        # If Redis went away meanwhile the lock lapses on its own within `ttl`.
        with suppress(redis.RedisError):
            client.eval(RELEASE_IF_OWNER, 1, key, token)


@contextmanager
def _file_lock(*, name: str, wait: float, owner: str) -> Iterator[bool]:
    folder = settings.VAR_DIR / "locks"
    folder.mkdir(exist_ok=True)
    deadline = time.monotonic() + wait
    with open(folder / f"{name.replace(':', '-')}.lock", "a+") as handle:
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                held = True
            except BlockingIOError:
                held = False
            if held or time.monotonic() >= deadline:
                break
            time.sleep(0.05)
        if not held:
            handle.seek(0)
            if owner and handle.read() == owner:
                raise LockHeldByItself(name)
            yield False
            return
        # Who holds it, for a second delivery of the same task to recognise itself.
        handle.truncate(0)
        handle.write(owner)
        handle.flush()
        try:
            yield True
        finally:
            handle.truncate(0)
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextmanager
def named_lock(*, name: str, ttl: int = LOCK_TTL, wait: float = 0, owner: str = "") -> Iterator[bool]:
    """Yield True when this caller holds the lock `name`, False when another holds it for longer than `wait` s.

    Raises LockHeldByItself instead of yielding False when the holder is a delivery of task `owner`.
    """
    if settings.REDIS_URL:
        with _redis_lock(name=name, ttl=ttl, wait=wait, owner=owner) as held:
            yield held
    else:
        with _file_lock(name=name, wait=wait, owner=owner) as held:
            yield held


@contextmanager
def channel_lock(
    *, channel_id: int, purpose: str, ttl: int = LOCK_TTL, wait: float = 0, owner: str = ""
) -> Iterator[bool]:
    """The channel's lock for one kind of work ("orders", "push", "fba", "credentials"...): see named_lock."""
    with named_lock(name=f"{purpose}:{channel_id}", ttl=ttl, wait=wait, owner=owner) as held:
        yield held


@contextmanager
def order_lock(*, order_id: int, purpose: str, wait: float = 0, owner: str = "") -> Iterator[bool]:
    """The order's lock for one kind of message to its channel ("despatch", "fba-submit"): see named_lock."""
    with named_lock(name=f"order-{purpose}:{order_id}", wait=wait, owner=owner) as held:
        yield held
