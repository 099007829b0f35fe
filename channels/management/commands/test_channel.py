from django.core.management.base import BaseCommand, CommandError

from channels.connections import channel_by_name, channel_test
from channels.models import Channel


def one_line(text: str) -> str:
    return " ".join(str(text).split())


class Command(BaseCommand):
    help = "Call the channel with its stored credentials and say whether it answers."

    def add_arguments(self, parser):
        parser.add_argument("name", help="The channel's name, as on the Channel Integration screen.")

    def handle(self, *args, name: str, **options):
        try:
            channel = channel_by_name(name=name)
        except Channel.DoesNotExist as exc:
            raise CommandError(one_line(exc)) from exc
        result = channel_test(channel_id=channel.pk)
        if not result.ok:
            raise CommandError(one_line(f"{channel.name}: {result.message}"))
        self.stdout.write(one_line(f"{channel.name}: {result.message}"))
