from django.core.management.base import BaseCommand, CommandError

from channels.selection import channel_runs
from channels.sync.inventory_push import inventory_push


class Command(BaseCommand):
    help = (
        "Send the named channels (all enabled channels by default) the quantities that changed. "
        "--full resends every linked listing, overwriting values edited on the channel."
    )

    def add_arguments(self, parser):
        parser.add_argument("names", nargs="*", metavar="NAME", help="Channel names, as on Channel Integration.")
        parser.add_argument("--full", action="store_true", help="Resend every listing, changed or not.")

    def handle(self, *args, names, full, **options):
        runs, failures = channel_runs(
            names=names, purpose="push", job="push", wait=60,
            run=lambda channel: inventory_push(channel_id=channel.pk, full=full),
        )
        for channel, run in runs:
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
