"""Picking channels by name for the management commands, with one readable line when a name is wrong."""

from django.core.management.base import CommandError

from channels.models import Channel


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
