"""What every part of the sandbox's state shares: the account, the control API's error, amounts.

The state is plain functions over a `sqlite3` connection opened by `Store.read()`/`Store.write()`, one module per
concern: accounts and tokens, listings and stock, orders, Amazon fulfilment, faults, and what a channel received.
Orders are kept in one channel-neutral form; each channel module renders them in its own wire shape.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

KINDS = ("amazon", "ebay", "ekm", "rakuten", "shopify", "woocommerce")
UK_MARKETPLACE = "A1F83G8C2ARO7P"
TAX_RATE = Decimal("20")
CENT = Decimal("0.01")
DEFAULT_TOKEN_LIFETIME = 3600


class ControlError(ValueError):
    """A control API request that cannot be honoured; answered with 400 (or `status`)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Account:
    id: int
    kind: str
    name: str
    seller_id: str
    marketplace_id: str
    credentials: dict[str, str]
    settings: dict[str, Any]

    @property
    def token_lifetime(self) -> int:
        return int(self.settings.get("token_lifetime", DEFAULT_TOKEN_LIFETIME))


def money(value: Any) -> Decimal:
    try:
        amount = Decimal(str(value))
    except InvalidOperation as error:
        raise ControlError(f"not an amount: {value!r}") from error
    return amount.quantize(CENT, ROUND_HALF_UP)


def included_tax(gross: Decimal) -> Decimal:
    """UK/FR prices include VAT at 20%: the tax part of a gross amount."""
    return (gross * TAX_RATE / (100 + TAX_RATE)).quantize(CENT, ROUND_HALF_UP)
