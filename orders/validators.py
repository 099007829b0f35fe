from django.core.exceptions import ValidationError

from orders.currencies import ISO_4217_CODES


def validate_currency(value: str) -> None:
    if value not in ISO_4217_CODES:
        raise ValidationError(
            "%(value)s is not an ISO 4217 currency code (for example GBP, EUR, USD).",
            code="invalid_currency",
            params={"value": value},
        )
