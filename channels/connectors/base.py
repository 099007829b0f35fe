"""The connector boundary: what every channel client implements and what crosses it.

Nothing in this package touches the ORM. The channels services build a `ConnectorConfig`
from a `Channel` row, hand the connector a `CredentialStore` so it can persist rotated
tokens, and translate these dataclasses to and from models.
"""

from __future__ import annotations

import abc
import enum
import math
import re
import unicodedata
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import ClassVar, Protocol

from channels.connectors.errors import (  # noqa: F401  (re-exported: the boundary's names live here)
    ChannelAuthError,
    ChannelError,
    ChannelHostRefused,
    ChannelPayloadError,
    ChannelRateLimited,
    ChannelRejected,
    ChannelResponseTooLarge,
    ChannelTransientError,
    RateLimit,
)
from channels.connectors.ratelimit import in_process_limiter


class CredentialStore(Protocol):
    """How a connector reads and persists its secrets without knowing the database.

    `locked()` serialises token refreshes across every worker for one channel: EKM refresh
    tokens are single-use, so two concurrent refreshes would invalidate the connection.
    """

    def load(self) -> dict[str, str]: ...

    def save(self, credentials: Mapping[str, str]) -> None: ...

    def locked(self) -> AbstractContextManager[None]: ...


class RateLimiter(Protocol):
    """Token buckets shared by every connector of a process (or, in Redis, of every machine)."""

    def acquire(self, key: str, limit: RateLimit, *, max_wait: float) -> None:
        """Take one token, sleeping up to `max_wait` s for it; raise ChannelRateLimited beyond that."""

    def hold_off(self, key: str, limit: RateLimit, *, seconds: float) -> None:
        """Make the next caller of this bucket wait at least `seconds` (after a 429 or a low quota)."""


MIB = 1024 * 1024


@dataclass(frozen=True)
class HttpBounds:
    """How long one exchange with the channel may take and how large its answer may be (settings CHANNEL_HTTP_*).

    An exchange is one call with its redirects and its whole answer. A document is a report or feed result
    downloaded from the URL the channel gives for it (Amazon's pre-signed S3 URLs)."""

    deadline: float = 60.0
    connect_timeout: float = 5.0
    max_response_bytes: int = 32 * MIB
    document_deadline: float = 300.0
    max_document_bytes: int = 256 * MIB


@dataclass(frozen=True)
class ConnectorConfig:
    channel_id: int
    kind: str
    name: str
    api_base_url: str
    auth_base_url: str
    seller_id: str = ""
    marketplace_id: str = ""
    shop_url: str = ""
    currency: str = "GBP"
    # The hosts this channel's credentials may be sent to: the kind's declared hosts plus any the settings
    # add (staging, the sandbox). Empty: the client refuses every call but a pre-signed document's.
    allowed_hosts: frozenset[str] = frozenset()
    # The kind's own account settings beyond the common ones above (Rakuten's import_profile_id, Amazon's
    # application id and whether it is a draft), as the channel holds them.
    extra: Mapping[str, str | bool] = field(default_factory=dict)
    http: HttpBounds = HttpBounds()


@dataclass(frozen=True)
class ExternalAddress:
    name: str = ""
    line1: str = ""
    line2: str = ""
    city: str = ""
    region: str = ""
    postcode: str = ""
    country: str = ""
    phone: str = ""


@dataclass(frozen=True)
class ExternalOrderItem:
    line_id: str
    sku: str
    title: str
    quantity: int
    unit_price: Decimal
    tax: Decimal | None = None
    tax_rate: Decimal | None = None
    external_product_id: str = ""


@dataclass(frozen=True)
class ExternalOrder:
    channel_order_id: str
    channel_status: str
    is_paid: bool
    is_cancelled: bool
    created_at: datetime
    updated_at: datetime
    items: tuple[ExternalOrderItem, ...]
    currency: str | None = None
    buyer_name: str = ""
    buyer_email: str | None = None
    shipping_address: ExternalAddress = field(default_factory=ExternalAddress)
    shipping_tag: str = ""
    subtotal: Decimal = Decimal("0")
    shipping_cost: Decimal = Decimal("0")
    tax: Decimal | None = None
    total: Decimal = Decimal("0")
    fulfilled_by_channel: bool = False
    # The channel reports it shipped (Amazon SHIPPED): an order the channel fulfils itself is then done.
    is_shipped: bool = False


@dataclass(frozen=True)
class RecordError:
    """One record that could not be read; the rest of its page goes on."""

    record_id: str
    reason: str


@dataclass(frozen=True)
class OrderChange:
    """An order as the channel's order list gives it, before its details are read: enough for the hub to tell
    whether it holds the order as the channel last changed it."""

    channel_order_id: str
    updated_at: datetime
    channel_status: str


@dataclass(frozen=True)
class OrderPage:
    orders: tuple[ExternalOrder, ...]
    errors: tuple[RecordError, ...] = ()
    # The orders left out as the hub holds them already (`unchanged`): still seen, so the watermark passes them.
    unchanged: tuple[OrderChange, ...] = ()


@dataclass(frozen=True)
class ExternalListing:
    channel_sku: str
    external_id: str
    title: str = ""
    quantity: int | None = None
    price: Decimal | None = None
    is_active: bool = True
    fulfilled_by_channel: bool = False


@dataclass(frozen=True)
class ListingPage:
    listings: tuple[ExternalListing, ...]
    done: int
    total: int
    errors: tuple[RecordError, ...] = ()


@dataclass(frozen=True)
class StockUpdate:
    """What one listing should show. `None` means: do not send that attribute."""

    channel_sku: str
    external_id: str
    quantity: int
    latency_days: int | None = None
    price: Decimal | None = None
    currency: str = ""
    # What the hub last saw the channel hold (its last accepted push, or a later download) and when; filled only
    # for a connector that `compares_channel_quantity`. None: never seen.
    channel_quantity: int | None = None
    channel_quantity_seen_at: datetime | None = None


@dataclass(frozen=True)
class PushResult:
    channel_sku: str
    accepted: bool
    message: str = ""
    # The quantity the channel turned out to hold instead of the one the hub last saw (Shopify's stale
    # compare-and-set): recorded as the listing's drift. None: no surprise.
    channel_quantity_found: int | None = None


@dataclass(frozen=True)
class OrderLineRef:
    line_id: str
    sku: str
    quantity: int


@dataclass(frozen=True)
class OrderRef:
    channel_order_id: str
    lines: tuple[OrderLineRef, ...] = ()
    # The channel's own status to set, from the status mapping (EKM's cancelled status is shop-defined);
    # empty: the connector's default.
    channel_status: str = ""


@dataclass(frozen=True)
class Shipment:
    tracking_number: str
    carrier: str
    shipping_method: str = ""
    tracking_url: str = ""
    shipped_at: datetime | None = None
    # The channel's own status for a shipped order, from the status mapping (EKM: e.g. DISPATCHED).
    channel_status: str = ""


@dataclass(frozen=True)
class ConnectionResult:
    ok: bool
    message: str


@dataclass(frozen=True)
class FbaStock:
    """One SKU's stock in Amazon's fulfilment network: what Amazon can pick and ship now."""

    sku: str
    fulfillable: int
    fnsku: str = ""


@dataclass(frozen=True)
class FbaStockPage:
    stock: tuple[FbaStock, ...]
    errors: tuple[RecordError, ...] = ()


@dataclass(frozen=True)
class FulfilmentLine:
    line_id: str
    sku: str
    quantity: int
    # The declared value per unit, in `currency`, as the channel will see it.
    unit_value: Decimal
    currency: str


@dataclass(frozen=True)
class FulfilmentRequest:
    """An order the seller asks the channel's fulfilment network to ship (Amazon multi-channel fulfilment)."""

    fulfilment_order_id: str
    displayable_order_id: str
    ordered_at: datetime
    comment: str
    shipping_speed: str
    address: ExternalAddress
    lines: tuple[FulfilmentLine, ...]


@dataclass(frozen=True)
class FulfilmentPackage:
    tracking_number: str
    carrier: str
    shipped_at: datetime | None = None


@dataclass(frozen=True)
class FulfilmentState:
    """Where a fulfilment order stands: RECEIVED, PLANNING, PROCESSING, COMPLETE, COMPLETE_PARTIALLED,
    UNFULFILLABLE, INVALID or CANCELLED, with the packages shipped so far."""

    fulfilment_order_id: str
    status: str
    packages: tuple[FulfilmentPackage, ...] = ()


class WatermarkPolicy(enum.Enum):
    """How Last Order Sync moves after a complete download."""

    # The oldest order stored by the latest sync (Amazon): late-indexed orders are never skipped.
    OLDEST_IMPORTED = "oldest_imported"
    # The latest order date stored (EKM's order_date, Rakuten's sale date).
    LATEST_ORDER = "latest_order"


def carrier_key(name: str) -> str:
    """A carrier's name or code as carrier lists compare them: ignoring case, accents, spaces and punctuation."""
    plain = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]", "", plain.casefold())


@dataclass(frozen=True)
class Carrier:
    """One entry of a channel's carrier list: the code it is sent as and the name staff see."""

    code: str
    name: str


class Connector(abc.ABC):
    """One class per channel kind, registered by `kind` in `channels.connectors`.

    Besides the calls, the class declares everything the rest of the hub needs to know about its kind,
    so that nothing outside `channels/connectors/` branches on the kind.
    """

    kind: ClassVar[str]
    label: ClassVar[str]
    # The secrets the account form asks for, in order: (key, label).
    credential_fields: ClassVar[tuple[tuple[str, str], ...]] = ()
    # The Channel account settings this kind uses; the form hides the others.
    account_fields: ClassVar[tuple[str, ...]] = ("api_base_url",)
    # The production URL of each URL setting (api_base_url, auth_base_url).
    default_urls: ClassVar[Mapping[str, str]] = {}
    # The hosts each URL setting may name in production (https only); credentials go nowhere else.
    allowed_hosts: ClassVar[Mapping[str, tuple[str, ...]]] = {}
    # The URL settings that name the seller's own server (a WooCommerce shop): any public https host may be named
    # there, and that host alone is added to where the channel's credentials may go.
    seller_hosted_urls: ClassVar[tuple[str, ...]] = ()
    # The channel runs a fulfilment network of its own (Amazon FBA).
    has_fulfilment_network: ClassVar[bool] = False
    # Despatch sets a channel status, which the Order Status Mapping must name (EKM).
    despatch_needs_status_mapping: ClassVar[bool] = False
    # The channel refuses a despatch without a tracking number.
    despatch_needs_tracking_number: ClassVar[bool] = False
    # The channel's carrier list; empty means the carrier is free text.
    carriers: ClassVar[tuple[Carrier, ...]] = ()
    # The carrier code for "another carrier", sent with the carrier's own name (Amazon "Other", Rakuten "Autre").
    other_carrier: ClassVar[str] = ""
    # The other carrier also needs a tracking URL (Rakuten "Autre").
    other_carrier_needs_tracking_url: ClassVar[bool] = False
    # The reasons the channel accepts with a cancellation: code -> label; empty means free text.
    cancellation_reasons: ClassVar[Mapping[str, str]] = {}
    # The seller may choose whether tracking goes with the despatch ("Send despatch notes").
    supports_despatch_notes: ClassVar[bool] = True
    # Prices can be pushed with the stock.
    supports_price_push: ClassVar[bool] = True
    # A handling time (latency) can be sent with the stock.
    supports_latency: ClassVar[bool] = False
    # Each stock update is a compare-and-set against what the hub last saw the channel hold (Shopify's
    # changeFromQuantity): the push passes it in StockUpdate.channel_quantity.
    compares_channel_quantity: ClassVar[bool] = False
    # The channel expires the client secret this many days after it was issued (Amazon LWA: 180).
    client_secret_lifetime_days: ClassVar[int | None] = None
    # What the channel puts in place of a buyer's email it withholds; the channel's default email replaces it.
    withheld_email_placeholder: ClassVar[str] = ""
    # The Channel settings each capability above stands behind: without it they do nothing.
    setting_capabilities: ClassVar[Mapping[str, str]] = {
        "send_despatch_notes": "supports_despatch_notes", "price_change": "supports_price_push",
        "latency_days": "supports_latency", "product_based_latency": "supports_latency",
        "latency_property_name": "supports_latency", "fba_enabled": "has_fulfilment_network",
        "fba_sync_inventory": "has_fulfilment_network", "fba_convert_currency": "has_fulfilment_network",
    }
    # The Channel settings that do nothing on this kind beyond those its capabilities rule out: its config
    # page leaves them off.
    unsupported_settings: ClassVar[frozenset[str]] = frozenset()
    # The kind's own help texts for Channel settings, by field name, in its seller's words; the others keep
    # the hub's.
    setting_help: ClassVar[Mapping[str, str]] = {}

    @classmethod
    def supports_setting(cls, name: str) -> bool:
        """The Channel setting `name` does something on this kind, so its config page shows it."""
        capability = cls.setting_capabilities.get(name)
        return name not in cls.unsupported_settings and (capability is None or getattr(cls, capability))

    @classmethod
    def fulfilment_currency(cls, marketplace_id: str) -> str | None:
        """The currency the channel's fulfilment network prices orders in for this marketplace; None: unknown."""
        return None

    @classmethod
    def channel_defaults(cls) -> dict[str, object]:
        """Channel settings a new channel of this kind starts with, on top of the hub's own defaults."""
        return {}

    @classmethod
    def carrier_for(cls, name: str) -> Carrier | None:
        """The carrier list's entry for a carrier named by its code or name (compared by `carrier_key`); None:
        not on the list (it is then sent as `other_carrier`)."""
        wanted = carrier_key(name)
        if not wanted:
            return None
        return next((c for c in cls.carriers if wanted in (carrier_key(c.code), carrier_key(c.name))), None)
    max_batch_size: ClassVar[int]
    # The channel lets a listing be revised at most this many times a day (eBay: 250); None: no such cap. The push
    # then paces each listing's revisions over the day, counting them in `revision_day_zone`'s calendar day.
    max_revisions_per_day: ClassVar[int | None] = None
    revision_day_zone: ClassVar[str] = "UTC"
    rate_limits: ClassVar[Mapping[str, RateLimit]]
    watermark_policy: ClassVar[WatermarkPolicy] = WatermarkPolicy.LATEST_ORDER
    # Each download starts this long before Last Order Sync, so an order stamped late is still seen.
    order_overlap: ClassVar[timedelta] = timedelta(minutes=5)
    # The `rate_limits` key one page of an order download spends (Amazon searchOrders); "": the kind declares
    # no quota for it, and its orders are downloaded every `unmetered_order_download_seconds`.
    order_download_operation: ClassVar[str] = ""
    unmetered_order_download_seconds: ClassVar[int] = 300
    # `fetch_orders` reads each order's details with a call of its own (EKM: its items) and takes `unchanged`:
    # given the OrderChanges of a page of the order list, the ids the hub holds already as the channel last
    # changed them, whose details it then does not read again (each download re-reads `order_overlap`).
    reads_order_details_apart: ClassVar[bool] = False
    # The share of that bucket's rate the periodic downloads may spend; the rest stays for its other calls.
    order_download_share: ClassVar[float] = 0.75

    @classmethod
    def order_download_quota_seconds(cls) -> int:
        """The fewest whole seconds between two one-page order downloads that the quota sustains: 1 / rate,
        rounded up, so downloads at this pace never spend faster than the bucket refills."""
        limit = cls.rate_limits.get(cls.order_download_operation) if cls.order_download_operation else None
        if limit is None or limit.rate <= 0:
            return cls.unmetered_order_download_seconds
        return max(1, math.ceil(1 / limit.rate))

    @classmethod
    def order_download_interval(cls) -> int:
        """How often orders are polled by default, in whole seconds: the fastest the quota sustains next to the
        bucket's other calls.

        A download is assumed to need one page (the bucket's burst covers the odd longer one) and may spend
        `order_download_share` of the bucket's rate; the rest stays for what else draws on it: staff's Download
        orders now, the follow-ups after activity, Test or pushes where they spend the same bucket. So the
        interval is 1 / (share x rate) rounded up, never shorter than the quota's own pace
        (`order_download_quota_seconds`). Amazon's searchOrders, 0.0056 calls/s: 239 s, against a pace of 179 s.
        """
        limit = cls.rate_limits.get(cls.order_download_operation) if cls.order_download_operation else None
        if limit is None or limit.rate <= 0:
            return cls.unmetered_order_download_seconds
        return max(cls.order_download_quota_seconds(), math.ceil(1 / (cls.order_download_share * limit.rate)))

    def __init__(
        self, config: ConnectorConfig, credentials: CredentialStore, limiter: RateLimiter | None = None
    ) -> None:
        self.config = config
        self.credentials = credentials
        self.limiter = limiter if limiter is not None else in_process_limiter()

    @abc.abstractmethod
    def test_connection(self) -> ConnectionResult: ...

    @abc.abstractmethod
    def reauthorise(self, *, authorization_code: str = "") -> ConnectionResult: ...

    @abc.abstractmethod
    def fetch_orders(self, since: datetime, until: datetime | None = None) -> Iterator[OrderPage]: ...

    @abc.abstractmethod
    def fetch_listings(self) -> Iterator[ListingPage]: ...

    @abc.abstractmethod
    def push_listings(self, updates: Sequence[StockUpdate]) -> list[PushResult]: ...

    def push_turn_take(self) -> None:
        """Wait until the channel's quota lets a push's first call go, and keep that turn for it.

        The push plans after this, so it sends what holds when its call goes, not what held before a wait for
        the quota. Raises ChannelRateLimited, with the wait, when the turn is further off than the client may
        sleep. A kind whose push spends a token per listing (EKM, Amazon's PATCHes) has no one turn to wait
        for: nothing to do.
        """
        return None

    @abc.abstractmethod
    def confirm_despatch(self, order: OrderRef, shipment: Shipment) -> None: ...

    @abc.abstractmethod
    def cancel_order(self, order: OrderRef, reason: str) -> None: ...

    def order_statuses(self) -> list[str]:
        """Every status the channel can give an order, offered in the status mapping."""
        return []

    # The channel keeps stock per location of its own, one of which the hub's quantity goes to (Shopify): the
    # Location Mapping page offers them.
    has_channel_locations: ClassVar[bool] = False

    def channel_locations(self) -> list[tuple[str, str]]:
        """The channel's own locations stock may go to, as (number, name)."""
        return []

    # Fulfilment by the channel (Amazon FBA). Optional: only a channel with a fulfilment network has them.

    def fetch_fba_stock(self) -> Iterator[FbaStockPage]:
        """Every SKU's fulfillable quantity in the channel's fulfilment network, in pages."""
        raise ChannelRejected(f"{self.config.name}: {self.kind} channels have no fulfilment network to read")

    def create_fulfilment_order(self, request: FulfilmentRequest) -> None:
        """Ask the channel's fulfilment network to ship an order (from any channel)."""
        raise ChannelRejected(f"{self.config.name}: {self.kind} channels cannot fulfil orders")

    def fulfilment_order(self, fulfilment_order_id: str) -> FulfilmentState:
        """Where a fulfilment order created here stands."""
        raise ChannelRejected(f"{self.config.name}: {self.kind} channels cannot fulfil orders")

    # Orders by webhook. Optional: a channel that sends none leaves `receives_order_webhooks` False. A webhook
    # is only a hint (checked, then the order is read through the API); the order download stays the safety net.
    receives_order_webhooks: ClassVar[bool] = False

    def webhooks_subscribe(self, endpoint_url: str) -> list[str]:
        """Make the channel send its order webhooks to `endpoint_url`, and return the subscriptions' ids.

        Safe to repeat: the subscriptions already there are read first, and only missing topics are added or a
        wrong endpoint fixed, so each topic keeps one subscription."""
        raise ChannelRejected(f"{self.config.name}: {self.kind} channels send no order webhooks")

    def webhooks_unsubscribe(self) -> None:
        """Stop every order webhook this connection subscribed to (none there: nothing to do)."""
        raise ChannelRejected(f"{self.config.name}: {self.kind} channels send no order webhooks")

    def webhook_hint(self, headers: Mapping[str, str], body: bytes) -> WebhookHint:
        """What one webhook delivery asks the hub to read again. No HTTP call: the hub answers it at once.

        Raises WebhookRefused for a delivery to ignore: not JSON, a topic the hub did not subscribe to, another
        merchant's, or (for a channel that signs) a signature that does not match."""
        raise WebhookRefused(f"{self.kind} channels send no order webhooks")

    def order_get(self, order_ids: Sequence[str]) -> OrderPage:
        """These orders as the channel has them now, mapped as `fetch_orders` maps them; one the channel does
        not have, or sends unreadable, is a RecordError of the page."""
        raise ChannelRejected(f"{self.config.name}: {self.kind} channels cannot read orders one by one")

    # Account deletion notices. Optional: a channel that requires every application to erase a closed account's
    # data (eBay) checks the hub's endpoint with a challenge, then sends signed notices to it.
    receives_account_deletion_notices: ClassVar[bool] = False

    def account_deletion_challenge(self, challenge_code: str, endpoint_url: str) -> dict[str, str]:
        """The JSON answer that proves to the channel this endpoint is the connection's. No HTTP call."""
        raise WebhookRefused(f"{self.kind} channels send no account deletion notices")

    def account_deletion_notice(self, headers: Mapping[str, str], body: bytes) -> AccountDeletion:
        """The user a notice names, once its signature is verified; WebhookRefused when it cannot be trusted."""
        raise WebhookRefused(f"{self.kind} channels send no account deletion notices")

    # Consent. Optional: a channel whose seller authorises the hub on a page of the channel's own (Amazon's Seller
    # Central, EKM's /connect/authorize) builds that page's address; the channel then sends the seller's browser
    # back to `redirect_uri` with `state` echoed and the authorisation code in the query parameter
    # `consent_code_parameter`, which the hub exchanges through `reauthorise(authorization_code=...)`.
    consent_code_parameter: ClassVar[str] = ""

    def consent_url(self, redirect_uri: str, state: str) -> str | None:
        """The channel's consent page for this connection, sending the seller back to `redirect_uri` with `state`;
        None: the kind has none (Rakuten: the seller copies a token from its back office) or the connection lacks
        what the page needs. Builds an address only: no call to the channel, nothing secret in it."""
        return None

    def consent_refusal(self, callback: Mapping[str, str]) -> str:
        """Why the channel's answer to its consent page cannot be taken for this connection ("" when it can),
        read from the callback's query before its code is exchanged: Amazon names the seller who consented."""
        return ""


@dataclass(frozen=True)
class AccountDeletion:
    """A channel's notice that one of its users closed their account: the hub erases what it holds of them."""

    username: str
    user_id: str = ""


@dataclass(frozen=True)
class WebhookHint:
    """One webhook delivery, checked: the orders it names and the merchant account it came for."""

    order_ids: tuple[str, ...]
    merchant: str
    topic: str = ""


class WebhookRefused(ChannelPayloadError):
    """A webhook delivery the hub will not act on; its text says why, in one line, without secrets."""


class WebhookUnsigned(WebhookRefused):
    """A delivery from a channel that signs its webhooks whose signature is missing or does not match: answered
    401, since nobody proved it came from the channel."""
