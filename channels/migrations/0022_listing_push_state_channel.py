import django.db.models.deletion
from django.db import migrations, models
from django.db.models import OuterRef, Subquery


def copy_listing_channel(apps, schema_editor):
    """Every push state row takes its listing's channel, in one statement."""
    ListingPushState = apps.get_model("channels", "ListingPushState")
    ChannelListing = apps.get_model("channels", "ChannelListing")
    ListingPushState.objects.update(
        channel_id=Subquery(ChannelListing.objects.filter(pk=OuterRef("listing_id")).values("channel_id")[:1])
    )


class Migration(migrations.Migration):

    dependencies = [
        ('channels', '0021_channel_location_number'),
    ]

    operations = [
        migrations.AddField(
            model_name='listingpushstate',
            name='channel',
            field=models.ForeignKey(db_constraint=False, null=True, on_delete=django.db.models.deletion.CASCADE,
                                    related_name='+', to='channels.channel'),
        ),
        migrations.RunPython(copy_listing_channel, migrations.RunPython.noop),
        migrations.AlterField(
            model_name='listingpushstate',
            name='channel',
            field=models.ForeignKey(db_constraint=False, on_delete=django.db.models.deletion.CASCADE,
                                    related_name='+', to='channels.channel'),
        ),
    ]
