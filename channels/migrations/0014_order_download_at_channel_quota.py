"""Existing channels' order downloads move from the old fixed five minutes to their kind's quota interval
(Connector.order_download_interval). An interval staff chose (anything but five minutes) stays."""

from django.db import migrations
from django.utils import timezone

from channels.connectors import connector_class

OLD_EVERY, OLD_PERIOD = 5, "minutes"


def _order_tasks(apps, kind: str):
    Channel = apps.get_model("channels", "Channel")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    names = [f"channel-{pk}-orders" for pk in Channel.objects.filter(kind=kind).values_list("pk", flat=True)]
    return PeriodicTask.objects.filter(name__in=names)


def _beat_told(apps) -> None:
    # Beat's DatabaseScheduler reloads its schedule when this stamp moves; a queryset update does not move it.
    PeriodicTasks = apps.get_model("django_celery_beat", "PeriodicTasks")
    PeriodicTasks.objects.update_or_create(ident=1, defaults={"last_update": timezone.now()})


def to_quota_interval(apps, schema_editor):
    Channel = apps.get_model("channels", "Channel")
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    for kind in Channel.objects.values_list("kind", flat=True).distinct():
        seconds = connector_class(kind).order_download_interval()
        interval, _ = IntervalSchedule.objects.get_or_create(every=seconds, period="seconds")
        _order_tasks(apps, kind).filter(interval__every=OLD_EVERY, interval__period=OLD_PERIOD).update(
            interval=interval
        )
    _beat_told(apps)


def to_five_minutes(apps, schema_editor):
    Channel = apps.get_model("channels", "Channel")
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    old, _ = IntervalSchedule.objects.get_or_create(every=OLD_EVERY, period=OLD_PERIOD)
    for kind in Channel.objects.values_list("kind", flat=True).distinct():
        seconds = connector_class(kind).order_download_interval()
        _order_tasks(apps, kind).filter(interval__every=seconds, interval__period="seconds").update(interval=old)
    _beat_told(apps)


class Migration(migrations.Migration):
    dependencies = [
        ("channels", "0013_channel_push_mark"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(to_quota_interval, to_five_minutes)]
