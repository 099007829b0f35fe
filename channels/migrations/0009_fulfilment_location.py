"""Location.channel (an FBA location's channel) becomes channels.FulfilmentLocation, so inventory knows no channel.

inventory 0001 no longer creates the column, so a new install never has it; a database migrated before has it.
Forward: each location's channel is copied into a FulfilmentLocation row and the column (with its foreign key
and check constraint) dropped. Backward: the column comes back and the rows are copied into it, as the code
before this migration expects.
"""

import django.db.models.deletion
from django.db import migrations, models

COLUMN = "channel_id"


def _has_column(schema_editor, table: str) -> bool:
    connection = schema_editor.connection
    with connection.cursor() as cursor:
        columns = connection.introspection.get_table_description(cursor, table)
    return any(column.name == COLUMN for column in columns)


def location_channel_move(apps, schema_editor):
    Location = apps.get_model("inventory", "Location")
    FulfilmentLocation = apps.get_model("channels", "FulfilmentLocation")
    table = Location._meta.db_table
    if not _has_column(schema_editor, table):
        return
    quote = schema_editor.quote_name
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(f"SELECT id, {quote(COLUMN)} FROM {quote(table)} WHERE {quote(COLUMN)} IS NOT NULL")
        rows = cursor.fetchall()
    FulfilmentLocation.objects.using(schema_editor.connection.alias).bulk_create(
        FulfilmentLocation(location_id=location_id, channel_id=channel_id) for location_id, channel_id in rows
    )
    if schema_editor.connection.vendor == "sqlite":
        # SQLite cannot drop a column a check constraint names: the table is rebuilt from the model, which
        # has neither.
        schema_editor._remake_table(Location)
    else:
        schema_editor.execute(f"ALTER TABLE {quote(table)} DROP COLUMN {quote(COLUMN)} CASCADE")


def location_channel_restore(apps, schema_editor):
    Location = apps.get_model("inventory", "Location")
    Channel = apps.get_model("channels", "Channel")
    FulfilmentLocation = apps.get_model("channels", "FulfilmentLocation")
    table = Location._meta.db_table
    quote = schema_editor.quote_name
    if not _has_column(schema_editor, table):
        schema_editor.execute(
            f"ALTER TABLE {quote(table)} ADD COLUMN {quote(COLUMN)} bigint NULL "
            f"REFERENCES {quote(Channel._meta.db_table)} (id) DEFERRABLE INITIALLY DEFERRED"
        )
        if schema_editor.connection.vendor != "sqlite":
            schema_editor.execute(
                f"ALTER TABLE {quote(table)} ADD CONSTRAINT inventory_location_channel_only_for_fba "
                f"CHECK (kind = 'fba' OR {quote(COLUMN)} IS NULL)"
            )
    with schema_editor.connection.cursor() as cursor:
        for link in FulfilmentLocation.objects.using(schema_editor.connection.alias).order_by("pk"):
            cursor.execute(f"UPDATE {quote(table)} SET {quote(COLUMN)} = %s WHERE id = %s",
                           [link.channel_id, link.location_id])


class Migration(migrations.Migration):

    dependencies = [
        ("channels", "0008_endpoints_import_profile_secret_rotation"),
        ("inventory", "0004_list_search_indexes"),
    ]

    operations = [
        migrations.CreateModel(
            name="FulfilmentLocation",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("channel", models.ForeignKey(on_delete=django.db.models.deletion.PROTECT,
                                              related_name="fulfilment_locations", to="channels.channel")),
                ("location", models.OneToOneField(on_delete=django.db.models.deletion.CASCADE,
                                                  related_name="fulfilment", to="inventory.location")),
            ],
            options={"ordering": ["location_id"]},
        ),
        migrations.RunPython(location_channel_move, location_channel_restore),
    ]
