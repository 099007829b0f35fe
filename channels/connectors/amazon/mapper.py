"""Amazon SP-API payloads to and from the connector dataclasses: pure functions, no HTTP.

Shapes follow the contract files in `contract/` (written from Amazon's SP-API models).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from channels.connectors.base import (
    Carrier,
    ChannelPayloadError,
    ChannelRejected,
    ExternalAddress,
    ExternalListing,
    ExternalOrder,
    ExternalOrderItem,
    FbaStock,
    FbaStockPage,
    FulfilmentPackage,
    FulfilmentRequest,
    FulfilmentState,
    ListingPage,
    OrderPage,
    OrderRef,
    PushResult,
    RecordError,
    Shipment,
    StockUpdate,
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

FULFILLMENT_STATUSES = (
    "PENDING_AVAILABILITY", "PENDING", "UNSHIPPED", "PARTIALLY_SHIPPED", "SHIPPED", "CANCELLED", "UNFULFILLABLE",
)
UNPAID_STATUSES = {"PENDING", "PENDING_AVAILABILITY"}
INCLUDED_DATA = "BUYER,RECIPIENT,PROCEEDS,FULFILLMENT"
LISTING_PAGE_SIZE = 500
# Amazon's CarrierCode values (the enumeration of its amzn-base.xsd, which the confirmShipment model points to
# through its CarrierCode announcement) that carry parcels in the UK and Europe, plus the global couriers.
CARRIERS = tuple(Carrier(code, code) for code in (
    "Royal Mail", "Parcelforce", "DPD", "Yodel", "DHL", "DHL Global Mail", "UPS", "FedEx", "TNT", "GLS",
    "Deutsche Post", "Hermes Logistik Gruppe", "La Poste", "Chronopost", "Poste Italiane", "SDA", "USPS",
))
OTHER_CARRIER = "Other"
# The order acknowledgement feed's cancellation-reason-code values.
CANCELLATION_REASONS = {
    "NoInventory": "Out of stock",
    "ShippingAddressUndeliverable": "The delivery address cannot be delivered to",
    "CustomerExchange": "The buyer exchanged the item",
    "BuyerCanceled": "The buyer cancelled",
    "GeneralAdjustment": "Another reason",
    "CarrierCreditDecision": "Carrier credit decision",
    "RiskAssessmentInformationNotValid": "Risk assessment information not valid",
    "CarrierCoverageFailure": "The carrier does not cover the address",
    "CustomerReturn": "The buyer returned the item",
    "MerchandiseNotReceived": "The buyer did not receive the item",
}
# Each marketplace's currency: what FBA accepts declared values in.
MARKETPLACE_CURRENCIES = {
    "A1F83G8C2ARO7P": "GBP", "A1PA6795UKMFR9": "EUR", "A13V1IB3VIYZZH": "EUR", "APJ6JRA9NG5V4": "EUR",
    "A1RKKUPIHCS9HS": "EUR", "A1805IZSGTT6HS": "EUR", "AMEN7PMS3EDWL": "EUR", "A2NODRKZP88ZB9": "SEK",
    "A1C3SOZRARQ6R3": "PLN", "A33AVAJ2PDY3EV": "TRY", "ATVPDKIKX0DER": "USD", "A2EUQ1WTGCTBG2": "CAD",
    "A1AM78C64UM0Y8": "MXN", "A1VC38T7YXB528": "JPY", "A39IBJ37TRP1C6": "AUD",
}
# Fulfillment Outbound's order statuses (New, Received, ..., CompletePartialled) in the hub's spelling.
FULFILMENT_STATUSES = {
    "new": "RECEIVED", "received": "RECEIVED", "planning": "PLANNING", "processing": "PROCESSING",
    "complete": "COMPLETE", "completepartialled": "COMPLETE_PARTIALLED", "unfulfillable": "UNFULFILLABLE",
    "invalid": "INVALID", "cancelled": "CANCELLED",
}


# --- Orders (searchOrders, v2026-01-01) ---------------------------------------------------------------


def _money(node: Any) -> Decimal | None:
    if node is None:
        return None
    return optional_decimal(node["amount"])


class Proceeds:
    """One proceeds object's breakdowns by type (ITEM, SHIPPING, TAX, DISCOUNT, ...); absent types are None."""

    def __init__(self, node: Mapping[str, Any] | None) -> None:
        self.present = node is not None
        self.amounts: dict[str, Decimal] = {}
        # DISCOUNT and TAX split by subtype (ITEM, SHIPPING, ...) when Amazon details them.
        self.details: dict[tuple[str, str], Decimal] = {}
        for breakdown in (node or {}).get("breakdowns") or []:
            kind = text(breakdown["type"], "breakdowns[].type")
            amount = parse_decimal(breakdown["subtotal"]["amount"])
            self.amounts[kind] = self.amounts.get(kind, Decimal("0")) + amount
            for detail in breakdown.get("detailedBreakdowns") or []:
                key = (kind, text(detail.get("subtype"), "detailedBreakdowns[].subtype"))
                self.details[key] = self.details.get(key, Decimal("0")) + parse_decimal(detail["value"]["amount"])

    def get(self, kind: str) -> Decimal | None:
        return self.amounts.get(kind)

    def discount(self, *, on_shipping: bool) -> Decimal:
        """The discount's size on delivery or on the goods; one not detailed by subtype is on the goods."""
        total = abs(self.amounts.get("DISCOUNT", Decimal("0")))
        shipping = abs(self.details.get(("DISCOUNT", "SHIPPING"), Decimal("0")))
        return shipping if on_shipping else total - shipping

    def item_tax(self) -> Decimal | None:
        """The tax on the goods: the TAX breakdown's ITEM part when detailed, else the whole TAX."""
        return self.details.get(("TAX", "ITEM"), self.amounts.get("TAX"))


def _sum(values: Sequence[Decimal | None]) -> Decimal | None:
    known = [value for value in values if value is not None]
    return sum(known, Decimal("0")) if known else None


def order_from_amazon(payload: Mapping[str, Any]) -> ExternalOrder:
    """One searchOrders order. Raises one of RECORD_ERRORS when the record does not parse.

    Money comes from the proceeds breakdowns: tax from TAX, delivery from SHIPPING, less the DISCOUNT on each;
    the order's own breakdowns are the sums over its items, so the items' are only used when it has none.
    """
    order_id = text(payload["orderId"], "orderId")
    if not order_id:
        raise ValueError("the order has no orderId")
    fulfillment = payload.get("fulfillment") or {}
    status = text(fulfillment["fulfillmentStatus"], "fulfillmentStatus")
    if not status:
        raise ValueError("the order has no fulfillmentStatus")
    items, line_proceeds = [], []
    for raw in payload.get("orderItems") or []:
        product = raw.get("product") or {}
        proceeds = Proceeds(raw.get("proceeds"))
        line_proceeds.append(proceeds)
        items.append(ExternalOrderItem(
            line_id=text(raw["orderItemId"], "orderItemId"),
            sku=text(product["sellerSku"], "sellerSku"),
            title=text(product.get("title"), "title"),
            quantity=parse_int(raw["quantityOrdered"]),
            unit_price=_money((product.get("price") or {}).get("unitPrice")) or Decimal("0"),
            tax=(proceeds.item_tax() or Decimal("0")) if proceeds.present else None,
            external_product_id=text(product.get("asin"), "asin"),
        ))
    order_proceeds_node = payload.get("proceeds")
    order_proceeds = Proceeds(order_proceeds_node)

    def amount(kind: str) -> Decimal | None:
        found = order_proceeds.get(kind)
        return found if found is not None else _sum([line.get(kind) for line in line_proceeds])

    def discount(*, on_shipping: bool) -> Decimal:
        if order_proceeds.get("DISCOUNT") is not None:
            return order_proceeds.discount(on_shipping=on_shipping)
        return sum((line.discount(on_shipping=on_shipping) for line in line_proceeds), Decimal("0"))

    goods = amount("ITEM")
    if goods is None:
        goods = sum((item.unit_price * item.quantity for item in items), Decimal("0"))
    shipping = amount("SHIPPING") or Decimal("0")
    known_proceeds = order_proceeds.present or any(line.present for line in line_proceeds)
    tax = amount("TAX")
    if tax is None and known_proceeds:
        tax = Decimal("0")
    subtotal = max(Decimal("0"), goods - discount(on_shipping=False))
    shipping_cost = max(Decimal("0"), shipping - discount(on_shipping=True))
    grand_total = (order_proceeds_node or {}).get("grandTotal")
    total = _money(grand_total)
    currency = (grand_total or {}).get("currencyCode") or next(
        (((raw.get("product") or {}).get("price") or {}).get("unitPrice", {}).get("currencyCode")
         for raw in payload.get("orderItems") or []), None,
    )
    buyer = payload.get("buyer") or {}
    address = (payload.get("recipient") or {}).get("deliveryAddress") or {}
    return ExternalOrder(
        channel_order_id=order_id,
        channel_status=status,
        is_paid=status not in UNPAID_STATUSES,
        is_cancelled=status == "CANCELLED",
        created_at=parse_datetime(payload["createdTime"]),
        updated_at=parse_datetime(payload.get("lastUpdatedTime") or payload["createdTime"]),
        items=tuple(items),
        currency=text(currency, "currencyCode") or None,
        buyer_name=text(buyer.get("buyerName") or address.get("name"), "buyerName"),
        # Amazon withholds most emails; None lets the channel's "NOT DISCLOSED" default apply.
        buyer_email=text(buyer.get("buyerEmail"), "buyerEmail") or None,
        shipping_address=ExternalAddress(
            name=text(address.get("name"), "name"),
            line1=text(address.get("addressLine1"), "addressLine1"),
            line2=text(address.get("addressLine2"), "addressLine2"),
            city=text(address.get("city"), "city"),
            region=text(address.get("stateOrRegion"), "stateOrRegion"),
            postcode=text(address.get("postalCode"), "postalCode"),
            country=text(address.get("countryCode"), "countryCode"),
            phone=text(address.get("phone"), "phone"),
        ),
        shipping_tag=text(fulfillment.get("fulfillmentServiceLevel"), "fulfillmentServiceLevel"),
        subtotal=subtotal,
        shipping_cost=shipping_cost,
        tax=tax,
        total=total if total is not None else subtotal + shipping_cost,
        fulfilled_by_channel=fulfillment.get("fulfilledBy") == "AMAZON",
        is_shipped=status == "SHIPPED",
    )


def orders_page_from_amazon(body: Mapping[str, Any]) -> OrderPage:
    orders, errors = [], []
    for raw in body.get("orders") or []:
        try:
            orders.append(order_from_amazon(raw))
        except RECORD_ERRORS as exc:
            record_id = str(raw.get("orderId") or "") if isinstance(raw, dict) else ""
            errors.append(RecordError(record_id or "(no order id)", f"unreadable order: {type(exc).__name__} {exc}"))
    return OrderPage(orders=tuple(orders), errors=tuple(errors))


# --- Listings: PATCH and the JSON_LISTINGS_FEED ---------------------------------------------------------


def listing_patches(update: StockUpdate, *, marketplace_id: str, currency: str) -> list[dict[str, Any]]:
    """Quantity always; handling time only when latency is set (>0); the price only when sent."""
    availability: dict[str, Any] = {"fulfillment_channel_code": "DEFAULT", "quantity": max(0, update.quantity)}
    if update.latency_days:
        availability["lead_time_to_ship_max_days"] = update.latency_days
    patches: list[dict[str, Any]] = [
        {"op": "merge", "path": "/attributes/fulfillment_availability", "value": [availability]},
    ]
    if update.price is not None:
        # An offer is keyed by marketplace, currency and audience: ALL is the offer every buyer sees.
        patches.append({"op": "merge", "path": "/attributes/purchasable_offer", "value": [{
            "marketplace_id": marketplace_id,
            "currency": update.currency or currency,
            "audience": "ALL",
            "our_price": [{"schedule": [{"value_with_tax": float(update.price)}]}],
        }]})
    return patches


def _issues_text(issues: Sequence[Mapping[str, Any]]) -> str:
    return "; ".join(f"{i.get('code', '')} {i.get('message', '')}".strip() for i in issues)


def push_result_from_patch(sku: str, body: Mapping[str, Any]) -> PushResult:
    issues = body.get("issues") or []
    if body.get("status") == "ACCEPTED":
        return PushResult(sku, accepted=True, message=_issues_text(issues))
    return PushResult(sku, accepted=False, message=_issues_text(issues) or f"Amazon answered {body.get('status')}")


def listings_feed(updates: Sequence[StockUpdate], *, seller_id: str, marketplace_id: str, currency: str) -> dict:
    return {
        "header": {"sellerId": seller_id, "version": "2.0"},
        "messages": [
            {
                "messageId": message_id,
                "sku": update.channel_sku,
                "operationType": "PATCH",
                "productType": "PRODUCT",
                "patches": listing_patches(update, marketplace_id=marketplace_id, currency=currency),
            }
            for message_id, update in enumerate(updates, start=1)
        ],
    }


def push_results_from_feed(updates: Sequence[StockUpdate], report: Mapping[str, Any]) -> list[PushResult]:
    """A JSON_LISTINGS_FEED processing report: one result per update (message ids count from 1).

    An ERROR issue with a messageId rejects its SKU. An issue without one is about the whole feed: then, and
    whenever the summary accepts fewer messages than those without errors, no message is known accepted and
    the unflagged ones are rejected with the feed's own issues.
    """
    try:
        summary = report["summary"]
        accepted_count = parse_int(summary["messagesAccepted"])
        errors: dict[int, list[Mapping[str, Any]]] = {}
        warnings: dict[int, list[Mapping[str, Any]]] = {}
        feed_errors: list[Mapping[str, Any]] = []
        for issue in report.get("issues") or []:
            severity = issue["severity"]
            if issue.get("messageId") is None:
                if severity == "ERROR":
                    feed_errors.append(issue)
                continue
            target = errors if severity == "ERROR" else warnings
            target.setdefault(parse_int(issue["messageId"]), []).append(issue)
    except RECORD_ERRORS as exc:
        # Which listings an unreadable report accepts is unknown: none is recorded as sent.
        raise ChannelPayloadError(f"Amazon feed result: unreadable report ({type(exc).__name__})") from exc
    unflagged = sum(1 for message_id in range(1, len(updates) + 1) if message_id not in errors)
    trusted = not feed_errors and accepted_count >= unflagged
    not_accepted = _issues_text(feed_errors) or (
        f"Amazon accepted {accepted_count} of the feed's {len(updates)} messages without saying which")
    results = []
    for message_id, update in enumerate(updates, start=1):
        if message_id in errors:
            results.append(PushResult(update.channel_sku, accepted=False, message=_issues_text(errors[message_id])))
        elif trusted:
            results.append(PushResult(update.channel_sku, accepted=True,
                                      message=_issues_text(warnings.get(message_id, []))))
        else:
            results.append(PushResult(update.channel_sku, accepted=False, message=not_accepted))
    return results


def listing_from_report_row(row: Mapping[str, str]) -> ExternalListing:
    sku = (row.get("seller-sku") or "").strip()
    if not sku:
        raise ValueError("the row has no seller-sku")
    return ExternalListing(
        channel_sku=sku,
        external_id=(row.get("listing-id") or row.get("asin1") or "").strip(),
        title=(row.get("item-name") or "").strip(),
        # FBA rows leave quantity empty: Amazon holds that stock.
        quantity=optional_int(row.get("quantity")),
        price=optional_decimal(row.get("price")),
        is_active=(row.get("status") or "Active").strip().lower() == "active",
        fulfilled_by_channel=(row.get("fulfillment-channel") or "").strip().upper().startswith("AMAZON"),
    )


def listings_from_report(text: str, *, page_size: int = LISTING_PAGE_SIZE) -> Iterator[ListingPage]:
    """GET_MERCHANT_LISTINGS_ALL_DATA (tab-separated, header line first) in pages with progress."""
    # newline="": a stray carriage return ends a row (reported if it spoils one) instead of stopping the reader.
    rows = list(csv.DictReader(io.StringIO(text, newline=""), delimiter="\t", quoting=csv.QUOTE_NONE))
    total = len(rows)
    if not total:
        yield ListingPage(listings=(), done=0, total=0)
        return
    for start in range(0, total, page_size):
        listings, errors = [], []
        for number, row in enumerate(rows[start:start + page_size], start=start + 2):
            try:
                listings.append(listing_from_report_row(row))
            except RECORD_ERRORS as exc:
                errors.append(RecordError(row.get("seller-sku") or f"line {number}", f"unreadable row: {exc}"))
        yield ListingPage(listings=tuple(listings), done=min(start + page_size, total), total=total,
                          errors=tuple(errors))


# --- Despatch and cancellation ---------------------------------------------------------------------


def cancellation_reason_code(reason: str) -> str:
    """The acknowledgement feed's code for a reason given as its code or its label (any case)."""
    wanted = reason.strip().casefold()
    for code, label in CANCELLATION_REASONS.items():
        if wanted in (code.casefold(), label.casefold()):
            return code
    raise ChannelRejected(f"Amazon does not accept the cancellation reason {reason!r}; choose one of: "
                          + ", ".join(f"{code} ({label})" for code, label in CANCELLATION_REASONS.items()))


def cancellation_feed(order: OrderRef, reason: str) -> str:
    code = cancellation_reason_code(reason)
    lines = ["order-id\tamazon-order-item-code\tcancellation-reason-code"]
    lines += [f"{order.channel_order_id}\t{line.line_id}\t{code}" for line in order.lines]
    return "\n".join(lines) + "\n"


def flat_file_errors(report: str) -> list[str]:
    """The error lines of a flat-file feed's processing report (after its original-record-number header)."""
    lines = report.splitlines()
    header = next((i for i, line in enumerate(lines) if line.startswith("original-record-number")), None)
    if header is None:
        return []
    columns = lines[header].split("\t")
    errors = []
    for line in lines[header + 1:]:
        record = dict(zip(columns, line.split("\t"), strict=False))
        if record.get("error-type", "").strip().lower() == "error":
            errors.append(f"{record.get('error-code', '')} {record.get('error-message', '')}".strip())
    return errors


def shipment_confirmation(order: OrderRef, shipment: Shipment, *, marketplace_id: str,
                          carrier: Carrier | None) -> dict[str, Any]:
    """confirmShipment's body: one package, tracked, with every line of the order.

    `carrier` is the carrier list's entry for the shipment's carrier; None sends it as Other with its name.
    """
    if not shipment.tracking_number:
        raise ChannelRejected(f"order {order.channel_order_id}: Amazon refuses a despatch without a tracking number")
    if not order.lines:
        raise ChannelRejected(f"order {order.channel_order_id}: Amazon needs the order's items to confirm it")
    code = carrier.code if carrier is not None else None
    if code is None and not shipment.carrier.strip():
        raise ChannelRejected(f"order {order.channel_order_id}: Amazon needs the carrier that delivers the parcel")
    package: dict[str, Any] = {
        "packageReferenceId": "1",
        "carrierCode": code or OTHER_CARRIER,
        "trackingNumber": shipment.tracking_number,
        "shipDate": iso_z(shipment.shipped_at or datetime.now(UTC)),
        "orderItems": [{"orderItemId": line.line_id, "quantity": line.quantity} for line in order.lines],
    }
    if code is None:
        package["carrierName"] = shipment.carrier.strip()
    if shipment.shipping_method:
        package["shippingMethod"] = shipment.shipping_method
    return {"marketplaceId": marketplace_id, "packageDetail": package}


# --- FBA inventory and multi-channel fulfilment --------------------------------------------------------


def marketplace_currency(marketplace_id: str) -> str | None:
    return MARKETPLACE_CURRENCIES.get(marketplace_id)


def fba_stock_page_from_amazon(body: Mapping[str, Any]) -> tuple[FbaStockPage, str]:
    """One getInventorySummaries page (details=true) and the next page's token ("" on the last)."""
    summaries = (body.get("payload") or {}).get("inventorySummaries")
    if not isinstance(summaries, list):
        raise ChannelPayloadError("Amazon getInventorySummaries: the answer has no inventorySummaries")
    stock, errors = [], []
    for raw in summaries:
        try:
            sku = raw["sellerSku"]
            if not sku:
                raise ValueError("the summary has no sellerSku")
            fulfillable = parse_int(raw["inventoryDetails"]["fulfillableQuantity"])
            if fulfillable < 0:
                raise ValueError(f"fulfillableQuantity {fulfillable} is negative")
            stock.append(FbaStock(sku=str(sku), fulfillable=fulfillable, fnsku=raw.get("fnSku") or ""))
        except RECORD_ERRORS as exc:
            record_id = str(raw.get("sellerSku") or "") if isinstance(raw, dict) else ""
            errors.append(RecordError(record_id or "(no SKU)", f"unreadable FBA summary: {type(exc).__name__} {exc}"))
    next_token = (body.get("pagination") or {}).get("nextToken") or ""
    return FbaStockPage(stock=tuple(stock), errors=tuple(errors)), next_token


def fulfilment_order_payload(request: FulfilmentRequest, *, marketplace_id: str) -> dict[str, Any]:
    """createFulfillmentOrder's body. Amazon caps displayable ids at 40 and the comment at 750 characters."""
    address = request.address
    destination = {"name": address.name, "addressLine1": address.line1, "city": address.city,
                   "postalCode": address.postcode, "countryCode": address.country}
    for key, value in (("addressLine2", address.line2), ("stateOrRegion", address.region), ("phone", address.phone)):
        if value:
            destination[key] = value
    return {
        "marketplaceId": marketplace_id,
        "sellerFulfillmentOrderId": request.fulfilment_order_id,
        "displayableOrderId": request.displayable_order_id[:40],
        "displayableOrderDate": iso_z(request.ordered_at),
        "displayableOrderComment": request.comment[:750],
        "shippingSpeedCategory": request.shipping_speed,
        "destinationAddress": destination,
        "fulfillmentAction": "Ship",
        "items": [
            {
                "sellerSku": line.sku,
                "sellerFulfillmentOrderItemId": line.line_id[:50],
                "quantity": line.quantity,
                "perUnitDeclaredValue": {"currencyCode": line.currency, "value": f"{line.unit_value:.2f}"},
            }
            for line in request.lines
        ],
    }


def fulfilment_state_from_amazon(body: Mapping[str, Any]) -> FulfilmentState:
    """getFulfillmentOrder: the order's status and the tracked packages of shipments not cancelled."""
    payload = body.get("payload") if isinstance(body, dict) else None
    order = (payload or {}).get("fulfillmentOrder") or {}
    raw_status = str(order.get("fulfillmentOrderStatus") or "")
    status = FULFILMENT_STATUSES.get(re.sub("[^a-z]", "", raw_status.lower()))
    if not order.get("sellerFulfillmentOrderId") or status is None:
        raise ChannelPayloadError(f"Amazon getFulfillmentOrder: unexpected answer (status {raw_status!r})")
    packages = []
    for shipment in payload.get("fulfillmentShipments") or []:
        if str(shipment.get("fulfillmentShipmentStatus", "")).startswith("CANCELLED"):
            continue
        shipped_at = shipment.get("shippingDate")
        for package in shipment.get("fulfillmentShipmentPackage") or []:
            if package.get("trackingNumber"):
                packages.append(FulfilmentPackage(
                    tracking_number=str(package["trackingNumber"]), carrier=str(package.get("carrierCode") or ""),
                    shipped_at=parse_datetime(shipped_at) if shipped_at else None,
                ))
    return FulfilmentState(fulfilment_order_id=str(order["sellerFulfillmentOrderId"]), status=status,
                           packages=tuple(packages))
