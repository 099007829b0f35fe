from django.core.management.base import BaseCommand, CommandError

from channels.selection import channel_runs
from channels.sync.order_download import orders_download


class Command(BaseCommand):
    help = "Download new and changed orders from the named channels (all enabled channels by default)."

    def add_arguments(self, parser):
        parser.add_argument("names", nargs="*", metavar="NAME", help="Channel names, as on Channel Integration.")

    def handle(self, *args, names, **options):
        runs, failures = channel_runs(
            names=names, purpose="orders", job="order download", wait=30,
            run=lambda channel: orders_download(channel_id=channel.pk),
        )
        for channel, run in runs:
            if run is None:
                self.stdout.write(f"{channel.name}: disabled, nothing downloaded")
                continue
            self.stdout.write(
                f"{channel.name}: {run.processed} orders stored, {run.skipped} skipped, {run.failed} failed "
                f"({run.get_status_display().lower()})"
            )
            for error in run.errors[:20]:
                self.stdout.write(f"  order {error['record_id']}: {error['reason']}")
        if failures:
            raise CommandError("; ".join(failures))
