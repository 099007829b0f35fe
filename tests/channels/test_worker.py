"""A real Celery worker on Redis: an order downloaded by the worker reaches the other channel by itself."""

import os
import signal
import subprocess
import sys
import time

import pytest
from celery import Celery
from django.conf import settings
from django.db import connection

from channels.models import Channel
from channels.sync.inventory_push import inventory_push
from channels.sync.listings_download import listings_download
from orders.models import Order
from sandbox.control import default_credentials
from tests.inventory.factories import LocationFactory, StockItemFactory, StockLevelFactory

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def connect(sandbox, kind: str) -> Channel:
    account = f"{kind}-worker"
    credentials = default_credentials(kind, account)
    created = sandbox.account(kind, account, credentials=credentials, rate_limits={"profile": "off"})
    url = sandbox.channel_url(kind, account)
    channel = Channel.objects.create(**{
        **Channel.defaults_for(kind), "name": account, "kind": kind, "api_base_url": url, "auth_base_url": url,
        "seller_id": created["seller_id"], "credentials": credentials,
    })
    channel.status_mappings.create(channel_status={"amazon": "UNSHIPPED", "ekm": "PENDING"}[kind], hub_status="paid")
    sandbox.listings(kind, account, [{"sku": "MUG", "title": "Mug", "quantity": 0, "price": "9.99"}])
    listings_download(channel_id=channel.pk)
    inventory_push(channel_id=channel.pk, full=True)
    return channel


@pytest.fixture
def worker():
    """A worker process on the test database and the Redis broker, stopped however the test ends."""
    db = connection.settings_dict
    env = {**os.environ, "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/"
                                         f"{db['NAME']}", "REDIS_URL": settings.REDIS_URL}
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", "default,orders,inventory,listings,despatch",
         "--concurrency", "2", "--loglevel", "WARNING", "--hostname", f"test-{os.getpid()}@%h"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    yield process
    os.killpg(process.pid, signal.SIGTERM)
    process.wait(timeout=30)


def test_an_order_downloaded_by_the_worker_is_pushed_to_the_other_channel(sandbox, worker):
    warehouse = LocationFactory(name="Main", is_default=True)
    StockLevelFactory(stock_item=StockItemFactory(sku="MUG"), location=warehouse, quantity=10)
    amazon, ekm = connect(sandbox, "amazon"), connect(sandbox, "ekm")
    assert sandbox.received("amazon", "amazon-worker")["stock"]["MUG"]["quantity"] == 10
    sandbox.orders("ekm", "ekm-worker", [{"items": [{"sku": "MUG", "quantity": 4, "price": "9.99"}], "paid": True}])

    # A client of the worker's broker of its own: the suite's app runs tasks inline and must stay current.
    with Celery(broker=settings.REDIS_URL, set_as_current=False) as client:
        client.send_task("channels.tasks.orders_download_task", args=(ekm.pk,), queue="orders")

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if sandbox.received("amazon", "amazon-worker")["stock"]["MUG"]["quantity"] == 6:
            break
        time.sleep(0.3)
    assert sandbox.received("amazon", "amazon-worker")["stock"]["MUG"]["quantity"] == 6
    assert Order.objects.filter(channel=ekm).count() == 1
    assert amazon.sync_runs.filter(kind="inventory", status="success").count() >= 2
