"""eBay: Sell Inventory (v1.18.4) for listings, stock and price, Sell Fulfillment (v1.20.7) for orders and
despatch, OAuth user tokens. Written to contract/*.json (from eBay's OpenAPI files and OAuth pages)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from channels.connectors.base import (
    AccountDeletion,
    Carrier,
    ChannelPayloadError,
    ChannelRejected,
    ConnectionResult,
    ListingPage,
    OrderPage,
    OrderRef,
    PushResult,
    RateLimit,
    RecordError,
    Shipment,
    StockUpdate,
    WatermarkPolicy,
    WebhookRefused,
)
from channels.connectors.ebay import consent, mapper
from channels.connectors.ebay.client import RATE_LIMITS, EbayClient
from channels.connectors.oauth import OAuthConnector
from channels.connectors.values import RECORD_ERRORS

INVENTORY_PAGE = 100
ORDERS_PAGE = 100
# How far back the listing download looks in the seller's orders for listings the Inventory API does not manage.
TRADING_LOOKBACK = timedelta(days=90)
CANCELLATION_REFUSED = (
    "eBay's Sell Fulfillment API has no cancellation for the seller: cancel the order in Seller Hub (eBay then "
    "refunds the buyer), or the buyer must request the cancellation."
)


class EbayConnector(OAuthConnector):
    kind = "ebay"
    label = "eBay"
    credential_fields = (
        ("client_id", "App ID (client id)"), ("client_secret", "Cert ID (client secret)"),
        ("ru_name", "RuName (eBay redirect URL name)"), ("refresh_token", "Refresh token"),
        ("deletion_verification_token", "Account deletion verification token"),
    )
    account_fields = ("marketplace_id", "api_base_url", "auth_base_url")
    default_urls: ClassVar[Mapping[str, str]] = {
        "api_base_url": "https://api.ebay.com", "auth_base_url": "https://api.ebay.com",
    }
    # eBay's API hosts (apiz serves the Fulfillment API too) and its token host, production and eBay's sandbox.
    allowed_hosts: ClassVar[Mapping[str, tuple[str, ...]]] = {
        "api_base_url": ("api.ebay.com", "apiz.ebay.com", "api.sandbox.ebay.com", "apiz.sandbox.ebay.com"),
        "auth_base_url": ("api.ebay.com", "api.sandbox.ebay.com"),
    }
    # createShippingFulfillment: the carrier and tracking number are optional, but go together.
    despatch_needs_tracking_number = False
    carriers: ClassVar[tuple[Carrier, ...]] = mapper.CARRIERS
    other_carrier = mapper.OTHER_CARRIER
    supports_price_push = True
    # The seller cannot cancel through the Sell APIs (contract/fulfillment.json notes).
    unsupported_settings = frozenset({"send_cancellation_notes"})
    # bulkUpdatePriceQuantity takes at most 25 SKUs: one batch is one call.
    max_batch_size = 25
    # "Each listing can be revised up to 250 times in one calendar day" (every Inventory write's note); eBay's day
    # is Pacific time, as its call limits are.
    max_revisions_per_day = 250
    revision_day_zone = "America/Los_Angeles"
    watermark_policy = WatermarkPolicy.LATEST_ORDER
    rate_limits: ClassVar[Mapping[str, RateLimit]] = RATE_LIMITS
    order_download_operation = "fulfillment"
    # A twentieth of the Fulfillment API's daily quota for polling (every 18 s); the rest is despatch and reads.
    order_download_share = 0.05
    setting_help: ClassVar[Mapping[str, str]] = {
        "marketplace_id": "The eBay marketplace the listings and offers are on: EBAY_GB (the default), EBAY_DE, "
        "EBAY_FR, EBAY_US...",
        "default_email": "eBay sometimes sends no buyer email (or a masked one is withheld): orders then carry "
        "this address.",
        "use_channel_tax": "Use the tax eBay reports on the order (pricingSummary.tax); unticked, the hub's tax "
        "rates apply. Taxes eBay collects and remits itself are never the seller's.",
        "download_unpaid_orders": "Also download eBay orders whose payment is PENDING or FAILED.",
    }
    client_class = EbayClient
    client: EbayClient

    @classmethod
    def channel_defaults(cls) -> dict[str, object]:
        return {"marketplace_id": "EBAY_GB", "send_cancellation_notes": False}

    # Connection

    def test_connection(self) -> ConnectionResult:
        body = self.client.call_object("getInventoryItems", params={"limit": "1", "offset": "0"})
        total = body.get("total", 0)
        return ConnectionResult(True, f"Connected to eBay ({self.config.marketplace_id or 'EBAY_GB'}): "
                                      f"{total} inventory item{'s' if total != 1 else ''} managed through the "
                                      "Inventory API.")

    def order_statuses(self) -> list[str]:
        return list(mapper.ORDER_STATUSES)

    # Listings

    def fetch_listings(self) -> Iterator[ListingPage]:
        page, done, skus = 0, 0, set()
        while True:
            body = self.client.call_object("getInventoryItems", params={"limit": str(INVENTORY_PAGE),
                                                                        "offset": str(page)})
            items = body.get("inventoryItems") or []
            if not isinstance(items, list):
                raise ChannelPayloadError("eBay getInventoryItems: inventoryItems is not a list")
            listings, errors = [], []
            for item in items:
                sku = str(item.get("sku") or "") if isinstance(item, dict) else ""
                if not sku:
                    errors.append(RecordError("(no sku)", "unreadable inventory item: it has no sku"))
                    continue
                skus.add(sku)
                try:
                    listings.append(mapper.listing_from_item(item, self._offers(sku), self.config.marketplace_id))
                except (ChannelRejected, ChannelPayloadError, *RECORD_ERRORS) as exc:
                    errors.append(RecordError(sku, f"unreadable listing: {type(exc).__name__} {exc}"))
            done += len(items)
            total = max(int(body.get("total") or 0), done)
            last = not items or not body.get("next") or done >= total
            if last:
                errors += self._trading_listings(skus)
            yield ListingPage(tuple(listings), done=done, total=total, errors=tuple(errors))
            if last:
                return
            page += 1

    def _offers(self, sku: str) -> list[dict[str, Any]]:
        try:
            body = self.client.call_object("getOffers", params={"sku": sku, "limit": "25", "offset": "0"})
        except ChannelRejected:
            # 404 (errorId 25713): the item has no offer yet, so nothing is listed for it.
            return []
        offers = body.get("offers") or []
        return [offer for offer in offers if isinstance(offer, dict)]

    def _trading_listings(self, managed_skus: set[str]) -> list[RecordError]:
        """Listings sold from recently that the Inventory API does not manage, each with why."""
        since = datetime.now(UTC) - TRADING_LOOKBACK
        orders: list[Any] = []
        offset = 0
        while True:
            body = self.client.call_object("getOrders", params={
                "filter": mapper.created_filter(since), "limit": str(ORDERS_PAGE), "offset": str(offset)})
            page = [order for order in body.get("orders") or [] if isinstance(order, dict)]
            orders += page
            offset += len(page)
            if not page or offset >= int(body.get("total") or 0):
                break
        return mapper.trading_listings(orders, managed_skus)

    # Stock and price

    def push_listings(self, updates: Sequence[StockUpdate]) -> list[PushResult]:
        results: dict[str, PushResult] = {}
        requests = []
        sent = []
        for update in updates:
            try:
                _, offer_ids = mapper.parse_external_id(update.external_id)
            except ValueError:
                results[update.channel_sku] = PushResult(update.channel_sku, False, (
                    "No published eBay offer for this listing: publish it on eBay, then download the listings."))
                continue
            requests.append(mapper.price_quantity_request(update, offer_ids))
            sent.append(update)
        for start in range(0, len(requests), self.max_batch_size):
            batch, batch_updates = requests[start:start + self.max_batch_size], sent[start:start + self.max_batch_size]
            try:
                body = self.client.call_object("bulkUpdatePriceQuantity", json={"requests": batch})
            except (ChannelRejected, ChannelPayloadError) as exc:
                results |= {u.channel_sku: PushResult(u.channel_sku, False, str(exc)) for u in batch_updates}
                continue
            results |= {result.channel_sku: result for result in mapper.push_results(batch_updates, body)}
        return [results[update.channel_sku] for update in updates]

    # Orders

    def fetch_orders(self, since: datetime, until: datetime | None = None) -> Iterator[OrderPage]:
        query = mapper.orders_filter(since, until)
        offset = 0
        while True:
            body = self.client.call_object("getOrders", params={"filter": query, "limit": str(ORDERS_PAGE),
                                                                "offset": str(offset)})
            raw = body.get("orders") or []
            if not isinstance(raw, list):
                raise ChannelPayloadError("eBay getOrders: orders is not a list")
            orders, errors = mapper.orders_page(raw, default_currency=self.config.currency)
            yield OrderPage(tuple(orders), tuple(errors))
            offset += len(raw)
            if not raw or offset >= int(body.get("total") or 0):
                return

    def order_get(self, order_ids: Sequence[str]) -> OrderPage:
        errors = [RecordError(order_id, "not an eBay order id") for order_id in order_ids
                  if not mapper.ORDER_ID.fullmatch(order_id)]
        wanted = [order_id for order_id in order_ids if mapper.ORDER_ID.fullmatch(order_id)]
        found = []
        for start in range(0, len(wanted), mapper.ORDER_IDS_PER_CALL):
            chunk = wanted[start:start + mapper.ORDER_IDS_PER_CALL]
            body = self.client.call_object("getOrders", params={"orderIds": ",".join(chunk)})
            found += [order for order in body.get("orders") or [] if isinstance(order, dict)]
        orders, unreadable = mapper.orders_page(found, default_currency=self.config.currency)
        seen = {order.channel_order_id for order in orders} | {error.record_id for error in unreadable}
        missing = [RecordError(order_id, "eBay has no such order") for order_id in wanted if order_id not in seen]
        return OrderPage(tuple(orders), (*errors, *unreadable, *missing))

    # Despatch and cancellation

    def confirm_despatch(self, order: OrderRef, shipment: Shipment) -> None:
        lines = [(line.line_id, line.quantity) for line in order.lines if line.line_id]
        if not lines:
            raise ChannelRejected(f"{self.config.name}: eBay needs the order's line items to mark it shipped")
        carrier = ""
        if shipment.tracking_number:
            found = self.carrier_for(shipment.carrier)
            carrier = found.code if found is not None else self.other_carrier
        body = mapper.fulfillment_body(lines, carrier=carrier, tracking_number=shipment.tracking_number,
                                       shipped_at=shipment.shipped_at or datetime.now(UTC))
        self.client.send("createShippingFulfillment", path_params={"orderId": order.channel_order_id}, json=body)

    def cancel_order(self, order: OrderRef, reason: str) -> None:
        raise ChannelRejected(f"{self.config.name}: {CANCELLATION_REFUSED}")

    # Marketplace account deletion notifications (contract/notification.json)

    receives_account_deletion_notices = True

    def account_deletion_challenge(self, challenge_code: str, endpoint_url: str) -> dict[str, str]:
        token = self.credentials.load().get("deletion_verification_token", "")
        if not token:
            raise WebhookRefused("eBay challenge refused: the channel has no account deletion verification token; "
                                 "enter the one saved in eBay's developer portal")
        return mapper.deletion_challenge_response(challenge_code, token, endpoint_url)

    def account_deletion_notice(self, headers: Mapping[str, str], body: bytes) -> AccountDeletion:
        try:
            key_id, signature = mapper.deletion_signature(headers.get("X-EBAY-SIGNATURE", ""))
            notice = mapper.deletion_notice(body)
        except ValueError as exc:
            raise WebhookRefused(f"eBay account deletion notice refused: {exc}") from None
        try:
            key = load_pem_public_key(mapper.pem(self.client.public_key(key_id)))
            if not isinstance(key, ec.EllipticCurvePublicKey):
                raise WebhookRefused("eBay account deletion notice refused: its key is not an ECDSA key")
            # eBay signs its notices with ECDSA over SHA1 (the header says so, checked above).
            key.verify(signature, body, ec.ECDSA(hashes.SHA1()))
        except (InvalidSignature, ValueError):
            raise WebhookRefused("eBay account deletion notice refused: the signature does not match") from None
        except ChannelRejected as exc:
            raise WebhookRefused(f"eBay account deletion notice refused: eBay has no key {key_id} ({exc})") from None
        return notice

    # Consent (consent.py, contract/identity.json `authorize`)

    consent_code_parameter = consent.CODE_PARAMETER

    def consent_url(self, redirect_uri: str, state: str) -> str | None:
        return consent.consent_url(self.config, self.credentials.load(), state=state)
