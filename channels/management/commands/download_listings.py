from django.core.management.base import CommandError

from channels.connectors.base import ChannelError
from channels.management.commands._channel_command import ChannelCommand, one_line
from channels.selectors import listings_download_summary
from channels.sync.listings_download import ListingDownloadRunning, listings_download


class Command(ChannelCommand):
    help = "Download the channel's listings now: store them, link them to stock items by SKU, report drift."

    def handle(self, *args, name: str, **options):
        channel = self.channel(name)
        try:
            run = listings_download(channel_id=channel.pk)
        except ListingDownloadRunning as exc:
            raise CommandError(one_line(exc)) from exc
        except ChannelError as exc:
            raise CommandError(one_line(f"{channel.name}: the listing download failed: {exc}")) from exc
        self.stdout.write(one_line(listings_download_summary(run=run)))
