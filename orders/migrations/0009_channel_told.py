# What each order's channel heard of its despatch or cancellation, as one state the order list filters on;
# 0010 sets it from what the older columns recorded.

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('orders', '0008_fba_outbound_to_channels'),
        ('channels', '0010_fulfilment_order'),
    ]

    operations = [
        migrations.AddField(
            model_name='order',
            name='cancellation_reason',
            field=models.CharField(blank=True, help_text='The reason given when it was cancelled here, as the channel is sent it.', max_length=255),
        ),
        migrations.AddField(
            model_name='order',
            name='channel_told',
            field=models.CharField(choices=[('not_needed', 'Not needed'), ('telling', 'Telling the channel'), ('told', 'Told'), ('refused', 'Refused')], db_index=True, default='not_needed', max_length=12, verbose_name='channel told'),
        ),
        migrations.AddField(
            model_name='order',
            name='channel_told_at',
            field=models.DateTimeField(blank=True, null=True),
        ),
    ]
