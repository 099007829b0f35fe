from django.core.management.base import CommandError

from channels.management.commands._channel_command import ChannelCommand, one_line
from channels.sync.connections import channel_test


class Command(ChannelCommand):
    help = "Call the channel with its stored credentials and say whether it answers."

    def handle(self, *args, name: str, **options):
        channel = self.channel(name)
        result = channel_test(channel_id=channel.pk)
        if not result.ok:
            raise CommandError(one_line(f"{channel.name}: {result.message}"))
        self.stdout.write(one_line(f"{channel.name}: {result.message}"))
