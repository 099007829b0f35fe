import threading

import pytest

from channels.connectors.base import ChannelRateLimited, RateLimit
from channels.connectors.ratelimit import InProcessLimiter, RedisLimiter


class Clock:
    def __init__(self):
        self.now = 1000.0
        self.slept = []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.slept.append(seconds)
        self.now += seconds


def test_the_burst_goes_at_once_then_calls_are_spaced_at_the_rate():
    clock = Clock()
    limiter = InProcessLimiter(clock=clock, sleep=clock.sleep)
    limit = RateLimit(rate=2, burst=3)
    for _ in range(3):
        limiter.acquire("1:stock", limit, max_wait=10)
    assert clock.slept == []
    limiter.acquire("1:stock", limit, max_wait=10)
    limiter.acquire("1:stock", limit, max_wait=10)
    assert clock.slept == [pytest.approx(0.5), pytest.approx(0.5)]


def test_a_wait_longer_than_allowed_raises_with_the_wait():
    clock = Clock()
    limiter = InProcessLimiter(clock=clock, sleep=clock.sleep)
    limit = RateLimit(rate=0.0056, burst=1)
    limiter.acquire("1:orders", limit, max_wait=30)
    with pytest.raises(ChannelRateLimited) as caught:
        limiter.acquire("1:orders", limit, max_wait=30)
    assert caught.value.retry_after == pytest.approx(1 / 0.0056)
    assert clock.slept == []


def test_buckets_are_per_channel_and_operation():
    clock = Clock()
    limiter = InProcessLimiter(clock=clock, sleep=clock.sleep)
    limit = RateLimit(rate=1, burst=1)
    for key in ("1:stock", "2:stock", "1:orders"):
        limiter.acquire(key, limit, max_wait=0)
    assert clock.slept == []


def test_hold_off_makes_the_next_caller_wait():
    clock = Clock()
    limiter = InProcessLimiter(clock=clock, sleep=clock.sleep)
    limit = RateLimit(rate=2, burst=40)
    limiter.hold_off("1:api", limit, seconds=3)
    limiter.acquire("1:api", limit, max_wait=10)
    assert clock.slept == [pytest.approx(3)]


def test_concurrent_callers_never_exceed_the_burst_at_once():
    limiter = InProcessLimiter(sleep=lambda s: None)
    limit = RateLimit(rate=0.001, burst=5)
    granted, refused = [], []

    def call():
        try:
            limiter.acquire("1:x", limit, max_wait=1)
            granted.append(1)
        except ChannelRateLimited:
            refused.append(1)

    threads = [threading.Thread(target=call) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(granted) == 5 and len(refused) == 15


@pytest.mark.redis
def test_redis_buckets_are_shared_between_limiters():
    import redis
    from django.conf import settings

    client = redis.Redis.from_url(settings.REDIS_URL)
    client.delete("test:ratelimit:1:x")
    slept = []
    first = RedisLimiter(client, prefix="test:ratelimit:", sleep=slept.append)
    second = RedisLimiter(client, prefix="test:ratelimit:", sleep=slept.append)
    limit = RateLimit(rate=0.01, burst=2)
    first.acquire("1:x", limit, max_wait=0)
    second.acquire("1:x", limit, max_wait=0)
    with pytest.raises(ChannelRateLimited) as caught:
        first.acquire("1:x", limit, max_wait=5)
    assert caught.value.retry_after == pytest.approx(100, abs=1)
    second.hold_off("1:y", RateLimit(rate=1, burst=10), seconds=2)
    first.acquire("1:y", RateLimit(rate=1, burst=10), max_wait=5)
    assert slept and slept[-1] == pytest.approx(2, abs=0.1)
    client.delete("test:ratelimit:1:x", "test:ratelimit:1:y")
