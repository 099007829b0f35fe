"""EKM Partner API: orders v2, products v1, settings v1, written to contract/*.json (from EKM's swagger)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, ClassVar

from channels.connectors.base import (
    ChannelPayloadError,
    ChannelRejected,
    ConnectionResult,
    ListingPage,
    OrderChange,
    OrderPage,
    OrderRef,
    PushResult,
    RateLimit,
    RecordError,
    Shipment,
    StockUpdate,
    WatermarkPolicy,
    WebhookHint,
    WebhookRefused,
)
from channels.connectors.ekm import consent
from channels.connectors.ekm.client import RATE_LIMITS, EkmClient
from channels.connectors.ekm.mapper import (
    ORDER_ID,
    SUBSCRIPTION_ID,
    WEBHOOK_TOPICS,
    currency_from_settings,
    listings_from_products,
    order_change,
    order_from_ekm,
    orders_query,
    parse_external_id,
    product_update,
    statuses_from_settings,
    token_subject,
    variant_update,
    webhook_delivery,
)
from channels.connectors.http import numbered_pages
from channels.connectors.oauth import ACCESS_TOKEN, OAuthConnector
from channels.connectors.values import RECORD_ERRORS

PAGE_LIMIT = 20
DEFAULT_CANCELLED_STATUS = "CANCELLED"
DEFAULT_DISPATCHED_STATUS = "DISPATCHED"


class EkmConnector(OAuthConnector):
    kind = "ekm"
    label = "EKM"
    credential_fields = (
        ("client_id", "Client id"), ("client_secret", "Client secret"), ("refresh_token", "Refresh token"),
    )
    account_fields = ("shop_url", "api_base_url", "auth_base_url")
    default_urls: ClassVar[Mapping[str, str]] = {
        "api_base_url": "https://api.ekm.net", "auth_base_url": "https://api.ekm.net",
    }
    allowed_hosts: ClassVar[Mapping[str, tuple[str, ...]]] = {
        "api_base_url": ("api.ekm.net",), "auth_base_url": ("api.ekm.net",),
    }
    # Despatch and cancellation set one of the shop's own statuses, free text (V1OrderStatus).
    despatch_needs_status_mapping = True
    # V1OrderDeliveryTracking: number, company and URL are each optional; the company is free text.
    despatch_needs_tracking_number = False
    carriers = ()
    # The status call has no room for a reason.
    cancellation_reasons: ClassVar[Mapping[str, str]] = {}
    # Products_Update for a product, ProductVariants_Update for a variant.
    supports_price_push = True
    max_batch_size = 50
    watermark_policy = WatermarkPolicy.LATEST_ORDER
    rate_limits: ClassVar[Mapping[str, RateLimit]] = RATE_LIMITS
    # Every call draws from the one bucket, an order download's pages too.
    order_download_operation = "api"
    # One Orders_GetItems call per order.
    reads_order_details_apart = True
    # EKM's one 2/s bucket also carries every push (a call per SKU) and each order's items: polling takes a
    # twentieth of it (every 10 s); orders arrive by webhook where the hub has a public URL.
    order_download_share = 0.05
    # order.created and order.updated, unsigned: the username is checked against the token's, then the order read.
    receives_order_webhooks = True
    # Seed 001's words for EKM's own behaviour.
    setting_help: ClassVar[Mapping[str, str]] = {
        "send_despatch_notes": "Send the despatch notification to EKM when an order is processed here. The "
        "hub's Processed status must be mapped to EKM's despatched status in Order Status Mapping.",
        "use_channel_tax": "Use EKM's tax settings for the orders' tax; unticked, the hub's tax rates apply.",
    }
    client_class = EkmClient
    client: EkmClient

    # Connection and settings

    def test_connection(self) -> ConnectionResult:
        data, _ = self.client.get("/api/v1/settings/shop_information", operation="ShopInformation_Get")
        if not isinstance(data, dict):
            raise ChannelPayloadError("EKM ShopInformation_Get: unexpected answer")
        shop = data.get("shop_name") or data.get("company") or "the shop"
        return ConnectionResult(True, f"Connected to EKM shop {shop}.")

    def order_statuses(self) -> list[str]:
        data, _ = self.client.get("/api/v1/settings/orderstatuses", operation="OrderStatuses_GetOrderStatuses")
        return statuses_from_settings(data)

    def _shop_currency(self) -> str | None:
        """The shop's currency (orders carry none); None when EKM has no currency settings for the shop."""
        try:
            data, _ = self.client.get("/api/v1/settings/currency", operation="Currency_GetCurrency")
        except ChannelRejected:
            return None
        return currency_from_settings(data)

    # Orders

    def fetch_orders(
        self, since: datetime, until: datetime | None = None, *,
        unchanged: Callable[[Sequence[OrderChange]], set[str]] | None = None,
    ) -> Iterator[OrderPage]:
        query = orders_query(since, until)
        # Asked once, and only of a download that has an order to map: most find nothing new.
        shop_currency = functools.cache(self._shop_currency)

        def fetch(page: int) -> tuple[OrderPage, int]:
            # By id: an order that changes while the pages are read keeps its place, so none is skipped.
            data, meta = self.client.get("/api/v2/orders/search", operation="Orders_Search", params={
                "query": query, "orderby": "id", "page": page, "limit": PAGE_LIMIT,
            })
            if not isinstance(data, list):
                raise ChannelPayloadError("EKM Orders_Search: data is not a list")
            pages_total = int(meta.get("pages_total") or 1)
            if unchanged is None:
                return self._orders_page(data, shop_currency() if data else None), pages_total
            # Each download re-reads the overlap, and an order's items cost a call of the shop's 2 a second: an
            # order the hub holds as EKM last changed it is left out before its items are read.
            changes = [(raw, order_change(raw)) for raw in data]
            held = unchanged([change for _, change in changes if change is not None])
            fresh = [raw for raw, change in changes if change is None or change.channel_order_id not in held]
            page = self._orders_page(fresh, shop_currency() if fresh else None)
            left_out = tuple(change for _, change in changes if change is not None and change.channel_order_id in held)
            return OrderPage(orders=page.orders, errors=page.errors, unchanged=left_out), pages_total

        return numbered_pages(fetch)

    def _orders_page(self, orders: Sequence[Any], currency: str | None) -> OrderPage:
        mapped, errors = [], []
        for raw in orders:
            record_id = str(raw.get("id") or "") if isinstance(raw, dict) else ""
            if not record_id:
                errors.append(RecordError("(no order id)", "unreadable order: it has no id"))
                continue
            try:
                items, _ = self.client.get(f"/api/v2/orders/{record_id}/items", operation="Orders_GetItems")
                mapped.append(order_from_ekm(raw, items, currency))
            except (ChannelRejected, ChannelPayloadError, *RECORD_ERRORS) as exc:
                errors.append(RecordError(record_id, f"unreadable order: {type(exc).__name__} {exc}"))
        return OrderPage(orders=tuple(mapped), errors=tuple(errors))

    def order_get(self, order_ids: Sequence[str]) -> OrderPage:
        currency = self._shop_currency()
        found, errors = [], []
        for order_id in order_ids:
            if not ORDER_ID.fullmatch(order_id):
                errors.append(RecordError(order_id, "not an EKM order id"))
                continue
            try:
                data, _ = self.client.get(f"/api/v2/orders/{order_id}", operation="Orders_GetById")
            except (ChannelRejected, ChannelPayloadError) as exc:
                errors.append(RecordError(order_id, f"unreadable order: {exc}"))
                continue
            if not isinstance(data, dict):
                errors.append(RecordError(order_id, "unreadable order: EKM sent no order"))
                continue
            found.append(data)
        page = self._orders_page(found, currency)
        return OrderPage(orders=page.orders, errors=(*errors, *page.errors))

    # Orders by webhook (contract/webhooks.json)

    def merchant_username(self) -> str | None:
        """The merchant this channel connects to: the `sub` of its access token. None before the first token."""
        return token_subject(self.credentials.load().get(ACCESS_TOKEN, ""))

    def webhook_hint(self, headers: Mapping[str, str], body: bytes) -> WebhookHint:
        try:
            username, topic, order_id = webhook_delivery(body)
        except ValueError as exc:
            raise WebhookRefused(f"EKM webhook refused: {exc}") from None
        merchant = self.merchant_username()
        if merchant is None:
            raise WebhookRefused("EKM webhook refused: the channel holds no token yet, so its merchant is unknown")
        if username != merchant:
            raise WebhookRefused("EKM webhook refused: it names another merchant than this channel's")
        return WebhookHint(order_ids=(order_id,), merchant=merchant, topic=topic)

    def _subscriptions(self) -> list[dict[str, Any]]:
        data, _ = self.client.get("/api/v2/Webhooks/webhooks", operation="Webhooks_GetAll")
        if data is not None and not isinstance(data, list):
            raise ChannelPayloadError("EKM Webhooks_GetAll: data is not a list")
        # Only this application's subscriptions to this merchant are listed; other topics are not the hub's.
        return [entry for entry in data or [] if isinstance(entry, dict) and entry.get("topic") in WEBHOOK_TOPICS
                and SUBSCRIPTION_ID.fullmatch(str(entry.get("id")))]

    def webhooks_subscribe(self, endpoint_url: str) -> list[str]:
        existing = self._subscriptions()
        for topic in WEBHOOK_TOPICS:
            # The one already right is kept; the other copies of the topic would deliver every event twice.
            ours = sorted((entry for entry in existing if entry["topic"] == topic), key=lambda entry: (
                entry.get("endpoint") != endpoint_url, entry.get("is_enabled") is not True))
            if not ours:
                self.client.send("POST", "/api/v2/Webhooks", operation="Webhooks_Post",
                                 body={"topic": topic, "endpoint": endpoint_url, "is_enabled": True})
                continue
            kept, *copies = ours
            if kept.get("endpoint") != endpoint_url or kept.get("is_enabled") is not True:
                self.client.send("PUT", f"/api/v2/Webhooks/{kept['id']}", operation="Webhooks_Put",
                                 body={"topic": topic, "endpoint": endpoint_url, "is_enabled": True})
            for copy in copies:
                self._unsubscribe(copy["id"])
        return [entry["id"] for entry in self._subscriptions() if entry.get("endpoint") == endpoint_url]

    def webhooks_unsubscribe(self) -> None:
        for entry in self._subscriptions():
            self._unsubscribe(entry["id"])

    def _unsubscribe(self, subscription_id: str) -> None:
        try:
            self.client.send("DELETE", f"/api/v2/Webhooks/{subscription_id}", operation="Webhooks_Delete")
        except ChannelRejected:
            # Webhooks_Delete refuses only an unknown id (404): that subscription is gone already.
            return

    # Listings

    def fetch_listings(self) -> Iterator[ListingPage]:
        done = 0

        def fetch(page: int) -> tuple[ListingPage, int]:
            nonlocal done
            data, meta = self.client.get("/api/v1/products", operation="Products_GetAll",
                                         params={"page": page, "limit": PAGE_LIMIT})
            if not isinstance(data, list):
                raise ChannelPayloadError("EKM Products_GetAll: data is not a list")
            listings, errors = listings_from_products(data)
            # Progress counts products, the unit EKM's items_total counts.
            done += len(data)
            total = max(int(meta.get("items_total") or 0), done)
            return ListingPage(tuple(listings), done=done, total=total, errors=tuple(errors)), int(
                meta.get("pages_total") or 1
            )

        return numbered_pages(fetch)

    def push_listings(self, updates: Sequence[StockUpdate]) -> list[PushResult]:
        # EKM has no batch endpoint: one call per SKU, plus a read and a write for a price change.
        return [self._push_one(update) for update in updates]

    def _push_one(self, update: StockUpdate) -> PushResult:
        try:
            product_id, variant_id = parse_external_id(update.external_id)
        except ValueError:
            return PushResult(update.channel_sku, accepted=False,
                              message="No EKM product id for this listing: download the listings first.")
        stock = max(0, update.quantity)
        try:
            if variant_id:
                variant_path = f"/api/v1/products/{product_id}/variants/{variant_id}"
                self.client.put(f"{variant_path}/stock", operation="ProductVariantStock_Update", body={"stock": stock})
                if update.price is not None:
                    variant, _ = self.client.get(variant_path, operation="ProductVariants_GetProductVariant")
                    self.client.put(variant_path, operation="ProductVariants_Update",
                                    body=variant_update(variant, price=update.price, stock=stock))
            else:
                product_path = f"/api/v1/products/{product_id}"
                self.client.put(f"{product_path}/stock", operation="ProductStock_Update", body={"stock": stock})
                if update.price is not None:
                    product, _ = self.client.get(product_path, operation="Products_Get")
                    self.client.put(product_path, operation="Products_Update",
                                    body=product_update(product, price=update.price, stock=stock))
        except (ChannelRejected, ChannelPayloadError, *RECORD_ERRORS) as exc:
            return PushResult(update.channel_sku, accepted=False, message=str(exc))
        return PushResult(update.channel_sku, accepted=True)

    # Despatch and cancellation

    def confirm_despatch(self, order: OrderRef, shipment: Shipment) -> None:
        if shipment.tracking_number:
            tracking = {
                "delivery_tracking_number": shipment.tracking_number,
                "delivery_tracking_company": shipment.carrier,
                "delivery_tracking_url": shipment.tracking_url,
            }
            self.client.put(f"/api/v2/orders/{order.channel_order_id}/deliveryTracking",
                            operation="Orders_UpdateDeliveryTracking",
                            body={key: value for key, value in tracking.items() if value})
        self._set_status(order, shipment.channel_status or DEFAULT_DISPATCHED_STATUS)

    def cancel_order(self, order: OrderRef, reason: str) -> None:
        # EKM's status call has no room for a reason; the shop's mapped status says it all.
        self._set_status(order, order.channel_status or DEFAULT_CANCELLED_STATUS)

    def _set_status(self, order: OrderRef, status: str) -> None:
        self.client.put(f"/api/v2/orders/{order.channel_order_id}/status", operation="Orders_UpdateStatus",
                        body={"status": status, "email_customer": True})

    # Consent: EKM's /connect/authorize (consent.py, contract/connect.json `authorize`)

    consent_code_parameter = consent.CODE_PARAMETER

    def consent_url(self, redirect_uri: str, state: str) -> str | None:
        return consent.consent_url(self.config, self.credentials.load(), redirect_uri=redirect_uri, state=state)
