"""Rakuten's XML answers as documents, and documents as the hub's dataclasses. Pure: no HTTP, no ORM.

`xml_document` is the one conversion from Rakuten's XML to the dict the contract's response schemas describe
(see the notes of contract/*.json); the connector, the sandbox and the tests all read answers through it.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from channels.connectors.base import (
    Carrier,
    ChannelPayloadError,
    ExternalAddress,
    ExternalListing,
    ExternalOrder,
    ExternalOrderItem,
    OrderPage,
    PushResult,
    RecordError,
    Shipment,
    StockUpdate,
    carrier_key,
)
from channels.connectors.values import RECORD_ERRORS, optional_decimal, optional_int, parse_decimal

FORBIDDEN_XML = re.compile(r"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)
# (container, child) pairs whose children are always a list, even of one or none.
LISTS = frozenset({("sales", "sale"), ("items", "item"), ("advertlist", "advert"), ("details", "detail"),
                   ("errorlist", "error")})
LIST_CONTAINERS = frozenset(parent for parent, _ in LISTS)

# Rakuten's carrier list (contract/sales_ws.json, settrackingpackageinfos: the names two public clients share).
CARRIERS = tuple(Carrier(name, name) for name in (
    "4PX", "B2C Europe", "Bpost", "China EMS", "Chronopost", "CNE Express", "Colis Prive", "Colissimo",
    "Courrier Suivi", "Cubyn", "DHL", "DPD", "DPD Germany", "DPD UK", "Fedex", "France Express", "Geodis", "GLS",
    "Hong Kong Post", "Kiala", "Mondial Relay", "PostNL International", "Royal Mail", "S.F. Express",
    "Singapore Post", "So Colissimo", "Swiss Post", "Tatex", "TNT", "UPS", "WeDo Logistics", "Yun Express",
))
OTHER_CARRIER = "Autre"

# Item statuses seen in the public clients (contract notes); the sale takes its live items' status.
AWAITING_ACCEPTANCE = frozenset({"REQUESTED", "TO_CONFIRM"})
ENDED_STATUSES = frozenset({"CANCELLED", "REFUSED"})
ITEM_STATUSES = ("TO_CONFIRM", "REQUESTED", "ACCEPTED", "COMMITTED", "ON_HOLD", "PENDING", "PENDING_CLAIM",
                 "CLAIM", "REMINDED", "CLOSED", "CANCELLED", "REFUSED")

# The column layout of the seller's stock import profile, set up once in Rakuten's back office: no header
# line, cells separated by ';', in this order (contract/stock_ws.json notes).
IMPORT_COLUMNS = ("sku", "price", "quantity")
IMPORT_FINISHED = frozenset({"PROCESSED", "PROCESS_FAILED"})
TRACKING_URL = re.compile(r"^https?://\S+$")


# --- XML to document --------------------------------------------------------------------------------------


class UnreadableXml(ChannelPayloadError, ValueError):
    """An answer that is not XML to read; a ValueError too, as the sandbox's answer check expects."""


def parse_xml(content: bytes) -> ET.Element:
    """The document's root, refusing what could expand entities or read files.

    The declared encoding is honoured (Rakuten has answered ISO-8859-1); the scan for declarations reads the
    bytes as Latin-1, which keeps every ASCII character where it is whatever the encoding.
    """
    scanned = content.decode("latin-1")
    if "\x00" in scanned or FORBIDDEN_XML.search(scanned):
        raise UnreadableXml("Rakuten: refused an XML answer carrying a DOCTYPE or ENTITY declaration")
    try:
        return ET.fromstring(content)
    except ET.ParseError as exc:
        raise UnreadableXml(f"Rakuten: the answer is not well-formed XML ({exc})") from exc


def _tag(element: ET.Element) -> str:
    return element.tag.rsplit("}", 1)[-1]


def _value(element: ET.Element) -> Any:
    tag = _tag(element)
    children = list(element)
    if not children and tag not in LIST_CONTAINERS:
        return (element.text or "").strip()
    grouped: dict[str, list[Any]] = {child: [] for parent, child in LISTS if parent == tag}
    for child in children:
        grouped.setdefault(_tag(child), []).append(_value(child))
    return {name: values if (tag, name) in LISTS or len(values) > 1 else values[0]
            for name, values in grouped.items()}


def xml_document(content: bytes) -> dict[str, Any]:
    """Rakuten's answer as {root tag: value}, by the rules in the contract's notes."""
    root = parse_xml(content)
    return {_tag(root): _value(root)}


# --- Reading documents ---------------------------------------------------------------------------------------


def _get(value: Any, *path: str) -> Any:
    for key in path:
        value = value.get(key) if isinstance(value, Mapping) else None
    return value


def _text(value: Any, *path: str) -> str:
    found = _get(value, *path)
    return found if isinstance(found, str) else ""


def _list(value: Any, *path: str) -> list[Any]:
    found = _get(value, *path)
    return found if isinstance(found, list) else []


def result(document: Mapping[str, Any]) -> Any:
    """What the answer's single root holds (the action's result)."""
    return next(iter(document.values()), None) if len(document) == 1 else None


def response(document: Mapping[str, Any]) -> Mapping[str, Any]:
    found = _get(result(document), "response")
    return found if isinstance(found, Mapping) else {}


def next_token(document: Mapping[str, Any]) -> str:
    """The token of the next page; empty on the last."""
    return _text(response(document), "nexttoken")


def answer_status(document: Mapping[str, Any]) -> str:
    """response/status of a write (acceptsale, settrackingpackageinfos, cancelitem)."""
    return _text(response(document), "status")


@dataclass(frozen=True)
class RakutenError:
    """An errorresponse: Rakuten's refusal of a call."""

    type: str
    code: str
    message: str
    details: tuple[str, ...]

    def describe(self) -> str:
        details = "; ".join(d for d in self.details if d)
        words = self.message or self.code or self.type or "error"
        return f"{words} ({details})" if details else words


def rakuten_error(document: Mapping[str, Any]) -> RakutenError | None:
    if "errorresponse" not in document:
        return None
    error = _get(document, "errorresponse", "error")
    details = tuple(" ".join(d.split()) for d in _list(error, "details", "detail") if isinstance(d, str))
    return RakutenError(_text(error, "type"), _text(error, "code"), " ".join(_text(error, "message").split()),
                        details)


# --- Sales ---------------------------------------------------------------------------------------------------


def parse_purchase_date(value: str) -> datetime:
    """Rakuten's dd/mm/yyyy-hh:mm[:ss] on the channel's clock, returned as UTC: the channel's UTC offset
    setting moves it, as for every channel whose times carry no zone."""
    text = value.strip()
    for layout in ("%d/%m/%Y-%H:%M:%S", "%d/%m/%Y-%H:%M"):
        try:
            return datetime.strptime(text, layout).replace(tzinfo=UTC)
        except ValueError:
            continue
    raise ValueError(f"purchasedate {value!r} is not dd/mm/yyyy-hh:mm")


def sale_status(item_statuses: Sequence[str]) -> str:
    """The sale's status: the one its live (not cancelled or refused) items share, else the first live item's;
    a sale with no live item is CANCELLED (REFUSED when every item was refused)."""
    live = [status for status in item_statuses if status not in ENDED_STATUSES]
    if live:
        return live[0]
    return "REFUSED" if item_statuses and set(item_statuses) == {"REFUSED"} else "CANCELLED"


def _address(fields: Any) -> ExternalAddress:
    country = _text(fields, "countryalpha2").upper()
    name = " ".join(p for p in (_text(fields, "firstname"), _text(fields, "lastname")) if p)
    return ExternalAddress(
        name=name,
        line1=_text(fields, "address1") or _text(fields, "address"),
        line2=_text(fields, "address2") or _text(fields, "name"),
        city=_text(fields, "city"),
        postcode=_text(fields, "zipcode"),
        # FX is metropolitan France.
        country="FR" if country == "FX" else country or _text(fields, "country"),
        phone=_text(fields, "phonenumber1") or _text(fields, "phonenumber2"),
    )


def sale_from_rakuten(sale: Any) -> ExternalOrder:
    """One <sale>. Raises one of RECORD_ERRORS when the record does not parse."""
    purchase_id = _text(sale, "purchaseid")
    if not purchase_id:
        raise ValueError("the sale has no purchaseid")
    raw_items = _list(sale, "items", "item")
    if not raw_items:
        raise ValueError("the sale has no items")
    items, statuses, currencies = [], [], []
    for item in raw_items:
        line_id = _text(item, "itemid")
        if not line_id:
            raise ValueError("an item has no itemid")
        statuses.append(_text(item, "itemstatus").upper())
        currencies.append(_text(item, "price", "currency"))
        # Each Rakuten item is one unit.
        items.append(ExternalOrderItem(
            line_id=line_id,
            sku=_text(item, "sku"),
            title=_text(item, "headline"),
            quantity=1,
            unit_price=parse_decimal(_text(item, "price", "amount")),
            external_product_id=_text(item, "advertid"),
        ))
    status = sale_status(statuses)
    delivery = _get(sale, "deliveryinformation")
    where = next((found for key in ("deliveryaddress", "collectionpointaddress", "billingaddress")
                  if isinstance(found := _get(delivery, key), Mapping)), {})
    address = _address(where)
    purchased = parse_purchase_date(_text(sale, "purchasedate"))
    subtotal = sum((item.unit_price for item in items), Decimal("0"))
    return ExternalOrder(
        channel_order_id=purchase_id,
        channel_status=status,
        # The buyer pays Rakuten at checkout: every sale Rakuten lists is paid.
        is_paid=True,
        is_cancelled=all(s in ENDED_STATUSES for s in statuses),
        created_at=purchased,
        updated_at=purchased,
        items=tuple(items),
        currency=next((c for c in currencies if c), None),
        buyer_name=address.name or _text(delivery, "purchasebuyerlogin"),
        buyer_email=_text(delivery, "purchasebuyeremail") or None,
        shipping_address=address,
        shipping_tag=_text(delivery, "shippingtype"),
        subtotal=subtotal,
        total=subtotal,
    )


def sales_page(document: Mapping[str, Any]) -> tuple[OrderPage, str]:
    """The sales of a getnewsales or getcurrentsales answer, and its next-page token."""
    orders, errors = [], []
    for sale in _list(response(document), "sales", "sale"):
        try:
            orders.append(sale_from_rakuten(sale))
        except RECORD_ERRORS as exc:
            errors.append(RecordError(_text(sale, "purchaseid") or "(no purchase id)", f"unreadable sale: {exc}"))
    return OrderPage(orders=tuple(orders), errors=tuple(errors)), next_token(document)


def items_awaiting_acceptance(document: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(purchase id, item id) of every item of a getnewsales answer still waiting for the seller to accept it."""
    return [
        (_text(sale, "purchaseid"), _text(item, "itemid"))
        for sale in _list(response(document), "sales", "sale")
        for item in _list(sale, "items", "item")
        if _text(item, "itemstatus").upper() in AWAITING_ACCEPTANCE and _text(item, "itemid")
    ]


# --- Listings and stock --------------------------------------------------------------------------------------


def listing_from_advert(advert: Any) -> ExternalListing:
    sku = _text(advert, "sku")
    if not sku:
        raise ValueError("the advert has no sku")
    return ExternalListing(
        channel_sku=sku,
        external_id=_text(advert, "advertid"),
        title=_text(advert, "productsummary", "headline"),
        quantity=optional_int(_text(advert, "stock")),
        price=optional_decimal(_text(advert, "price", "amount")),
    )


def adverts(document: Mapping[str, Any]) -> list[Any]:
    return _list(response(document), "advertlist", "advert")


def adverts_total(document: Mapping[str, Any]) -> int | None:
    """How many adverts the export holds (nbresults), when the answer says so readably."""
    try:
        return optional_int(_text(response(document), "nbresults"))
    except ValueError:
        return None


def advert_id(advert: Any) -> str:
    return _text(advert, "advertid")


def stock_file(updates: Sequence[StockUpdate]) -> tuple[bytes, list[PushResult]]:
    """The import file in the profile's layout (IMPORT_COLUMNS), and the updates refused before sending."""
    lines, refused = [], []
    for update in updates:
        if any(ch in update.channel_sku for ch in ";\r\n"):
            refused.append(PushResult(update.channel_sku, accepted=False,
                                      message="A Rakuten SKU cannot contain ';' or a line break."))
            continue
        cells = {"sku": update.channel_sku, "quantity": str(max(0, update.quantity)),
                 "price": "" if update.price is None else f"{update.price:.2f}"}
        lines.append(";".join(cells[column] for column in IMPORT_COLUMNS))
    return ("\n".join(lines) + "\n").encode("utf-8"), refused


def import_id(document: Mapping[str, Any]) -> str:
    return _text(response(document), "importid")


def import_status(document: Mapping[str, Any]) -> str:
    return _text(response(document), "processstatus").upper()


def push_results_from_report(updates: Sequence[StockUpdate], document: Mapping[str, Any]) -> list[PushResult]:
    """Each update's outcome: refused when the report lists its line, or when the whole file failed."""
    if import_status(document) == "PROCESS_FAILED":
        reasons = "; ".join(_text(e, "errorreport") for e in _list(response(document), "errorlist", "error"))
        message = f"Rakuten could not process the stock file: {reasons}" if reasons else \
            "Rakuten could not process the stock file."
        return [PushResult(update.channel_sku, accepted=False, message=message) for update in updates]
    refused: dict[str, str] = {}
    sku_cell = IMPORT_COLUMNS.index("sku")
    for error in _list(response(document), "errorlist", "error"):
        cells = _text(error, "data").split(";")
        if len(cells) > sku_cell:
            refused.setdefault(cells[sku_cell].strip(), _text(error, "errorreport") or "refused by Rakuten")
    return [PushResult(u.channel_sku, accepted=False, message=refused[u.channel_sku]) if u.channel_sku in refused
            else PushResult(u.channel_sku, accepted=True) for u in updates]


# --- Despatch --------------------------------------------------------------------------------------------------


CARRIER_BY_KEY = {carrier_key(carrier.code): carrier.code for carrier in CARRIERS}


class CarrierUnknown(ValueError):
    """The shipment's carrier is not on Rakuten's list and has no tracking URL to go as "Autre" with."""


def tracking_params(shipment: Shipment) -> dict[str, str]:
    """transporter_name, tracking_number and tracking_url for settrackingpackageinfos.

    The carrier (a postal service's name or code) is matched to Rakuten's list ignoring case, accents, spaces and
    punctuation; another carrier goes as "Autre", which Rakuten accepts only with a tracking URL."""
    params = {"tracking_number": shipment.tracking_number}
    # Rakuten takes only a full http(s) URL; anything else is as good as none.
    url = shipment.tracking_url if TRACKING_URL.match(shipment.tracking_url) else ""
    known = CARRIER_BY_KEY.get(carrier_key(shipment.carrier))
    if known:
        params["transporter_name"] = known
    elif url:
        params["transporter_name"] = OTHER_CARRIER
    else:
        raise CarrierUnknown(
            f"Rakuten does not know the carrier {shipment.carrier!r} and there is no tracking URL to send it as "
            f"'{OTHER_CARRIER}' with: give the postal service one of Rakuten's carrier names, or a tracking URL "
            "template"
        )
    if url:
        params["tracking_url"] = url
    return params
