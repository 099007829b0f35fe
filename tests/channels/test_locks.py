"""The per-channel locks: held while the holder lives, gone soon after it dies, never freed by a stale holder.

Each test runs on both paths: the file lock (no Redis, the single-machine default) and, with REDIS_URL set,
the Redis lock with its heartbeat. A dying holder is a real process killed with SIGKILL.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import redis
from django.conf import settings

from channels.sync import locks
from channels.sync.locks import LockHeldByItself, channel_lock, named_lock

ROOT = Path(__file__).resolve().parents[2]
HOLD_AND_SLEEP = """
import django, os, sys, time
django.setup()
from django.conf import settings
from pathlib import Path
settings.VAR_DIR = Path(sys.argv[1])
from channels.sync.locks import named_lock
with named_lock(name="orders:1", ttl=int(sys.argv[2]), owner="task-1") as held:
    print("held" if held else "busy", flush=True)
    time.sleep(600)
"""


@pytest.fixture(params=["file", "redis"])
def backend(request, settings):
    if request.param == "redis":
        if not settings.REDIS_URL:
            pytest.skip("needs a Redis server: set REDIS_URL")
        redis.Redis.from_url(settings.REDIS_URL).delete("stockline:lock:orders:1")
    else:
        settings.REDIS_URL = ""
    locks._redis.cache_clear()
    yield request.param
    locks._redis.cache_clear()


def holder_process(*, ttl: int) -> subprocess.Popen:
    """Another worker taking the lock and working on until it is killed."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", "REDIS_URL": settings.REDIS_URL,
           "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen([sys.executable, "-c", HOLD_AND_SLEEP, str(settings.VAR_DIR), str(ttl)],
                               env=env, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "held"
    return process


def free() -> bool:
    with named_lock(name="orders:1") as held:
        return held


def test_a_lock_is_held_for_as_long_as_its_holder_works_beyond_its_ttl(backend):
    with named_lock(name="orders:1", ttl=2) as held:
        assert held
        # Three times the lock's lifetime: the heartbeat keeps it.
        for _ in range(6):
            time.sleep(1)
            assert not free()
    assert free()


def test_a_killed_holders_lock_is_free_within_its_ttl(backend):
    process = holder_process(ttl=2)
    try:
        assert not free()
        process.send_signal(signal.SIGKILL)
        process.wait()
        killed = time.monotonic()
        while not free():
            assert time.monotonic() - killed < 2.5, "the dead holder's lock outlived its ttl"
            time.sleep(0.05)
    finally:
        process.kill()
        process.wait()


def test_a_second_delivery_of_the_holding_task_recognises_itself_and_another_task_waits(backend):
    with named_lock(name="orders:1", owner="task-1") as held:
        assert held
        with pytest.raises(LockHeldByItself), named_lock(name="orders:1", owner="task-1"):
            pass
        with named_lock(name="orders:1", owner="task-2") as other:
            assert not other


def test_a_waiting_caller_gets_the_lock_when_the_holder_lets_go(backend):
    released = threading.Event()

    def hold_briefly():
        with channel_lock(channel_id=1, purpose="orders"):
            released.wait(5)
            time.sleep(0.3)

    holder = threading.Thread(target=hold_briefly)
    holder.start()
    time.sleep(0.2)
    released.set()
    with channel_lock(channel_id=1, purpose="orders", wait=5) as held:
        assert held
    holder.join()


@pytest.mark.redis
def test_a_holder_that_stalled_past_its_ttl_cannot_free_the_lock_a_newer_holder_took(settings, monkeypatch):
    redis.Redis.from_url(settings.REDIS_URL).delete("stockline:lock:orders:1")
    locks._redis.cache_clear()
    # A process frozen (swapped out, paused in a debugger) renews nothing.
    monkeypatch.setattr(locks, "_heartbeat", lambda **kwargs: None)
    with named_lock(name="orders:1", ttl=1) as stale:
        assert stale
        time.sleep(1.5)
        newer = named_lock(name="orders:1", ttl=30)
        assert newer.__enter__()
    # The stale holder has let go: the newer holder's lock stands.
    assert not free()
    newer.__exit__(None, None, None)
    assert free()


def test_a_second_delivery_of_a_running_download_waits_in_the_queue_and_another_download_steps_aside(backend):
    from celery.exceptions import Retry

    from channels.tasks import orders_download_task

    with channel_lock(channel_id=1, purpose="orders", owner="delivery-1") as held:
        assert held
        # The broker gave the running task out again: the copy comes back once the holder's lock could lapse.
        with pytest.raises(Retry) as retried:
            orders_download_task.apply(args=(1,), task_id="delivery-1", throw=True)
        assert retried.value.when == locks.LOCK_TTL
        result = orders_download_task.apply(args=(1,), task_id="beat-tick", throw=True).result
        assert result == "another order download is running for this channel"
