"""What the channel screens draw: health badges, last-run cells, row buttons, the listing download's progress
bar and the mapping summaries. HTML only; the figures come from channels.dashboard and channels.selectors."""

from __future__ import annotations

from django.urls import reverse
from django.utils import formats, timezone
from django.utils.html import format_html, format_html_join

from channels.dashboard import (
    channel_health,
    channel_listing_download_progress,
    channel_location_names,
    channel_shipping_mapping_counts,
    channel_status_mapping_counts,
)
from channels.forms import credential_fields
from channels.models import Channel, SyncRun

HEALTH_COLOURS = {"ok": "#2e7d32", "errors": "#b26a00", "reauthorise": "#b00020", "disabled": "#777"}
RUN_COLOURS = {"success": "#2e7d32", "partial": "#b26a00", "failed": "#b00020", "running": "#1565c0"}


def health_badge(channel: Channel) -> str:
    state, words = channel_health(channel)
    return format_html(
        '<span class="health health-{}" style="color:{};font-weight:bold">&#9679; {}</span>',
        state, HEALTH_COLOURS[state], words,
    )


def run_cell(channel: Channel, kind: str) -> str:
    """The channel's latest run of `kind`, linked to its runs; the channel must come from
    `channels_with_last_runs`."""
    status = getattr(channel, f"last_{kind}_status")
    if status is None:
        return "never"
    started = getattr(channel, f"last_{kind}_started_at")
    processed, failed = getattr(channel, f"last_{kind}_processed"), getattr(channel, f"last_{kind}_failed")
    url = reverse("admin:channels_syncrun_changelist") + f"?channel__id__exact={channel.pk}&kind__exact={kind}"
    return format_html(
        '<a href="{}">{}</a><br><span style="color:{}">{}</span> ({} done{})',
        url, f"{timezone.localtime(started):%Y-%m-%d %H:%M}", RUN_COLOURS.get(status, "#333"),
        SyncRun.Status(status).label, processed, f", {failed} failed" if failed else "",
    )


def channel_buttons(channel: Channel, *, test: bool, reauthorise: bool) -> str:
    buttons = [format_html('<a class="button" href="{}">Config</a>',
                           reverse("admin:channels_channel_change", args=(channel.pk,)))]
    if test:
        # The list is one form (its toggles save in place), so Test posts that form to its own URL.
        buttons.append(format_html(
            '<button type="submit" class="button" formaction="{}?next=list" name="_test">Test</button>',
            reverse("admin:channels_channel_test", args=(channel.pk,)),
        ))
    if reauthorise:
        buttons.append(format_html('<a class="button" href="{}">Reauthorise</a>',
                                   reverse("admin:channels_channel_reauthorise", args=(channel.pk,))))
    return format_html_join(" ", "{}", ((button,) for button in buttons))


def row_buttons(*groups: str) -> str:
    """A list row's buttons, compact: one line per group (the channel's own, then its sync-now buttons)."""
    return format_html_join("", '<div class="row-buttons">{}</div>', ((group,) for group in groups))


def _stamp(value) -> str:
    # As the admin shows the channel's own download fields, so the page's script can refresh them in place.
    return formats.localize(timezone.localtime(value)) if value else ""


def download_state(channel: Channel) -> dict:
    """What the progress bar shows: the JSON the page polls every second while a download is starting or runs."""
    progress = channel_listing_download_progress(channel=channel)
    started, estimate, completed = (_stamp(progress.started_at), _stamp(progress.estimated_completion),
                                    _stamp(progress.completed_at))
    if progress.running:
        text = (f"{progress.done} of {progress.total or '?'} listings, started {started}"
                + (f", estimated completion {estimate}" if estimate else ""))
    elif progress.starting:
        text = f"starting (asked for at {started})"
    else:
        text = f"last download completed {completed}" if completed else "no download yet"
    return {
        "running": progress.running, "starting": progress.starting, "done": progress.done, "total": progress.total,
        "percent": progress.percent, "text": text, "in_progress": channel.listing_download_in_progress,
        "started": started, "estimated_completion": estimate, "completed": completed,
    }


def progress_bar(channel: Channel) -> str:
    """The listing download's progress as it is now; the page's script follows it while it is starting or runs."""
    state = download_state(channel)
    return format_html(
        '<div class="download-progress" data-status-url="{}" data-following="{}">'
        '<progress max="100" value="{}"></progress> <span class="download-percent">{}%</span> '
        '<span class="download-text">{}</span></div>',
        reverse("admin:channels_channel_download_status", args=(channel.pk,)),
        "1" if state["running"] or state["starting"] else "0", state["percent"], state["percent"], state["text"],
    )


def listing_download_cell(channel: Channel) -> str:
    return format_html(
        '{} <a href="{}">Listings of this channel</a>',
        progress_bar(channel),
        reverse("admin:channels_channellisting_changelist") + f"?channel__id__exact={channel.pk}",
    )


def credentials_summary(channel: Channel) -> str:
    """Which secrets are stored, by label: never their values."""
    keys = [label for key, label in credential_fields(channel.kind) if channel.credentials.get(key)]
    return ", ".join(keys) + " set" if keys else "none set"


def location_mapping_summary(channel: Channel) -> str:
    names = channel_location_names(channel=channel)
    sent_from = "all warehouses" if names is None else ", ".join(names) or "no location (nothing is sent)"
    return format_html(
        '<a class="button" href="{}">Location Mapping</a> <span class="help">Stock sent {}.</span>',
        reverse("admin:channels_channel_location_mapping", args=(channel.pk,)), f"from {sent_from}",
    )


def status_mapping_summary(channel: Channel) -> str:
    counts = channel_status_mapping_counts(channel=channel)
    return format_html(
        '<a class="button" href="{}">Order Status Mapping</a> <span class="help">{} statuses, {} unmapped.</span>',
        reverse("admin:channels_channel_status_mapping", args=(channel.pk,)), counts.total, counts.unmapped,
    )


def shipping_mapping_summary(channel: Channel) -> str:
    counts = channel_shipping_mapping_counts(channel=channel)
    return format_html(
        '<a class="button" href="{}">Shipping Mapping</a> <span class="help">{} tags, {} unmapped.</span>',
        reverse("admin:channels_channel_shipping_mapping", args=(channel.pk,)), counts.total, counts.unmapped,
    )
