"""WooCommerce REST API wc/v3 on the seller's own shop, written to contract/*.json (from WooCommerce 9.9.7's
route index, its REST API docs and the Shipment Tracking extension's pages)."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, ClassVar
from urllib.parse import urlsplit

from channels.connectors.base import (
    ChannelPayloadError,
    ChannelRejected,
    ConnectionResult,
    Connector,
    ConnectorConfig,
    CredentialStore,
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
    WebhookHint,
    WebhookRefused,
)
from channels.connectors.values import RECORD_ERRORS, iso_z
from channels.connectors.woocommerce.client import RATE_LIMITS, ListPage, WooClient
from channels.connectors.woocommerce.mapper import (
    RESOURCE_ID,
    WEBHOOK_NAME,
    WEBHOOK_TOPICS,
    batch_outcomes,
    batch_update,
    despatch_note,
    listings_from_products,
    listings_from_variations,
    order_from_woo,
    parse_external_id,
    statuses_from_answer,
    tracking_provider,
    webhook_delivery,
    woocommerce_version,
)

API = "/wp-json/wc/v3"
TRACKING_API = "/wp-json/wc-shipment-tracking/v3"
# The most a list route gives per page, and the most objects one batch takes (contract notes).
PER_PAGE = 100
BATCH_LIMIT = 100
DEFAULT_SHIPPED_STATUS = "completed"
DEFAULT_CANCELLED_STATUS = "cancelled"
WEBHOOK_SECRET = "webhook_secret"


class WooCommerceConnector(Connector):
    kind = "woocommerce"
    label = "WooCommerce"
    credential_fields = (("consumer_key", "Consumer key"), ("consumer_secret", "Consumer secret"))
    # The shop's own address: the REST API is under it (/wp-json/wc/v3).
    account_fields = ("api_base_url",)
    # Each shop is the seller's own server: the URL names it, and its host alone gets the keys.
    allowed_hosts: ClassVar[Mapping[str, tuple[str, ...]]] = {"api_base_url": ()}
    seller_hosted_urls = ("api_base_url",)
    # Despatch sets the status mapped to Processed, or WooCommerce's own "completed".
    despatch_needs_status_mapping = False
    despatch_needs_tracking_number = False
    # The carrier goes in a note as free text (and to Shipment Tracking by its name where the shop has it).
    carriers = ()
    cancellation_reasons: ClassVar[Mapping[str, str]] = {}
    supports_price_push = True
    max_batch_size = BATCH_LIMIT
    rate_limits: ClassVar[Mapping[str, RateLimit]] = RATE_LIMITS
    watermark_policy = WatermarkPolicy.LATEST_ORDER
    # WooCommerce publishes no quota: orders come by webhook where the hub has a public URL, and a one-page
    # download every minute is the safety net (a cheap indexed query on the shop).
    unmetered_order_download_seconds = 60
    receives_order_webhooks = True
    setting_help: ClassVar[Mapping[str, str]] = {
        "api_base_url": "The shop's address, e.g. https://shop.example.com: the hub calls its REST API under "
        "/wp-json/wc/v3 and sends the consumer key and secret to this host only (https).",
        "mark_as_despatched": "When an order is processed here, set its WooCommerce status to the one mapped to "
        "Processed in Order Status Mapping (completed when none is).",
        "send_despatch_notes": "Add a note the customer sees to the WooCommerce order with the carrier, tracking "
        "number and tracking link (and a tracking item where the shop has the Shipment Tracking extension).",
        "send_cancellation_notes": "When an order is cancelled here, set it cancelled in WooCommerce with a note "
        "the customer sees giving the reason.",
        "use_channel_tax": "Use the tax WooCommerce calculated for the order; unticked, the hub's tax rates apply.",
        "currency": "Used for an order WooCommerce sends without a currency (each order normally carries its own).",
    }

    def __init__(
        self, config: ConnectorConfig, credentials: CredentialStore, limiter: RateLimiter | None = None
    ) -> None:
        super().__init__(config, credentials, limiter)
        self.sleep = time.sleep
        self.client = WooClient(config, self.credentials.load, self.limiter, sleep=lambda s: self.sleep(s))
        self._tracking_providers: object | None = None
        self._tracking_checked = False

    # Connection

    def test_connection(self) -> ConnectionResult:
        # Only what Test shows: the whole status has the shop call out to check its own connectivity, slowly.
        answer = self.client.call("GET", f"{API}/system_status", operation="system_status_get",
                                  params={"_fields": "environment.version,environment.home_url"})
        version = woocommerce_version(answer)
        if not version:
            raise ChannelPayloadError("WooCommerce system_status_get: the answer names no WooCommerce version")
        return ConnectionResult(True, f"Connected to the WooCommerce shop at {self.shop_host} (WooCommerce "
                                      f"{version}).")

    def reauthorise(self, *, authorization_code: str = "") -> ConnectionResult:
        """WooCommerce keys do not expire: new ones are typed in the account form; this checks those held."""
        return self.test_connection()

    @property
    def shop_host(self) -> str:
        return (urlsplit(self.config.api_base_url).hostname or "").lower()

    def order_statuses(self) -> list[str]:
        return statuses_from_answer(self.client.call("GET", f"{API}/orders/statuses",
                                                     operation="order_statuses_list"))

    def _pages(self, path: str, *, operation: str, params: Mapping[str, Any]) -> Iterator[ListPage]:
        """Every page of a list route, by X-WP-TotalPages, or until a short page where a proxy stripped it."""
        page = 1
        while True:
            found = self.client.list_page(path, operation=operation,
                                          params={**params, "page": page, "per_page": PER_PAGE})
            yield found
            last = found.total_pages if found.total_pages is not None else page + (len(found.items) >= PER_PAGE)
            if page >= last or not found.items:
                return
            page += 1

    # Listings

    def fetch_listings(self) -> Iterator[ListingPage]:
        done = 0
        for page in self._pages(f"{API}/products", operation="products_list", params={"orderby": "id", "order": "asc"}):
            listings, errors, variable = listings_from_products(page.items)
            for parent in variable:
                try:
                    for variations in self._pages(f"{API}/products/{int(parent['id'])}/variations",
                                                  operation="product_variations_list",
                                                  params={"orderby": "id", "order": "asc"}):
                        found, problems = listings_from_variations(parent, variations.items)
                        listings += found
                        errors += problems
                except (ChannelRejected, ChannelPayloadError, *RECORD_ERRORS) as exc:
                    errors.append(RecordError(f"product {parent.get('id')}",
                                              f"its variations could not be read: {exc}"))
            # Progress counts products, the unit X-WP-Total counts.
            done += len(page.items)
            yield ListingPage(tuple(listings), done=done, total=max(page.total or 0, done), errors=tuple(errors))

    def push_listings(self, updates: Sequence[StockUpdate]) -> list[PushResult]:
        """Simple products through products/batch, variations through their parent's variations/batch, at most
        100 objects a call; each listing gets WooCommerce's own answer for it."""
        results: dict[str, PushResult] = {}
        groups: dict[str, list[tuple[StockUpdate, str]]] = {}
        for update in updates:
            try:
                parent, own = parse_external_id(update.external_id)
            except ValueError:
                results[update.channel_sku] = PushResult(
                    update.channel_sku, accepted=False,
                    message="No WooCommerce product id for this listing: download the listings first.")
                continue
            groups.setdefault(parent, []).append((update, own))
        for parent, members in groups.items():
            path = f"{API}/products/{parent}/variations/batch" if parent else f"{API}/products/batch"
            operation = "product_variations_batch" if parent else "products_batch"
            for start in range(0, len(members), BATCH_LIMIT):
                chunk = members[start:start + BATCH_LIMIT]
                for update, result in zip(
                        (u for u, _ in chunk), self._push_batch(path, operation, chunk), strict=True):
                    results[update.channel_sku] = result
        return [results[update.channel_sku] for update in updates]

    def _push_batch(self, path: str, operation: str, chunk: list[tuple[StockUpdate, str]]) -> list[PushResult]:
        body = {"update": [batch_update(update, own) for update, own in chunk]}
        try:
            answer = self.client.call("POST", path, operation=operation, body=body)
        except (ChannelRejected, ChannelPayloadError) as exc:
            return [PushResult(update.channel_sku, accepted=False, message=str(exc)) for update, _ in chunk]
        outcomes = batch_outcomes(answer, [int(own) for _, own in chunk])
        return [PushResult(update.channel_sku, accepted=not outcomes[int(own)], message=outcomes[int(own)])
                for update, own in chunk]

    # Orders

    def fetch_orders(self, since: datetime, until: datetime | None = None) -> Iterator[OrderPage]:
        params = {"modified_after": iso_z(since).removesuffix("Z"), "dates_are_gmt": "true",
                  "orderby": "id", "order": "asc"}
        if until is not None:
            params["modified_before"] = iso_z(until, round_up=True).removesuffix("Z")
        for page in self._pages(f"{API}/orders", operation="orders_list", params=params):
            yield self._orders_page(page.items)

    def _orders_page(self, orders: Sequence[Any]) -> OrderPage:
        mapped, errors = [], []
        for raw in orders:
            record_id = str(raw.get("id") or "") if isinstance(raw, dict) else ""
            try:
                mapped.append(order_from_woo(raw))
            except RECORD_ERRORS as exc:
                errors.append(RecordError(record_id or "(no order id)",
                                          f"unreadable order: {type(exc).__name__} {exc}"))
        return OrderPage(orders=tuple(mapped), errors=tuple(errors))

    def order_get(self, order_ids: Sequence[str]) -> OrderPage:
        found, errors = [], []
        for order_id in order_ids:
            if not RESOURCE_ID.fullmatch(order_id):
                errors.append(RecordError(order_id, "not a WooCommerce order id"))
                continue
            try:
                found.append(self.client.call("GET", f"{API}/orders/{order_id}", operation="order_get"))
            except (ChannelRejected, ChannelPayloadError) as exc:
                errors.append(RecordError(order_id, f"unreadable order: {exc}"))
        page = self._orders_page(found)
        return OrderPage(orders=page.orders, errors=(*errors, *page.errors))

    # Orders by webhook (contract/webhook_delivery.json)

    def webhook_hint(self, headers: Mapping[str, str], body: bytes) -> WebhookHint:
        secret = str(self.credentials.load().get(WEBHOOK_SECRET) or "")
        try:
            delivery = webhook_delivery(headers, body, secret)
        except ValueError as exc:
            raise WebhookRefused(f"WooCommerce webhook refused: {exc}") from None
        return WebhookHint(order_ids=() if delivery.is_ping else (delivery.order_id,), merchant=self.shop_host,
                           topic=delivery.topic)

    def _webhook_secret(self) -> str:
        """The secret the hub signs its webhooks with: made once, kept with the channel's credentials."""
        secret = str(self.credentials.load().get(WEBHOOK_SECRET) or "")
        if not secret:
            secret = secrets.token_urlsafe(32)
            self.credentials.save({WEBHOOK_SECRET: secret})
        return secret

    def _our_webhooks(self) -> list[dict[str, Any]]:
        ours = []
        for page in self._pages(f"{API}/webhooks", operation="webhooks_list", params={"status": "all"}):
            ours += [hook for hook in page.items if isinstance(hook, dict) and hook.get("topic") in WEBHOOK_TOPICS
                     and str(hook.get("name") or "").startswith(WEBHOOK_NAME)
                     and RESOURCE_ID.fullmatch(str(hook.get("id")))]
        return ours

    def webhooks_subscribe(self, endpoint_url: str) -> list[str]:
        secret = self._webhook_secret()
        existing = self._our_webhooks()
        ids = []
        for topic in WEBHOOK_TOPICS:
            body = {"name": f"{WEBHOOK_NAME} ({topic})", "topic": topic, "delivery_url": endpoint_url,
                    "status": "active", "secret": secret}
            ours = sorted((hook for hook in existing if hook["topic"] == topic), key=lambda hook: (
                hook.get("delivery_url") != endpoint_url, hook.get("status") != "active"))
            if not ours:
                created = self.client.call("POST", f"{API}/webhooks", operation="webhook_create", body=body)
                ids.append(str(created.get("id")) if isinstance(created, dict) else "")
                continue
            kept, *copies = ours
            # Sent again each time: the secret cannot be read back, and a webhook disabled after failed
            # deliveries starts again once active.
            self.client.call("PUT", f"{API}/webhooks/{kept['id']}", operation="webhook_update", body=body)
            ids.append(str(kept["id"]))
            for copy in copies:
                self._unsubscribe(copy["id"])
        return ids

    def webhooks_unsubscribe(self) -> None:
        for hook in self._our_webhooks():
            self._unsubscribe(hook["id"])

    def _unsubscribe(self, webhook_id: object) -> None:
        try:
            self.client.call("DELETE", f"{API}/webhooks/{webhook_id}", operation="webhook_delete",
                             params={"force": "true"})
        except ChannelRejected:
            # Only an unknown id is refused (404): that webhook is gone already.
            return

    # Despatch and cancellation

    def _tracking_route(self) -> object | None:
        """The Shipment Tracking extension's providers where the shop has its route; None where it has not."""
        if not self._tracking_checked:
            try:
                self._tracking_providers = self.client.call(
                    "GET", f"{TRACKING_API}/shipment-trackings/providers", operation="tracking_providers_list")
            except ChannelRejected:
                self._tracking_providers = None
            self._tracking_checked = True
        return self._tracking_providers

    def confirm_despatch(self, order: OrderRef, shipment: Shipment) -> None:
        order_id = _order_id(order)
        if shipment.tracking_number or shipment.carrier:
            providers = self._tracking_route() if shipment.tracking_number else None
            if providers is not None:
                provider = tracking_provider(providers, shipment.carrier)
                tracking: dict[str, str] = {"tracking_number": shipment.tracking_number}
                if provider:
                    tracking["tracking_provider"] = provider
                else:
                    tracking["custom_tracking_provider"] = shipment.carrier or "Carrier"
                    if shipment.tracking_url:
                        tracking["custom_tracking_link"] = shipment.tracking_url
                if shipment.shipped_at is not None:
                    tracking["date_shipped"] = shipment.shipped_at.date().isoformat()
                self.client.call("POST", f"{TRACKING_API}/orders/{order_id}/shipment-trackings",
                                 operation="tracking_create", body=tracking)
            note = despatch_note(carrier=shipment.carrier, tracking_number=shipment.tracking_number,
                                 tracking_url=shipment.tracking_url)
            self._note(order_id, note)
        self._set_status(order_id, shipment.channel_status or DEFAULT_SHIPPED_STATUS)

    def cancel_order(self, order: OrderRef, reason: str) -> None:
        order_id = _order_id(order)
        # The note first, so it is on the order when the status change tells anyone.
        self._note(order_id, f"Your order has been cancelled: {reason}" if reason.strip()
                   else "Your order has been cancelled.")
        self._set_status(order_id, order.channel_status or DEFAULT_CANCELLED_STATUS)

    def _note(self, order_id: str, note: str) -> None:
        self.client.call("POST", f"{API}/orders/{order_id}/notes", operation="order_note_create",
                         body={"note": note, "customer_note": True})

    def _set_status(self, order_id: str, status: str) -> None:
        self.client.call("PUT", f"{API}/orders/{order_id}", operation="order_update", body={"status": status})


def _order_id(order: OrderRef) -> str:
    if not RESOURCE_ID.fullmatch(order.channel_order_id):
        raise ChannelRejected(f"{order.channel_order_id!r} is not a WooCommerce order id")
    return order.channel_order_id
