"""Shopify: the GraphQL Admin API 2026-04 (contract/operations.graphql against contract/admin_2026-04.graphql).

Stock goes to one Shopify location, the channel's (its number in Channel location; empty: the shop's first
active location that fulfils online orders). Every quantity is a compare-and-set: `changeFromQuantity` is what
the hub last saw there, so the hub never overwrites a quantity it has not seen; a stale one is read, recorded as
drift and set once more to the hub's quantity (the hub is the source of truth, seed 003). Each push carries an
idempotency key derived from its own content, so a push retried after a lost answer is applied once.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, ClassVar
from urllib.parse import urlsplit

from channels.connectors.base import (
    Carrier,
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
    WebhookUnsigned,
)
from channels.connectors.http import token_pages
from channels.connectors.shopify import mapper
from channels.connectors.shopify.client import RATE_LIMITS, ShopifyClient
from channels.connectors.values import RECORD_ERRORS

LISTING_PAGE = 100
ORDER_PAGE = 5
# Lines read with each order of a page; an order with more is read again alone with up to ORDER_LINES_ALONE.
ORDER_LINES = 20
ORDER_LINES_ALONE = 100
# inventorySetQuantities takes at most 250 quantities (Shopify caps every array input at 250).
MAX_QUANTITIES = 250
STALE = "CHANGE_FROM_QUANTITY_STALE"
OPEN_FULFILLMENT_ORDERS = ("OPEN", "IN_PROGRESS")
# Shopify's own names for the carriers it links tracking numbers for (FulfillmentTrackingInput.company); any
# other carrier is sent under its own name with the tracking URL.
CARRIERS = tuple(Carrier(name, name) for name in (
    "4PX", "Amazon Logistics UK", "Australia Post", "Canada Post", "Chronopost", "Colissimo", "DHL eCommerce",
    "DHL Express", "DPD", "DPD UK", "Deutsche Post", "Evri", "FedEx", "GLS", "La Poste", "Parcelforce", "PostNL",
    "Royal Mail", "TNT", "UPS", "USPS", "Yodel",
))
# OrderCancelReason
CANCELLATION_REASONS: Mapping[str, str] = {
    "CUSTOMER": "The customer wanted to cancel the order", "DECLINED": "Payment was declined",
    "FRAUD": "The order was fraudulent", "INVENTORY": "There was insufficient inventory",
    "STAFF": "Staff made an error", "OTHER": "The order was cancelled for an unlisted reason",
}


class ShopifyConnector(Connector):
    kind = "shopify"
    label = "Shopify"
    # The app's own client id and secret (Dev Dashboard → the app → Settings): they obtain each access token and
    # the secret checks the webhooks' signatures.
    credential_fields = (("client_id", "Client id"), ("client_secret", "Client secret"))
    account_fields = ("api_base_url", "channel_location_id")
    default_urls: ClassVar[Mapping[str, str]] = {"api_base_url": "https://your-shop.myshopify.com"}
    # Each shop is its own host under myshopify.com.
    allowed_hosts: ClassVar[Mapping[str, tuple[str, ...]]] = {"api_base_url": ("*.myshopify.com",)}
    despatch_needs_tracking_number = False
    carriers = CARRIERS
    cancellation_reasons = CANCELLATION_REASONS
    supports_price_push = True
    compares_channel_quantity = True
    max_batch_size = MAX_QUANTITIES
    rate_limits: ClassVar[Mapping[str, RateLimit]] = RATE_LIMITS
    watermark_policy = WatermarkPolicy.LATEST_ORDER
    # Shopify meters points, not calls (the client keeps to them): orders come by webhook where the hub has a public
    # URL, and this poll is the safety net, and the only way in without one.
    order_download_operation = ""
    unmetered_order_download_seconds = 15
    receives_order_webhooks = True
    # Shopify has no handling time per variant.
    unsupported_settings = frozenset({"latency_days", "product_based_latency", "latency_property_name"})
    setting_help: ClassVar[Mapping[str, str]] = {
        "send_despatch_notes": "Shopify emails the buyer the despatch with its tracking number when the order is "
        "processed here (notifyCustomer); unticked, the order is marked fulfilled without a notification.",
        "use_channel_tax": "Use the tax Shopify calculated for each line; unticked, the hub's tax rates apply.",
        "send_cancellation_notes": "Cancel the order on Shopify too (restocked, not refunded) when it is cancelled "
        "here, with the reason chosen.",
    }

    def __init__(self, config: ConnectorConfig, credentials: CredentialStore, limiter: RateLimiter | None = None
                 ) -> None:
        super().__init__(config, credentials, limiter)
        # Looked up at each pause, so that a test can replace the connector's `sleep` once it is built.
        self.sleep = time.sleep
        self.client = ShopifyClient(config, credentials, self.limiter, sleep=lambda seconds: self.sleep(seconds))
        self._location: str | None = None

    # Connection

    def test_connection(self) -> ConnectionResult:
        shop = self.client.query("ShopInformation")["shop"]
        plan = (shop.get("plan") or {}).get("displayName") or "unknown"
        location = self.location()
        names = ", ".join(f"{node['name']} ({mapper.gid_number(node['id'], 'Location')})" for node in self.locations())
        return ConnectionResult(True, f"Connected to Shopify shop {shop['name']} ({plan} plan). Locations: {names}; "
                                      f"stock goes to location {location}.")

    def reauthorise(self, *, authorization_code: str = "", redirect_uri: str = "") -> ConnectionResult:
        if authorization_code:
            raise ChannelRejected("Shopify takes no authorisation code: the app's client id and secret obtain each "
                                  "token. Leave the code empty, or type a new client secret in the account.")
        self.client.renew_token()
        return ConnectionResult(True, "The client id and secret work: Shopify issued a new access token (24 hours).")

    def locations(self) -> list[dict[str, Any]]:
        """The shop's locations, for the config page (first 50)."""
        return list(self.client.query("Locations", {"first": 50})["locations"]["nodes"])

    def location(self) -> str:
        """The Shopify location number stock goes to: the channel's, else the first active one for online orders."""
        if self._location is None:
            chosen = str(self.config.extra.get("channel_location_id") or "").strip()
            if chosen:
                if not mapper.NUMBER.match(chosen):
                    raise ChannelRejected(f"Shopify: the channel location {chosen!r} is not a location number")
                self._location = chosen
            else:
                found = [n for n in self.locations() if n.get("isActive") and n.get("fulfillsOnlineOrders")]
                if not found:
                    raise ChannelRejected("Shopify: the shop has no active location for online orders")
                self._location = mapper.gid_number(found[0]["id"], "Location")
        return self._location

    def order_statuses(self) -> list[str]:
        return list(mapper.ORDER_STATUSES)

    has_channel_locations = True

    def channel_locations(self) -> list[tuple[str, str]]:
        return [(mapper.gid_number(node["id"], "Location"), str(node["name"])) for node in self.locations()
                if node.get("isActive")]

    # Listings

    def fetch_listings(self) -> Iterator[ListingPage]:
        location = mapper.gid("Location", self.location())
        done = 0

        def fetch(cursor: str) -> tuple[ListingPage, str]:
            nonlocal done
            data = self.client.query("ProductVariants", {"first": LISTING_PAGE, "after": cursor or None,
                                                         "locationId": location})
            variants = data["productVariants"]
            listings, errors = mapper.listings_from_variants(variants["nodes"])
            done += len(variants["nodes"])
            total = max(int((data.get("productVariantsCount") or {}).get("count") or 0), done)
            info = variants["pageInfo"]
            return (ListingPage(tuple(listings), done=done, total=total, errors=tuple(errors)),
                    info["endCursor"] if info.get("hasNextPage") else "")

        return token_pages(fetch)

    # Stock and price

    def push_listings(self, updates: Sequence[StockUpdate]) -> list[PushResult]:
        results: dict[str, PushResult] = {}
        planned: list[tuple[StockUpdate, str]] = []
        for update in updates:
            try:
                _, _, item = mapper.parse_external_id(update.external_id)
            except ValueError:
                results[update.channel_sku] = PushResult(
                    update.channel_sku, False, "No Shopify variant for this listing: download the listings first.")
                continue
            planned.append((update, item))
        for start in range(0, len(planned), MAX_QUANTITIES):
            results.update(self._set_quantities(planned[start:start + MAX_QUANTITIES]))
        priced = [(update, item) for update, item in planned if update.price is not None
                  and results.get(update.channel_sku, PushResult("", True)).accepted]
        results.update(self._set_prices([update for update, _ in priced]))
        return [results[update.channel_sku] for update in updates]

    def _send_quantities(self, batch: Sequence[tuple[StockUpdate, str, int | None]]) -> list[dict[str, Any]]:
        payload = mapper.set_quantities_input(
            [(item, max(0, update.quantity), change_from) for update, item, change_from in batch], self.location())
        seen_at = [update.channel_quantity_seen_at.isoformat() if update.channel_quantity_seen_at else ""
                   for update, _, _ in batch]
        data = self.client.query("InventorySetQuantities", {
            "input": payload, "idempotencyKey": mapper.idempotency_key(self.config.channel_id, payload, seen_at)})
        answer = data.get("inventorySetQuantities")
        if not isinstance(answer, dict):
            raise ChannelPayloadError("Shopify inventorySetQuantities: no payload in the answer")
        return [e for e in answer.get("userErrors") or [] if isinstance(e, dict)]

    def _set_quantities(self, planned: Sequence[tuple[StockUpdate, str]]) -> dict[str, PushResult]:
        """One inventorySetQuantities for the batch. Shopify applies all of it or none: a stale quantity is read
        and the batch sent again once, with what the location holds as the value seen."""
        # A quantity the hub has never seen is read first: the hub overwrites only what it has seen.
        unseen = [item for update, item in planned if update.channel_quantity is None]
        held = self._available(unseen) if unseen else {}
        batch = [(update, item, held.get(item) if update.channel_quantity is None else update.channel_quantity)
                 for update, item in planned]
        results: dict[str, PushResult] = {}
        found: dict[str, int | None] = {}
        for attempt in range(2):
            if not batch:
                break
            errors = self._send_quantities(batch)
            if not errors:
                for update, _, _ in batch:
                    results[update.channel_sku] = PushResult(
                        update.channel_sku, True, channel_quantity_found=found.get(update.channel_sku))
                break
            stale, refused = set(), {}
            for error in errors:
                index = mapper.user_error_index(error)
                if index is None or index >= len(batch):
                    # About the whole input: nothing of it was applied.
                    message = f"Shopify refused the stock update: {error.get('message', '')}"
                    refusals = {u.channel_sku: PushResult(u.channel_sku, False, message) for u, _, _ in batch}
                    return {**results, **refusals}
                if error.get("code") == STALE and attempt == 0:
                    stale.add(index)
                else:
                    refused[index] = str(error.get("message") or error.get("code") or "refused")
            for index, message in refused.items():
                update = batch[index][0]
                results[update.channel_sku] = PushResult(update.channel_sku, False, f"Shopify: {message}")
            current = self._available([batch[index][1] for index in stale]) if stale else {}
            retried = []
            for index, (update, item, change_from) in enumerate(batch):
                if index in refused:
                    continue
                if index in stale:
                    found[update.channel_sku] = current.get(item)
                    change_from = current.get(item)
                retried.append((update, item, change_from))
            batch = retried
            if attempt == 1 and batch:
                for update, _, _ in batch:
                    results.setdefault(update.channel_sku, PushResult(
                        update.channel_sku, False, "Shopify's quantity changed again while the hub set it; the next "
                        "push tries again."))
        return results

    def _available(self, items: Sequence[str]) -> dict[str, int | None]:
        data = self.client.query("InventoryLevels", {"first": len(items), "query": mapper.levels_query(items),
                                                     "locationId": mapper.gid("Location", self.location())})
        return mapper.levels_from_items(data["inventoryItems"]["nodes"])

    def _set_prices(self, updates: Sequence[StockUpdate]) -> dict[str, PushResult]:
        by_product: dict[str, list[StockUpdate]] = {}
        for update in updates:
            product, _, _ = mapper.parse_external_id(update.external_id)
            by_product.setdefault(product, []).append(update)
        results: dict[str, PushResult] = {}
        for product, priced in by_product.items():
            variants = [{"id": mapper.gid("ProductVariant", mapper.parse_external_id(u.external_id)[1]),
                         "price": str(u.price)} for u in priced]
            try:
                data = self.client.query("ProductVariantsBulkUpdate", {
                    "productId": mapper.gid("Product", product), "variants": variants})
            except ChannelRejected as exc:
                results.update({u.channel_sku: PushResult(u.channel_sku, False, str(exc)) for u in priced})
                continue
            errors = (data.get("productVariantsBulkUpdate") or {}).get("userErrors") or []
            if errors:
                message = "Shopify refused the price: " + "; ".join(str(e.get("message")) for e in errors)
                results.update({u.channel_sku: PushResult(u.channel_sku, False, message) for u in priced})
        return results

    # Orders

    def fetch_orders(self, since: datetime, until: datetime | None = None) -> Iterator[OrderPage]:
        query = mapper.orders_query(since, until)

        def fetch(cursor: str) -> tuple[OrderPage, str]:
            data = self.client.query("Orders", {"first": ORDER_PAGE, "after": cursor or None, "query": query,
                                                "lines": ORDER_LINES})
            orders = data["orders"]
            info = orders["pageInfo"]
            return self._orders_page(orders["nodes"]), info["endCursor"] if info.get("hasNextPage") else ""

        return token_pages(fetch)

    def _orders_page(self, nodes: Sequence[Any]) -> OrderPage:
        mapped, errors = [], []
        for node in nodes:
            record_id = str(node.get("id") or "(no order id)") if isinstance(node, dict) else "(not an object)"
            try:
                if node["lineItems"]["pageInfo"]["hasNextPage"]:
                    node = self._order_node(mapper.gid_number(node["id"], "Order"))
                mapped.append(mapper.order_from_node(node))
            except (ChannelRejected, ChannelPayloadError, *RECORD_ERRORS) as exc:
                errors.append(RecordError(record_id, f"unreadable order: {type(exc).__name__} {exc}"))
        return OrderPage(orders=tuple(mapped), errors=tuple(errors))

    def _order_node(self, number: str) -> dict[str, Any]:
        node = self.client.query("Order", {"id": mapper.gid("Order", number), "lines": ORDER_LINES_ALONE})["order"]
        if not isinstance(node, dict):
            raise ChannelRejected(f"Shopify has no order {number}")
        if node["lineItems"]["pageInfo"]["hasNextPage"]:
            raise ChannelPayloadError(f"the order has more than {ORDER_LINES_ALONE} lines, more than the hub reads")
        return node

    def order_get(self, order_ids: Sequence[str]) -> OrderPage:
        found, errors = [], []
        for number in order_ids:
            if not mapper.NUMBER.match(number):
                errors.append(RecordError(number, "not a Shopify order number"))
                continue
            try:
                found.append(mapper.order_from_node(self._order_node(number)))
            except (ChannelRejected, ChannelPayloadError, *RECORD_ERRORS) as exc:
                errors.append(RecordError(number, f"unreadable order: {exc}"))
        return OrderPage(orders=tuple(found), errors=tuple(errors))

    # Orders by webhook

    def shop_domain(self) -> str:
        return (urlsplit(self.config.api_base_url).hostname or "").lower()

    def webhook_hint(self, headers: Mapping[str, str], body: bytes) -> WebhookHint:
        secret = self.credentials.load().get("client_secret", "")
        if not mapper.webhook_signed(secret, body, headers.get("X-Shopify-Hmac-Sha256", "")):
            raise WebhookUnsigned("Shopify webhook refused: its X-Shopify-Hmac-Sha256 signature is missing or wrong")
        topic = headers.get("X-Shopify-Topic", "")
        if topic not in mapper.WEBHOOK_TOPICS.values():
            raise WebhookRefused(f"Shopify webhook refused: topic {topic[:40]!r} is not one the hub subscribes to")
        # A shop's API host is its myshopify.com domain; a sandbox or staging host (the settings' extra hosts) names
        # none, and the signature alone vouches for the delivery there.
        domain = self.shop_domain()
        if domain.endswith(".myshopify.com") and headers.get("X-Shopify-Shop-Domain", "").lower() != domain:
            raise WebhookRefused("Shopify webhook refused: it names another shop than this channel's")
        try:
            number = mapper.webhook_order_id(body)
        except ValueError as exc:
            raise WebhookRefused(f"Shopify webhook refused: {exc}") from None
        return WebhookHint(order_ids=(number,), merchant=self.shop_domain(), topic=topic)

    def _subscriptions(self) -> list[dict[str, Any]]:
        nodes = self.client.query("WebhookSubscriptions", {"first": 100})["webhookSubscriptions"]["nodes"]
        return [node for node in nodes if isinstance(node, dict) and node.get("topic") in mapper.WEBHOOK_TOPICS]

    def webhooks_subscribe(self, endpoint_url: str) -> list[str]:
        existing = self._subscriptions()
        for topic in mapper.WEBHOOK_TOPICS:
            ours = [node for node in existing if node["topic"] == topic]
            kept = [node for node in ours if node.get("uri") == endpoint_url][:1]
            for node in ours:
                if node not in kept:
                    self._unsubscribe(node["id"])
            if not kept:
                data = self.client.query("WebhookSubscriptionCreate", {
                    "topic": topic, "webhookSubscription": {"uri": endpoint_url, "format": "JSON"}})
                errors = data["webhookSubscriptionCreate"]["userErrors"]
                if errors:
                    raise ChannelRejected("Shopify webhookSubscriptionCreate: " + "; ".join(
                        str(e.get("message")) for e in errors))
        return [node["id"] for node in self._subscriptions() if node.get("uri") == endpoint_url]

    def webhooks_unsubscribe(self) -> None:
        for node in self._subscriptions():
            self._unsubscribe(node["id"])

    def _unsubscribe(self, subscription_id: str) -> None:
        self.client.query("WebhookSubscriptionDelete", {"id": subscription_id})

    # Despatch and cancellation

    def confirm_despatch(self, order: OrderRef, shipment: Shipment) -> None:
        data = self.client.query("FulfillmentOrders", {"id": mapper.gid("Order", order.channel_order_id)})
        if not isinstance(data.get("order"), dict):
            raise ChannelRejected(f"Shopify has no order {order.channel_order_id}")
        open_orders = [node["id"] for node in data["order"]["fulfillmentOrders"]["nodes"]
                       if node.get("status") in OPEN_FULFILLMENT_ORDERS]
        if not open_orders:
            # Fulfilled already (on Shopify, or by an earlier despatch whose answer was lost): nothing left to ship.
            return
        carrier = self.carrier_for(shipment.carrier)
        tracking = {"company": carrier.code if carrier else shipment.carrier, "number": shipment.tracking_number,
                    "url": shipment.tracking_url}
        fulfillment = {
            "lineItemsByFulfillmentOrder": [{"fulfillmentOrderId": node} for node in open_orders],
            # "Send despatch notes" off: the despatch goes without tracking and without a notification.
            "notifyCustomer": bool(shipment.tracking_number),
        }
        if shipment.tracking_number:
            fulfillment["trackingInfo"] = {key: value for key, value in tracking.items() if value}
        result = self.client.query("FulfillmentCreate", {"fulfillment": fulfillment})["fulfillmentCreate"]
        if result.get("userErrors"):
            raise ChannelRejected("Shopify fulfillmentCreate: " + "; ".join(
                str(e.get("message")) for e in result["userErrors"]))

    def cancel_order(self, order: OrderRef, reason: str) -> None:
        code = reason if reason in CANCELLATION_REASONS else "OTHER"
        result = self.client.query("OrderCancel", {
            "orderId": mapper.gid("Order", order.channel_order_id), "reason": code, "notifyCustomer": True,
            "staffNote": None if reason in CANCELLATION_REASONS else reason[:255]})["orderCancel"]
        if result.get("orderCancelUserErrors"):
            raise ChannelRejected("Shopify orderCancel: " + "; ".join(
                str(e.get("message")) for e in result["orderCancelUserErrors"]))
