"""What the order's channel would refuse, and whether it is told at all, asked before an order is despatched
or cancelled here.

`orders` knows no channel. The channels app registers checks at start-up that name, per form field, what the
order's channel would refuse (a tracking number it requires, a carrier outside its list, a cancellation reason
it does not know), so the action is refused before any stock moves rather than failing at the channel after;
and notices that say whether the channel will be told of a despatch or cancellation, and why not.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from orders.models import Order, PostalService

# (order, tracking number, postal service or None) -> {form field: message}
DespatchCheck = Callable[[Order, str, PostalService | None], dict[str, str]]
# (order, reason) -> {form field: message}
CancellationCheck = Callable[[Order, str], dict[str, str]]



@dataclass(frozen=True)
class ChannelNotice:
    """Whether the order's channel is told of a despatch or cancellation made here, in the seller's words."""

    channel: str  # the channel as the seller knows it, e.g. "Amazon"
    told: bool
    # Why it is not told, e.g. "Send cancellation notes is off on this channel".
    why_not: str = ""
    # The page where the seller changes that, or "".
    settings_url: str = ""
    # The cancellation reasons the channel accepts: code -> the seller's words; empty means free text.
    reasons: Mapping[str, str] = field(default_factory=dict)


# order -> the notice
NoticeRule = Callable[[Order], ChannelNotice]
NO_CHANNEL = ChannelNotice(channel="the channel", told=False, why_not="no channel is connected to tell")

_despatch_checks: list[DespatchCheck] = []
_cancellation_checks: list[CancellationCheck] = []
_despatch_notice: list[NoticeRule] = []
_cancellation_notice: list[NoticeRule] = []


def despatch_check_register(check: DespatchCheck) -> None:
    if check not in _despatch_checks:
        _despatch_checks.append(check)


def cancellation_check_register(check: CancellationCheck) -> None:
    if check not in _cancellation_checks:
        _cancellation_checks.append(check)


def despatch_notice_register(rule: NoticeRule) -> NoticeRule:
    """The one rule saying whether a processed order's channel is told (the last registered wins)."""
    _despatch_notice[:] = [rule]
    return rule


def cancellation_notice_register(rule: NoticeRule) -> NoticeRule:
    """The one rule saying whether a cancelled order's channel is told (the last registered wins)."""
    _cancellation_notice[:] = [rule]
    return rule


def despatch_notice(*, order: Order) -> ChannelNotice:
    """Whether the order's channel is told when it is processed here, and why not."""
    return _despatch_notice[0](order) if _despatch_notice else NO_CHANNEL


def cancellation_notice(*, order: Order) -> ChannelNotice:
    """Whether the order's channel is told when it is cancelled here, which reasons it takes, and why not."""
    return _cancellation_notice[0](order) if _cancellation_notice else NO_CHANNEL


def _merged(answers) -> dict[str, str]:
    problems: dict[str, str] = {}
    for answer in answers:
        for name, message in answer.items():
            problems.setdefault(name, message)
    return problems


def despatch_problems(*, order: Order, tracking_number: str, postal_service: PostalService | None) -> dict[str, str]:
    """Every registered check's refusals for this despatch, by form field; empty when it may go."""
    return _merged(check(order, tracking_number, postal_service) for check in _despatch_checks)


def cancellation_problems(*, order: Order, reason: str) -> dict[str, str]:
    """Every registered check's refusals for this cancellation, by form field; empty when it may go."""
    return _merged(check(order, reason) for check in _cancellation_checks)
