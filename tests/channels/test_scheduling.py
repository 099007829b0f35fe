"""Each channel's periodic tasks follow it, and bursts of changes coalesce into one push per channel."""

import json

import pytest
from django.core.cache import cache
from django_celery_beat.models import PeriodicTask

from channels.models import Channel
from channels.scheduling import PUSH_QUEUED_KEY, inventory_push_schedule
from channels.services import channel_create, channel_settings_update, channels_delete
from tests.channels.factories import ChannelFactory

pytestmark = pytest.mark.django_db


def tasks_of(channel):
    return {t.name.rsplit("-", 1)[1]: t for t in PeriodicTask.objects.filter(name__startswith=f"channel-{channel.pk}-")}


def new_channel() -> Channel:
    return channel_create(channel=ChannelFactory.build(name="EKM shop"))


def test_a_new_channel_gets_its_order_push_and_listing_tasks():
    channel = new_channel()

    tasks = tasks_of(channel)
    assert set(tasks) == {"orders", "inventory", "listings"}
    assert all(task.enabled for task in tasks.values())
    assert json.loads(tasks["orders"].args) == [channel.pk]
    assert tasks["orders"].task == "channels.tasks.orders_download_task"


def test_the_tasks_follow_the_enabled_switch_and_keep_an_edited_interval():
    channel = new_channel()
    orders_task = tasks_of(channel)["orders"]
    orders_task.interval.every = 20
    orders_task.interval.save()

    channel.enabled = False
    channel_settings_update(channel=channel, changed_fields=["enabled"])
    assert not any(task.enabled for task in tasks_of(channel).values())

    channel.enabled = True
    channel_settings_update(channel=channel, changed_fields=["enabled"])
    assert all(task.enabled for task in tasks_of(channel).values())
    assert tasks_of(channel)["orders"].interval.every == 20


def test_inventory_sync_off_stops_only_the_push():
    channel = new_channel()
    channel.inventory_sync = False
    channel_settings_update(channel=channel, changed_fields=["inventory_sync"])

    tasks = tasks_of(channel)
    assert not tasks["inventory"].enabled and tasks["orders"].enabled


def test_a_renamed_channel_renames_its_tasks():
    channel = new_channel()
    channel.name = "EKM teapots"
    channel_settings_update(channel=channel, changed_fields=["name"])

    assert tasks_of(channel)["orders"].description == "EKM teapots: order download"


def test_deleting_a_channel_removes_its_tasks_and_keeps_the_others():
    channel, other = new_channel(), channel_create(channel=ChannelFactory.build(name="Rakuten"))

    channels_delete(channel_ids=[channel.pk])

    assert not Channel.objects.filter(pk=channel.pk).exists()
    assert not PeriodicTask.objects.filter(name__startswith=f"channel-{channel.pk}-").exists()
    assert set(tasks_of(other)) == {"orders", "inventory", "listings"}


def test_a_burst_of_changes_queues_one_push_per_channel(monkeypatch):
    sent = []
    monkeypatch.setattr("channels.tasks.inventory_push_task.apply_async", lambda args, **kw: sent.append(args))
    cache.delete_many([PUSH_QUEUED_KEY.format(channel_id=n) for n in (1, 2)])

    for _ in range(50):
        inventory_push_schedule(channel_ids=[1, 2])

    assert sorted(sent) == [(1,), (2,)]
    cache.delete(PUSH_QUEUED_KEY.format(channel_id=1))
    inventory_push_schedule(channel_ids=[1, 2])
    assert sorted(sent) == [(1,), (1,), (2,)]
