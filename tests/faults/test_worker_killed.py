"""A worker process killed with SIGKILL in the middle of an order download and of a push.

A real Celery worker (a subprocess, prefork pool of one) on the Redis broker and the PostgreSQL test
database; the sandbox runs in this process. A `slow` fault holds the task in a channel call, the pool
process is killed there, and acks_late + reject_on_worker_lost give the message back: the restarted
pool process runs the task again. Nothing may be lost or doubled, and the channels must converge.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
from celery import Celery
from django.conf import settings
from django.db import connection
from django.utils import timezone

from channels.models import ListingPushMark, SyncRun
from channels.services import RUN_INTERRUPTED
from channels.sync.listings_download import listings_download
from channels.tasks import inventory_push_task
from inventory.models import StockLevel, StockMovement
from inventory.services import stock_levels_set_bulk
from orders.models import Order
from tests.faults.conftest import (
    SKUS,
    STOCK,
    account,
    assert_converged,
    assert_orders_exactly_once,
    assert_reservations_exact,
    connect,
    generate_orders,
)
from tests.inventory.factories import LocationFactory, StockItemFactory, StockLevelFactory

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db(transaction=True)]

QUEUES = "default,orders,inventory,listings,despatch"
ROOT = Path(__file__).resolve().parents[2]


def wait_for(condition, *, timeout: float, what: str, every: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def pool_processes(worker: subprocess.Popen) -> list[int]:
    children = Path(f"/proc/{worker.pid}/task/{worker.pid}/children")
    return [int(pid) for pid in children.read_text().split()] if children.exists() else []


@pytest.fixture
def broker():
    """A producer on the test's Redis database, which holds only this run's queues: emptied first."""
    redis.Redis.from_url(settings.REDIS_URL).flushdb()
    # Not the current app: the tests after this one must keep the project app, whose tasks run inline.
    app = Celery("faults-producer", broker=settings.REDIS_URL, set_as_current=False)
    app.conf.update(broker_transport_options=settings.CELERY_BROKER_TRANSPORT_OPTIONS, task_serializer="json")
    yield app
    app.close()


def worker_start(name: str) -> subprocess.Popen:
    """A worker subprocess (its own session) on the test database, with its pool process up."""
    database = settings.DATABASES["default"]
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/{connection.settings_dict['NAME']}",
        "REDIS_URL": settings.REDIS_URL,
        "CELERY_TASK_ALWAYS_EAGER": "false",
        "LOG_LEVEL": "WARNING",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", QUEUES, "--concurrency", "1",
         "--pool", "prefork", "--loglevel", "WARNING", "--hostname", f"{name}-{os.getpid()}@%h", "--without-gossip",
         "--without-mingle", "--without-heartbeat"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    wait_for(lambda: pool_processes(process), timeout=60, what="the worker's pool process")
    return process


def worker_kill(process: subprocess.Popen) -> None:
    """SIGKILL the whole worker: the main process and its pool processes, as a lost machine would go."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)


@pytest.fixture
def workers(broker, sandbox_url):
    """Start workers with `workers.append(worker_start(name))`; every one is killed at teardown."""
    started: list[subprocess.Popen] = []
    yield started
    for process in started:
        worker_kill(process)


@pytest.fixture
def worker(workers):
    workers.append(worker_start("faults"))
    return workers[0]


def kill_pool_process(worker) -> int:
    [pid] = pool_processes(worker)
    os.kill(pid, signal.SIGKILL)
    # The main process notices, gives the message back and starts a new pool process.
    wait_for(lambda: pool_processes(worker) and pool_processes(worker) != [pid], timeout=30,
             what="a new pool process")
    return pid


def lock_held(purpose: str, channel_id: int) -> bool:
    return bool(redis.Redis.from_url(settings.REDIS_URL).exists(f"stockline:lock:{purpose}:{channel_id}"))


def test_a_worker_killed_during_an_order_download_runs_it_again_and_nothing_doubles(sandbox, shop, broker, worker):
    channel = shop["amazon"]
    order_ids = generate_orders(sandbox, "amazon", 250)
    # The second page takes 4 s to come: long enough to kill the worker while page one is stored.
    sandbox.faults("amazon", account("amazon"), [{"path": "paginationToken=", "type": "slow", "delay": 4}])

    broker.send_task("channels.tasks.orders_download_task", args=[channel.pk], queue="orders")
    wait_for(lambda: Order.objects.filter(channel=channel).exists(), timeout=60, what="page one stored")
    kill_pool_process(worker)
    assert Order.objects.filter(channel=channel).count() < len(order_ids), "the kill came after the download"

    wait_for(lambda: Order.objects.filter(channel=channel).count() == len(order_ids), timeout=90,
             what="every order after the restart")
    wait_for(lambda: SyncRun.objects.filter(channel=channel, kind="orders", status="success").exists(),
             timeout=30, what="the rerun to finish")
    # The kill may land between a page's commit and the sending of its debounced pushes, leaving a channel's
    # "push queued" mark with no push behind it until the mark expires: beat's safety-net push covers that.
    for each in shop.values():
        broker.send_task("channels.tasks.inventory_push_task", args=[each.pk], queue="inventory")
    # Rakuten's stock import allows a call every 10 s after a burst of 3: its pushes may wait their turn.
    wait_for(lambda: not channel_pushes_pending(), timeout=120, what="the pushes")
    assert_converged(sandbox, shop)


def channel_pushes_pending() -> bool:
    return ListingPushMark.objects.exists()


def test_a_worker_killed_during_a_push_runs_it_again_and_the_channel_converges(
    sandbox, shop, broker, worker, monkeypatch
):
    channel = shop["ekm"]
    # Pushes this test's changes queue go to the worker, not inline.
    monkeypatch.setattr(inventory_push_task, "apply_async", lambda args, countdown=0, **options: broker.send_task(
        inventory_push_task.name, args=args, countdown=countdown, queue="inventory"))
    # EKM takes one call per listing: the fourth takes 4 s.
    sandbox.faults("ekm", account("ekm"), [{"path": "/stock", "type": "slow", "delay": 4, "after": 3}])

    # A stock count changes every listing of every channel.
    levels = StockLevel.objects.all()
    stock_levels_set_bulk(rows=[(level.stock_item_id, level.location_id, 321) for level in levels],
                          reason=StockMovement.Reason.ADJUSTMENT)
    wait_for(lambda: lock_held("push", channel.pk), timeout=30, what="the EKM push to start", every=0.02)
    time.sleep(1)
    kill_pool_process(worker)
    assert ListingPushMark.objects.filter(channel=channel).exists(), "the kill came too late"

    wait_for(lambda: not channel_pushes_pending(), timeout=120, what="every push after the restart")
    assert_converged(sandbox, shop)


def test_a_whole_worker_killed_during_an_ekm_download_is_run_again_by_a_new_worker_within_a_minute(
    sandbox, broker, workers
):
    warehouse = LocationFactory(name="Main warehouse", is_default=True)
    for sku in SKUS:
        StockLevelFactory(stock_item=StockItemFactory(sku=sku), location=warehouse, quantity=STOCK)
    channel = connect(sandbox, "ekm")
    sandbox.listings("ekm", account("ekm"), [{"sku": sku, "title": sku, "quantity": 0} for sku in SKUS])
    listings_download(channel_id=channel.pk)
    # Within EKM's burst of 40 calls (a page, then one call per order), so the rerun is not kept waiting by the
    # quota the first attempt used.
    order_ids = generate_orders(sandbox, "ekm", 30)
    # EKM's second page of 20 takes 20 s to come, once: the worker dies waiting for it, page one stored.
    sandbox.faults("ekm", account("ekm"), [{"path": r"orders/search.*page=2", "type": "slow", "delay": 20}])
    workers.append(worker_start("doomed"))

    broker.send_task("channels.tasks.orders_download_task", args=[channel.pk], queue="orders")
    wait_for(lambda: Order.objects.filter(channel=channel).exists(), timeout=60, what="page one stored")
    # Page two asked for (and its slowness spent), not yet answered.
    time.sleep(1)
    worker_kill(workers[0])
    killed = time.monotonic()
    killed_at = timezone.now()
    assert Order.objects.filter(channel=channel).count() < len(order_ids), "the kill came after the download"
    interrupted = SyncRun.objects.get(channel=channel, kind=SyncRun.Kind.ORDERS, status=SyncRun.Status.RUNNING)

    workers.append(worker_start("replacement"))
    wait_for(lambda: SyncRun.objects.filter(channel=channel, kind=SyncRun.Kind.ORDERS,
                                            status=SyncRun.Status.SUCCESS).exists(),
             timeout=180, what="the download to run again")
    finished_after = time.monotonic() - killed
    rerun = SyncRun.objects.get(channel=channel, kind=SyncRun.Kind.ORDERS, status=SyncRun.Status.SUCCESS)
    started_after = (rerun.started_at - killed_at).total_seconds()
    print(f"\nThe EKM download started again {started_after:.0f} s and finished {finished_after:.0f} s after its "
          "worker was killed.")

    # The dead worker's lock lapsed and its message came back: every order is in within a minute, not 926 s.
    assert finished_after < 60
    interrupted.refresh_from_db()
    assert (interrupted.status, interrupted.error) == (SyncRun.Status.FAILED, RUN_INTERRUPTED)
    assert_orders_exactly_once(sandbox, channel)
    assert_reservations_exact()
