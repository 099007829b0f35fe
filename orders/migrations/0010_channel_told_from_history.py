# Each order's channel_told set from what the older columns recorded (a sent time, a refusal, a retry) and the
# channel's settings. Apart from 0009: PostgreSQL cannot build 0009's index in a transaction that updated rows.

from django.db import migrations, models
from django.db.models import Q

RETRYING = "Will retry"


def channel_told_from_history(apps, schema_editor):
    Order = apps.get_model("orders", "Order")
    sent = Q(despatch_sent_at__isnull=False) | Q(cancellation_sent_at__isnull=False)
    retrying = Q(despatch_error__startswith=RETRYING) | Q(cancellation_error__startswith=RETRYING)
    refused = (~Q(despatch_error="") | ~Q(cancellation_error="")) & ~retrying
    waiting = Q(status="processed", fulfilled_by_channel=False, channel__enabled=True,
                channel__mark_as_despatched=True)
    Order.objects.filter(sent).update(channel_told="told")
    Order.objects.exclude(sent).filter(refused).update(channel_told="refused")
    Order.objects.exclude(sent).exclude(refused).filter(retrying | waiting).update(channel_told="telling")
    for status, at in (("processed", "processed_at"), ("cancelled", "cancelled_at")):
        Order.objects.filter(status=status).exclude(channel_told="not_needed").update(channel_told_at=models.F(at))


class Migration(migrations.Migration):

    dependencies = [
        ('orders', '0009_channel_told'),
        ('channels', '0010_fulfilment_order'),
    ]

    operations = [
        migrations.RunPython(channel_told_from_history, migrations.RunPython.noop),
    ]
