"""Rakuten France (formerly PriceMinister) web services, written to contract/*.json.

Rakuten publishes no machine-readable definition: the contract is written from public clients of the service
and says, point by point, what Rakuten's own documentation does not confirm.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, ClassVar

from channels.connectors.base import (
    Carrier,
    ChannelPayloadError,
    ChannelRejected,
    ChannelTransientError,
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
)
from channels.connectors.http import token_pages
from channels.connectors.rakuten.client import RATE_LIMITS, RakutenClient
from channels.connectors.rakuten.mapper import (
    CARRIERS,
    IMPORT_COLUMNS,
    IMPORT_FINISHED,
    ITEM_STATUSES,
    OTHER_CARRIER,
    CarrierUnknown,
    advert_id,
    adverts,
    adverts_total,
    answer_status,
    import_id,
    import_status,
    items_awaiting_acceptance,
    listing_from_advert,
    next_token,
    push_results_from_report,
    sales_page,
    stock_file,
    tracking_params,
)
from channels.connectors.values import RECORD_ERRORS

POLL_FIRST_DELAY = 2.0
POLL_MAX_DELAY = 30.0
POLL_GIVE_UP_AFTER = 300.0
# Every download re-reads the sales bought this long before its start, so that a later cancellation or status
# change of one of them is seen (whether getcurrentsales filters by purchase or by change is not known).
STATUS_WINDOW = timedelta(days=14)


def purchased_from(since: datetime) -> str:
    """getcurrentsales' purchasedate for a download from `since`: the start of the status window, as a date."""
    try:
        start = since - STATUS_WINDOW
    except OverflowError:
        start = since
    return start.date().isoformat()


class RakutenConnector(Connector):
    kind = "rakuten"
    label = "Rakuten"
    credential_fields = (("token", "Web services token"),)
    account_fields = ("seller_id", "api_base_url", "import_profile_id")
    default_urls: ClassVar[Mapping[str, str]] = {"api_base_url": "https://ws.fr.shopping.rakuten.com"}
    allowed_hosts: ClassVar[Mapping[str, tuple[str, ...]]] = {"api_base_url": ("ws.fr.shopping.rakuten.com",)}
    despatch_needs_tracking_number = True
    carriers: ClassVar[tuple[Carrier, ...]] = CARRIERS
    other_carrier = OTHER_CARRIER
    other_carrier_needs_tracking_url = True
    # cancelitem takes a free-text comment for the buyer: Rakuten has no fixed list of reasons.
    cancellation_reasons: ClassVar[Mapping[str, str]] = {}
    supports_despatch_notes = False
    # Every sale Rakuten gives is paid (the mapper's is_paid), so there are no unpaid orders to download.
    unsupported_settings = frozenset({"download_unpaid_orders"})
    # Seed 004's words for Rakuten's own behaviour.
    setting_help: ClassVar[Mapping[str, str]] = {
        "mark_as_despatched": "When an order is processed here, send Rakuten its despatch with the tracking "
        "number and carrier.",
    }
    max_batch_size = 1000
    watermark_policy = WatermarkPolicy.LATEST_ORDER
    rate_limits: ClassVar[Mapping[str, RateLimit]] = RATE_LIMITS
    # Every download starts by reading the new sales (to accept them), then pages the current ones.
    order_download_operation = "getnewsales"

    @classmethod
    def channel_defaults(cls) -> dict[str, object]:
        return {"currency": "EUR", "send_despatch_notes": False}

    def __init__(
        self, config: ConnectorConfig, credentials: CredentialStore, limiter: RateLimiter | None = None
    ) -> None:
        super().__init__(config, credentials, limiter)
        self.sleep = time.sleep
        self._token = ""
        self.client = RakutenClient(config, self._stored_token, self.limiter, sleep=lambda s: self.sleep(s))

    def _stored_token(self) -> str:
        self._token = self._token or str(self.credentials.load().get("token") or "")
        return self._token

    def _call(self, action: str, params: Mapping[str, str] | None = None, **kwargs: Any) -> dict[str, Any]:
        return self.client.call(action, params, **kwargs)

    # Connection

    def test_connection(self, *, token: str = "") -> ConnectionResult:
        document = self._call("getnewsales", token=token)
        waiting = len(items_awaiting_acceptance(document))
        return ConnectionResult(True, f"Connected to Rakuten France as {self.config.seller_id}: "
                                      f"{waiting} item(s) of new sales waiting to be accepted.")

    def reauthorise(self, *, authorization_code: str = "") -> ConnectionResult:
        """Rakuten has no OAuth: a new web services token, once it works, replaces the stored one."""
        if not authorization_code:
            return self.test_connection()
        result = self.test_connection(token=authorization_code)
        self.credentials.save({"token": authorization_code})
        self._token = authorization_code
        return ConnectionResult(True, f"The new token works and is saved. {result.message}")

    def order_statuses(self) -> list[str]:
        return list(ITEM_STATUSES)

    # Orders

    def _accept_new_sales(self) -> list[RecordError]:
        """Accept every item awaiting acceptance, as the seller would in Rakuten's back office, so the sale goes on."""
        errors = []

        def fetch(token: str) -> tuple[dict[str, Any], str]:
            document = self._call("getnewsales", {"nexttoken": token} if token else None)
            return document, next_token(document)

        for document in token_pages(fetch):
            for purchase_id, item_id in items_awaiting_acceptance(document):
                try:
                    status = answer_status(self._call("acceptsale", {"itemid": item_id}))
                    if status.casefold() == "refused":
                        raise ChannelRejected("Rakuten answered Refused")
                except (ChannelRejected, ChannelPayloadError) as exc:
                    errors.append(RecordError(purchase_id or item_id, f"could not accept item {item_id}: {exc}"))
        return errors

    def fetch_orders(self, since: datetime, until: datetime | None = None) -> Iterator[OrderPage]:
        accept_errors = tuple(self._accept_new_sales())
        purchasedate = purchased_from(since)

        def fetch(token: str) -> tuple[OrderPage, str]:
            params = {"purchasedate": purchasedate} | ({"nexttoken": token} if token else {})
            return sales_page(self._call("getcurrentsales", params))

        for number, page in enumerate(token_pages(fetch)):
            if number == 0 and accept_errors:
                page = OrderPage(orders=page.orders, errors=page.errors + accept_errors)
            yield page

    # Listings

    def fetch_listings(self) -> Iterator[ListingPage]:
        done = 0

        def fetch(token: str) -> tuple[ListingPage, str]:
            nonlocal done
            document = self._call("export", {"nexttoken": token} if token else None)
            listings, errors = [], []
            page = adverts(document)
            for advert in page:
                try:
                    listings.append(listing_from_advert(advert))
                except RECORD_ERRORS as exc:
                    errors.append(RecordError(advert_id(advert) or "(no advert id)", f"unreadable advert: {exc}"))
            done += len(page)
            total = max(adverts_total(document) or 0, done)
            return ListingPage(tuple(listings), done=done, total=total, errors=tuple(errors)), next_token(document)

        return token_pages(fetch)

    def push_listings(self, updates: Sequence[StockUpdate]) -> list[PushResult]:
        profile = str(self.config.extra.get("import_profile_id", "")).strip()
        if not profile:
            raise ChannelRejected(
                "Rakuten: set the channel's import profile id first: the stock import profile set up in Rakuten's "
                f"back office, with the columns {';'.join(IMPORT_COLUMNS)} and no header line"
            )
        content, refused = stock_file(updates)
        refused_skus = {result.channel_sku for result in refused}
        sendable = [update for update in updates if update.channel_sku not in refused_skus]
        if not sendable:
            return refused
        document = self._call("import", {"profileid": profile}, file=content)
        file_id = import_id(document)
        if not file_id:
            raise ChannelPayloadError("Rakuten stock import: the answer carries no import id")
        return refused + push_results_from_report(sendable, self._import_report(file_id))

    def push_turn_take(self) -> None:
        # One import carries the whole batch, and its bucket is the slow one (RATE_LIMITS).
        self.client.http.turn_take("import")

    def _import_report(self, file_id: str) -> dict[str, Any]:
        delay, waited = POLL_FIRST_DELAY, 0.0
        while True:
            document = self._call("importreport", {"fileid": file_id})
            status = import_status(document)
            if status in IMPORT_FINISHED:
                return document
            if waited >= POLL_GIVE_UP_AFTER:
                raise ChannelTransientError(f"Rakuten import {file_id}: still {status or 'pending'} "
                                            f"after {waited:.0f} s")
            self.sleep(delay)
            waited += delay
            delay = min(delay * 2, POLL_MAX_DELAY)

    # Despatch and cancellation

    def confirm_despatch(self, order: OrderRef, shipment: Shipment) -> None:
        if not order.lines:
            raise ChannelRejected(f"sale {order.channel_order_id}: Rakuten confirms despatch item by item")
        if not shipment.tracking_number.strip():
            raise ChannelRejected(f"sale {order.channel_order_id}: Rakuten needs a tracking number for a despatch")
        try:
            params = tracking_params(shipment)
        except CarrierUnknown as exc:
            raise ChannelRejected(f"sale {order.channel_order_id}: {exc}") from exc
        for line in order.lines:
            status = answer_status(self._call("settrackingpackageinfos", {"itemid": line.line_id, **params}))
            if status.upper() != "OK":
                raise ChannelRejected(f"Rakuten settrackingpackageinfos for item {line.line_id}: answered "
                                      f"{status or 'nothing'}")

    def cancel_order(self, order: OrderRef, reason: str) -> None:
        if not order.lines:
            raise ChannelRejected(f"sale {order.channel_order_id}: Rakuten cancels item by item")
        comment = reason.strip()
        if not comment:
            raise ChannelRejected(f"sale {order.channel_order_id}: Rakuten sends the buyer a reason with a "
                                  "cancellation; give one")
        for line in order.lines:
            self._call("cancelitem", {"itemid": line.line_id, "comment": comment})
