# Orders were stored with their channel's UTC offset added to the time the buyer ordered, so an Amazon order
# (offset 1) sorted an hour ahead of the other channels' and moved the download's watermark by hand. The
# offset is now applied only where staff read the channel's clock: this takes it back off every stored order.

from datetime import timedelta

from django.db import migrations
from django.db.models import F


def _shift_by_channel_offset(apps, sign: int) -> None:
    Channel = apps.get_model("channels", "Channel")
    Order = apps.get_model("orders", "Order")
    for channel_id, hours in Channel.objects.exclude(utc_offset_hours=0).values_list("pk", "utc_offset_hours"):
        Order.objects.filter(channel_id=channel_id).update(
            received_at=F("received_at") + sign * timedelta(hours=float(hours))
        )


def received_at_to_true_instant(apps, schema_editor):
    _shift_by_channel_offset(apps, -1)


def received_at_to_channel_clock(apps, schema_editor):
    _shift_by_channel_offset(apps, +1)


class Migration(migrations.Migration):

    dependencies = [
        ("orders", "0010_channel_told_from_history"),
        ("channels", "0013_channel_push_mark"),
    ]

    operations = [
        migrations.RunPython(received_at_to_true_instant, received_at_to_channel_clock),
    ]
