"""The load test at a size CI can afford: two workers and beat on PostgreSQL + Redis, a few hundred orders."""

import pytest
import redis
from django.conf import settings
from django.core.management import call_command

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db(transaction=True)]


def test_a_small_load_loses_nothing_doubles_nothing_and_every_channel_converges(capsys):
    # The test's Redis database holds only this run's queues and buckets.
    redis.Redis.from_url(settings.REDIS_URL).flushdb()

    call_command("load_test", "--orders", "300", "--skus", "200", "--minutes", "0.5", "--download-every", "3",
                 "--timeout", "150")

    out = capsys.readouterr().out
    assert "Orders injected: 300; imported: 300\n" in out
    for zero in ("Duplicates: 0", "Oversold units: 0", "Reservations differing from open orders: 0 SKUs",
                 "Listings whose channel quantity differs from the hub's computation: 0"):
        assert zero in out
    assert "p95" in out
    # Each channel's latency and where the workers' time went, so a slow run says which channel and which work.
    for name in ("load-amazon", "load-ekm", "load-rakuten"):
        assert f"  to {name}: p50 " in out
        assert f"{name} orders " in out and f"{name} inventory " in out


def test_the_load_test_refuses_without_postgresql_and_redis(settings):
    from django.core.management.base import CommandError

    settings.REDIS_URL = ""
    with pytest.raises(CommandError, match="needs PostgreSQL and Redis"):
        call_command("load_test")
