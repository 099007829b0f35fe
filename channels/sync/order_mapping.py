"""Order mapping, pure: one order as the channel sent it, and what the page's context says of the channel's
mappings, become the hub's order data. No query here: the download reads the context once per page.

The channel's settings apply as the seeds describe them: unpaid orders downloaded or skipped, the Order Status
and Shipping Mappings, the hub's tax or the channel's, the default email. The received time is kept as the
instant the buyer ordered: the channel's UTC offset says which clock staff read it on (the order's "received
(channel time)"), so orders of every channel sort, and the download's watermark moves, on one timeline.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings
from django.core.exceptions import ValidationError

from channels.connectors.base import ExternalOrder
from channels.models import Channel, OrderStatusMapping
from channels.sync.text import is_storable, storable_text
from orders.models import Order
from orders.services import OrderData, OrderLineData
from orders.validators import validate_currency

CENT = Decimal("0.01")
# What the order columns hold: identifiers of 100 characters, 12-digit money, 32-bit quantities.
MAX_IDENTIFIER = 100
# The shipping mapping's tag column.
MAX_TAG = 255
MAX_AMOUNT = Decimal(10) ** 10
MAX_QUANTITY = 2**31 - 1


class OrderSkipped(Exception):
    """An order the channel's settings say not to download (unpaid, unmapped and unpaid)."""


class OrderUnreadable(ValidationError):
    """An order as the channel sent it cannot be stored (an id the database cannot hold, a line twice).

    Like an order the connector could not read, it holds the watermark back for a while: the channel may
    send it corrected."""


@dataclass(frozen=True)
class MappingContext:
    """Everything the orders of one page need from the database, read once per page."""

    channel: Channel
    status_map: dict[str, str]
    postal_by_tag: dict[str, int | None]
    item_by_sku: dict[str, int]
    warehouse_id: int | None
    fba_location_id: int | None


def hub_tax(*, gross: Decimal, country: str) -> Decimal:
    """Tax included in a gross amount at the hub's rate for the destination country."""
    rates = settings.HUB_TAX_RATES
    rate = Decimal(str(rates.get(country.upper(), rates["default"])))
    return (gross * rate / (100 + rate)).quantize(CENT, ROUND_HALF_UP)


def _hub_status(*, channel: Channel, external: ExternalOrder, mapped: str) -> str:
    if external.is_cancelled or mapped == Order.Status.CANCELLED:
        return Order.Status.CANCELLED
    if external.fulfilled_by_channel and external.is_shipped:
        # Amazon shipped an order it fulfils itself: done, whatever the status mapping says.
        return Order.Status.PROCESSED
    if mapped == OrderStatusMapping.UNMAPPED:
        if not external.is_paid:
            raise OrderSkipped(f"status {external.channel_status!r} is unmapped and the order is not paid")
        return Order.Status.PAID
    if not external.is_paid and not channel.download_unpaid_orders:
        raise OrderSkipped("unpaid, and Download unpaid orders is off")
    return mapped


def _buyer_email(*, channel: Channel, external: ExternalOrder) -> str:
    if external.buyer_email:
        return external.buyer_email
    if channel.default_email:
        return channel.default_email
    return channel.connector_class.withheld_email_placeholder

def _money(value: Decimal | None, what: str) -> Decimal:
    value = Decimal(value or 0)
    # Money columns hold 12 digits, 2 after the point; a larger amount would fail the whole page's insert.
    if value.is_finite() and abs(value) >= MAX_AMOUNT:
        raise ValidationError(f"{what} is too large ({value:.2E})")
    amount = value.quantize(CENT, ROUND_HALF_UP)
    if amount < 0:
        raise ValidationError(f"{what} is negative ({amount})")
    return amount


def _identifier(value: str, what: str) -> str:
    if len(value) > MAX_IDENTIFIER:
        raise ValidationError(f"{what} is longer than {MAX_IDENTIFIER} characters")
    _matchable(value, what)
    return value


def _matchable(value: str, what: str) -> None:
    # An id, SKU, status or service is matched, not read: cleaned, it could match another order or item.
    if not is_storable(value):
        raise OrderUnreadable(f"{what} holds a character the database cannot store ({storable_text(value)!r})")


def order_data_from_external(*, context: MappingContext, external: ExternalOrder) -> OrderData:
    """Apply the channel's settings to one downloaded order. Raises OrderSkipped or ValidationError."""
    channel = context.channel
    _identifier(external.channel_status, "the channel's order status")
    if len(external.shipping_tag) > MAX_TAG:
        raise ValidationError(f"the shipping service is longer than {MAX_TAG} characters")
    _matchable(external.shipping_tag, "the shipping service")
    status = _hub_status(
        channel=channel, external=external,
        mapped=context.status_map.get(external.channel_status, OrderStatusMapping.UNMAPPED),
    )
    currency = (external.currency or channel.currency).upper()
    validate_currency(currency)
    if not external.items:
        raise ValidationError("the order has no items")
    country = storable_text(external.shipping_address.country)
    lines = []
    line_ids = set()
    for item in external.items:
        if not 0 < item.quantity <= MAX_QUANTITY:
            raise ValidationError(f"line {item.line_id} has quantity {item.quantity}")
        _identifier(item.line_id, "a line id")
        _identifier(item.sku, f"line {item.line_id}'s SKU")
        # A line without an id is known by its SKU (see channel_line_id): two such lines are one line twice.
        line_id = item.line_id or item.sku
        if line_id in line_ids:
            what = f"line id {item.line_id}" if item.line_id else f"SKU {item.sku} (on lines without an id)"
            raise OrderUnreadable(f"{what} appears twice in the order")
        line_ids.add(line_id)
        unit_price = _money(item.unit_price, f"line {item.line_id} price")
        if channel.use_channel_tax:
            line_tax = _money(item.tax, f"line {item.line_id} tax")
        else:
            line_tax = hub_tax(gross=unit_price * item.quantity, country=country)
        lines.append(
            OrderLineData(
                channel_line_id=line_id,
                channel_sku=item.sku,
                title=storable_text(item.title)[:255],
                quantity=item.quantity,
                unit_price=unit_price,
                tax=line_tax,
                stock_item_id=context.item_by_sku.get(item.sku),
            )
        )
    subtotal = _money(external.subtotal, "subtotal")
    shipping_cost = _money(external.shipping_cost, "shipping")
    if channel.use_channel_tax:
        tax = _money(external.tax if external.tax is not None else sum(line.tax for line in lines), "tax")
    else:
        tax = hub_tax(gross=subtotal + shipping_cost, country=country)
    address = external.shipping_address
    return OrderData(
        channel_order_id=_identifier(external.channel_order_id, "the order id"),
        status=status,
        channel_status=external.channel_status,
        is_paid=external.is_paid,
        received_at=external.created_at,
        channel_updated_at=external.updated_at,
        currency=currency,
        lines=tuple(lines),
        fulfilled_by_channel=external.fulfilled_by_channel,
        fulfilment_location_id=context.fba_location_id if external.fulfilled_by_channel else context.warehouse_id,
        buyer_name=storable_text(external.buyer_name)[:255],
        buyer_email=storable_text(_buyer_email(channel=channel, external=external))[:255],
        address={
            # Cut to their columns: an over-long address part is the channel's, and staff can correct it.
            "ship_name": storable_text(address.name)[:255], "ship_line1": storable_text(address.line1)[:255],
            "ship_line2": storable_text(address.line2)[:255], "ship_city": storable_text(address.city)[:100],
            "ship_region": storable_text(address.region)[:100], "ship_postcode": storable_text(address.postcode)[:20],
            "ship_country": country[:2].upper(), "ship_phone": storable_text(address.phone)[:50],
        },
        channel_shipping_tag=external.shipping_tag,
        postal_service_id=context.postal_by_tag.get(external.shipping_tag),
        subtotal=subtotal,
        shipping_cost=shipping_cost,
        tax=tax,
        total=_money(external.total, "total"),
    )
