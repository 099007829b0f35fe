from django.contrib.auth.models import Group, Permission
from django.core.management.base import BaseCommand, CommandError

from channels.permissions import groups_setup


class Command(BaseCommand):
    help = "Create the staff groups (Warehouse staff, Channel managers, Admins) or reset their permissions."

    def handle(self, *args, **options):
        try:
            counts = groups_setup(group_model=Group, permission_model=Permission)
        except LookupError as exc:
            raise CommandError(str(exc)) from None
        for name, count in counts.items():
            self.stdout.write(f"{name}: {count} permissions")
