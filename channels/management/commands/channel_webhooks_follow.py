from django.core.management.base import CommandError

from channels.connectors.base import ChannelError
from channels.management.commands._channel_command import ChannelCommand, one_line
from channels.models import Channel
from channels.sync.order_hints import channel_webhooks_follow


class Command(ChannelCommand):
    help = (
        "Subscribe the named channels' order webhooks to this hub (STOCKLINE_PUBLIC_URL), or unsubscribe them "
        "when the channel is disabled or the setting is empty. Every channel by default."
    )

    def add_arguments(self, parser):
        parser.add_argument("names", nargs="*", metavar="NAME", help="Channel names, as on Channel Integration.")

    def handle(self, *args, names, **options):
        channels = [self.channel(name) for name in names] or list(Channel.objects.order_by("name"))
        failures = []
        for channel in channels:
            try:
                self.stdout.write(one_line(f"{channel.name}: {channel_webhooks_follow(channel_id=channel.pk)}"))
            except ChannelError as exc:
                failures.append(one_line(f"{channel.name}: {exc}"))
        if failures:
            raise CommandError("; ".join(failures))
