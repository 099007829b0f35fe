"""Rakuten France (formerly PriceMinister) web services: sales_ws and stock_ws, XML over HTTP.

The login and token travel in the query string (`login`, `pwd`), as the service requires; the HTTP
client redacts them from every message. XML is parsed with the standard library after refusing any
DOCTYPE or ENTITY declaration, which is all an entity-expansion or external-entity attack can use.
"""

from __future__ import annotations

import re
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import ClassVar

from channels.connectors.base import (
    ChannelAuthError,
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
from channels.connectors.values import (
    RECORD_ERRORS,
    iso_z,
    optional_decimal,
    optional_int,
    parse_datetime,
    parse_decimal,
    parse_int,
)

VERSION = "2017-08-07"
SALE_STATUSES = ["REQUESTED", "ACCEPTED", "SHIPPED", "CANCELLED", "REFUSED"]
CANCELLED_STATUSES = {"CANCELLED", "REFUSED"}
FORBIDDEN_XML = re.compile(r"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)
POLL_FIRST_DELAY = 2.0
POLL_MAX_DELAY = 30.0
POLL_GIVE_UP_AFTER = 300.0


# --- Mappers (pure) -------------------------------------------------------------------------------


def parse_xml(content: bytes) -> ET.Element:
    """The document's root, refusing what could expand entities or read files."""
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ChannelPayloadError("Rakuten: the answer is not UTF-8 XML") from exc
    if "\x00" in text or FORBIDDEN_XML.search(text):
        raise ChannelPayloadError("Rakuten: refused an XML answer carrying a DOCTYPE or ENTITY declaration")
    try:
        return ET.fromstring(content)
    except ET.ParseError as exc:
        raise ChannelPayloadError(f"Rakuten: the answer is not well-formed XML ({exc})") from exc


def raise_for_error(root: ET.Element, *, redact: Callable[[str], str]) -> None:
    """Rakuten answers errors with HTTP 200 and an <error> root. Its message may echo the token."""
    if root.tag != "error":
        return
    code = redact((root.findtext("code") or "").strip())
    message = redact(" ".join((root.findtext("message") or "").split())[:300])
    if code == "InvalidCredentials":
        raise ChannelAuthError(f"Rakuten refused the login or token ({message or code}); enter a new token")
    raise ChannelRejected(f"Rakuten: {code}: {message}" if message else f"Rakuten: {code or 'error'}")


def _text(element: ET.Element, path: str) -> str:
    return (element.findtext(path) or "").strip()


def sale_from_rakuten(sale: ET.Element) -> ExternalOrder:
    """One <sale>. Raises one of RECORD_ERRORS when the record does not parse."""
    purchase_id = _text(sale, "purchaseid")
    if not purchase_id:
        raise ValueError("the sale has no purchaseid")
    items = []
    for item in sale.iterfind("items/item"):
        line_id = _text(item, "itemid")
        if not line_id:
            raise ValueError("an item has no itemid")
        items.append(ExternalOrderItem(
            line_id=line_id,
            sku=_text(item, "sku"),
            title=_text(item, "headline"),
            quantity=parse_int(_text(item, "quantity") or "1"),
            unit_price=parse_decimal(_text(item, "price")),
            external_product_id=_text(item, "advertid"),
        ))
    status = _text(sale, "status")
    subtotal = sum((item.unit_price * item.quantity for item in items), Decimal("0"))
    shipping = optional_decimal(_text(sale, "shippingcost")) or Decimal("0")
    address = sale.find("deliveryaddress")
    address = address if address is not None else ET.Element("deliveryaddress")
    name = " ".join(p for p in (_text(address, "firstname"), _text(address, "lastname")) if p)
    purchased = parse_datetime(_text(sale, "purchasedate"))
    return ExternalOrder(
        channel_order_id=purchase_id,
        channel_status=status,
        is_paid=_text(sale, "ispaid") in ("1", "true", "True"),
        is_cancelled=status in CANCELLED_STATUSES,
        created_at=purchased,
        updated_at=parse_datetime(_text(sale, "lastupdate")) if _text(sale, "lastupdate") else purchased,
        items=tuple(items),
        currency=_text(sale, "currency") or None,
        buyer_name=name or _text(sale, "buyer/login"),
        buyer_email=_text(sale, "buyer/email") or None,
        shipping_address=ExternalAddress(
            name=name,
            line1=_text(address, "address1"),
            line2=_text(address, "address2"),
            city=_text(address, "city"),
            postcode=_text(address, "zipcode"),
            country=_text(address, "country"),
            phone=_text(address, "phonenumber"),
        ),
        shipping_tag=_text(sale, "shippingtype"),
        subtotal=subtotal,
        shipping_cost=shipping,
        total=subtotal + shipping,
    )


def sales_page(root: ET.Element) -> tuple[OrderPage, str]:
    orders, errors = [], []
    for sale in root.iterfind("response/sales/sale"):
        try:
            orders.append(sale_from_rakuten(sale))
        except RECORD_ERRORS as exc:
            errors.append(RecordError(_text(sale, "purchaseid") or "(no purchase id)", f"unreadable sale: {exc}"))
    return OrderPage(orders=tuple(orders), errors=tuple(errors)), _text(root, "response/nexttoken")


def requested_items(root: ET.Element) -> list[tuple[str, str]]:
    """(purchase id, item id) of every item still waiting for the seller to accept it."""
    waiting = []
    for sale in root.iterfind("response/sales/sale"):
        for item in sale.iterfind("items/item"):
            status = _text(item, "itemstatus") or _text(sale, "status")
            if status == "REQUESTED" and _text(item, "itemid"):
                waiting.append((_text(sale, "purchaseid"), _text(item, "itemid")))
    return waiting


def listing_from_advert(advert: ET.Element) -> ExternalListing:
    sku = _text(advert, "sku")
    if not sku:
        raise ValueError("the advert has no sku")
    return ExternalListing(
        channel_sku=sku,
        external_id=_text(advert, "advertid"),
        title=_text(advert, "title"),
        quantity=optional_int(_text(advert, "quantity")),
        price=optional_decimal(_text(advert, "price")),
    )


def stock_file(updates: Sequence[StockUpdate]) -> tuple[bytes, list[PushResult]]:
    """The import file (`sku;quantity;price` lines) and the updates refused before sending."""
    lines, refused = [], []
    for update in updates:
        if any(ch in update.channel_sku for ch in ";\r\n"):
            refused.append(PushResult(update.channel_sku, accepted=False,
                                      message="A Rakuten SKU cannot contain ';' or a line break."))
            continue
        price = "" if update.price is None else f"{update.price:.2f}"
        lines.append(f"{update.channel_sku};{max(0, update.quantity)};{price}")
    return ("\n".join(lines) + "\n").encode("utf-8"), refused


def push_results_from_report(updates: Sequence[StockUpdate], root: ET.Element) -> list[PushResult]:
    outcome = {}
    for product in root.iterfind("response/product"):
        sku = _text(product, "sku")
        ok = _text(product, "status").upper() == "OK"
        outcome[sku] = PushResult(sku, accepted=ok, message="" if ok else _text(product, "error") or "refused")
    return [
        outcome.get(update.channel_sku)
        or PushResult(update.channel_sku, accepted=False, message="Rakuten's import report does not mention it.")
        for update in updates
    ]


# --- Connector --------------------------------------------------------------------------------------


class RakutenConnector(Connector):
    kind = "rakuten"
    label = "Rakuten"
    credential_fields = (("token", "Web services token"),)
    account_fields = ("seller_id", "api_base_url")
    default_urls: ClassVar[Mapping[str, str]] = {"api_base_url": "https://ws.fr.shopping.rakuten.com"}
    allowed_hosts: ClassVar[Mapping[str, tuple[str, ...]]] = {"api_base_url": ("ws.fr.shopping.rakuten.com",)}
    supports_despatch_notes = False
    max_batch_size = 1000
    watermark_policy = WatermarkPolicy.LATEST_ORDER

    @classmethod
    def channel_defaults(cls) -> dict[str, object]:
        return {"currency": "EUR", "send_despatch_notes": False}
    # Rakuten publishes no figures; these keep well inside what its web services are known to tolerate.
    rate_limits: ClassVar[Mapping[str, RateLimit]] = {
        "getnewsales": RateLimit(0.5, 5),
        "getcurrentsales": RateLimit(1, 10),
        "acceptsale": RateLimit(2, 10),
        "settrackingpackageinfos": RateLimit(2, 10),
        "cancelitem": RateLimit(2, 10),
        "export": RateLimit(1, 10),
        "import": RateLimit(0.1, 3),
        "genericimportreport": RateLimit(1, 10),
    }

    def __init__(
        self, config: ConnectorConfig, credentials: CredentialStore, limiter: RateLimiter | None = None
    ) -> None:
        super().__init__(config, credentials, limiter)
        self.sleep = time.sleep
        self._token = ""
        self.http = HttpClient(
            service="Rakuten",
            base_url=config.api_base_url,
            limiter=self.limiter,
            limits=self.rate_limits,
            bucket_prefix=f"{config.channel_id}",
            secrets=lambda: {self._token},
            sleep=lambda seconds: self.sleep(seconds),
        )

    def _call(self, service: str, action: str, *, params: Mapping[str, str] | None = None,
              method: str = "GET", token: str = "", **kwargs) -> ET.Element:
        if not token:
            self._token = self._token or str(self.credentials.load().get("token") or "")
            token = self._token
        if not token or not self.config.seller_id:
            raise ChannelAuthError("Rakuten needs the seller's login and web services token")
        query = {"action": action, "login": self.config.seller_id, "pwd": token, "version": VERSION, **(params or {})}
        response = self.http.request(method, f"/{service}", operation=action, authenticated=False, params=query,
                                     **kwargs)
        root = parse_xml(response.content)
        raise_for_error(root, redact=self.http.redact)
        return root

    def _ok(self, root: ET.Element, what: str) -> None:
        status = _text(root, "response/status")
        if status.upper() != "OK":
            raise ChannelRejected(f"Rakuten {what}: answered {status or 'nothing'}")

    # Connection

    def test_connection(self, *, token: str = "") -> ConnectionResult:
        root = self._call("sales_ws", "getnewsales", token=token)
        waiting = len(root.findall("response/sales/sale"))
        return ConnectionResult(True, f"Connected to Rakuten France as {self.config.seller_id}: "
                                      f"{waiting} new sale(s) waiting to be accepted.")

    def reauthorise(self, *, authorization_code: str = "") -> ConnectionResult:
        """Rakuten has no OAuth: a new web services token, once it works, replaces the stored one."""
        if not authorization_code:
            return self.test_connection()
        self.http.secrets = lambda: {self._token, authorization_code}
        result = self.test_connection(token=authorization_code)
        self.credentials.save({"token": authorization_code})
        self._token = authorization_code
        return ConnectionResult(True, f"The new token works and is saved. {result.message}")

    def order_statuses(self) -> list[str]:
        return list(SALE_STATUSES)

    # Orders

    def _accept_new_sales(self) -> list[RecordError]:
        """Accept every REQUESTED item, as the seller would in Rakuten's back office, so the sale goes on."""
        errors = []

        def fetch(token: str) -> tuple[ET.Element, str]:
            root = self._call("sales_ws", "getnewsales", params={"nexttoken": token} if token else None)
            return root, _text(root, "response/nexttoken")

        for root in token_pages(fetch):
            for purchase_id, item_id in requested_items(root):
                try:
                    self._ok(self._call("sales_ws", "acceptsale", params={"itemid": item_id}), "acceptsale")
                except (ChannelRejected, ChannelPayloadError) as exc:
                    errors.append(RecordError(purchase_id or item_id, f"could not accept item {item_id}: {exc}"))
        return errors

    def fetch_orders(self, since: datetime, until: datetime | None = None) -> Iterator[OrderPage]:
        accept_errors = tuple(self._accept_new_sales())

        def fetch(token: str) -> tuple[OrderPage, str]:
            params = {"purchasedate": iso_z(since)} | ({"nexttoken": token} if token else {})
            return sales_page(self._call("sales_ws", "getcurrentsales", params=params))

        for number, page in enumerate(token_pages(fetch)):
            if number == 0 and accept_errors:
                page = OrderPage(orders=page.orders, errors=page.errors + accept_errors)
            yield page

    # Listings

    def fetch_listings(self) -> Iterator[ListingPage]:
        done = 0

        def fetch(token: str) -> tuple[ListingPage, str]:
            nonlocal done
            root = self._call("stock_ws", "export", params={"nexttoken": token} if token else None)
            listings, errors = [], []
            adverts = root.findall("response/advert")
            for advert in adverts:
                try:
                    listings.append(listing_from_advert(advert))
                except RECORD_ERRORS as exc:
                    errors.append(RecordError(_text(advert, "advertid") or "(no advert id)", f"unreadable: {exc}"))
            done += len(adverts)
            total = max(optional_int(_text(root, "response/resultcount")) or 0, done)
            page = ListingPage(tuple(listings), done=done, total=total, errors=tuple(errors))
            return page, _text(root, "response/nexttoken")

        return token_pages(fetch)

    def push_listings(self, updates: Sequence[StockUpdate]) -> list[PushResult]:
        content, refused = stock_file(updates)
        sendable = [u for u in updates if u.channel_sku not in {r.channel_sku for r in refused}]
        if not sendable:
            return refused
        root = self._call("stock_ws", "import", method="POST",
                          files={"file": ("stock.csv", content, "text/csv; charset=utf-8")})
        self._ok(root, "stock import")
        import_id = _text(root, "response/importid")
        if not import_id:
            raise ChannelPayloadError("Rakuten stock import: no import id")
        report = self._import_report(import_id)
        return refused + push_results_from_report(sendable, report)

    def _import_report(self, import_id: str) -> ET.Element:
        delay, waited = POLL_FIRST_DELAY, 0.0
        while True:
            root = self._call("stock_ws", "genericimportreport", params={"fileid": import_id})
            status = _text(root, "response/status")
            if status.lower() == "treated":
                return root
            if waited >= POLL_GIVE_UP_AFTER:
                raise ChannelTransientError(f"Rakuten import {import_id}: still {status or 'pending'} "
                                            f"after {waited:.0f} s")
            self.sleep(delay)
            waited += delay
            delay = min(delay * 2, POLL_MAX_DELAY)

    # Despatch and cancellation

    def confirm_despatch(self, order: OrderRef, shipment: Shipment) -> None:
        if not order.lines:
            raise ChannelRejected(f"sale {order.channel_order_id}: Rakuten confirms despatch item by item")
        for line in order.lines:
            params = {
                "itemid": line.line_id,
                "transporter_name": shipment.carrier,
                "tracking_number": shipment.tracking_number,
            }
            if shipment.tracking_url:
                params["tracking_url"] = shipment.tracking_url
            self._ok(self._call("sales_ws", "settrackingpackageinfos", params=params), "settrackingpackageinfos")

    def cancel_order(self, order: OrderRef, reason: str) -> None:
        if not order.lines:
            raise ChannelRejected(f"sale {order.channel_order_id}: Rakuten cancels item by item")
        for line in order.lines:
            root = self._call("sales_ws", "cancelitem", params={"itemid": line.line_id, "comment": reason})
            self._ok(root, "cancelitem")
