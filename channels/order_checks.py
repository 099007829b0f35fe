"""What each channel would refuse of a despatch or a cancellation, checked before the order changes, and
whether it is told at all (see orders.channel_checks).

The channel's needs come from its connector class: a required tracking number, a carrier list with an
"other carrier" that may need a tracking URL, a status mapping for the shipped status, a list of
cancellation reasons.
"""

from __future__ import annotations

import re

from django.core.exceptions import NON_FIELD_ERRORS
from django.urls import reverse

from channels.models import Channel
from orders.channel_checks import ChannelNotice, cancellation_notice_register, despatch_notice_register
from orders.models import Order, PostalService

# What a channel taking a tracking URL takes as one: a whole web address.
TRACKING_URL = re.compile(r"^https?://\S+$")


def channel_sends_tracking(channel: Channel) -> bool:
    """Whether the despatch carries the tracking number and carrier (Send despatch notes, where it applies)."""
    return channel.send_despatch_notes or not channel.connector_class.supports_despatch_notes


def channel_despatch_problems(order: Order, tracking_number: str, postal_service: PostalService | None) -> dict:
    """What the order's channel would refuse in this despatch, by form field; empty when nothing is sent."""
    channel = order.channel
    if order.fulfilled_by_channel or not channel.enabled or not channel.mark_as_despatched:
        return {}
    connector = channel.connector_class
    label = connector.label
    problems: dict[str, str] = {}
    # Read through the channel's mappings, so a page checking many orders can prefetch them once.
    if connector.despatch_needs_status_mapping and not any(
        mapping.hub_status == Order.Status.PROCESSED for mapping in channel.status_mappings.all()
    ):
        problems[NON_FIELD_ERRORS] = (
            f"Map the hub's “Processed (shipped)” status to one of {label}'s statuses in {channel.name}'s Order Status "
            f"Mapping first: {label} cannot be told of the despatch without it."
        )
    if not channel_sends_tracking(channel):
        return problems
    if connector.despatch_needs_tracking_number and not tracking_number:
        problems["tracking_number"] = (
            f"{label} refuses a despatch without a tracking number: type the parcel's tracking number."
        )
    if connector.carriers:
        carrier = (postal_service.carrier_code or postal_service.name) if postal_service else ""
        if not carrier:
            problems["postal_service"] = f"Choose the postal service: {label} must be told the carrier."
        elif (connector.carrier_for(carrier) is None and connector.other_carrier_needs_tracking_url
              and not TRACKING_URL.match(postal_service.tracking_url(tracking_number))):
            problems["postal_service"] = (
                f"“{carrier}” is not on {label}'s carrier list, so it is sent as “{connector.other_carrier}”, "
                f"which {label} accepts only with a tracking URL (starting https://): give {postal_service.name} "
                f"a tracking URL template, or a carrier code from {label}'s list."
            )
    return problems


def channel_cancellation_problems(order: Order, reason: str) -> dict:
    """What the order's channel would refuse in this cancellation note; empty when none is sent."""
    channel = order.channel
    if order.fulfilled_by_channel or not channel.enabled or not channel.send_cancellation_notes:
        return {}
    connector = channel.connector_class
    reasons = connector.cancellation_reasons
    if not reasons or reason.casefold() in {r.casefold() for pair in reasons.items() for r in pair}:
        return {}
    listed = "; ".join(f"{code} ({label})" for code, label in reasons.items())
    return {"reason": f"{connector.label} is told why an order is cancelled with one of its reasons: type one of "
                      f"{listed}."}


def _config_url(channel: Channel) -> str:
    return reverse("admin:channels_channel_change", args=(channel.pk,))


def _not_told(order: Order) -> str:
    """Why neither a despatch nor a cancellation of this order reaches its channel; "" when one may."""
    if order.fulfilled_by_channel:
        return f"the order is fulfilled by {order.channel.connector_class.label}, which ships it itself"
    if not order.channel.enabled:
        return f"{order.channel.name} is disabled"
    return ""


# Registered when ChannelsConfig.ready imports this module, like the checks above.
@despatch_notice_register
def channel_despatch_notice(order: Order) -> ChannelNotice:
    """Whether the order's channel is told it shipped when it is processed here (Mark as despatched)."""
    channel = order.channel
    label = channel.connector_class.label
    why_not = _not_told(order) or (
        "" if channel.mark_as_despatched else "Mark as despatched is off on this channel"
    )
    return ChannelNotice(channel=label, told=not why_not, why_not=why_not, settings_url=_config_url(channel))


@cancellation_notice_register
def channel_cancellation_notice(order: Order) -> ChannelNotice:
    """Whether the order's channel is sent a cancellation note (Send cancellation notes), and its reasons."""
    channel = order.channel
    connector = channel.connector_class
    why_not = _not_told(order) or (
        "" if channel.send_cancellation_notes else "Send cancellation notes is off on this channel"
    )
    return ChannelNotice(channel=connector.label, told=not why_not, why_not=why_not,
                         settings_url=_config_url(channel), reasons=dict(connector.cancellation_reasons))
