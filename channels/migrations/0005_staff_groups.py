"""The staff groups: Warehouse staff, Channel managers, Admins (see channels/permissions.py)."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

from channels.permissions import groups_setup


def create_groups(apps, schema_editor):
    # Permissions are normally created after all migrations ran; the groups need them now.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    groups_setup(group_model=apps.get_model("auth", "Group"), permission_model=apps.get_model("auth", "Permission"))


class Migration(migrations.Migration):
    dependencies = [
        ("channels", "0004_encrypt_existing_credentials"),
        ("inventory", "0002_level_messages"),
        ("orders", "0002_order_import_batch"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_groups, migrations.RunPython.noop)]
