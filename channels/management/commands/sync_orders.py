from django.core.management.base import BaseCommand, CommandError

from channels.connectors.base import ChannelError
from channels.locks import channel_lock
from channels.selection import channels_named
from channels.sync import orders_download


class Command(BaseCommand):
    help = "Download new and changed orders from the named channels (all enabled channels by default)."

    def add_arguments(self, parser):
        parser.add_argument("names", nargs="*", metavar="NAME", help="Channel names, as on Channel Integration.")

    def handle(self, *args, names, **options):
        failures = []
        for channel in channels_named(names):
            with channel_lock(channel_id=channel.pk, purpose="orders", wait=30) as held:
                if not held:
                    failures.append(f"{channel.name}: another order download is running")
                    continue
                try:
                    run = orders_download(channel_id=channel.pk)
                except ChannelError as exc:
                    failures.append(f"{channel.name}: {exc}")
                    continue
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
