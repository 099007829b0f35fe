"""EKM Partner API: OAuth2 with single-use refresh tokens, orders v2, products v1, one quota per shop.

Paths and shapes follow sandbox/README.md. Every call draws from one leaky bucket per app and shop
(40 calls, 2 a second), so the connector has one rate-limit bucket and also slows down when EKM's
X-EKM-RateLimit-Remaining header says the shop's bucket is nearly full (other apps or workers).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, ClassVar

import requests

from channels.connectors.base import (
    ChannelPayloadError,
    ChannelRejected,
    ConnectionResult,
    Connector,
    ConnectorConfig,
    CredentialStore,
    ExternalAddress,
    ExternalListing,
    ExternalOrder,
    ExternalOrderItem,
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
from channels.connectors.http import HttpClient, numbered_pages
from channels.connectors.oauth import AccessTokens, TokenGrant
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

SCOPES = (
    "tempest.orders.read tempest.orders.write tempest.products.read tempest.products.write "
    "tempest.settings.orderstatuses.read tempest.settings.currency.read offline_access"
)
ORDERS_PAGE_LIMIT = 20
PRODUCTS_PAGE_LIMIT = 20
# Below this many calls left in EKM's bucket the connector pauses until the bucket has leaked that much.
LOW_REMAINING = 5
DEFAULT_CANCELLED_STATUS = "CANCELLED"
DEFAULT_DISPATCHED_STATUS = "DISPATCHED"


# --- Mappers (pure) -------------------------------------------------------------------------------


def _name(first: object, last: object) -> str:
    return " ".join(text(part).strip() for part in (first, last) if part and text(part).strip())


def order_item_from_ekm(raw: Mapping[str, Any]) -> ExternalOrderItem:
    quantity = parse_int(raw["quantity"])
    product_id, variant_id = raw.get("product_id"), raw.get("variant_id")
    return ExternalOrderItem(
        line_id=text(raw["id"], "item id"),
        sku=text(raw.get("product_code"), "product_code"),
        title=text(raw.get("product_name"), "product_name"),
        quantity=quantity,
        unit_price=parse_decimal(raw["item_price"]),
        # item_tax is the tax in the whole line (all its units), as Amazon's itemTax; item_price is per unit.
        tax=optional_decimal(raw.get("item_tax")),
        tax_rate=optional_decimal(raw.get("item_tax_rate")),
        external_product_id=listing_external_id(product_id, variant_id) if product_id is not None else "",
    )


def order_from_ekm(payload: Mapping[str, Any], items: Sequence[Mapping[str, Any]]) -> ExternalOrder:
    """One order of /api/v2/orders/search with its /items. Raises one of RECORD_ERRORS when unreadable."""
    order_id = text(payload["id"], "id")
    if not order_id:
        raise ValueError("the order has no id")
    customer = payload.get("customer_details") or {}
    address = payload.get("shipping_address") or {}
    return ExternalOrder(
        channel_order_id=order_id,
        channel_status=text(payload["status"], "status"),
        is_paid=payload.get("payment_status") == "SUCCESS",
        # EKM has no cancelled status of its own: the hub's status mapping decides.
        is_cancelled=False,
        created_at=parse_datetime(payload["order_date"]),
        updated_at=parse_datetime(payload.get("last_updated") or payload["order_date"]),
        items=tuple(order_item_from_ekm(raw) for raw in items),
        currency=None,
        buyer_name=_name(customer.get("first_name"), customer.get("last_name")),
        buyer_email=text(customer.get("email_address"), "email_address") or None,
        shipping_address=ExternalAddress(
            name=_name(address.get("first_name"), address.get("last_name")),
            line1=text(address.get("address_line1"), "address_line1"),
            line2=text(address.get("address_line2"), "address_line2"),
            city=text(address.get("town"), "town"),
            region=text(address.get("county"), "county"),
            postcode=text(address.get("post_code"), "post_code"),
            country=text(address.get("country"), "country"),
            phone=text(address.get("telephone"), "telephone"),
        ),
        shipping_tag=text(payload.get("delivery_method"), "delivery_method"),
        subtotal=optional_decimal(payload.get("sub_total")) or Decimal("0"),
        shipping_cost=optional_decimal(payload.get("total_delivery")) or Decimal("0"),
        tax=optional_decimal(payload.get("total_tax")),
        total=parse_decimal(payload["total_cost"]),
    )


def listing_external_id(product_id: object, variant_id: object = None) -> str:
    return f"{product_id}/{variant_id}" if variant_id not in (None, "") else f"{product_id}"


def parse_external_id(external_id: str) -> tuple[str, str]:
    """(product id, variant id or "") from "55" or "55/7"."""
    product, _, variant = external_id.strip().partition("/")
    if not product.isdigit() or (variant and not variant.isdigit()):
        raise ValueError(f"{external_id!r} is not an EKM product id")
    return product, variant


def listings_from_products(products: Sequence[Mapping[str, Any]]) -> tuple[list[ExternalListing], list[RecordError]]:
    """A product and each of its variants are listings of their own, each with its own SKU and stock."""
    listings, errors = [], []
    for product in products:
        record_id = str(product.get("id", "")) if isinstance(product, dict) else ""
        try:
            variants = product.get("variants") or []
            live = bool(product.get("live", True))
            if product.get("product_code"):
                listings.append(ExternalListing(
                    channel_sku=str(product["product_code"]),
                    external_id=listing_external_id(product["id"]),
                    title=str(product.get("name") or ""),
                    quantity=optional_int(product.get("number_in_stock")),
                    price=optional_decimal(product.get("price")),
                    is_active=live,
                ))
            elif not variants:
                errors.append(RecordError(record_id, "the product has no product code, so it cannot be linked"))
            for variant in variants:
                if not variant.get("product_code"):
                    continue
                listings.append(ExternalListing(
                    channel_sku=str(variant["product_code"]),
                    external_id=listing_external_id(product["id"], variant["id"]),
                    title=str(product.get("name") or ""),
                    quantity=optional_int(variant.get("number_in_stock")),
                    price=optional_decimal(variant.get("price")),
                    is_active=live,
                ))
        except RECORD_ERRORS as exc:
            errors.append(RecordError(record_id or "(no product id)", f"unreadable product: {exc}"))
    return listings, errors


def product_with_price(product: Mapping[str, Any], *, variant_id: str, price: Decimal) -> dict[str, Any]:
    """The full product as EKM wants it back, with the product's or one variant's price changed."""
    updated = dict(product)
    if not variant_id:
        updated["price"] = float(price)
        return updated
    variants = [dict(v) for v in product.get("variants") or []]
    matching = [v for v in variants if str(v.get("id")) == variant_id]
    if not matching:
        raise ValueError(f"variant {variant_id} is not on product {product.get('id')}")
    matching[0]["price"] = float(price)
    updated["variants"] = variants
    return updated


# --- Connector --------------------------------------------------------------------------------------


class EkmConnector(Connector):
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
    despatch_needs_status_mapping = True
    max_batch_size = 50
    watermark_policy = WatermarkPolicy.LATEST_ORDER
    rate_limits: ClassVar[Mapping[str, RateLimit]] = {"api": RateLimit(2, 40)}

    def __init__(
        self, config: ConnectorConfig, credentials: CredentialStore, limiter: RateLimiter | None = None
    ) -> None:
        super().__init__(config, credentials, limiter)
        self.sleep = time.sleep
        self.tokens = AccessTokens(credentials, self._refresh_grant, single_use_refresh=True)
        self.http = HttpClient(
            service="EKM",
            base_url=config.api_base_url,
            limiter=self.limiter,
            limits=self.rate_limits,
            bucket_prefix=f"{config.channel_id}",
            shared_bucket="api",
            secrets=lambda: self.tokens.known_secrets,
            auth=self._auth_headers,
            on_response=self._watch_quota,
            sleep=lambda seconds: self.sleep(seconds),
        )

    # Auth

    def _auth_headers(self, refresh: bool) -> dict[str, str]:
        if refresh:
            self.tokens.renew(stale=self.tokens.held)
        return {"Authorization": f"Bearer {self.tokens.current()}"}

    def _token_call(self, form: dict[str, str]) -> TokenGrant:
        response = self.http.request(
            "POST", self.config.auth_base_url.rstrip("/") + "/connect/token", operation="token",
            authenticated=False, absolute=True, data=form,
        )
        body = self.http.json(response, what="token")
        try:
            return TokenGrant(str(body["access_token"]), int(body.get("expires_in", 3600)),
                              str(body.get("refresh_token") or ""))
        except (KeyError, TypeError, ValueError) as exc:
            raise ChannelPayloadError("EKM token: the answer has no access token") from exc

    def _refresh_grant(self, credentials: dict[str, str]) -> TokenGrant:
        return self._token_call({
            "grant_type": "refresh_token",
            "refresh_token": credentials.get("refresh_token", ""),
            "client_id": credentials.get("client_id", ""),
            "client_secret": credentials.get("client_secret", ""),
            "scope": SCOPES,
        })

    def _watch_quota(self, response: requests.Response, operation: str) -> None:
        try:
            remaining = float(response.headers["X-EKM-RateLimit-Remaining"])
            leak_rate = float(response.headers.get("X-EKM-RateLimit-LeakRate") or 2)
        except (KeyError, ValueError):
            return
        if remaining < LOW_REMAINING and leak_rate > 0:
            key, limit = self.http.bucket(operation)
            if limit is not None:
                self.limiter.hold_off(key, limit, seconds=(LOW_REMAINING - remaining) / leak_rate)

    def reauthorise(self, *, authorization_code: str = "") -> ConnectionResult:
        if not authorization_code:
            self.tokens.renew(stale=self.tokens.held, force=True)
            return ConnectionResult(True, "The stored refresh token works: EKM issued new tokens, which are saved.")
        self.tokens.known_secrets.add(authorization_code)

        def exchange(credentials: dict[str, str]) -> TokenGrant:
            form = {
                "grant_type": "authorization_code",
                "code": authorization_code,
                "client_id": credentials.get("client_id", ""),
                "client_secret": credentials.get("client_secret", ""),
            }
            if credentials.get("redirect_uri"):
                form["redirect_uri"] = credentials["redirect_uri"]
            grant = self._token_call(form)
            if not grant.refresh_token:
                raise ChannelPayloadError("EKM token: no refresh token (is the offline_access scope granted?)")
            return grant

        self.tokens.exchange(exchange)
        return ConnectionResult(True, "Authorised: EKM gave a new refresh token, which is saved.")

    def _data(self, method: str, path: str, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        body = self.http.call_json(method, path, operation=kwargs.pop("operation"), **kwargs)
        if not isinstance(body, dict) or "data" not in body:
            raise ChannelPayloadError(f"EKM {path}: the answer has no data")
        return body["data"], body.get("meta") or {}

    def _write(self, method: str, path: str, *, operation: str, body: Mapping[str, Any]) -> None:
        # Only the status matters: a write's answer may be the wrapper, or nothing at all.
        self.http.request(method, path, operation=operation, json=body)

    # Connection

    def test_connection(self) -> ConnectionResult:
        data, _ = self._data("GET", "/api/v1/settings/shop_information", operation="shop_information")
        if not isinstance(data, dict):
            raise ChannelPayloadError("EKM shop_information: unexpected answer")
        shop = data.get("shop_name") or data.get("domain") or "the shop"
        return ConnectionResult(True, f"Connected to EKM shop {shop}" + (f" ({data['domain']})."
                                                                          if data.get("domain") else "."))

    def order_statuses(self) -> list[str]:
        data, _ = self._data("GET", "/api/v1/settings/orderstatuses", operation="order_statuses")
        return [str(status["name"]) for status in data or [] if isinstance(status, dict) and status.get("name")]

    # Orders

    def fetch_orders(self, since: datetime, until: datetime | None = None) -> Iterator[OrderPage]:
        query = f"last_updated gt '{iso_z(since)}'"
        if until is not None:
            query += f" and last_updated lt '{iso_z(until, round_up=True)}'"

        def fetch(page: int) -> tuple[OrderPage, int]:
            data, meta = self._data("GET", "/api/v2/orders/search", operation="search_orders", params={
                "query": query, "orderby": "last_updated", "page": page, "limit": ORDERS_PAGE_LIMIT,
            })
            if not isinstance(data, list):
                raise ChannelPayloadError("EKM orders search: data is not a list")
            return self._orders_page(data), int(meta.get("pages_total") or 1)

        return numbered_pages(fetch)

    def _orders_page(self, orders: Sequence[Any]) -> OrderPage:
        mapped, errors = [], []
        for raw in orders:
            record_id = str(raw.get("id") or "") if isinstance(raw, dict) else ""
            if not record_id:
                errors.append(RecordError("(no order id)", "unreadable order: it has no id"))
                continue
            try:
                items, _ = self._data("GET", f"/api/v2/orders/{record_id}/items", operation="order_items")
                mapped.append(order_from_ekm(raw, items))
            except (ChannelRejected, ChannelPayloadError, *RECORD_ERRORS) as exc:
                errors.append(RecordError(record_id, f"unreadable order: {type(exc).__name__} {exc}"))
        return OrderPage(orders=tuple(mapped), errors=tuple(errors))

    # Listings

    def fetch_listings(self) -> Iterator[ListingPage]:
        done = 0

        def fetch(page: int) -> tuple[ListingPage, int]:
            nonlocal done
            data, meta = self._data("GET", "/api/v1/products", operation="products",
                                    params={"page": page, "limit": PRODUCTS_PAGE_LIMIT})
            if not isinstance(data, list):
                raise ChannelPayloadError("EKM products: data is not a list")
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
        stock_path = (f"/api/v1/products/{product_id}/variants/{variant_id}/stock" if variant_id
                      else f"/api/v1/products/{product_id}/stock")
        try:
            self._write("PUT", stock_path, operation="stock", body={"stock": max(0, update.quantity)})
            if update.price is not None:
                product, _ = self._data("GET", f"/api/v1/products/{product_id}", operation="product")
                self._write("PUT", f"/api/v1/products/{product_id}", operation="product_update",
                            body=product_with_price(product, variant_id=variant_id, price=update.price))
        except (ChannelRejected, ChannelPayloadError, *RECORD_ERRORS) as exc:
            return PushResult(update.channel_sku, accepted=False, message=str(exc))
        return PushResult(update.channel_sku, accepted=True)

    # Despatch and cancellation

    def confirm_despatch(self, order: OrderRef, shipment: Shipment) -> None:
        if shipment.tracking_number:
            path = f"/api/v2/orders/{order.channel_order_id}/deliveryTracking"
            self._write("PUT", path, operation="tracking", body={
                "delivery_tracking_number": shipment.tracking_number,
                "delivery_tracking_company": shipment.carrier,
                "delivery_tracking_url": shipment.tracking_url,
            })
        self._set_status(order, shipment.channel_status or DEFAULT_DISPATCHED_STATUS)

    def cancel_order(self, order: OrderRef, reason: str) -> None:
        # EKM's status call has no room for a reason; the shop's mapped status says it all.
        self._set_status(order, order.channel_status or DEFAULT_CANCELLED_STATUS)

    def _set_status(self, order: OrderRef, status: str) -> None:
        self._write("PUT", f"/api/v2/orders/{order.channel_order_id}/status", operation="status",
                    body={"status": status, "email_customer": True})
