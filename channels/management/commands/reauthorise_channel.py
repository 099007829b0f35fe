from django.core.management.base import BaseCommand, CommandError

from channels.connections import channel_by_name, channel_reauthorise
from channels.management.commands.test_channel import one_line
from channels.models import Channel


class Command(BaseCommand):
    help = (
        "Reauthorise a channel: exchange an authorisation code (Amazon spapi_oauth_code, EKM code, or a new "
        "Rakuten token), or without --code check that the stored refresh token still works."
    )

    def add_arguments(self, parser):
        parser.add_argument("name", help="The channel's name, as on the Channel Integration screen.")
        parser.add_argument("--code", default="", help="The authorisation code the channel's consent page gave.")

    def handle(self, *args, name: str, code: str, **options):
        try:
            channel = channel_by_name(name=name)
        except Channel.DoesNotExist as exc:
            raise CommandError(one_line(exc)) from exc
        result = channel_reauthorise(channel_id=channel.pk, authorization_code=code)
        if not result.ok:
            raise CommandError(one_line(f"{channel.name}: {result.message}"))
        self.stdout.write(one_line(f"{channel.name}: {result.message}"))
