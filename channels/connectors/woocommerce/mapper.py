"""WooCommerce wc/v3 payloads <-> the connector dataclasses. Pure: no HTTP, no ORM.

Field names are the contract's (contract/wc_v3.json, from WooCommerce 9.9.7's route index): a product's stock is
`stock_quantity`, counted only while `manage_stock` is on (a variation's may be "parent"); money is text; the
*_gmt dates are UTC without an offset; an order's delivery is its `shipping_lines`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from urllib.parse import parse_qs

from channels.connectors.base import (
    ExternalAddress,
    ExternalListing,
    ExternalOrder,
    ExternalOrderItem,
    RecordError,
    StockUpdate,
)
from channels.connectors.values import (
    RECORD_ERRORS,
    optional_decimal,
    optional_int,
    parse_datetime,
    parse_int,
    text,
)

# The order topics the hub subscribes to; each delivery's body is the order, named by its `id`.
WEBHOOK_TOPICS = ("order.created", "order.updated")
# What the hub names its webhooks, so it finds its own among the shop's (their secret cannot be read back).
WEBHOOK_NAME = "Stockline order webhook"
# Ids are WordPress post ids: digits only ever go into a URL.
RESOURCE_ID = re.compile(r"[0-9]{1,19}")
# WooCommerce's statuses of an order that has been paid for (its date_paid is set when it enters them).
PAID_STATUSES = frozenset({"processing", "completed"})
CENT = Decimal("0.01")
NOT_MANAGED = ("stock not managed on the channel: WooCommerce ignores the quantity the hub sends until "
               "“Manage stock” is ticked for it in the shop")
MANAGED_BY_PARENT = ("stock not managed on the channel for this variation: its parent product manages the stock "
                     "of all its variations; tick “Manage stock” on the variation to give it its own")


def listing_external_id(product_id: object, parent_id: object = None) -> str:
    """A simple product "55", a variation "55/70" (its parent, then itself): the batch route needs both."""
    return f"{parent_id}/{product_id}" if parent_id not in (None, "", 0) else f"{product_id}"


def parse_external_id(external_id: str) -> tuple[str, str]:
    """(parent product id or "", product or variation id) from "55" or "55/70"."""
    first, _, second = external_id.strip().partition("/")
    parent, own = (first, second) if second else ("", first)
    if not RESOURCE_ID.fullmatch(own) or (parent and not RESOURCE_ID.fullmatch(parent)):
        raise ValueError(f"{external_id!r} is not a WooCommerce product id")
    return parent, own


def _price(raw: Mapping[str, Any]) -> Decimal | None:
    # The regular price is what the hub sets; `price` is the current one, a sale's while it runs.
    return optional_decimal(raw.get("regular_price")) or optional_decimal(raw.get("price"))


def _listing(raw: Mapping[str, Any], *, parent: Mapping[str, Any] | None) -> tuple[ExternalListing | None, str]:
    """The listing for one simple product or variation, and why its stock cannot be pushed ("" when it can)."""
    sku = text(raw.get("sku"), "sku").strip()
    own_id = parse_int(raw["id"])
    if not sku:
        return None, "it has no SKU, so it cannot be linked"
    managed = raw.get("manage_stock")
    problem = "" if managed is True else MANAGED_BY_PARENT if managed == "parent" else NOT_MANAGED
    title = text((parent or raw).get("name"), "name")
    if parent is not None and text(raw.get("name"), "name") and raw.get("name") != parent.get("name"):
        title = text(raw.get("name"), "name")
    status = text(raw.get("status"), "status")
    parent_live = parent is None or parent.get("status") == "publish"
    return ExternalListing(
        channel_sku=sku,
        external_id=listing_external_id(own_id, parse_int(parent["id"]) if parent is not None else None),
        title=title,
        quantity=optional_int(raw.get("stock_quantity")) if not problem else None,
        price=_price(raw),
        is_active=status == "publish" and parent_live,
    ), problem


def listings_from_products(products: Sequence[Any]) -> tuple[list[ExternalListing], list[RecordError], list[Any]]:
    """The simple products' listings, the problems found, and the variable products whose variations are the
    listings (read next). Grouped and external products hold no stock of their own and are left out."""
    listings, errors, variable = [], [], []
    for product in products:
        record_id = str(product.get("id", "")) if isinstance(product, dict) else ""
        try:
            kind = product.get("type")
            if kind == "variable":
                variable.append(product)
                continue
            if kind not in (None, "simple"):
                continue
            listing, problem = _listing(product, parent=None)
            if listing is not None:
                listings.append(listing)
            if problem:
                errors.append(RecordError(listing.channel_sku if listing else f"product {record_id}", problem))
        except RECORD_ERRORS as exc:
            errors.append(RecordError(record_id or "(no product id)", f"unreadable product: {exc}"))
    return listings, errors, variable


def listings_from_variations(parent: Mapping[str, Any], variations: Sequence[Any]
                             ) -> tuple[list[ExternalListing], list[RecordError]]:
    listings, errors = [], []
    for variation in variations:
        record_id = str(variation.get("id", "")) if isinstance(variation, dict) else ""
        try:
            listing, problem = _listing(variation, parent=parent)
        except RECORD_ERRORS as exc:
            errors.append(RecordError(record_id or "(no variation id)", f"unreadable variation: {exc}"))
            continue
        if listing is not None:
            listings.append(listing)
        if problem:
            errors.append(RecordError(listing.channel_sku if listing else f"variation {parent.get('id')}/{record_id}",
                                      problem))
    return listings, errors


def batch_update(update: StockUpdate, object_id: str) -> dict[str, Any]:
    """One object of a batch's `update` list: the stock, and the regular price when one is sent."""
    body: dict[str, Any] = {"id": int(object_id), "stock_quantity": max(0, update.quantity)}
    if update.price is not None:
        body["regular_price"] = str(update.price.quantize(CENT, ROUND_HALF_UP))
    return body


def batch_outcomes(answer: object, sent: Sequence[int]) -> dict[int, str]:
    """Why each object sent in a batch's `update` was not taken ("" when it was), by id.

    The answer lists one entry per object: the resource, or {id, error}. A resource whose stock is not managed
    took nothing (WooCommerce ignores the quantity), so it is reported, not counted as pushed."""
    entries = answer.get("update") if isinstance(answer, Mapping) else None
    if not isinstance(entries, list):
        return {object_id: "WooCommerce's batch answer lists no updates" for object_id in sent}
    outcomes: dict[int, str] = {}
    for entry in entries:
        if not isinstance(entry, Mapping):
            continue
        try:
            object_id = parse_int(entry.get("id"))
        except RECORD_ERRORS:
            continue
        error = entry.get("error")
        if isinstance(error, Mapping):
            outcomes[object_id] = " ".join(str(error.get(k)) for k in ("code", "message") if error.get(k)) or "refused"
        elif entry.get("manage_stock") == "parent":
            outcomes[object_id] = MANAGED_BY_PARENT
        elif entry.get("manage_stock") is not True:
            outcomes[object_id] = NOT_MANAGED
        else:
            outcomes[object_id] = ""
    for object_id in sent:
        outcomes.setdefault(object_id, "WooCommerce's batch answer does not mention it")
    return outcomes


def _name(first: object, last: object) -> str:
    return " ".join(text(part).strip() for part in (first, last) if part and text(part).strip())


def _gmt(value: object) -> datetime | None:
    """A *_gmt field (UTC, written without an offset); None when unset."""
    if value in (None, ""):
        return None
    parsed = parse_datetime(text(value, "date"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _amount(value: object) -> Decimal:
    return optional_decimal(value) or Decimal("0")


def order_item_from_woo(raw: Mapping[str, Any], *, tax_included: bool) -> ExternalOrderItem:
    quantity = parse_int(raw["quantity"])
    if quantity <= 0:
        raise ValueError(f"line {raw.get('id')} has quantity {quantity}")
    total, tax = _amount(raw.get("total")), _amount(raw.get("total_tax"))
    # `total` is the line after discounts without its tax; the unit price is what the buyer paid per unit.
    gross = total + tax if tax_included else total
    variation = raw.get("variation_id")
    product = variation if variation not in (None, 0, "0", "") else raw.get("product_id")
    return ExternalOrderItem(
        line_id=text(raw["id"], "line id"),
        sku=text(raw.get("sku"), "sku"),
        title=text(raw.get("name"), "name") if isinstance(raw.get("name"), str | int | float) else "",
        quantity=quantity,
        unit_price=(gross / quantity).quantize(CENT, ROUND_HALF_UP),
        tax=tax,
        external_product_id=text(product, "product_id") if isinstance(product, int | str) else "",
    )


def _address(shipping: Mapping[str, Any], billing: Mapping[str, Any]) -> ExternalAddress:
    # An order with nothing to ship (or a shop that hides the shipping form) has only the billing address.
    source = shipping if any(text(shipping.get(k)) for k in ("address_1", "city", "postcode")) else billing
    return ExternalAddress(
        name=_name(source.get("first_name"), source.get("last_name")) or text(source.get("company")),
        line1=text(source.get("address_1"), "address_1"),
        line2=text(source.get("address_2"), "address_2"),
        city=text(source.get("city"), "city"),
        region=text(source.get("state"), "state"),
        postcode=text(source.get("postcode"), "postcode"),
        country=text(source.get("country"), "country"),
        phone=text(source.get("phone") or billing.get("phone"), "phone"),
    )


def order_from_woo(payload: Mapping[str, Any]) -> ExternalOrder:
    """One wc/v3 order. Raises one of RECORD_ERRORS when unreadable."""
    order_id = text(payload["id"], "id")
    if not RESOURCE_ID.fullmatch(order_id):
        raise ValueError(f"the order id {order_id!r} is not a number")
    status = text(payload.get("status"), "status")
    billing = payload.get("billing") or {}
    shipping = payload.get("shipping") or {}
    if not isinstance(billing, Mapping) or not isinstance(shipping, Mapping):
        raise ValueError("billing or shipping is not an object")
    tax_included = payload.get("prices_include_tax") is True
    created_at = _gmt(payload.get("date_created_gmt")) or parse_datetime(text(payload["date_created"]))
    modified_at = _gmt(payload.get("date_modified_gmt")) or created_at
    items = tuple(order_item_from_woo(raw, tax_included=tax_included) for raw in payload.get("line_items") or [])
    lines = [line for line in payload.get("shipping_lines") or [] if isinstance(line, Mapping)]
    shipping_cost = _amount(payload.get("shipping_total"))
    if tax_included:
        shipping_cost += _amount(payload.get("shipping_tax"))
    currency = text(payload.get("currency"), "currency").strip().upper()
    email = text(billing.get("email"), "email").strip()
    return ExternalOrder(
        channel_order_id=order_id,
        channel_status=status,
        is_paid=payload.get("date_paid_gmt") not in (None, "") or status in PAID_STATUSES,
        is_cancelled=status == "cancelled",
        created_at=created_at,
        updated_at=max(modified_at, created_at),
        items=items,
        currency=currency if len(currency) == 3 else None,
        buyer_name=_name(billing.get("first_name"), billing.get("last_name")),
        buyer_email=email or None,
        shipping_address=_address(shipping, billing),
        shipping_tag=" + ".join(text(line.get("method_title"), "method_title").strip() for line in lines
                                if text(line.get("method_title"), "method_title").strip()),
        subtotal=sum((item.unit_price * item.quantity for item in items), Decimal("0")),
        shipping_cost=shipping_cost,
        tax=optional_decimal(payload.get("total_tax")),
        total=_amount(payload.get("total")),
    )


def statuses_from_answer(answer: object) -> list[str]:
    """The slugs of GET /orders/statuses ([{slug, name}]), without WordPress's "wc-" prefix."""
    entries = answer if isinstance(answer, list) else []
    slugs = [entry.get("slug") for entry in entries if isinstance(entry, Mapping)]
    return [slug.removeprefix("wc-") for slug in slugs if isinstance(slug, str) and slug.strip()]


def woocommerce_version(answer: object) -> str:
    environment = answer.get("environment") if isinstance(answer, Mapping) else None
    version = environment.get("version") if isinstance(environment, Mapping) else None
    return version if isinstance(version, str) and version.strip() else ""


def webhook_signature(secret: str, body: bytes) -> str:
    """X-WC-Webhook-Signature: base64 of HMAC-SHA256 over the raw body, keyed with the webhook's secret."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


@dataclass(frozen=True)
class Delivery:
    topic: str
    order_id: str
    is_ping: bool = False


def webhook_delivery(headers: Mapping[str, str], body: bytes, secret: str) -> Delivery:
    """What one delivery names, once its signature holds (contract/webhook_delivery.json). Raises ValueError
    saying why it is refused; the signature is checked first, over the raw bytes, before anything is parsed."""
    lowered = {name.lower(): value for name, value in headers.items()}
    signature = lowered.get("x-wc-webhook-signature", "").strip()
    if not signature:
        ping = parse_qs(body.decode("utf-8", "replace")) if len(body) < 100 else {}
        if list(ping) == ["webhook_id"] and RESOURCE_ID.fullmatch(ping["webhook_id"][0]):
            return Delivery(topic="ping", order_id="", is_ping=True)
        raise ValueError("it carries no X-WC-Webhook-Signature")
    if not secret:
        raise ValueError("the channel holds no webhook secret yet, so no signature can be checked")
    if not hmac.compare_digest(signature.encode(), webhook_signature(secret, body).encode()):
        raise ValueError("its X-WC-Webhook-Signature does not match the webhook's secret")
    topic = lowered.get("x-wc-webhook-topic", "").strip()
    if topic not in WEBHOOK_TOPICS:
        raise ValueError(f"its topic {topic[:40]!r} is not one the hub subscribes to")
    try:
        payload = json.loads(body)
    except ValueError:
        raise ValueError("the body is not JSON") from None
    order_id = payload.get("id") if isinstance(payload, dict) else None
    if isinstance(order_id, bool) or not isinstance(order_id, int | str) or not RESOURCE_ID.fullmatch(str(order_id)):
        raise ValueError("the body names no order id")
    return Delivery(topic=topic, order_id=str(int(order_id)))


def despatch_note(*, carrier: str, tracking_number: str, tracking_url: str) -> str:
    """The customer note telling the buyer how the order travels."""
    parts = [f"Your order has been despatched with {carrier}." if carrier else "Your order has been despatched."]
    if tracking_number:
        parts.append(f"Tracking number: {tracking_number}.")
    if tracking_url:
        parts.append(f"Track it at {tracking_url}")
    return " ".join(parts)


def tracking_provider(providers: object, carrier: str) -> str:
    """The Shipment Tracking provider named like `carrier` (ignoring case and spaces), or ""."""
    wanted = re.sub(r"[^a-z0-9]", "", carrier.casefold())
    if not wanted or not isinstance(providers, Mapping):
        return ""
    for region in providers.values():
        for name in region if isinstance(region, Mapping) else ():
            if re.sub(r"[^a-z0-9]", "", str(name).casefold()) == wanted:
                return str(name)
    return ""
