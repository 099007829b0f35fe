"""A worker that starts queues again the runs a killed worker left "running", and the rerun closes them."""

from datetime import timedelta

import pytest

from channels.connectors.base import WatermarkPolicy
from channels.models import SyncRun
from channels.services import RUN_INTERRUPTED
from channels.sync import order_download
from channels.tasks import interrupted_runs_resume, inventory_push_task, orders_download_task
from tests.channels.factories import ChannelFactory

pytestmark = pytest.mark.django_db


def test_a_starting_worker_queues_again_the_downloads_and_pushes_a_dead_worker_left_running(monkeypatch):
    queued = []
    monkeypatch.setattr(orders_download_task, "delay", lambda channel_id: queued.append(("orders", channel_id)))
    monkeypatch.setattr(inventory_push_task, "delay", lambda channel_id: queued.append(("push", channel_id)))
    downloading, pushing, finished, disabled = (ChannelFactory(name=f"Shop {n}") for n in range(4))
    disabled.enabled = False
    disabled.save()
    SyncRun.objects.create(channel=downloading, kind=SyncRun.Kind.ORDERS)
    SyncRun.objects.create(channel=downloading, kind=SyncRun.Kind.ORDERS)
    SyncRun.objects.create(channel=pushing, kind=SyncRun.Kind.INVENTORY)
    SyncRun.objects.create(channel=finished, kind=SyncRun.Kind.ORDERS, status=SyncRun.Status.SUCCESS)
    SyncRun.objects.create(channel=disabled, kind=SyncRun.Kind.ORDERS)

    interrupted_runs_resume()

    assert queued == [("orders", downloading.pk), ("push", pushing.pk)]


def test_the_rerun_closes_the_run_its_dead_worker_left_running(monkeypatch):
    channel = ChannelFactory()
    left = SyncRun.objects.create(channel=channel, kind=SyncRun.Kind.ORDERS)

    class NoOrders:
        order_overlap = timedelta(minutes=5)
        reads_order_details_apart = False
        watermark_policy = WatermarkPolicy.LATEST_ORDER

        def fetch_orders(self, since, until):
            return iter(())

    monkeypatch.setattr(order_download, "channel_connector", lambda channel: NoOrders())
    assert orders_download_task.apply(args=(channel.pk,), throw=True).result == SyncRun.Status.SUCCESS

    left.refresh_from_db()
    assert (left.status, left.error) == (SyncRun.Status.FAILED, RUN_INTERRUPTED)
