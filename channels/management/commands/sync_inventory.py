from django.core.management.base import BaseCommand, CommandError

from channels.connectors.base import ChannelError
from channels.locks import channel_lock
from channels.selection import channels_named
from channels.sync import inventory_push


class Command(BaseCommand):
    help = (
        "Send the named channels (all enabled channels by default) the quantities that changed. "
        "--full resends every linked listing, overwriting values edited on the channel."
    )

    def add_arguments(self, parser):
        parser.add_argument("names", nargs="*", metavar="NAME", help="Channel names, as on Channel Integration.")
        parser.add_argument("--full", action="store_true", help="Resend every listing, changed or not.")

    def handle(self, *args, names, full, **options):
        failures = []
        for channel in channels_named(names):
            with channel_lock(channel_id=channel.pk, purpose="push", wait=60) as held:
                if not held:
                    failures.append(f"{channel.name}: another push is running")
                    continue
                try:
                    run = inventory_push(channel_id=channel.pk, full=full)
                except ChannelError as exc:
                    failures.append(f"{channel.name}: {exc}")
                    continue
            if run is None:
                self.stdout.write(f"{channel.name}: inventory sync is off (Enabled, Inventory Sync, Update Inventory)")
                continue
            self.stdout.write(
                f"{channel.name}: {run.processed} listings updated, {run.failed} rejected "
                f"({run.get_status_display().lower()})"
            )
            for error in run.errors[:20]:
                self.stdout.write(f"  {error['record_id']}: {error['reason']}")
        if failures:
            raise CommandError("; ".join(failures))
