"""Queueing channel work: debounced pushes, follow-up order downloads, FBA submissions, and each channel's
periodic tasks in django-celery-beat.

Work is queued by task name, as beat does: the tasks (channels.tasks) sit on top of the sync engine, which
itself asks for pushes through here, so importing them would close a circle. The app's registry gives the
registered task, which runs eagerly too when the settings say so.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping

from celery import current_app
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import transaction
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from channels.models import Channel

PUSH_TASK = "channels.tasks.inventory_push_task"
ORDERS_TASK = "channels.tasks.orders_download_task"
FBA_SUBMIT_TASK = "channels.tasks.despatch_fba_submit_task"
RULES_CHANGED_TASK = "channels.tasks.inventory_rules_changed_task"
WEBHOOKS_FOLLOW_TASK = "channels.tasks.channel_webhooks_follow_task"
PUSH_QUEUED_KEY = "stockline:push-queued:{channel_id}"
FOLLOW_UP_QUEUED_KEY = "stockline:orders-follow-up-queued:{channel_id}"
# Bursts of changes (an order page, a stock import) coalesce into one push per channel.
PUSH_DEBOUNCE_SECONDS = 1
# Each row's interval in minutes; the order download's (None) is its kind's quota, in seconds.
BEAT_TASKS = (
    ("orders", "order download", ORDERS_TASK, None),
    ("inventory", "inventory push (safety net)", PUSH_TASK, 15),
    ("listings", "listing download", "channels.tasks.listings_download_task", 24 * 60),
    ("fba", "FBA inventory sync", "channels.tasks.inventory_fba_sync_task", 30),
    ("fba_outbound", "FBA fulfilment orders", "channels.tasks.despatch_fba_outbound_task", 5),
)
# Rows only Amazon channels get.
FULFILMENT_BEAT_TASKS = {"fba", "fba_outbound"}
# The channel settings its periodic tasks depend on (their switches below, the name in their description).
CHANNEL_SCHEDULE_FIELDS = frozenset({
    "name", "enabled", "inventory_sync", "update_inventory", "fba_enabled", "fba_sync_inventory",
})


def inventory_push_schedule(*, channel_ids: Iterable[int]) -> list[int]:
    """Queue one debounced push per channel unless one is already queued; returns the channels queued.

    The quantities are computed when the push runs, not now, so a queued push always sends the latest.
    """
    queued = []
    for channel_id in sorted(set(channel_ids)):
        if cache.add(PUSH_QUEUED_KEY.format(channel_id=channel_id), 1, timeout=300):
            current_app.tasks[PUSH_TASK].apply_async(args=(channel_id,), countdown=PUSH_DEBOUNCE_SECONDS)
            queued.append(channel_id)
    return queued


def orders_follow_up_schedule(*, channel_id: int, countdown: int) -> bool:
    """Queue one follow-up order download in `countdown` s unless one is already queued; True if queued."""
    if current_app.conf.task_always_eager:
        # Run inline a countdown cannot wait: each follow-up would follow the last at once, for as long as the
        # channel is active. The periodic download stands in for it.
        return False
    # The key outlives the countdown a little, so a worker busy for a while does not let a second one in.
    if not cache.add(FOLLOW_UP_QUEUED_KEY.format(channel_id=channel_id), 1, timeout=countdown + 300):
        return False
    current_app.tasks[ORDERS_TASK].apply_async(args=(channel_id,), kwargs={"follow_up": True}, countdown=countdown)
    return True


def orders_follow_up_pending(*, channel_id: int) -> bool:
    """A follow-up order download is queued for the channel."""
    return cache.get(FOLLOW_UP_QUEUED_KEY.format(channel_id=channel_id)) is not None


def orders_follow_up_clear(*, channel_id: int) -> None:
    """The queued follow-up is running: activity from now on may queue the next one."""
    cache.delete(FOLLOW_UP_QUEUED_KEY.format(channel_id=channel_id))


def order_download_schedule(*, channel: Channel) -> IntervalSchedule:
    """The default order download interval of the channel's kind: the fastest its quota sustains."""
    seconds = channel.connector_class.order_download_interval()
    return IntervalSchedule.objects.get_or_create(every=seconds, period=IntervalSchedule.SECONDS)[0]


def inventory_push_full_queue(*, channel_id: int) -> None:
    """Queue a push of every listing of the channel (its quantities now go to another of the channel's locations)."""
    current_app.tasks[PUSH_TASK].delay(channel_id, True)


def channel_rules_changed_queue(*, channel_id: int) -> None:
    """Queue the marking of every listing of a channel whose rules changed (then its push): a worker's job,
    not the admin request's."""
    current_app.tasks[RULES_CHANGED_TASK].delay(channel_id)


def channel_webhooks_follow_queue(*, channel_id: int) -> None:
    """Queue the subscription (or unsubscription) of the channel's order webhooks: the task calls the channel."""
    current_app.tasks[WEBHOOKS_FOLLOW_TASK].delay(channel_id)


def fba_submission_queue(*, order_id: int) -> None:
    """Queue the order's submission to the fulfilment network (retried by its task until Amazon answers)."""
    current_app.tasks[FBA_SUBMIT_TASK].delay(order_id)


def _beat_task_wanted(*, channel: Channel, key: str) -> bool:
    if key == "inventory":
        return channel.enabled and channel.syncs_inventory
    if key == "fba":
        # Only the channel that controls a unified account's FBA pool reads it.
        return channel.enabled and channel.fba_enabled and channel.fba_sync_inventory
    if key == "fba_outbound":
        return channel.enabled and channel.fba_enabled
    return channel.enabled


def channel_beat_schedule_update(*, channel: Channel) -> None:
    """Give the channel its periodic tasks, switched on and off with it. Intervals set by staff stay."""
    for key, label, task, minutes in BEAT_TASKS:
        if key in FULFILMENT_BEAT_TASKS and not channel.connector_class.has_fulfilment_network:
            continue
        if minutes is None:
            interval = order_download_schedule(channel=channel)
        else:
            interval, _ = IntervalSchedule.objects.get_or_create(every=minutes, period=IntervalSchedule.MINUTES)
        wanted = _beat_task_wanted(channel=channel, key=key)
        periodic, created = PeriodicTask.objects.get_or_create(
            name=f"channel-{channel.pk}-{key}",
            defaults={
                "task": task, "interval": interval, "args": json.dumps([channel.pk]), "enabled": wanted,
                "description": f"{channel.name}: {label}",
            },
        )
        if not created and (periodic.enabled != wanted or periodic.description != f"{channel.name}: {label}"):
            periodic.enabled = wanted
            periodic.description = f"{channel.name}: {label}"
            periodic.save(update_fields=["enabled", "description"])


def channel_beat_schedule_delete(*, channel_id: int) -> None:
    PeriodicTask.objects.filter(name__startswith=f"channel-{channel_id}-").delete()




# The periodic tasks staff re-time on the channel's page, each in the unit it is set in.
SCHEDULE_UNITS = {"orders": IntervalSchedule.SECONDS, "inventory": IntervalSchedule.MINUTES,
                  "listings": IntervalSchedule.MINUTES}
SECONDS_IN = {IntervalSchedule.SECONDS: 1, IntervalSchedule.MINUTES: 60, IntervalSchedule.HOURS: 3600,
              IntervalSchedule.DAYS: 86400}


def channel_schedule_read(*, channel: Channel) -> dict[str, int]:
    """How often each of the channel's re-timeable tasks runs, in its unit (SCHEDULE_UNITS); a task the channel
    does not have yet is left out."""
    tasks = PeriodicTask.objects.filter(name__in=[f"channel-{channel.pk}-{key}" for key in SCHEDULE_UNITS])
    every = {}
    for task in tasks.select_related("interval"):
        if task.interval is None:
            continue
        key = task.name.removeprefix(f"channel-{channel.pk}-")
        seconds = task.interval.every * SECONDS_IN[task.interval.period]
        every[key] = max(1, seconds // SECONDS_IN[SCHEDULE_UNITS[key]])
    return every


def channel_schedule_problems(*, channel: Channel, every: Mapping[str, int]) -> dict[str, str]:
    """Why these intervals cannot be set, by task key: orders never faster than the channel's quota sustains."""
    problems = {key: "Must be at least 1." for key, value in every.items() if value < 1}
    quota = channel.connector_class.order_download_quota_seconds()
    if "orders" in every and 1 <= every["orders"] < quota:
        problems["orders"] = (f"{channel.connector_class.label}'s quota allows an order download every {quota} s "
                              "at most: faster, its calls would be refused.")
    return problems


@transaction.atomic
def channel_schedule_update(*, channel: Channel, every: Mapping[str, int]) -> list[str]:
    """Set how often the channel's tasks run (each in its SCHEDULE_UNITS unit); returns the keys changed. The
    intervals stay as set: channel_beat_schedule_update keeps an existing task's interval."""
    if problems := channel_schedule_problems(channel=channel, every=every):
        raise ValidationError(problems)
    changed = []
    for key, value in every.items():
        interval, _ = IntervalSchedule.objects.get_or_create(every=value, period=SCHEDULE_UNITS[key])
        task = PeriodicTask.objects.select_for_update().filter(name=f"channel-{channel.pk}-{key}").first()
        if task is None or task.interval_id == interval.pk:
            continue
        task.interval = interval
        # Saved one by one: beat reloads its schedule when a task is saved, not on a queryset update.
        task.save(update_fields=["interval"])
        changed.append(key)
    return changed
