from django.db import migrations

NAME = "open-orders-recount"


def schedule(apps, schema_editor):
    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    # 03:30 UTC: after the evening's orders, before the morning's picking.
    nightly, _ = CrontabSchedule.objects.get_or_create(
        minute="30", hour="3", day_of_week="*", day_of_month="*", month_of_year="*",
    )
    PeriodicTask.objects.get_or_create(name=NAME, defaults={
        "task": "orders.tasks.orders_open_orders_recount_task", "crontab": nightly,
        "description": "Recount what open orders hold and correct 'in open orders' where it differs",
    })


def unschedule(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=NAME).delete()


class Migration(migrations.Migration):

    dependencies = [
        ("django_celery_beat", "0019_alter_periodictasks_options"),
        ("orders", "0005_list_search_indexes"),
    ]

    operations = [migrations.RunPython(schedule, unschedule)]
