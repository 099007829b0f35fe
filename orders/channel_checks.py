"""What the order's channel would refuse, asked before an order is despatched or cancelled here.

`orders` knows no channel. The channels app registers checks at start-up that name, per form field, what the
order's channel would refuse (a tracking number it requires, a carrier outside its list, a cancellation reason
it does not know), so the action is refused before any stock moves rather than failing at the channel after.
"""

from __future__ import annotations

from collections.abc import Callable

from orders.models import Order, PostalService

# (order, tracking number, postal service or None) -> {form field: message}
DespatchCheck = Callable[[Order, str, PostalService | None], dict[str, str]]
# (order, reason) -> {form field: message}
CancellationCheck = Callable[[Order, str], dict[str, str]]

_despatch_checks: list[DespatchCheck] = []
_cancellation_checks: list[CancellationCheck] = []


def despatch_check_register(check: DespatchCheck) -> None:
    if check not in _despatch_checks:
        _despatch_checks.append(check)


def cancellation_check_register(check: CancellationCheck) -> None:
    if check not in _cancellation_checks:
        _cancellation_checks.append(check)


def _merged(answers) -> dict[str, str]:
    problems: dict[str, str] = {}
    for answer in answers:
        for field, message in answer.items():
            problems.setdefault(field, message)
    return problems


def despatch_problems(*, order: Order, tracking_number: str, postal_service: PostalService | None) -> dict[str, str]:
    """Every registered check's refusals for this despatch, by form field; empty when it may go."""
    return _merged(check(order, tracking_number, postal_service) for check in _despatch_checks)


def cancellation_problems(*, order: Order, reason: str) -> dict[str, str]:
    """Every registered check's refusals for this cancellation, by form field; empty when it may go."""
    return _merged(check(order, reason) for check in _cancellation_checks)
