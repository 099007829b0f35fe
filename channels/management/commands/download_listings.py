from django.core.management.base import BaseCommand, CommandError

from channels.connections import ListingDownloadRunning, channel_by_name, listings_download, listings_download_summary
from channels.connectors.base import ChannelError
from channels.management.commands.test_channel import one_line
from channels.models import Channel


class Command(BaseCommand):
    help = "Download the channel's listings now: store them, link them to stock items by SKU, report drift."

    def add_arguments(self, parser):
        parser.add_argument("name", help="The channel's name, as on the Channel Integration screen.")

    def handle(self, *args, name: str, **options):
        try:
            channel = channel_by_name(name=name)
            run = listings_download(channel_id=channel.pk)
        except (Channel.DoesNotExist, ListingDownloadRunning) as exc:
            raise CommandError(one_line(exc)) from exc
        except ChannelError as exc:
            raise CommandError(one_line(f"{name}: the listing download failed: {exc}")) from exc
        self.stdout.write(one_line(listings_download_summary(run=run)))
