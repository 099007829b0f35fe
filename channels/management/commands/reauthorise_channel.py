from django.core.management.base import CommandError

from channels.management.commands._channel_command import ChannelCommand, one_line
from channels.sync.connections import channel_reauthorise


class Command(ChannelCommand):
    help = (
        "Reauthorise a channel: exchange an authorisation code (Amazon spapi_oauth_code, EKM code, or a new "
        "Rakuten token), or without --code check that the stored refresh token still works."
    )

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--code", default="", help="The authorisation code the channel's consent page gave.")

    def handle(self, *args, name: str, code: str, **options):
        channel = self.channel(name)
        result = channel_reauthorise(channel_id=channel.pk, authorization_code=code)
        if not result.ok:
            raise CommandError(one_line(f"{channel.name}: {result.message}"))
        self.stdout.write(one_line(f"{channel.name}: {result.message}"))
