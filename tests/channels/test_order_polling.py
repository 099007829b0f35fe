"""Orders are polled at each channel's quota, sooner for a while after activity, never faster than the quota."""

import importlib
import json
import math
from datetime import timedelta
from unittest import mock

import pytest
from celery import current_app
from django.apps import apps
from django.utils import timezone
from django_celery_beat.models import IntervalSchedule, PeriodicTask, PeriodicTasks

from channels.connectors import connector_class
from channels.models import Channel
from channels.scheduling import ORDERS_TASK
from channels.services import channel_create, channel_settings_update
from channels.sync.now import ACTIVE_WINDOW
from channels.tasks import orders_download_task
from orders.models import Order
from sandbox.control import default_credentials
from tests.channels.factories import ChannelFactory

pytestmark = pytest.mark.django_db

MIGRATION = "0014_order_download_at_channel_quota"


def quota_interval(kind: str) -> int:
    """What the kind's declared limit sustains: its share of the order download bucket's rate, in whole seconds."""
    cls = connector_class(kind)
    limit = cls.rate_limits.get(cls.order_download_operation)
    if limit is None:
        return cls.unmetered_order_download_seconds
    return math.ceil(1 / (cls.order_download_share * limit.rate))


def orders_row(channel: Channel) -> PeriodicTask:
    return PeriodicTask.objects.select_related("interval").get(name=f"channel-{channel.pk}-orders")


@pytest.mark.parametrize("kind", Channel.Kind.values)
def test_a_new_channel_polls_its_orders_as_often_as_its_quota_sustains(kind):
    channel = channel_create(channel=ChannelFactory.build(name=f"{kind} shop", kind=kind))

    interval = orders_row(channel).interval
    assert (interval.every, interval.period) == (quota_interval(kind), IntervalSchedule.SECONDS)
    cls = connector_class(kind)
    limit = cls.rate_limits.get(cls.order_download_operation)
    if limit is not None:
        # Never more often than the bucket refills.
        assert interval.every * limit.rate >= 1


def test_a_slower_interval_staff_chose_stays_when_the_channel_changes():
    channel = channel_create(channel=ChannelFactory.build(name="Amazon UK", kind=Channel.Kind.AMAZON))
    row = orders_row(channel)
    row.interval, _ = IntervalSchedule.objects.get_or_create(every=30, period=IntervalSchedule.MINUTES)
    row.save()

    channel.name = "Amazon United Kingdom"
    channel_settings_update(channel=channel, changed_fields=["name"])

    row = orders_row(channel)
    assert (row.interval.every, row.interval.period) == (30, IntervalSchedule.MINUTES)
    assert row.description == "Amazon United Kingdom: order download"


@pytest.fixture
def amazon(sandbox):
    """An Amazon channel on a sandbox account whose throttles are lifted (the hub's own limiter still counts)."""
    credentials = default_credentials("amazon", "amazon-shop")
    created = sandbox.account("amazon", "amazon-shop", credentials=credentials, rate_limits={"profile": "off"})
    url = sandbox.channel_url("amazon", "amazon-shop")
    channel = Channel.objects.create(**{
        **Channel.defaults_for("amazon"), "name": "Amazon shop", "kind": "amazon", "api_base_url": url,
        "auth_base_url": url, "seller_id": created["seller_id"], "credentials": credentials,
    })
    channel.status_mappings.create(channel_status="UNSHIPPED", hub_status="paid")
    return channel


@pytest.fixture
def queued_for_a_worker():
    """Tasks go to the broker, as in production, instead of running inline where no countdown can wait."""
    current_app.conf.task_always_eager = False
    yield
    current_app.conf.task_always_eager = True


def place_order(sandbox, sku="MUG"):
    sandbox.orders("amazon", "amazon-shop", [{"items": [{"sku": sku, "quantity": 1, "price": "9.99"}]}])


def download(channel, **options):
    with mock.patch.object(orders_download_task, "apply_async") as queued:
        outcome = orders_download_task.apply(args=(channel.pk,), kwargs=options).get()
    return outcome, queued


def test_after_new_orders_the_next_download_comes_at_the_quotas_pace(sandbox, amazon, queued_for_a_worker):
    place_order(sandbox)

    outcome, queued = download(amazon)

    assert outcome == "success" and Order.objects.filter(channel=amazon).count() == 1
    pace = amazon.connector_class.order_download_quota_seconds()
    queued.assert_called_once_with(args=(amazon.pk,), kwargs={"follow_up": True}, countdown=pace)
    # Sooner than the periodic download, and never faster than the searchOrders plan refills.
    rate = amazon.connector_class.rate_limits["searchOrders"].rate
    assert pace < quota_interval("amazon") and pace * rate >= 1


def test_a_quiet_channel_gets_no_follow_up(sandbox, amazon, queued_for_a_worker):
    outcome, queued = download(amazon)

    assert outcome == "success"
    queued.assert_not_called()


def test_run_inline_no_follow_up_is_queued_the_periodic_download_stands_in(sandbox, amazon):
    place_order(sandbox)

    outcome, queued = download(amazon)

    assert outcome == "success" and Order.objects.filter(channel=amazon).count() == 1
    queued.assert_not_called()


def test_a_retry_carries_on_the_download_though_a_follow_up_is_queued(sandbox, amazon, queued_for_a_worker):
    place_order(sandbox, "MUG")
    download(amazon)
    place_order(sandbox, "LAMP")

    with mock.patch.object(orders_download_task, "apply_async"):
        outcome = orders_download_task.apply(args=(amazon.pk,), retries=1).get()

    assert outcome == "success" and Order.objects.filter(channel=amazon).count() == 2


def test_one_follow_up_is_queued_at_a_time(sandbox, amazon, queued_for_a_worker):
    place_order(sandbox, "MUG")
    _, first = download(amazon)
    place_order(sandbox, "LAMP")
    # Staff's Download orders now, while the follow-up waits in the queue.
    outcome, second = download(amazon, paced=False)

    assert outcome == "success" and Order.objects.filter(channel=amazon).count() == 2
    assert first.call_count == 1 and second.call_count == 0


def test_the_periodic_download_yields_to_a_queued_follow_up_and_staffs_does_not(sandbox, amazon, queued_for_a_worker):
    place_order(sandbox, "MUG")
    download(amazon)
    place_order(sandbox, "LAMP")

    outcome, _ = download(amazon)
    assert outcome == "skipped: a follow-up download is queued at the channel's quota"
    assert Order.objects.filter(channel=amazon).count() == 1

    outcome, _ = download(amazon, paced=False)
    assert outcome == "success" and Order.objects.filter(channel=amazon).count() == 2


def test_back_to_back_periodic_downloads_both_run_when_no_follow_up_is_queued(sandbox, amazon):
    """Inline no follow-up is queued: the periodic download is not held back (the rate limiter still counts)."""
    download(amazon)
    place_order(sandbox)

    outcome, _ = download(amazon)

    assert outcome == "success" and Order.objects.filter(channel=amazon).count() == 1


def test_the_follow_up_downloads_and_queues_the_next_while_orders_come(
    sandbox, amazon, queued_for_a_worker
):
    place_order(sandbox, "MUG")
    download(amazon)
    pace = amazon.connector_class.order_download_quota_seconds()
    place_order(sandbox, "LAMP")

    outcome, queued = download(amazon, follow_up=True)

    assert outcome == "success" and Order.objects.filter(channel=amazon).count() == 2
    queued.assert_called_once_with(args=(amazon.pk,), kwargs={"follow_up": True}, countdown=pace)


def test_follow_ups_stop_once_no_order_came_or_changed_for_a_while(sandbox, amazon, queued_for_a_worker):
    place_order(sandbox)
    download(amazon)
    Order.objects.filter(channel=amazon).update(updated_at=timezone.now() - ACTIVE_WINDOW - timedelta(minutes=1))

    outcome, queued = download(amazon, follow_up=True)

    assert outcome == "success"
    queued.assert_not_called()


def test_existing_channels_move_from_the_old_five_minutes_to_their_quota_and_a_staff_choice_stays():
    migration = importlib.import_module(f"channels.migrations.{MIGRATION}")
    five, _ = IntervalSchedule.objects.get_or_create(every=5, period=IntervalSchedule.MINUTES)
    thirty, _ = IntervalSchedule.objects.get_or_create(every=30, period=IntervalSchedule.MINUTES)
    amazon = ChannelFactory(name="Amazon UK", kind=Channel.Kind.AMAZON)
    rakuten = ChannelFactory(name="Rakuten FR", kind=Channel.Kind.RAKUTEN)
    chosen = ChannelFactory(name="Amazon DE", kind=Channel.Kind.AMAZON)
    for channel, interval in ((amazon, five), (rakuten, five), (chosen, thirty)):
        PeriodicTask.objects.create(name=f"channel-{channel.pk}-orders", task=ORDERS_TASK, interval=interval,
                                    args=json.dumps([channel.pk]))
    before = timezone.now()

    migration.to_quota_interval(apps, None)

    for channel in (amazon, rakuten):
        interval = orders_row(channel).interval
        assert (interval.every, interval.period) == (quota_interval(channel.kind), IntervalSchedule.SECONDS)
    assert (orders_row(chosen).interval.every, orders_row(chosen).interval.period) == (30, IntervalSchedule.MINUTES)
    # Beat reloads its schedule only when told.
    assert PeriodicTasks.objects.get(ident=1).last_update >= before

    migration.to_five_minutes(apps, None)
    assert (orders_row(amazon).interval.every, orders_row(amazon).interval.period) == (5, IntervalSchedule.MINUTES)
