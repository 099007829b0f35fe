"""What must hold before an order is despatched, asked of the app that tells the order's channel.

`orders` knows no channel. The channels app registers a check at start-up that names, per form field, what
the order's channel would refuse (a tracking number it requires, a carrier outside its list), so processing
is refused before any stock moves rather than failing at the channel afterwards.
"""

from __future__ import annotations

from collections.abc import Callable

from orders.models import Order, PostalService

# (order, tracking number, postal service or None) -> {form field: message}
DespatchCheck = Callable[[Order, str, PostalService | None], dict[str, str]]

_checks: list[DespatchCheck] = []


def despatch_check_register(check: DespatchCheck) -> None:
    if check not in _checks:
        _checks.append(check)


def despatch_problems(*, order: Order, tracking_number: str, postal_service: PostalService | None) -> dict[str, str]:
    """Every registered check's refusals for this despatch, by form field; empty when it may go."""
    problems: dict[str, str] = {}
    for check in _checks:
        for field, message in check(order, tracking_number, postal_service).items():
            problems.setdefault(field, message)
    return problems
