"""Small pure parsers shared by the mappers: channel timestamps and amounts to aware datetimes and Decimals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation

# What a mapper catches around one record: the record is reported and the rest of the page goes on.
RECORD_ERRORS = (KeyError, TypeError, ValueError, AttributeError, InvalidOperation, IndexError)


def parse_datetime(value: str) -> datetime:
    """An ISO 8601 timestamp as an aware UTC datetime; a channel that omits the offset means UTC."""
    if not value:
        raise ValueError("missing timestamp")
    parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def iso_z(value: datetime, *, round_up: bool = False) -> str:
    """The form every channel here accepts in a query: 2026-11-29T10:15:00Z.

    Whole seconds only, so an exclusive upper bound is rounded up (`round_up`): truncated, it would
    miss what changed earlier in its last second.
    """
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    if round_up and value.microsecond:
        value += timedelta(microseconds=1_000_000 - value.microsecond)
    # isoformat, not strftime: %Y drops the zero padding of years before 1000 (Last Order Sync 0001-01-01).
    return value.astimezone(UTC).replace(microsecond=0, tzinfo=None).isoformat() + "Z"


def parse_decimal(value: object) -> Decimal:
    """A money amount from a JSON number or string; floats go through str so 12.5 stays 12.5."""
    if value is None or value == "":
        raise ValueError("missing amount")
    if isinstance(value, bool):
        raise ValueError("an amount cannot be a boolean")
    amount = Decimal(str(value).strip())
    if not amount.is_finite():
        raise ValueError(f"amount {value!r} is not a number")
    return amount


def optional_decimal(value: object) -> Decimal | None:
    return None if value is None or str(value).strip() == "" else parse_decimal(value)


def parse_int(value: object) -> int:
    if isinstance(value, bool):
        raise ValueError("a quantity cannot be a boolean")
    if isinstance(value, int):
        return value
    text = str(value).strip()
    if not text.lstrip("-").isdigit():
        raise ValueError(f"{value!r} is not a whole number")
    return int(text)


def optional_int(value: object) -> int | None:
    return None if value is None or str(value).strip() == "" else parse_int(value)


def text(value: object, what: str = "a text field") -> str:
    """A JSON value meant as text: a string or a plain number as written; None is empty.

    Anything else (an object, a list, a boolean) is a malformed record, not something to store as "{...}".
    """
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        return str(value)
    raise ValueError(f"{what} is {type(value).__name__}, not text")
