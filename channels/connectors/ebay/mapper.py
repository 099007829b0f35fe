"""eBay Sell Inventory and Sell Fulfillment payloads <-> the connector dataclasses. Pure: no HTTP, no ORM.

Field names are the contract's (contract/inventory.json, contract/fulfillment.json). A hub listing is one
inventory item (SKU); its external id names the eBay listing and the published offers its stock goes to, as
"{listingId}/{offerId}[,{offerId}...]".
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from channels.connectors.base import (
    AccountDeletion,
    Carrier,
    ExternalAddress,
    ExternalListing,
    ExternalOrder,
    ExternalOrderItem,
    PushResult,
    RecordError,
    StockUpdate,
)
from channels.connectors.values import RECORD_ERRORS, parse_datetime, parse_decimal, parse_int, text

CENT = Decimal("0.01")
DELETION_TOPIC = "MARKETPLACE_ACCOUNT_DELETION"
# A public key id goes into getPublicKey's path: nothing but what eBay's ids are made of.
KEY_ID = re.compile(r"[0-9A-Za-z_-]{1,100}")
# orderIds takes up to 50 ids; an order id is digits and dashes (e.g. 01-03955-36441).
ORDER_ID = re.compile(r"[0-9A-Za-z-]{1,40}")
ORDER_IDS_PER_CALL = 50
# The hub's status for an eBay order: its payment state first, then how far its fulfilment has gone.
CANCELLED = "CANCELED"
UNPAID = ("PENDING", "FAILED")
REFUNDED = "FULLY_REFUNDED"
FULFILMENT = ("NOT_STARTED", "IN_PROGRESS", "FULFILLED")
ORDER_STATUSES = (*FULFILMENT, *UNPAID, REFUNDED, CANCELLED)
# The UK carriers of GeteBayDetails' ShippingCarrierDetails (contract/fulfillment.json notes); "Other" for the rest.
CARRIERS = (
    Carrier("RoyalMail", "Royal Mail"), Carrier("Parcelforce", "Parcelforce"), Carrier("DPD", "DPD"),
    Carrier("Hermes", "Evri (Hermes)"), Carrier("Yodel", "Yodel"), Carrier("DHL", "DHL"), Carrier("UPS", "UPS"),
    Carrier("FedEx", "FedEx"), Carrier("TNT", "TNT"), Carrier("CollectPlus", "CollectPlus"),
    Carrier("Other", "Other"),
)
OTHER_CARRIER = "Other"
NOT_MANAGEABLE = ("not manageable through the Inventory API: it was listed with eBay's Trading API or on eBay's site, "
                  "so the hub cannot send its stock or price. Migrate it to the Inventory API (README, eBay) and "
                  "download the listings again.")


# getOrders returns no order older than two years and wants no filter date before that: a day's margin.
OLDEST_ORDERS = timedelta(days=2 * 365 - 1)


def orders_filter(since: datetime, until: datetime | None = None, *, now: datetime | None = None) -> str:
    """getOrders' filter for orders changed in the window (inclusive bounds, milliseconds, UTC), starting no
    earlier than eBay keeps orders (a first download from Last Order Sync 0001-01-01 asks for two years)."""
    since = max(since, (now or datetime.now(UTC)) - OLDEST_ORDERS)
    end = _stamp(until) if until is not None else ""
    return f"lastmodifieddate:[{_stamp(since)}..{end}]"


def created_filter(since: datetime) -> str:
    return f"creationdate:[{_stamp(since)}..]"


def _stamp(value: datetime) -> str:
    # isoformat, not strftime: %Y drops the zero padding of years before 1000 (Last Order Sync 0001-01-01).
    plain = value.astimezone(UTC).replace(tzinfo=None)
    return plain.isoformat(timespec="milliseconds") + "Z"


def shipped_date(value: datetime) -> str:
    return _stamp(value)


# Listings

def external_id(listing_id: str, offer_ids: Sequence[str]) -> str:
    return f"{listing_id}/{','.join(offer_ids)}"


def parse_external_id(value: str) -> tuple[str, list[str]]:
    """(listing id, offer ids) of a listing's external id; ValueError when it names no offer."""
    listing_id, _, offers = value.partition("/")
    offer_ids = [offer for offer in offers.split(",") if offer]
    if not offer_ids:
        raise ValueError(f"{value!r} names no eBay offer")
    return listing_id, offer_ids


def listing_from_item(item: Mapping[str, Any], offers: Sequence[Mapping[str, Any]], marketplace_id: str
                      ) -> ExternalListing:
    """One inventory item with its offers on the channel's marketplace: the fixed-price ones carry its stock."""
    sku = text(item["sku"], "sku")
    if not sku:
        raise ValueError("an inventory item without a sku")
    ours = [offer for offer in offers if not marketplace_id or offer.get("marketplaceId") == marketplace_id]
    # Stock goes to fixed-price offers only: an auction sells its one lot, whatever the hub holds.
    fixed = [offer for offer in ours if offer.get("format") == "FIXED_PRICE"]
    published = [offer for offer in fixed if offer.get("status") == "PUBLISHED"]
    shown = published or fixed or ours
    listing_id = next((text((offer.get("listing") or {}).get("listingId")) for offer in shown
                       if (offer.get("listing") or {}).get("listingId")), "")
    price = None
    quantity = None
    if shown:
        amount = (shown[0].get("pricingSummary") or {}).get("price")
        price = parse_decimal(amount["value"]) if amount else None
        if shown[0].get("availableQuantity") is not None:
            quantity = parse_int(shown[0]["availableQuantity"])
    if quantity is None:
        ship_to = ((item.get("availability") or {}).get("shipToLocationAvailability") or {}).get("quantity")
        quantity = parse_int(ship_to) if ship_to is not None else None
    active = bool(published) and all(
        (offer.get("listing") or {}).get("listingStatus", "ACTIVE") == "ACTIVE" for offer in published)
    return ExternalListing(
        channel_sku=sku, external_id=external_id(listing_id, [text(o["offerId"]) for o in published]) if published
        else "", title=text((item.get("product") or {}).get("title"))[:255], quantity=quantity, price=price,
        is_active=active,
    )


def trading_listings(orders: Sequence[Mapping[str, Any]], managed_skus: set[str]) -> list[RecordError]:
    """The listings the seller's recent orders came from that the Inventory API does not know (Trading API ones)."""
    found: dict[str, RecordError] = {}
    for order in orders:
        for line in order.get("lineItems") or []:
            if not isinstance(line, dict):
                continue
            sku = text(line.get("sku"))
            item_id = text(line.get("legacyItemId"))
            if sku in managed_skus or not item_id:
                continue
            key = sku or f"eBay item {item_id}"
            found.setdefault(key, RecordError(key, f"eBay listing {item_id} ({text(line.get('title'))[:80]}) is "
                                                   + NOT_MANAGEABLE))
    return list(found.values())


# Stock and price: bulkUpdatePriceQuantity, one request per SKU

def price_quantity_request(update: StockUpdate, offer_ids: Sequence[str]) -> dict[str, Any]:
    quantity = max(0, update.quantity)
    offers = []
    for offer_id in offer_ids:
        offer: dict[str, Any] = {"offerId": offer_id, "availableQuantity": quantity}
        if update.price is not None:
            offer["price"] = {"currency": update.currency or "GBP", "value": str(update.price.quantize(CENT))}
        offers.append(offer)
    return {"sku": update.channel_sku, "shipToLocationAvailability": {"quantity": quantity}, "offers": offers}


def error_text(errors: Any) -> str:
    messages = []
    for error in errors if isinstance(errors, list) else []:
        if isinstance(error, dict):
            message = text(error.get("longMessage") or error.get("message")) or "refused"
            messages.append(f"{message} (eBay error {error.get('errorId', '?')})")
    return "; ".join(messages) or "eBay refused this listing without saying why"


def push_results(updates: Sequence[StockUpdate], body: Mapping[str, Any]) -> list[PushResult]:
    """Each SKU's outcome from the per-item responses: a SKU is accepted when every one of its entries is 2xx."""
    refused: dict[str, list[str]] = {}
    answered: set[str] = set()
    for entry in body.get("responses") or []:
        if not isinstance(entry, dict):
            continue
        sku = text(entry.get("sku"))
        answered.add(sku)
        status = entry.get("statusCode")
        if not isinstance(status, int) or not 200 <= status < 300:
            refused.setdefault(sku, []).append(error_text(entry.get("errors")))
    results = []
    for update in updates:
        if update.channel_sku in refused:
            results.append(PushResult(update.channel_sku, False, "; ".join(refused[update.channel_sku])))
        elif update.channel_sku in answered:
            results.append(PushResult(update.channel_sku, True))
        else:
            results.append(PushResult(update.channel_sku, False, "eBay gave no answer for this SKU"))
    return results


# Orders

def money(amount: Any) -> Decimal:
    if not amount:
        return Decimal("0")
    return parse_decimal(amount["value"])


def order_status(order: Mapping[str, Any]) -> str:
    if ((order.get("cancelStatus") or {}).get("cancelState")) == CANCELLED:
        return CANCELLED
    payment = order["orderPaymentStatus"]
    if payment in (*UNPAID, REFUNDED):
        return payment
    return text(order["orderFulfillmentStatus"])


def _ship_to(order: Mapping[str, Any]) -> tuple[Mapping[str, Any], str]:
    for instruction in order.get("fulfillmentStartInstructions") or []:
        step = (instruction or {}).get("shippingStep") or {}
        if step:
            return step.get("shipTo") or {}, text(step.get("shippingServiceCode"))
    return {}, ""


def order_from_ebay(order: Mapping[str, Any], *, default_currency: str) -> ExternalOrder:
    status = order_status(order)
    pricing = order.get("pricingSummary") or {}
    ship_to, service = _ship_to(order)
    address = ship_to.get("contactAddress") or {}
    items = []
    for line in order["lineItems"]:
        quantity = parse_int(line["quantity"])
        cost = money(line["lineItemCost"])
        taxes = [money(tax.get("amount")) for tax in line.get("taxes") or []]
        items.append(ExternalOrderItem(
            line_id=text(line["lineItemId"]), sku=text(line.get("sku")), title=text(line.get("title"))[:255],
            quantity=quantity, unit_price=(cost / quantity).quantize(CENT) if quantity else cost,
            tax=sum(taxes, Decimal("0")) if taxes else None,
            external_product_id=text(line.get("legacyItemId")),
        ))
    if not items:
        raise ValueError("an order without line items")
    total = pricing.get("total") or {}
    created = parse_datetime(order["creationDate"])
    return ExternalOrder(
        channel_order_id=text(order["orderId"]), channel_status=status,
        is_paid=order["orderPaymentStatus"] in ("PAID", "PARTIALLY_REFUNDED"),
        is_cancelled=status in (CANCELLED, REFUNDED), created_at=created,
        updated_at=parse_datetime(order.get("lastModifiedDate") or order["creationDate"]), items=tuple(items),
        currency=text(total.get("currency")) or default_currency or None,
        buyer_name=(text((order.get("buyer") or {}).get("username")) or text(ship_to.get("fullName")))[:255],
        buyer_email=text(ship_to.get("email")) or None,
        shipping_address=ExternalAddress(
            name=text(ship_to.get("fullName")), line1=text(address.get("addressLine1")),
            line2=text(address.get("addressLine2")), city=text(address.get("city")),
            region=text(address.get("stateOrProvince") or address.get("county")),
            postcode=text(address.get("postalCode")), country=text(address.get("countryCode")),
            phone=text((ship_to.get("primaryPhone") or {}).get("phoneNumber")),
        ),
        shipping_tag=service, subtotal=money(pricing.get("priceSubtotal")),
        shipping_cost=money(pricing.get("deliveryCost")),
        tax=money(pricing["tax"]) if pricing.get("tax") else None, total=money(total),
        is_shipped=order["orderFulfillmentStatus"] == "FULFILLED",
    )


def orders_page(orders: Sequence[Any], *, default_currency: str) -> tuple[list[ExternalOrder], list[RecordError]]:
    mapped, errors = [], []
    for raw in orders:
        record_id = text(raw.get("orderId")) if isinstance(raw, dict) else ""
        if not record_id:
            errors.append(RecordError("(no order id)", "unreadable order: it has no orderId"))
            continue
        try:
            mapped.append(order_from_ebay(raw, default_currency=default_currency))
        except RECORD_ERRORS as exc:
            errors.append(RecordError(record_id, f"unreadable order: {type(exc).__name__} {exc}"))
    return mapped, errors


def fulfillment_body(lines: Sequence[tuple[str, int]], *, carrier: str, tracking_number: str,
                     shipped_at: datetime) -> dict[str, Any]:
    body: dict[str, Any] = {"lineItems": [{"lineItemId": line_id, "quantity": quantity} for line_id, quantity in lines],
                            "shippedDate": shipped_date(shipped_at)}
    if tracking_number:
        body |= {"shippingCarrierCode": carrier or OTHER_CARRIER, "trackingNumber": tracking_number}
    return body


# Marketplace account deletion notifications (contract/notification.json)

def deletion_challenge_response(challenge_code: str, verification_token: str, endpoint_url: str) -> dict[str, str]:
    digest = hashlib.sha256((challenge_code + verification_token + endpoint_url).encode()).hexdigest()
    return {"challengeResponse": digest}


def deletion_signature(header: str) -> tuple[str, bytes]:
    """(public key id, DER signature) of an X-EBAY-SIGNATURE header; ValueError when it is not one."""
    try:
        packed = json.loads(base64.b64decode(header, validate=True))
        kid, signature = str(packed["kid"]), base64.b64decode(packed["signature"], validate=True)
    except (binascii.Error, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as exc:
        raise ValueError("the X-EBAY-SIGNATURE header is not eBay's") from exc
    if (packed.get("alg") or "").upper() != "ECDSA" or (packed.get("digest") or "").upper() != "SHA1":
        raise ValueError("the X-EBAY-SIGNATURE header names another algorithm than ECDSA with SHA1")
    if not KEY_ID.fullmatch(kid) or not signature:
        raise ValueError("the X-EBAY-SIGNATURE header has no usable key id or signature")
    return kid, signature


def pem(key: str) -> bytes:
    """eBay's key as PEM: getPublicKey may send it on one line, without the base64 body's line breaks."""
    body = re.sub(r"-----(BEGIN|END) PUBLIC KEY-----|\s", "", key)
    lines = [body[index:index + 64] for index in range(0, len(body), 64)]
    return ("-----BEGIN PUBLIC KEY-----\n" + "\n".join(lines) + "\n-----END PUBLIC KEY-----\n").encode()


def deletion_notice(body: bytes) -> AccountDeletion:
    notice = json.loads(body)
    if (notice.get("metadata") or {}).get("topic") != DELETION_TOPIC:
        raise ValueError("not a MARKETPLACE_ACCOUNT_DELETION notice")
    data = (notice.get("notification") or {}).get("data") or {}
    username = text(data.get("username"))
    if not username:
        raise ValueError("the notice names no username")
    return AccountDeletion(username=username, user_id=text(data.get("userId")))
