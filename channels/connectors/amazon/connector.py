"""Amazon Selling Partner API: orders (v2026-01-01), listings, feeds, reports, shipment confirmation (v0),
FBA inventory (v1) and multi-channel fulfilment (Fulfillment Outbound 2020-07-01).

`AmazonConnector` declares what the hub needs to know about Amazon and drives `client.AmazonClient`; the
payloads are mapped by `mapper`. Both follow the contract files in `contract/`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import ClassVar

from channels.connectors.amazon import consent, mapper
from channels.connectors.amazon.client import RATE_LIMITS, AmazonClient
from channels.connectors.base import (
    Carrier,
    ChannelPayloadError,
    ChannelRejected,
    ConnectionResult,
    FbaStockPage,
    FulfilmentRequest,
    FulfilmentState,
    ListingPage,
    OrderPage,
    OrderRef,
    PushResult,
    RateLimit,
    Shipment,
    StockUpdate,
    WatermarkPolicy,
)
from channels.connectors.http import token_pages
from channels.connectors.oauth import OAuthConnector
from channels.connectors.values import iso_z

# Up to this many updates go one PATCH each (5 a second); more go in one JSON_LISTINGS_FEED, whose
# createFeed quota is one call every two minutes but which carries up to 25,000 messages.
FEED_THRESHOLD = 20
# Amazon rejects a lastUpdatedBefore later than two minutes before the request.
LATEST_BEFORE = timedelta(minutes=2)


class AmazonConnector(OAuthConnector):
    kind = "amazon"
    label = "Amazon"
    credential_fields = (
        ("client_id", "LWA client id"), ("client_secret", "LWA client secret"), ("refresh_token", "Refresh token"),
    )
    account_fields = (
        "seller_id", "marketplace_id", "api_base_url", "auth_base_url", "application_id", "application_draft",
    )
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
    # confirmShipment's packageDetail requires trackingNumber.
    despatch_needs_tracking_number = True
    carriers: ClassVar[tuple[Carrier, ...]] = mapper.CARRIERS
    # Sent with carrierName, which confirmShipment requires with it.
    other_carrier = mapper.OTHER_CARRIER
    cancellation_reasons: ClassVar[Mapping[str, str]] = mapper.CANCELLATION_REASONS
    supports_despatch_notes = False
    supports_latency = True
    # Login with Amazon rotates the client secret every 180 days.
    client_secret_lifetime_days = 180
    withheld_email_placeholder = "NOT DISCLOSED BY AMAZON"
    # Seed 002's words for Amazon's own behaviour.
    setting_help: ClassVar[Mapping[str, str]] = {
        "default_email": "Amazon does not disclose most buyers' emails: orders then carry this address instead of "
        "“NOT DISCLOSED BY AMAZON”, so email notifications do not fail.",
        "latency_days": "Amazon's handling time: the days between the order date and the ship date (1-30), sent "
        "for every linked listing. 0 means no latency is sent.",
        "product_based_latency": "Take each product's latency from its extended property when it has one "
        "(Amazon's handling time, 1-30 days). Slows the inventory sync down.",
    }
    max_batch_size = 5000
    watermark_policy = WatermarkPolicy.OLDEST_IMPORTED
    # SP-API's default usage plans, by operation id; a seller's own rate replaces one when Amazon announces it.
    rate_limits: ClassVar[Mapping[str, RateLimit]] = RATE_LIMITS
    # Each page of orders is one searchOrders call: its items come with it (includedData), so no getOrderItems.
    order_download_operation = "searchOrders"
    client_class = AmazonClient
    client: AmazonClient

    @classmethod
    def fulfilment_currency(cls, marketplace_id: str) -> str | None:
        return mapper.marketplace_currency(marketplace_id)

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

    # Connection

    def test_connection(self) -> ConnectionResult:
        body = self.client.call_object("getMarketplaceParticipations")
        try:
            participating = {
                entry["marketplace"]["id"]: entry["marketplace"].get("name", "")
                for entry in body["payload"]
                if (entry.get("participation") or {}).get("isParticipating", True)
            }
        except (KeyError, TypeError, AttributeError) as exc:
            raise ChannelPayloadError("Amazon getMarketplaceParticipations: unexpected answer") from exc
        wanted = self.config.marketplace_id
        if wanted not in participating:
            found = ", ".join(sorted(participating)) or "none"
            return ConnectionResult(False, f"Connected, but the seller does not sell on marketplace {wanted} "
                                           f"(participates in: {found}).")
        return ConnectionResult(True, f"Connected to Amazon: selling on {participating[wanted] or wanted} ({wanted}).")

    def order_statuses(self) -> list[str]:
        return list(mapper.FULFILLMENT_STATUSES)

    # Orders

    def fetch_orders(self, since: datetime, until: datetime | None = None) -> Iterator[OrderPage]:
        params = {
            "marketplaceIds": self.config.marketplace_id,
            "lastUpdatedAfter": iso_z(since),
            "maxResultsPerPage": 100,
            "includedData": mapper.INCLUDED_DATA,
        }
        # Without lastUpdatedBefore Amazon means "two minutes ago", the latest it accepts.
        if until is not None and until <= datetime.now(UTC) - LATEST_BEFORE:
            params["lastUpdatedBefore"] = iso_z(until, round_up=True)

        def fetch(token: str) -> tuple[OrderPage, str]:
            # The query goes again with each page's token: the model names no parameter a token replaces.
            body = self.client.call_object("searchOrders",
                                           params=params | ({"paginationToken": token} if token else {}))
            return mapper.orders_page_from_amazon(body), (body.get("pagination") or {}).get("nextToken") or ""

        return token_pages(fetch)

    # Listings

    def push_listings(self, updates: Sequence[StockUpdate]) -> list[PushResult]:
        if len(updates) > FEED_THRESHOLD:
            return self._push_by_feed(updates)
        return [self._patch(update) for update in updates]

    def _patch(self, update: StockUpdate) -> PushResult:
        body = {
            "productType": "PRODUCT",
            "patches": mapper.listing_patches(update, marketplace_id=self.config.marketplace_id,
                                              currency=self.config.currency),
        }
        try:
            answer = self.client.call_object(
                "patchListingsItem", path_params={"sellerId": self.config.seller_id, "sku": update.channel_sku},
                params={"marketplaceIds": self.config.marketplace_id}, json=body)
        except (ChannelRejected, ChannelPayloadError) as exc:
            return PushResult(update.channel_sku, accepted=False, message=str(exc))
        return mapper.push_result_from_patch(update.channel_sku, answer)

    def _push_by_feed(self, updates: Sequence[StockUpdate]) -> list[PushResult]:
        feed = mapper.listings_feed(updates, seller_id=self.config.seller_id,
                                    marketplace_id=self.config.marketplace_id, currency=self.config.currency)
        done = self.client.submit_feed("JSON_LISTINGS_FEED", json.dumps(feed).encode(),
                                       "application/json; charset=UTF-8")
        if done.get("processingStatus") != "DONE":
            reason = f"Amazon could not process the listings feed ({done.get('processingStatus')})"
            return [PushResult(update.channel_sku, accepted=False, message=reason) for update in updates]
        try:
            report = json.loads(self.client.feed_result(done))
        except ValueError as exc:
            raise ChannelPayloadError("Amazon feed result: not JSON") from exc
        if not isinstance(report, dict):
            raise ChannelPayloadError("Amazon feed result: not a processing report")
        return mapper.push_results_from_feed(updates, report)

    def fetch_listings(self) -> Iterator[ListingPage]:
        report = self.client.report("GET_MERCHANT_LISTINGS_ALL_DATA")
        status = report.get("processingStatus")
        # We never cancel our own report: Amazon cancels it when there is no listing to report.
        if status == "CANCELLED":
            yield ListingPage(listings=(), done=0, total=0)
            return
        if status != "DONE":
            raise ChannelRejected(f"Amazon could not produce the listings report ({status})")
        if not report.get("reportDocumentId"):
            raise ChannelPayloadError("Amazon getReport: the report is done but has no document")
        yield from mapper.listings_from_report(self.client.report_document(report))

    # Despatch and cancellation

    def confirm_despatch(self, order: OrderRef, shipment: Shipment) -> None:
        body = mapper.shipment_confirmation(order, shipment, marketplace_id=self.config.marketplace_id,
                                            carrier=self.carrier_for(shipment.carrier))
        self.client.send("confirmShipment", path_params={"orderId": order.channel_order_id}, json=body)

    def cancel_order(self, order: OrderRef, reason: str) -> None:
        if not order.lines:
            raise ChannelRejected(f"order {order.channel_order_id}: Amazon needs the order's items to cancel it")
        content = mapper.cancellation_feed(order, reason).encode()
        done = self.client.submit_feed("POST_FLAT_FILE_ORDER_ACKNOWLEDGEMENT_DATA", content,
                                       "text/tab-separated-values; charset=UTF-8")
        if done.get("processingStatus") != "DONE":
            raise ChannelRejected(f"Amazon could not process the cancellation of {order.channel_order_id} "
                                  f"({done.get('processingStatus')})")
        errors = mapper.flat_file_errors(self.client.feed_result(done))
        if errors:
            raise ChannelRejected(f"Amazon refused the cancellation of {order.channel_order_id}: {'; '.join(errors)}")

    # FBA inventory and multi-channel fulfilment

    def fetch_fba_stock(self) -> Iterator[FbaStockPage]:
        marketplace = self.config.marketplace_id
        params = {"granularityType": "Marketplace", "granularityId": marketplace, "marketplaceIds": marketplace,
                  "details": "true"}

        def fetch(token: str) -> tuple[FbaStockPage, str]:
            # A nextToken lives 30 seconds: pages are fetched one after another, never held.
            body = self.client.call_object("getInventorySummaries",
                                           params=params | ({"nextToken": token} if token else {}))
            return mapper.fba_stock_page_from_amazon(body)

        return token_pages(fetch)

    def create_fulfilment_order(self, request: FulfilmentRequest) -> None:
        if not request.lines:
            raise ChannelRejected(f"fulfilment order {request.fulfilment_order_id}: no items to ship")
        self.client.send("createFulfillmentOrder",
                         json=mapper.fulfilment_order_payload(request, marketplace_id=self.config.marketplace_id))

    def fulfilment_order(self, fulfilment_order_id: str) -> FulfilmentState:
        body = self.client.call("getFulfillmentOrder", path_params={"sellerFulfillmentOrderId": fulfilment_order_id})
        return mapper.fulfilment_state_from_amazon(body)

    # Consent: Seller Central's website authorisation workflow (consent.py, contract/auth.json `consent`)

    consent_code_parameter = consent.CODE_PARAMETER

    def consent_url(self, redirect_uri: str, state: str) -> str | None:
        return consent.consent_url(self.config, lwa_hosts=self.allowed_hosts["auth_base_url"],
                                   redirect_uri=redirect_uri, state=state)

    def consent_refusal(self, callback: Mapping[str, str]) -> str:
        return consent.consent_refusal(self.config, callback)
