"""Picking channels by name for the management commands, and running one job per channel under its lock."""

from collections.abc import Callable

from django.core.management.base import CommandError

from channels.connectors.base import ChannelError
from channels.models import Channel, SyncRun
from channels.sync.locks import channel_lock


def channels_named(names: list[str]) -> list[Channel]:
    """The channels named, in the order given; every enabled channel when no name is given."""
    if not names:
        return list(Channel.objects.filter(enabled=True).order_by("name"))
    found = {channel.name: channel for channel in Channel.objects.filter(name__in=names)}
    missing = [name for name in names if name not in found]
    if missing:
        known = ", ".join(Channel.objects.order_by("name").values_list("name", flat=True)) or "none"
        raise CommandError(f"No channel named {', '.join(map(repr, missing))} (channels: {known}).")
    return [found[name] for name in names]


def channel_runs(
    *, names: list[str], purpose: str, job: str, wait: float, run: Callable[[Channel], SyncRun | None]
) -> tuple[list[tuple[Channel, SyncRun | None]], list[str]]:
    """Run `run(channel)` for each named channel holding the lock the Celery task takes, so a command and a
    worker never sync one channel at once. Returns the runs, and one line per channel that failed."""
    runs, failures = [], []
    for channel in channels_named(names):
        with channel_lock(channel_id=channel.pk, purpose=purpose, wait=wait) as held:
            if not held:
                failures.append(f"{channel.name}: another {job} is running")
                continue
            try:
                runs.append((channel, run(channel)))
            except ChannelError as exc:
                failures.append(f"{channel.name}: {exc}")
    return runs, failures
