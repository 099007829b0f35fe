"""Redis or the database gone for a moment in the middle of a sync.

Redis is shared by every engineer's runs on this machine (and by the broker), so it is not restarted
here: the hub's Redis clients are pointed at a closed port instead, before a run (lock) and in the middle
of one (rate limiter), which is what a restart looks like from the client. The database's moment away is
an OperationalError injected once into the order import.
"""

import pytest
import redis
from celery.exceptions import Retry
from django.db import OperationalError

from channels.connectors.base import ChannelTransientError
from channels.connectors.ratelimit import RedisLimiter
from channels.models import Channel, SyncRun
from channels.sync import connections, locks
from channels.tasks import orders_download_task
from orders import services as order_services
from orders.models import Order
from tests.faults.conftest import account, assert_converged, generate_orders, push_everywhere, run_like_a_worker

pytestmark = pytest.mark.django_db(transaction=True)

CLOSED_PORT = "redis://127.0.0.1:1/0"


@pytest.fixture
def redis_gone(settings):
    """The lock and the rate limiter talk to a Redis that is not there."""
    settings.REDIS_URL = CLOSED_PORT
    locks._redis.cache_clear()
    yield
    locks._redis.cache_clear()


def test_without_redis_a_download_stops_before_it_starts_with_a_clear_error(sandbox, shop, redis_gone):
    generate_orders(sandbox, "ekm", 5)

    # A transient error: the task is retried later (inline here, the retry surfaces instead).
    with pytest.raises(Retry) as retried:
        orders_download_task.apply(args=(shop["ekm"].pk,), throw=True)

    assert isinstance(retried.value.exc, ChannelTransientError)
    assert str(retried.value.exc) == "the channel lock's Redis is unavailable (ConnectionError)"

    assert not Order.objects.exists()
    assert not SyncRun.objects.filter(kind=SyncRun.Kind.ORDERS).exists()


def test_redis_gone_mid_download_leaves_whole_pages_a_closed_run_and_the_watermark_where_it_was(
    sandbox, shop, monkeypatch
):
    channel = shop["amazon"]
    generate_orders(sandbox, "amazon", 250)
    watermark = Channel.objects.get(pk=channel.pk).last_order_sync
    calls = {"n": 0}
    limiter = RedisLimiter(redis.Redis.from_url(CLOSED_PORT))
    real = connections.channel_limiter()

    class RestartingRedis:
        """The first call reaches Redis; the second finds it restarting."""

        def acquire(self, *args, **kwargs):
            calls["n"] += 1
            return (real if calls["n"] == 1 else limiter).acquire(*args, **kwargs)

        def hold_off(self, *args, **kwargs):
            return real.hold_off(*args, **kwargs)

    monkeypatch.setattr(connections, "channel_limiter", lambda: RestartingRedis())

    with pytest.raises(Retry) as retried:
        orders_download_task.apply(args=(channel.pk,), throw=True)

    assert str(retried.value.exc) == "the rate limiter's Redis is unavailable (ConnectionError)"

    run = SyncRun.objects.get(channel=channel, kind=SyncRun.Kind.ORDERS)
    assert run.status == SyncRun.Status.PARTIAL and "Redis" in run.error
    assert Order.objects.filter(channel=channel).count() == 100, "page one whole, nothing of page two"
    assert Channel.objects.get(pk=channel.pk).last_order_sync == watermark

    monkeypatch.undo()
    run_like_a_worker(orders_download_task, channel.pk)
    push_everywhere(shop)
    assert_converged(sandbox, shop)


def test_the_database_gone_for_a_moment_is_retried_and_converges(sandbox, shop, monkeypatch):
    channel = shop["rakuten"]
    generate_orders(sandbox, "rakuten", 150)
    real_import = order_services.order_import
    failures = []

    def import_once_failing(**kwargs):
        if not failures:
            failures.append(1)
            raise OperationalError("server closed the connection unexpectedly")
        return real_import(**kwargs)

    monkeypatch.setattr("channels.sync.order_download.order_import", import_once_failing)

    assert run_like_a_worker(orders_download_task, channel.pk) == "success"

    assert failures == [1]
    push_everywhere(shop)
    assert_converged(sandbox, shop)
    assert sandbox.received("rakuten", account("rakuten"))["calls"]
