"""Amazon Selling Partner API: orders (v2026-01-01), listings, feeds, reports, shipment confirmation,
FBA inventory (v1) and multi-channel fulfilment (Fulfillment Outbound 2020-07-01).

The mappers (`order_from_amazon`, `listing_patches`, `listings_from_report`, ...) are pure functions of
the payloads; `AmazonConnector` drives the HTTP calls. Paths and shapes follow sandbox/README.md.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, ClassVar
from urllib.parse import quote

from channels.connectors.base import (
    ChannelPayloadError,
    ChannelRejected,
    ChannelTransientError,
    ConnectionResult,
    Connector,
    ConnectorConfig,
    CredentialStore,
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
    RateLimit,
    RateLimiter,
    RecordError,
    Shipment,
    StockUpdate,
    WatermarkPolicy,
)
from channels.connectors.http import HttpClient, token_pages
from channels.connectors.oauth import AccessTokens, TokenGrant
from channels.connectors.values import (
    RECORD_ERRORS,
    iso_z,
    optional_decimal,
    optional_int,
    parse_datetime,
    parse_int,
    text,
)

FULFILLMENT_STATUSES = [
    "PENDING_AVAILABILITY", "PENDING", "UNSHIPPED", "PARTIALLY_SHIPPED", "SHIPPED", "CANCELLED", "UNFULFILLABLE",
]
UNPAID_STATUSES = {"PENDING", "PENDING_AVAILABILITY"}
# Up to this many updates go one PATCH each (5 a second); more go in one JSON_LISTINGS_FEED, whose
# createFeed quota is one call every two minutes but which carries up to 25,000 messages.
FEED_THRESHOLD = 20
LISTING_PAGE_SIZE = 500
# Amazon rejects a lastUpdatedBefore later than two minutes before the request.
LATEST_BEFORE = timedelta(minutes=2)
POLL_FIRST_DELAY = 2.0
POLL_MAX_DELAY = 30.0
POLL_GIVE_UP_AFTER = 300.0
CARRIER_CODES = {
    code.casefold(): code
    for code in ("Royal Mail", "Parcelforce", "DPD", "DHL", "UPS", "FedEx", "Evri", "Hermes", "Yodel", "TNT",
                 "Amazon Shipping", "USPS", "Arrow XL", "Whistl", "DX")
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
CANCELLATION_REASONS = {
    "NoInventory", "ShippingAddressUndeliverable", "CustomerExchange", "BuyerCanceled", "GeneralAdjustment",
    "CarrierCreditDecision", "RiskAssessmentInformationNotValid", "CarrierCoverageFailure", "CustomerReturn",
    "MerchandiseNotReceived",
}


# --- Mappers (pure) -------------------------------------------------------------------------------


def _money(node: Mapping[str, Any] | None) -> Decimal | None:
    return optional_decimal((node or {}).get("amount"))


def order_from_amazon(payload: Mapping[str, Any]) -> ExternalOrder:
    """One searchOrders order. Raises one of RECORD_ERRORS when the record does not parse."""
    order_id = text(payload["orderId"], "orderId")
    if not order_id:
        raise ValueError("the order has no orderId")
    fulfillment = payload.get("fulfillment") or {}
    status = text(fulfillment["fulfillmentStatus"], "fulfillmentStatus")
    if not status:
        raise ValueError("the order has no fulfillmentStatus")
    items = []
    for raw in payload.get("orderItems") or []:
        product = raw.get("product") or {}
        tax = _money((raw.get("proceeds") or {}).get("itemTax"))
        items.append(ExternalOrderItem(
            line_id=text(raw["orderItemId"], "orderItemId"),
            sku=text(product["sellerSku"], "sellerSku"),
            title=text(product.get("title"), "title"),
            quantity=parse_int(raw["quantityOrdered"]),
            unit_price=_money((product.get("price") or {}).get("unitPrice")) or Decimal("0"),
            tax=tax,
            external_product_id=text(product.get("asin"), "asin"),
        ))
    subtotal = sum((item.unit_price * item.quantity for item in items), Decimal("0"))
    grand_total = (payload.get("proceeds") or {}).get("grandTotal") or {}
    total = _money(grand_total)
    taxes = [item.tax for item in items if item.tax is not None]
    currency = grand_total.get("currencyCode") or next(
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
        # The grand total is items plus delivery; Amazon's order carries no separate delivery charge.
        shipping_cost=max(Decimal("0"), total - subtotal) if total is not None else Decimal("0"),
        tax=sum(taxes, Decimal("0")) if taxes else None,
        total=total if total is not None else subtotal,
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


def listing_patches(update: StockUpdate, *, marketplace_id: str, currency: str) -> list[dict[str, Any]]:
    """Quantity always; handling time only when latency is set (>0); the price only when sent."""
    availability: dict[str, Any] = {"fulfillment_channel_code": "DEFAULT", "quantity": max(0, update.quantity)}
    if update.latency_days:
        availability["lead_time_to_ship_max_days"] = update.latency_days
    patches: list[dict[str, Any]] = [
        {"op": "merge", "path": "/attributes/fulfillment_availability", "value": [availability]},
    ]
    if update.price is not None:
        patches.append({"op": "merge", "path": "/attributes/purchasable_offer", "value": [{
            "marketplace_id": marketplace_id,
            "currency": update.currency or currency,
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


def push_results_from_feed(updates: Sequence[StockUpdate], report: Mapping[str, Any]) -> list[PushResult]:
    """Per-message issues of a JSON_LISTINGS_FEED result: an ERROR rejects its SKU, the rest are accepted."""
    errors: dict[int, list[Mapping[str, Any]]] = {}
    warnings: dict[int, list[Mapping[str, Any]]] = {}
    try:
        for issue in report.get("issues") or []:
            target = errors if issue.get("severity", "ERROR") == "ERROR" else warnings
            target.setdefault(parse_int(issue.get("messageId", 0)), []).append(issue)
    except RECORD_ERRORS as exc:
        # Which listings an unreadable report accepts is unknown: none is recorded as sent.
        raise ChannelPayloadError(f"Amazon feed result: unreadable issues ({type(exc).__name__})") from exc
    results = []
    for message_id, update in enumerate(updates, start=1):
        if message_id in errors:
            results.append(PushResult(update.channel_sku, accepted=False, message=_issues_text(errors[message_id])))
        else:
            results.append(PushResult(update.channel_sku, accepted=True,
                                      message=_issues_text(warnings.get(message_id, []))))
    return results


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


def cancellation_feed(order: OrderRef, reason: str) -> str:
    code = reason if reason in CANCELLATION_REASONS else "GeneralAdjustment"
    lines = ["order-id\tamazon-order-item-code\tcancellation-reason-code"]
    lines += [f"{order.channel_order_id}\t{line.line_id}\t{code}" for line in order.lines]
    return "\n".join(lines) + "\n"


def shipment_confirmation(order: OrderRef, shipment: Shipment, *, marketplace_id: str) -> dict[str, Any]:
    carrier_code = CARRIER_CODES.get(shipment.carrier.strip().casefold(), "Other")
    package: dict[str, Any] = {
        "packageReferenceId": "1",
        "carrierCode": carrier_code,
        "shippingMethod": shipment.shipping_method,
        "shipDate": iso_z(shipment.shipped_at or datetime.now(UTC)),
        "orderItems": [{"orderItemId": line.line_id, "quantity": line.quantity} for line in order.lines],
    }
    if carrier_code == "Other":
        package["carrierName"] = shipment.carrier or "Other"
    if shipment.tracking_number:
        package["trackingNumber"] = shipment.tracking_number
    return {"marketplaceId": marketplace_id, "packageDetail": package}


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


# --- Connector --------------------------------------------------------------------------------------


class AmazonConnector(Connector):
    kind = "amazon"
    label = "Amazon"
    credential_fields = (
        ("client_id", "LWA client id"), ("client_secret", "LWA client secret"), ("refresh_token", "Refresh token"),
    )
    account_fields = ("seller_id", "marketplace_id", "api_base_url", "auth_base_url")
    default_urls: ClassVar[Mapping[str, str]] = {
        "api_base_url": "https://sellingpartnerapi-eu.amazon.com", "auth_base_url": "https://api.amazon.com",
    }
    # The three SP-API regions and Login with Amazon's token host.
    allowed_hosts: ClassVar[Mapping[str, tuple[str, ...]]] = {
        "api_base_url": ("sellingpartnerapi-eu.amazon.com", "sellingpartnerapi-na.amazon.com",
                         "sellingpartnerapi-fe.amazon.com"),
        "auth_base_url": ("api.amazon.com", "api.amazon.co.uk", "api.amazon.co.jp"),
    }
    has_fulfilment_network = True
    supports_despatch_notes = False
    supports_latency = True
    # Login with Amazon rotates the client secret every 180 days.
    client_secret_lifetime_days = 180
    withheld_email_placeholder = "NOT DISCLOSED BY AMAZON"
    max_batch_size = 5000
    watermark_policy = WatermarkPolicy.OLDEST_IMPORTED

    @classmethod
    def channel_defaults(cls) -> dict[str, object]:
        # Seed 002: despatch notes off, UTC offset 1, inventory last synced a few days ago, the UK marketplace.
        several_days_ago = datetime.now(UTC).date() - timedelta(days=3)
        return {
            "send_despatch_notes": False,
            "utc_offset_hours": Decimal("1"),
            "last_inventory_sync": datetime.combine(several_days_ago, datetime.min.time(), tzinfo=UTC),
            "marketplace_id": "A1F83G8C2ARO7P",
        }
    # SP-API's published quotas per operation (calls per second, burst).
    rate_limits: ClassVar[Mapping[str, RateLimit]] = {
        "marketplace_participations": RateLimit(0.016, 15),
        "search_orders": RateLimit(0.0056, 20),
        "patch_listings_item": RateLimit(5, 5),
        "create_feed_document": RateLimit(0.5, 15),
        "create_feed": RateLimit(0.0083, 15),
        "get_feed": RateLimit(2, 15),
        "get_feed_document": RateLimit(0.0222, 10),
        "create_report": RateLimit(0.0167, 15),
        "get_report": RateLimit(2, 15),
        "get_report_document": RateLimit(0.0167, 15),
        "shipment_confirmation": RateLimit(2, 10),
        "get_inventory_summaries": RateLimit(2, 2),
        "create_fulfillment_order": RateLimit(2, 30),
        "get_fulfillment_order": RateLimit(2, 30),
    }

    def __init__(
        self, config: ConnectorConfig, credentials: CredentialStore, limiter: RateLimiter | None = None
    ) -> None:
        super().__init__(config, credentials, limiter)
        self.sleep = time.sleep
        self.tokens = AccessTokens(credentials, self._refresh_grant, single_use_refresh=False)
        self.http = HttpClient(
            service="Amazon",
            base_url=config.api_base_url,
            limiter=self.limiter,
            limits=self.rate_limits,
            bucket_prefix=f"{config.channel_id}",
            secrets=lambda: self.tokens.known_secrets,
            auth=self._auth_headers,
            sleep=lambda seconds: self.sleep(seconds),
        )

    # Auth

    def _auth_headers(self, refresh: bool) -> dict[str, str]:
        if refresh:
            self.tokens.renew(stale=self.tokens.held)
        return {"x-amz-access-token": self.tokens.current()}

    def _token_call(self, form: dict[str, str]) -> TokenGrant:
        response = self.http.request(
            "POST", self.config.auth_base_url.rstrip("/") + "/auth/o2/token", operation="token",
            authenticated=False, absolute=True, data=form,
        )
        body = self.http.json(response, what="token")
        try:
            return TokenGrant(str(body["access_token"]), int(body.get("expires_in", 3600)),
                              str(body.get("refresh_token") or ""))
        except (KeyError, TypeError, ValueError) as exc:
            raise ChannelPayloadError("Amazon token: the answer has no access token") from exc

    def _refresh_grant(self, credentials: dict[str, str]) -> TokenGrant:
        return self._token_call({
            "grant_type": "refresh_token",
            "refresh_token": credentials.get("refresh_token", ""),
            "client_id": credentials.get("client_id", ""),
            "client_secret": credentials.get("client_secret", ""),
        })

    def reauthorise(self, *, authorization_code: str = "") -> ConnectionResult:
        if authorization_code:
            self.tokens.known_secrets.add(authorization_code)

            def exchange(credentials: dict[str, str]) -> TokenGrant:
                grant = self._token_call({
                    "grant_type": "authorization_code",
                    "code": authorization_code,
                    "client_id": credentials.get("client_id", ""),
                    "client_secret": credentials.get("client_secret", ""),
                })
                if not grant.refresh_token:
                    raise ChannelPayloadError("Amazon token: the authorisation gave no refresh token")
                return grant

            self.tokens.exchange(exchange)
            return ConnectionResult(True, "Authorised: Amazon gave a new refresh token, which is saved.")
        self.tokens.renew(stale="", force=True)
        return ConnectionResult(True, "The stored refresh token works: Amazon issued a new access token.")

    # Connection

    def test_connection(self) -> ConnectionResult:
        body = self.http.call_json("GET", "/sellers/v1/marketplaceParticipations",
                                   operation="marketplace_participations")
        try:
            participating = {
                entry["marketplace"]["id"]: entry["marketplace"].get("name", "")
                for entry in body["payload"]
                if (entry.get("participation") or {}).get("isParticipating", True)
            }
        except (KeyError, TypeError) as exc:
            raise ChannelPayloadError("Amazon marketplaceParticipations: unexpected answer") from exc
        wanted = self.config.marketplace_id
        if wanted not in participating:
            found = ", ".join(sorted(participating)) or "none"
            return ConnectionResult(False, f"Connected, but the seller does not sell on marketplace {wanted} "
                                           f"(participates in: {found}).")
        return ConnectionResult(True, f"Connected to Amazon: selling on {participating[wanted] or wanted} ({wanted}).")

    def order_statuses(self) -> list[str]:
        return list(FULFILLMENT_STATUSES)

    # Orders

    def fetch_orders(self, since: datetime, until: datetime | None = None) -> Iterator[OrderPage]:
        params = {
            "marketplaceIds": self.config.marketplace_id,
            "lastUpdatedAfter": iso_z(since),
            "maxResultsPerPage": 100,
            "includedData": "BUYER,RECIPIENT,PROCEEDS,FULFILLMENT",
        }
        # Without lastUpdatedBefore Amazon means "two minutes ago", the latest it accepts.
        if until is not None and until <= datetime.now(UTC) - LATEST_BEFORE:
            params["lastUpdatedBefore"] = iso_z(until, round_up=True)

        def fetch(token: str) -> tuple[OrderPage, str]:
            body = self.http.call_json("GET", "/orders/2026-01-01/orders", operation="search_orders",
                                       params=params | ({"paginationToken": token} if token else {}))
            if not isinstance(body, dict):
                raise ChannelPayloadError("Amazon searchOrders: unexpected answer")
            return orders_page_from_amazon(body), (body.get("pagination") or {}).get("nextToken") or ""

        return token_pages(fetch)

    # Listings

    def push_listings(self, updates: Sequence[StockUpdate]) -> list[PushResult]:
        if len(updates) > FEED_THRESHOLD:
            return self._push_by_feed(updates)
        return [self._patch(update) for update in updates]

    def _patch(self, update: StockUpdate) -> PushResult:
        seller, sku = quote(self.config.seller_id, safe=""), quote(update.channel_sku, safe="")
        path = f"/listings/2021-08-01/items/{seller}/{sku}"
        body = {
            "productType": "PRODUCT",
            "patches": listing_patches(update, marketplace_id=self.config.marketplace_id,
                                       currency=self.config.currency),
        }
        try:
            answer = self.http.call_json("PATCH", path, operation="patch_listings_item",
                                         params={"marketplaceIds": self.config.marketplace_id}, json=body)
        except (ChannelRejected, ChannelPayloadError) as exc:
            return PushResult(update.channel_sku, accepted=False, message=str(exc))
        return push_result_from_patch(update.channel_sku, answer)

    def _push_by_feed(self, updates: Sequence[StockUpdate]) -> list[PushResult]:
        feed = listings_feed(updates, seller_id=self.config.seller_id, marketplace_id=self.config.marketplace_id,
                             currency=self.config.currency)
        done = self._submit_feed("JSON_LISTINGS_FEED", json.dumps(feed).encode(), "application/json; charset=UTF-8")
        if done.get("processingStatus") != "DONE":
            reason = f"Amazon could not process the listings feed ({done.get('processingStatus')})"
            return [PushResult(update.channel_sku, accepted=False, message=reason) for update in updates]
        try:
            report = json.loads(self._feed_result(done))
        except ValueError as exc:
            raise ChannelPayloadError("Amazon feed result: not JSON") from exc
        return push_results_from_feed(updates, report)

    def _submit_feed(self, feed_type: str, content: bytes, content_type: str) -> dict[str, Any]:
        document = self.http.call_json("POST", "/feeds/2021-06-30/documents", operation="create_feed_document",
                                       json={"contentType": content_type})
        try:
            document_id, url = document["feedDocumentId"], document["url"]
        except (KeyError, TypeError) as exc:
            raise ChannelPayloadError("Amazon createFeedDocument: no document id or url") from exc
        # The upload URL is pre-signed (S3): it must not get the access token.
        self.http.request("PUT", url, operation="upload", absolute=True, authenticated=False, data=content,
                          headers={"Content-Type": content_type})
        created = self.http.call_json("POST", "/feeds/2021-06-30/feeds", operation="create_feed", json={
            "feedType": feed_type, "marketplaceIds": [self.config.marketplace_id],
            "inputFeedDocumentId": document_id,
        })
        if not isinstance(created, dict) or not created.get("feedId"):
            raise ChannelPayloadError("Amazon createFeed: no feed id")
        return self._poll(f"/feeds/2021-06-30/feeds/{created['feedId']}", operation="get_feed", what="feed")

    def _feed_result(self, feed: Mapping[str, Any]) -> str:
        document_id = feed.get("resultFeedDocumentId")
        if not document_id:
            raise ChannelPayloadError("Amazon feed: done but without a result document")
        return self._document(f"/feeds/2021-06-30/documents/{document_id}", operation="get_feed_document")

    def _poll(self, path: str, *, operation: str, what: str) -> dict[str, Any]:
        """Poll a feed or report with growing pauses until Amazon has finished with it."""
        delay, waited = POLL_FIRST_DELAY, 0.0
        while True:
            body = self.http.call_json("GET", path, operation=operation)
            status = body.get("processingStatus") if isinstance(body, dict) else None
            if status in ("DONE", "FATAL", "CANCELLED", "DONE_NO_DATA"):
                return body
            if waited >= POLL_GIVE_UP_AFTER:
                raise ChannelTransientError(f"Amazon {what}: still {status} after {waited:.0f} s")
            self.sleep(delay)
            waited += delay
            delay = min(delay * 2, POLL_MAX_DELAY)

    def _document(self, path: str, *, operation: str) -> str:
        info = self.http.call_json("GET", path, operation=operation)
        if not isinstance(info, dict) or not info.get("url"):
            raise ChannelPayloadError("Amazon document: no download url")
        response = self.http.request("GET", info["url"], operation="download", absolute=True, authenticated=False)
        content = response.content
        if (info.get("compressionAlgorithm") or "").upper() == "GZIP":
            content = gzip.decompress(content)
        try:
            return content.decode("utf-8")
        except UnicodeDecodeError:
            # Amazon's European reports come in Windows-1252 for some marketplaces.
            return content.decode("cp1252", errors="replace")

    def fetch_listings(self) -> Iterator[ListingPage]:
        created = self.http.call_json("POST", "/reports/2021-06-30/reports", operation="create_report", json={
            "reportType": "GET_MERCHANT_LISTINGS_ALL_DATA", "marketplaceIds": [self.config.marketplace_id],
        })
        if not isinstance(created, dict) or not created.get("reportId"):
            raise ChannelPayloadError("Amazon createReport: no report id")
        report = self._poll(f"/reports/2021-06-30/reports/{created['reportId']}", operation="get_report",
                            what="listings report")
        status = report.get("processingStatus")
        if status == "DONE_NO_DATA":
            yield ListingPage(listings=(), done=0, total=0)
            return
        if status != "DONE" or not report.get("reportDocumentId"):
            raise ChannelRejected(f"Amazon could not produce the listings report ({status})")
        text = self._document(f"/reports/2021-06-30/documents/{report['reportDocumentId']}",
                              operation="get_report_document")
        yield from listings_from_report(text)

    # Despatch and cancellation

    def confirm_despatch(self, order: OrderRef, shipment: Shipment) -> None:
        if not order.lines:
            raise ChannelRejected(f"order {order.channel_order_id}: Amazon needs the order's items to confirm it")
        self.http.request(
            "POST", f"/orders/v0/orders/{quote(order.channel_order_id, safe='')}/shipmentConfirmation",
            operation="shipment_confirmation",
            json=shipment_confirmation(order, shipment, marketplace_id=self.config.marketplace_id),
        )

    def cancel_order(self, order: OrderRef, reason: str) -> None:
        if not order.lines:
            raise ChannelRejected(f"order {order.channel_order_id}: Amazon needs the order's items to cancel it")
        done = self._submit_feed("POST_FLAT_FILE_ORDER_ACKNOWLEDGEMENT_DATA",
                                 cancellation_feed(order, reason).encode(), "text/tab-separated-values; charset=UTF-8")
        if done.get("processingStatus") != "DONE":
            raise ChannelRejected(f"Amazon could not process the cancellation of {order.channel_order_id} "
                                  f"({done.get('processingStatus')})")

    # FBA inventory and multi-channel fulfilment

    def fetch_fba_stock(self) -> Iterator[FbaStockPage]:
        marketplace = self.config.marketplace_id
        params = {"granularityType": "Marketplace", "granularityId": marketplace, "marketplaceIds": marketplace,
                  "details": "true"}

        def fetch(token: str) -> tuple[FbaStockPage, str]:
            # A nextToken lives 30 seconds: pages are fetched one after another, never held.
            body = self.http.call_json("GET", "/fba/inventory/v1/summaries", operation="get_inventory_summaries",
                                       params=params | ({"nextToken": token} if token else {}))
            if not isinstance(body, dict):
                raise ChannelPayloadError("Amazon getInventorySummaries: unexpected answer")
            return fba_stock_page_from_amazon(body)

        return token_pages(fetch)

    def create_fulfilment_order(self, request: FulfilmentRequest) -> None:
        if not request.lines:
            raise ChannelRejected(f"fulfilment order {request.fulfilment_order_id}: no items to ship")
        self.http.request("POST", "/fba/outbound/2020-07-01/fulfillmentOrders", operation="create_fulfillment_order",
                          json=fulfilment_order_payload(request, marketplace_id=self.config.marketplace_id))

    def fulfilment_order(self, fulfilment_order_id: str) -> FulfilmentState:
        body = self.http.call_json(
            "GET", f"/fba/outbound/2020-07-01/fulfillmentOrders/{quote(fulfilment_order_id, safe='')}",
            operation="get_fulfillment_order",
        )
        return fulfilment_state_from_amazon(body)
