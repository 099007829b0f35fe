"""EKM Partner API payloads <-> the connector dataclasses. Pure: no HTTP, no ORM.

Field names are the contract's (contract/partner_api.json, written from EKM's swagger): an order's street is
`shipping_address.address`/`address2`, a line's title `item_name`, an order's `last_updated` is null until
the order first changes, and a product is updated with V1UpdateProduct, which has no variants.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from channels.connectors.base import (
    ExternalAddress,
    ExternalListing,
    ExternalOrder,
    ExternalOrderItem,
    OrderChange,
    RecordError,
)
from channels.connectors.values import (
    RECORD_ERRORS,
    iso_z,
    optional_decimal,
    optional_int,
    parse_datetime,
    parse_decimal,
    parse_int,
    text,
)

# V1UpdateProduct's properties (contract/partner_api.json), less the two EKM computes itself.
PRODUCT_UPDATE_FIELDS = (
    "id", "category_id", "name", "description", "short_description", "number_in_stock", "price", "rrp",
    "product_code", "charge_delivery", "special_offer", "brand", "condition", "gtin", "mpn", "product_weight",
    "can_be_added_to_cart", "tax_applicable", "live", "order_note", "redirect_url", "meta_description",
    "meta_keywords", "meta_title",
)
PRODUCT_COMPUTED_FIELDS = ("last_modified", "total_product_stock")
# V1ProductVariant's properties: the body of a variant update is a whole variant.
VARIANT_FIELDS = (
    "id", "parent_product_id", "product_code", "rrp", "is_default_variant", "number_in_stock", "price",
    "product_weight", "condition", "gtin", "mpn", "live", "variant_combinations",
)
# The topics the hub subscribes to (contract/webhooks.json, Webhooks_Post): both name an order in entity_id.
WEBHOOK_TOPICS = ("order.created", "order.updated")
# An order id is an int64 (the Orders_GetById path parameter); anything else never goes into a URL.
ORDER_ID = re.compile(r"[0-9]{1,19}")
# A subscription's id is a uuid (V2WebhookSubscription), sent back in Webhooks_Put's and Webhooks_Delete's path.
SUBSCRIPTION_ID = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")


def orders_query(since: datetime, until: datetime | None = None) -> str:
    """The Orders_Search filter for orders placed or changed in the window.

    `last_updated` is null until an order first changes, so a new order is found by its `order_date`.
    """

    def window(field: str) -> str:
        clause = f"{field} gt '{iso_z(since)}'"
        if until is not None:
            clause = f"({clause} and {field} lt '{iso_z(until, round_up=True)}')"
        return clause

    return f"{window('order_date')} or {window('last_updated')}"


def _name(first: object, last: object) -> str:
    return " ".join(text(part).strip() for part in (first, last) if part and text(part).strip())


def order_item_from_ekm(raw: Mapping[str, Any]) -> ExternalOrderItem:
    # A line names the variant it sold only by its product_code: EKM gives no variant id.
    product_id = raw.get("product_id")
    return ExternalOrderItem(
        line_id=text(raw["id"], "item id"),
        sku=text(raw.get("product_code"), "product_code"),
        title=text(raw.get("item_name"), "item_name"),
        quantity=parse_int(raw["quantity"]),
        unit_price=parse_decimal(raw["item_price"]),
        # item_tax is the tax in the whole line (all its units), as Amazon's itemTax; item_price is per unit.
        tax=optional_decimal(raw.get("item_tax")),
        tax_rate=optional_decimal(raw.get("item_tax_rate")),
        external_product_id=text(product_id, "product_id"),
    )


def order_change(payload: object) -> OrderChange | None:
    """The order's id, change time and status, as order_from_ekm reads them; None when they are unreadable (the
    whole order is then read, and reported by order_from_ekm)."""
    try:
        order_id = text(payload["id"], "id")
        created_at = parse_datetime(payload["order_date"])
        last_updated = payload.get("last_updated")
        updated_at = parse_datetime(last_updated) if last_updated else created_at
        status = text(payload.get("status"), "status")
    except RECORD_ERRORS:
        return None
    return OrderChange(channel_order_id=order_id, updated_at=updated_at, channel_status=status) if order_id else None


def order_from_ekm(payload: Mapping[str, Any], items: Sequence[Mapping[str, Any]],
                   currency: str | None = None) -> ExternalOrder:
    """One V2Order with its V2OrderItems; `currency` is the shop's (orders carry none).

    Raises one of RECORD_ERRORS when unreadable.
    """
    order_id = text(payload["id"], "id")
    if not order_id:
        raise ValueError("the order has no id")
    customer = payload.get("customer_details") or {}
    address = payload.get("shipping_address") or {}
    created_at = parse_datetime(payload["order_date"])
    last_updated = payload.get("last_updated")
    subtotal = optional_decimal(payload.get("sub_total")) or Decimal("0")
    shipping_cost = optional_decimal(payload.get("total_delivery")) or Decimal("0")
    total = optional_decimal(payload.get("total_cost"))
    return ExternalOrder(
        channel_order_id=order_id,
        channel_status=text(payload.get("status"), "status"),
        is_paid=payload.get("payment_status") == "SUCCESS",
        # EKM has no cancelled status of its own: the hub's status mapping decides.
        is_cancelled=False,
        created_at=created_at,
        updated_at=parse_datetime(last_updated) if last_updated else created_at,
        items=tuple(order_item_from_ekm(raw) for raw in items),
        currency=currency,
        buyer_name=_name(customer.get("first_name"), customer.get("last_name")),
        buyer_email=text(customer.get("email_address"), "email_address") or None,
        shipping_address=ExternalAddress(
            name=_name(address.get("first_name"), address.get("last_name")),
            line1=text(address.get("address"), "address"),
            line2=text(address.get("address2"), "address2"),
            city=text(address.get("town"), "town"),
            region=text(address.get("county"), "county"),
            postcode=text(address.get("post_code"), "post_code"),
            country=text(address.get("country"), "country"),
            phone=text(address.get("telephone"), "telephone"),
        ),
        shipping_tag=text(payload.get("delivery_method"), "delivery_method"),
        subtotal=subtotal,
        shipping_cost=shipping_cost,
        tax=optional_decimal(payload.get("total_tax")),
        # The schema does not require total_cost; EKM's total is the goods plus delivery, tax included.
        total=subtotal + shipping_cost if total is None else total,
    )


def statuses_from_settings(data: object) -> list[str]:
    """The status names of OrderStatuses_GetOrderStatuses' `data` ({statuses: [{name, ...}]})."""
    statuses = data.get("statuses") if isinstance(data, Mapping) else None
    names = [status.get("name") for status in statuses or [] if isinstance(status, Mapping)]
    return [name for name in names if isinstance(name, str) and name.strip()]


def currency_from_settings(data: object) -> str | None:
    """The shop's currency from Currency_GetCurrency's `data`; None when EKM does not say."""
    code = data.get("currency_code") if isinstance(data, Mapping) else None
    return code.strip().upper() if isinstance(code, str) and len(code.strip()) == 3 else None


def listing_external_id(product_id: object, variant_id: object = None) -> str:
    return f"{product_id}/{variant_id}" if variant_id not in (None, "") else f"{product_id}"


def parse_external_id(external_id: str) -> tuple[str, str]:
    """(product id, variant id or "") from "55" or "55/7"."""
    product, _, variant = external_id.strip().partition("/")
    if not product.isdigit() or (variant and not variant.isdigit()):
        raise ValueError(f"{external_id!r} is not an EKM product id")
    return product, variant


def listings_from_products(products: Sequence[Mapping[str, Any]]) -> tuple[list[ExternalListing], list[RecordError]]:
    """A product and each of its variants are listings of their own, each with its own SKU and stock."""
    listings, errors = [], []
    for product in products:
        record_id = str(product.get("id", "")) if isinstance(product, dict) else ""
        try:
            variants = product.get("variants") or []
            live = product.get("live", True) is not False
            if product.get("product_code"):
                listings.append(ExternalListing(
                    channel_sku=text(product["product_code"], "product_code"),
                    external_id=listing_external_id(product["id"]),
                    title=text(product.get("name"), "name"),
                    quantity=optional_int(product.get("number_in_stock")),
                    price=optional_decimal(product.get("price")),
                    is_active=live,
                ))
            elif not variants:
                errors.append(RecordError(record_id, "the product has no product code, so it cannot be linked"))
            for variant in variants:
                if not variant.get("product_code"):
                    continue
                listings.append(ExternalListing(
                    channel_sku=text(variant["product_code"], "product_code"),
                    external_id=listing_external_id(product["id"], variant["id"]),
                    title=text(product.get("name"), "name"),
                    quantity=optional_int(variant.get("number_in_stock")),
                    price=optional_decimal(variant.get("price")),
                    is_active=live and variant.get("live", True) is not False,
                ))
        except RECORD_ERRORS as exc:
            errors.append(RecordError(record_id or "(no product id)", f"unreadable product: {exc}"))
    return listings, errors


def product_update(product: Mapping[str, Any], *, price: Decimal, stock: int) -> dict[str, Any]:
    """The V1UpdateProduct for a product read with Products_Get, with its price changed.

    Every field read goes back, since EKM does not say whether a PUT clears the ones left out. The stock is
    the one just sent, so the update cannot undo it.
    """
    if not isinstance(product.get("name"), str) or not product["name"].strip():
        raise ValueError(f"product {product.get('id')} has no name, which EKM requires to update it")
    update = {field: product[field] for field in PRODUCT_UPDATE_FIELDS if field in product}
    update.update(price=float(price), number_in_stock=stock)
    return update


def variant_update(variant: Mapping[str, Any], *, price: Decimal, stock: int) -> dict[str, Any]:
    """The V1ProductVariant for a variant read with ProductVariants_GetProductVariant, with its price changed."""
    update = {field: variant[field] for field in VARIANT_FIELDS if field in variant}
    update.update(price=float(price), number_in_stock=stock)
    return update


def _shown(value: object) -> str:
    """A value from a webhook body, short enough for a one-line refusal."""
    shown = repr(value)
    return shown if len(shown) <= 60 else shown[:57] + "..."


def webhook_delivery(body: bytes) -> tuple[str, str, str]:
    """(merchant username, topic, order id) of one delivery (contract/webhooks.json, webhook_delivery).

    Raises ValueError saying what is wrong. entity_id may come as a string or a number (unconfirmed)."""
    try:
        payload = json.loads(body)
    except ValueError:
        raise ValueError("the body is not JSON") from None
    if not isinstance(payload, dict):
        raise ValueError("the body is not a JSON object")
    username, topic, entity_id = payload.get("username"), payload.get("topic"), payload.get("entity_id")
    if not isinstance(username, str) or not username.strip():
        raise ValueError("it names no merchant (username)")
    if topic not in WEBHOOK_TOPICS:
        raise ValueError(f"its topic {_shown(topic)} is not one the hub subscribes to")
    order_id = str(entity_id).strip() if isinstance(entity_id, (str, int)) and not isinstance(entity_id, bool) else ""
    if not ORDER_ID.fullmatch(order_id):
        raise ValueError(f"its entity_id {_shown(entity_id)} is not an order id")
    return username.strip(), topic, str(int(order_id))


def token_subject(access_token: str) -> str | None:
    """The `sub` claim of an EKM access token, a JSON Web Token: the merchant's username (the swagger's
    Webhooks section). Only read, not verified: the hub holds the token it was given. None when unreadable."""
    parts = access_token.split(".")
    if len(parts) != 3:
        return None
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except ValueError:
        return None
    subject = claims.get("sub") if isinstance(claims, dict) else None
    return subject if isinstance(subject, str) and subject.strip() else None
