"""What the channel commands share: lookup by name, one-line errors, and quiet logs unless -v 2."""

import logging
from contextlib import contextmanager

from django.core.management.base import BaseCommand, CommandError

from channels.models import Channel
from channels.selectors import channel_by_name


def one_line(text: object) -> str:
    return " ".join(str(text).split())


class ChannelCommand(BaseCommand):
    def add_arguments(self, parser):
        parser.add_argument("name", help="The channel's name, as on the Channel Integration screen.")

    def channel(self, name: str) -> Channel:
        try:
            return channel_by_name(name=name)
        except Channel.DoesNotExist as exc:
            raise CommandError(one_line(exc)) from exc

    @contextmanager
    def quiet_logs(self, verbosity: int):
        """The command's own line says what went wrong; the connectors' log lines only with -v 2."""
        logger = logging.getLogger("channels")
        previous = logger.level
        if verbosity < 2:
            logger.setLevel(logging.ERROR)
        try:
            yield
        finally:
            logger.setLevel(previous)

    def execute(self, *args, **options):
        with self.quiet_logs(options.get("verbosity", 1)):
            return super().execute(*args, **options)
