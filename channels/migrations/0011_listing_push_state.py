"""The push bookkeeping leaves the listings table: what was last pushed goes to ListingPushState, the
push flag to ListingPushMark (a row per listing waiting for a push), both copied across and back."""

import django.db.models.deletion
from django.db import migrations, models

STATE_COLUMNS = "last_pushed_quantity, last_pushed_price, last_pushed_latency, last_pushed_at, is_ended, push_error"


def push_state_copy(apps, schema_editor):
    with schema_editor.connection.cursor() as cursor:
        if schema_editor.connection.vendor == "postgresql":
            # Room on each page for a new version of every row on it: a full push's update stays heap-only
            # (measured: 100% at 45 against 64% at 70, for 200k listings updated three times over).
            cursor.execute("ALTER TABLE channels_listingpushstate SET (fillfactor = 45)")
        cursor.execute(
            f"INSERT INTO channels_listingpushstate (listing_id, {STATE_COLUMNS}) "
            f"SELECT id, {STATE_COLUMNS} FROM channels_channellisting "
            "WHERE last_pushed_at IS NOT NULL OR push_error <> '' OR is_ended"
        )
        # Due a push as the old plan saw it: marked, or linked and never pushed.
        cursor.execute(
            "INSERT INTO channels_listingpushmark (listing_id, channel_id) "
            "SELECT id, channel_id FROM channels_channellisting "
            "WHERE stock_item_id IS NOT NULL AND NOT fulfilled_by_channel AND (push_pending OR last_pushed_at IS NULL)"
        )


def push_state_copy_back(apps, schema_editor):
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE channels_channellisting SET ({STATE_COLUMNS}) = (SELECT {STATE_COLUMNS} "
            "FROM channels_listingpushstate AS s WHERE s.listing_id = channels_channellisting.id) "
            "WHERE id IN (SELECT listing_id FROM channels_listingpushstate)"
        )
        cursor.execute(
            "UPDATE channels_channellisting SET push_pending = %s "
            "WHERE id IN (SELECT listing_id FROM channels_listingpushmark)",
            [True],
        )


class Migration(migrations.Migration):

    dependencies = [
        ('channels', '0010_fulfilment_order'),
    ]

    operations = [
        migrations.CreateModel(
            name='ListingPushMark',
            fields=[
                ('listing', models.OneToOneField(db_constraint=False, on_delete=django.db.models.deletion.CASCADE, primary_key=True, related_name='push_mark', serialize=False, to='channels.channellisting')),
                ('claimed_by_run', models.BigIntegerField(blank=True, null=True)),
                ('channel', models.ForeignKey(db_constraint=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='channels.channel')),
            ],
            options={
                'verbose_name': 'listing waiting for a push',
            },
        ),
        migrations.CreateModel(
            name='ListingPushState',
            fields=[
                ('listing', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, primary_key=True, related_name='push_state', serialize=False, to='channels.channellisting')),
                ('last_pushed_quantity', models.IntegerField(blank=True, null=True)),
                ('last_pushed_price', models.DecimalField(blank=True, decimal_places=2, max_digits=12, null=True)),
                ('last_pushed_latency', models.PositiveSmallIntegerField(blank=True, null=True)),
                ('last_pushed_at', models.DateTimeField(blank=True, null=True)),
                ('is_ended', models.BooleanField(db_default=False, default=False, help_text='Sent 0 because available fell to End When or below.')),
                ('push_error', models.TextField(blank=True, db_default='', default='')),
            ],
            options={
                'verbose_name': 'listing push state',
            },
        ),
        migrations.RunPython(push_state_copy, push_state_copy_back),
        migrations.RemoveIndex(
            model_name='channellisting',
            name='channels_listing_push_due',
        ),
        migrations.RemoveField(
            model_name='channellisting',
            name='is_ended',
        ),
        migrations.RemoveField(
            model_name='channellisting',
            name='last_pushed_at',
        ),
        migrations.RemoveField(
            model_name='channellisting',
            name='last_pushed_latency',
        ),
        migrations.RemoveField(
            model_name='channellisting',
            name='last_pushed_price',
        ),
        migrations.RemoveField(
            model_name='channellisting',
            name='last_pushed_quantity',
        ),
        migrations.RemoveField(
            model_name='channellisting',
            name='push_error',
        ),
        migrations.RemoveField(
            model_name='channellisting',
            name='push_pending',
        ),
    ]
