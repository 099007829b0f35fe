"""Shopify GraphQL answers <-> the connector dataclasses. Pure: no HTTP, no ORM.

Field names are those of contract/operations.graphql (Shopify's 2026-04 schema). Shopify names everything by a
global id (gid://shopify/ProductVariant/123); the hub keeps the numbers: a listing's external id is
"product/variant/inventory item", an order's id its number.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from channels.connectors.base import (
    ExternalAddress,
    ExternalListing,
    ExternalOrder,
    ExternalOrderItem,
    RecordError,
)
from channels.connectors.values import (
    RECORD_ERRORS,
    iso_z,
    optional_decimal,
    parse_datetime,
    parse_decimal,
    parse_int,
    text,
)

GID = re.compile(r"^gid://shopify/(\w+)/([0-9]{1,19})$")
NUMBER = re.compile(r"^[0-9]{1,19}$")
AVAILABLE = "available"
# What the hub subscribes to (WebhookSubscriptionTopic) and the X-Shopify-Topic each delivers under.
WEBHOOK_TOPICS = {"ORDERS_CREATE": "orders/create", "ORDERS_UPDATED": "orders/updated",
                  "ORDERS_CANCELLED": "orders/cancelled"}
# OrderDisplayFinancialStatus values for which the buyer has paid (all of it, or all but what was refunded since):
# such an order's status is its OrderDisplayFulfillmentStatus; any other order's is its financial status.
PAID_STATUSES = ("PAID", "PARTIALLY_REFUNDED")
FINANCIAL_STATUSES = ("PENDING", "AUTHORIZED", "PARTIALLY_PAID", "VOIDED", "REFUNDED", "EXPIRED")
FULFILMENT_STATUSES = ("UNFULFILLED", "PARTIALLY_FULFILLED", "FULFILLED", "RESTOCKED", "PENDING_FULFILLMENT", "OPEN",
                       "IN_PROGRESS", "ON_HOLD", "SCHEDULED", "REQUEST_DECLINED")
CANCELLED = "CANCELLED"
DEFAULT_TITLE = "Default Title"


def gid(kind: str, number: str) -> str:
    return f"gid://shopify/{kind}/{number}"


def gid_number(value: object, kind: str) -> str:
    """The number of a global id of `kind`; raises ValueError for anything else."""
    found = GID.match(value) if isinstance(value, str) else None
    if found is None or found[1] != kind:
        raise ValueError(f"{value!r} is not a Shopify {kind} id")
    return found[2]


# Listings (ProductVariants)

def listing_external_id(product: str, variant: str, inventory_item: str) -> str:
    return f"{product}/{variant}/{inventory_item}"


def parse_external_id(external_id: str) -> tuple[str, str, str]:
    """(product, variant, inventory item) numbers of a listing's external id."""
    parts = external_id.strip().split("/")
    if len(parts) != 3 or not all(NUMBER.match(part) for part in parts):
        raise ValueError(f"{external_id!r} is not a Shopify listing id")
    return parts[0], parts[1], parts[2]


def available_of(level: object) -> int | None:
    """The "available" quantity of an InventoryLevel; None when the item is not stocked at the location."""
    if not isinstance(level, Mapping):
        return None
    for quantity in level.get("quantities") or []:
        if isinstance(quantity, Mapping) and quantity.get("name") == AVAILABLE:
            return parse_int(quantity["quantity"])
    return None


def listing_from_variant(node: Mapping[str, Any]) -> ExternalListing:
    product, item = node["product"], node["inventoryItem"]
    title = text(product.get("title"), "product title")
    variant_title = text(node.get("title"), "variant title")
    if variant_title and variant_title != DEFAULT_TITLE:
        title = f"{title} - {variant_title}"
    sku = text(node.get("sku"), "sku").strip()
    if not sku:
        raise ValueError("the variant has no SKU, so it cannot be linked")
    return ExternalListing(
        channel_sku=sku,
        external_id=listing_external_id(gid_number(product["id"], "Product"), gid_number(node["id"], "ProductVariant"),
                                        gid_number(item["id"], "InventoryItem")),
        title=title,
        # An untracked variant has no quantity Shopify keeps: nothing to compare.
        quantity=available_of(item.get("inventoryLevel")) if item.get("tracked") is True else None,
        price=optional_decimal(node.get("price")),
        is_active=product.get("status") == "ACTIVE" and item.get("tracked") is True,
    )


def listings_from_variants(nodes: Sequence[Any]) -> tuple[list[ExternalListing], list[RecordError]]:
    listings, errors = [], []
    for node in nodes:
        record_id = str(node.get("id") or "(no variant id)") if isinstance(node, dict) else "(not an object)"
        try:
            listings.append(listing_from_variant(node))
        except RECORD_ERRORS as exc:
            errors.append(RecordError(record_id, f"unreadable variant: {exc}"))
    return listings, errors


def levels_query(inventory_items: Sequence[str]) -> str:
    """inventoryItems' search for these items: "id:1 OR id:2"."""
    return " OR ".join(f"id:{number}" for number in inventory_items)


def levels_from_items(nodes: Sequence[Any]) -> dict[str, int | None]:
    """The "available" quantity at the location by inventory item number."""
    found: dict[str, int | None] = {}
    for node in nodes:
        if isinstance(node, Mapping):
            found[gid_number(node.get("id"), "InventoryItem")] = available_of(node.get("inventoryLevel"))
    return found


# Stock (InventorySetQuantities)

def set_quantities_input(quantities: Sequence[tuple[str, int, int | None]], location: str) -> dict[str, Any]:
    """InventorySetQuantitiesInput for (inventory item, quantity, changeFromQuantity) at one location."""
    return {
        "name": AVAILABLE,
        "reason": "correction",
        "referenceDocumentUri": "stockline://inventory-push",
        "quantities": [
            {"inventoryItemId": gid("InventoryItem", item), "locationId": gid("Location", location),
             "quantity": quantity, "changeFromQuantity": change_from}
            for item, quantity, change_from in quantities
        ],
    }


def idempotency_key(channel_id: int, payload: Mapping[str, Any], seen_at: Sequence[str] = ()) -> str:
    """A key derived from the planned push itself: the same push retried carries the same key, so Shopify
    applies it once; any other push (another quantity, another value seen, or the same values seen at another
    time: 5 to 3, back to 5, then 5 to 3 again is a new push) gets another key."""
    digest = hashlib.sha256(json.dumps([channel_id, payload, list(seen_at)], sort_keys=True).encode()).hexdigest()
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"stockline:shopify:{digest}"))


def user_error_index(error: Mapping[str, Any]) -> int | None:
    """Which of the input's quantities a userError is about (field ["input", "quantities", "3", ...])."""
    field = error.get("field") or []
    if len(field) >= 3 and field[:2] == ["input", "quantities"] and str(field[2]).isdigit():
        return int(field[2])
    return None


# Orders

def orders_query(since: datetime, until: datetime | None = None) -> str:
    query = f"updated_at:>'{iso_z(since)}'"
    if until is not None:
        query += f" AND updated_at:<'{iso_z(until, round_up=True)}'"
    return query


def _money(money_set: object) -> Decimal | None:
    if not isinstance(money_set, Mapping):
        return None
    return parse_decimal(money_set["shopMoney"]["amount"])


def order_status(node: Mapping[str, Any]) -> str:
    """The status the Order Status Mapping maps: CANCELLED; a paid order's fulfilment status (UNFULFILLED,
    FULFILLED...); an unpaid one's financial status (PENDING, AUTHORIZED...)."""
    if node.get("cancelledAt"):
        return CANCELLED
    financial = node.get("displayFinancialStatus") or "PENDING"
    if financial in PAID_STATUSES:
        return text(node["displayFulfillmentStatus"], "displayFulfillmentStatus")
    return financial


ORDER_STATUSES = (CANCELLED, *FULFILMENT_STATUSES, *FINANCIAL_STATUSES)


def order_item(node: Mapping[str, Any]) -> ExternalOrderItem:
    tax_lines = node.get("taxLines") or []
    tax = sum((parse_decimal(line["priceSet"]["shopMoney"]["amount"]) for line in tax_lines), Decimal("0"))
    rates = [line.get("rate") for line in tax_lines if line.get("rate") is not None]
    variant = node.get("variant") or {}
    return ExternalOrderItem(
        line_id=gid_number(node["id"], "LineItem"),
        sku=text(node.get("sku"), "sku"),
        title=text(node.get("title"), "title"),
        quantity=parse_int(node["quantity"]),
        unit_price=parse_decimal(node["originalUnitPriceSet"]["shopMoney"]["amount"]),
        tax=tax if tax_lines else None,
        # Shopify's rate is a fraction (0.2 for 20 %).
        tax_rate=(parse_decimal(sum(rates)) * 100) if rates else None,
        external_product_id=gid_number(variant["id"], "ProductVariant") if variant.get("id") else "",
    )


def order_from_node(node: Mapping[str, Any]) -> ExternalOrder:
    address = node.get("shippingAddress") or {}
    shipping_line = node.get("shippingLine") or {}
    subtotal = _money(node.get("subtotalPriceSet")) or Decimal("0")
    shipping = _money(node.get("totalShippingPriceSet")) or Decimal("0")
    total = _money(node.get("totalPriceSet"))
    financial = node.get("displayFinancialStatus")
    return ExternalOrder(
        channel_order_id=gid_number(node["id"], "Order"),
        channel_status=order_status(node),
        is_paid=financial in PAID_STATUSES,
        is_cancelled=bool(node.get("cancelledAt")),
        created_at=parse_datetime(node["createdAt"]),
        updated_at=parse_datetime(node["updatedAt"]),
        items=tuple(order_item(line) for line in node["lineItems"]["nodes"]),
        currency=text(node.get("currencyCode"), "currencyCode") or None,
        buyer_name=text(address.get("name"), "name"),
        buyer_email=text(node.get("email"), "email") or None,
        shipping_address=ExternalAddress(
            name=text(address.get("name"), "name"),
            line1=text(address.get("address1"), "address1"),
            line2=text(address.get("address2"), "address2"),
            city=text(address.get("city"), "city"),
            region=text(address.get("province"), "province"),
            postcode=text(address.get("zip"), "zip"),
            country=text(address.get("countryCodeV2"), "countryCodeV2"),
            phone=text(address.get("phone"), "phone"),
        ),
        shipping_tag=text(shipping_line.get("title"), "shipping line title"),
        subtotal=subtotal,
        shipping_cost=shipping,
        tax=_money(node.get("totalTaxSet")),
        total=subtotal + shipping if total is None else total,
    )


# Webhooks (contract/admin_api.json webhook_delivery)

def webhook_signature(secret: str, body: bytes) -> str:
    """X-Shopify-Hmac-Sha256: base64 of HMAC-SHA256 over the raw body, keyed with the app's client secret."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def webhook_signed(secret: str, body: bytes, signature: str) -> bool:
    return bool(secret and signature) and hmac.compare_digest(webhook_signature(secret, body), signature.strip())


def webhook_order_id(body: bytes) -> str:
    """The order number a delivery names (admin_graphql_api_id, else id); raises ValueError saying what is wrong."""
    try:
        payload = json.loads(body)
    except ValueError:
        raise ValueError("the body is not JSON") from None
    if not isinstance(payload, dict):
        raise ValueError("the body is not a JSON object")
    if isinstance(payload.get("admin_graphql_api_id"), str):
        return gid_number(payload["admin_graphql_api_id"], "Order")
    number = payload.get("id")
    if isinstance(number, int) and not isinstance(number, bool) and number > 0:
        return str(number)
    raise ValueError("it names no order")
