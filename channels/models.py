from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from simple_history.models import HistoricalRecords

from channels.connectors import CONNECTORS, connector_class
from channels.endpoints import channel_endpoint_problem
from channels.fields import EncryptedJSONField
from inventory.models import Location
from orders.models import Order, PostalService
from orders.validators import validate_currency

NEVER_SYNCED = datetime(1, 1, 1, tzinfo=UTC)
# A listing download flagged as running for longer than this died without clearing its flag: the next may start.
STALE_DOWNLOAD_AFTER = timedelta(hours=6)

PERCENTAGE_VALIDATORS = [
    MinValueValidator(0, "A percentage cannot be below 0."),
    MaxValueValidator(100, "A percentage cannot be above 100."),
]
LATENCY_VALIDATORS = [
    MinValueValidator(0, "Latency cannot be negative (use 0 for “not sent”)."),
    MaxValueValidator(30, "Amazon accepts a latency of 1 to 30 days (0 means it is not sent)."),
]
QUANTITY_VALIDATORS = [MinValueValidator(0, "A quantity cannot be negative.")]
# A maximum of 0 would end every listing it caps: "no maximum" is an empty field.
MAX_LISTED_VALIDATORS = [MinValueValidator(1, "A maximum of 0 would end every listing: leave empty for no maximum.")]

MAX_LISTED_QUANTITY_HELP = (
    "The most that is ever sent to the channel, even when more is available. "
    "Example: 20 available and a max of 10 sends 10. Leave empty for no maximum."
)
MAX_LISTED_PERCENTAGE_HELP = (
    "Send only this percentage of what is available, always rounded down. "
    "Example: 10 available at 50% sends 5; 20 available with a max of 10 at 50% sends 5. "
    "Leave empty to send everything."
)
END_WHEN_HELP = (
    "End the listing (send 0) once the available stock falls to this level or below, "
    "instead of at 0. Gives you a buffer against overselling."
)
LATENCY_HELP = (
    "Handling time sent with the stock: the days between order and despatch (1-30). "
    "0 means no latency is sent."
)


# The channel form names the field of each credential key with this prefix (the services read which changed).
CREDENTIAL_PREFIX = "credential_"
# Written by the sync engine as it runs, not by staff: kept out of the channel's history.
CHANNEL_STATE_FIELDS = [
    "last_inventory_sync", "listing_download_in_progress", "listing_download_started_at",
    "listing_download_completed_at", "listing_download_estimated_completion", "listing_download_done",
    "listing_download_total", "needs_reauthorisation", "reauthorisation_reason", "updated_at",
]
# Written by downloads and pushes: a listing's history keeps only what staff set (link and overrides).
LISTING_STATE_FIELDS = ["channel_quantity", "channel_price", "downloaded_at"]


class Channel(models.Model):
    # One choice per registered connector: a new marketplace is a new package, not an edit here.
    Kind = models.TextChoices("Kind", [(kind.upper(), (kind, cls.label)) for kind, cls in CONNECTORS.items()])

    # Account
    name = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    enabled = models.BooleanField(
        default=True, help_text="Without this nothing is sent to or received from the channel."
    )
    inventory_sync = models.BooleanField(default=True, help_text="Send stock levels to this channel.")
    api_base_url = models.URLField(
        "API base URL", help_text="The channel's API, or the sandbox's address for this account."
    )
    auth_base_url = models.URLField(
        "authorisation base URL", blank=True, help_text="Where access tokens are obtained; empty: the API base URL."
    )
    seller_id = models.CharField("seller id / login", max_length=100, blank=True)
    marketplace_id = models.CharField(max_length=50, blank=True, help_text="Amazon only, e.g. A1F83G8C2ARO7P (UK).")
    shop_url = models.URLField("shop URL", blank=True)
    # A database default too, so rows written by code that predates the column (older migrations' tests) still fit.
    channel_location_id = models.CharField(
        "channel location", max_length=50, blank=True, db_default="",
        # Refused where it is typed, rather than at the next push.
        validators=[RegexValidator(r"^[0-9]{1,19}$", "A location number, digits only: Location Mapping lists the "
                                   "shop's locations to choose from.")],
        help_text="The channel's own location the stock goes to (Shopify: the location's number; Location Mapping "
        "lists the shop's locations to choose from). Empty: the shop's first active location for online orders.",
    )
    import_profile_id = models.CharField(
        "import profile id", max_length=50, blank=True,
        help_text="The stock import profile set up in the channel's seller account, whose columns stock is sent in.",
    )
    application_id = models.CharField(
        "application id", max_length=100, blank=True, db_default="",
        help_text="The selling partner application's id (amzn1.sp.solution…), from the Developer Console; not the "
        "LWA client id. With it, Reauthorise links to the channel's consent page.",
    )
    application_draft = models.BooleanField(
        "application in draft", default=False, db_default=False,
        help_text="The application is not yet published in the Appstore: the consent page is opened in its draft "
        "(beta) version.",
    )
    # Secrets live here and nowhere else, encrypted at rest; admin forms replace them, never display them.
    credentials = EncryptedJSONField(default=dict, blank=True, editable=False)
    client_secret_replaced_at = models.DateTimeField(
        "client secret last replaced", null=True, blank=True,
        help_text="When the client secret was last entered here; channels that rotate secrets warn before expiry.",
    )
    needs_reauthorisation = models.BooleanField(default=False)
    reauthorisation_reason = models.CharField(max_length=255, blank=True)

    # Orders
    mark_as_despatched = models.BooleanField(
        default=True, help_text="When an order is processed here, tell the channel it has shipped."
    )
    send_despatch_notes = models.BooleanField(
        default=True, help_text="Send the tracking number and carrier with the despatch, so the buyer is notified."
    )
    send_cancellation_notes = models.BooleanField(
        default=False, help_text="Tell the channel when an order is cancelled here."
    )
    download_unpaid_orders = models.BooleanField(default=False, help_text="Also download orders not yet paid.")
    use_channel_tax = models.BooleanField(
        default=True, help_text="Use the tax the channel calculated; otherwise the hub's tax rates apply."
    )
    currency = models.CharField(
        max_length=3, default="GBP", validators=[validate_currency],
        help_text="Used for orders that arrive without a currency.",
    )
    last_order_sync = models.DateTimeField(
        "last order sync (UTC)", default=NEVER_SYNCED,
        help_text="Orders changed after this time are downloaded at the next sync.",
    )
    utc_offset_hours = models.DecimalField(
        "UTC offset (hours)", max_digits=4, decimal_places=2, default=Decimal("0"),
        validators=[
            MinValueValidator(Decimal("-12"), "The UTC offset must be between -12 and +14 hours."),
            MaxValueValidator(Decimal("14"), "The UTC offset must be between -12 and +14 hours."),
        ],
        help_text="Shift order received times by this many hours (0 keeps UTC).",
    )
    default_email = models.EmailField(
        blank=True, help_text="Used for orders that arrive without the buyer's email."
    )

    # Inventory
    update_inventory = models.BooleanField(
        default=True, help_text="Send available stock (physical stock less open orders) to the channel."
    )
    update_inventory_from_locations = models.BooleanField(
        "update inventory from location", default=False,
        help_text="Combine stock only from the locations ticked in Location Mapping; otherwise all warehouses.",
    )
    inventory_locations = models.ManyToManyField(
        "inventory.Location", blank=True, related_name="channels", verbose_name="location mapping"
    )
    max_listed_quantity = models.PositiveIntegerField(
        "default max listed quantity", null=True, blank=True, validators=MAX_LISTED_VALIDATORS,
        help_text=MAX_LISTED_QUANTITY_HELP,
    )
    max_listed_percentage = models.PositiveSmallIntegerField(
        "default max listed percentage", null=True, blank=True, validators=PERCENTAGE_VALIDATORS,
        help_text=MAX_LISTED_PERCENTAGE_HELP,
    )
    end_when_quantity = models.PositiveIntegerField(
        "default end when quantity", default=0, validators=QUANTITY_VALIDATORS, help_text=END_WHEN_HELP
    )
    latency_days = models.PositiveSmallIntegerField(
        "default latency (days)", default=0, validators=LATENCY_VALIDATORS, help_text=LATENCY_HELP
    )
    product_based_latency = models.BooleanField(
        default=False, help_text="Take each product's latency from its extended property when it has one."
    )
    latency_property_name = models.CharField(
        max_length=100, default="Latency", help_text="The extended property that holds a product's latency."
    )
    price_change = models.BooleanField(
        default=False, help_text="Send a stock item's new price to the channel as soon as it is saved."
    )
    last_inventory_sync = models.DateTimeField("last inventory sync", null=True, blank=True)

    # Listings download
    listing_download_in_progress = models.BooleanField(default=False)
    listing_download_started_at = models.DateTimeField("listing download start time", null=True, blank=True)
    listing_download_completed_at = models.DateTimeField("listing download completion time", null=True, blank=True)
    listing_download_estimated_completion = models.DateTimeField(
        "listing download estimated completion", null=True, blank=True
    )
    listing_download_done = models.PositiveIntegerField(default=0)
    listing_download_total = models.PositiveIntegerField(default=0)

    # Amazon FBA
    fba_enabled = models.BooleanField(
        "FBA enabled", default=False, help_text="Creates a stock location for Amazon's fulfilment centre."
    )
    fba_sync_inventory = models.BooleanField(
        "FBA sync inventory", default=False,
        help_text="Read FBA stock levels from Amazon. With a unified account, tick it on the one channel "
        "that controls the shared FBA location only.",
    )
    fba_convert_currency = models.BooleanField(
        "FBA convert currency", default=False,
        help_text="Convert prices one-to-one into the FBA marketplace's currency so FBA accepts the order.",
    )

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    # Who changed which setting and when. The secrets are never copied into history: a replacement is
    # recorded as the change reason "Credentials replaced: <which>". Sync progress changes by .update()
    # and is left out, so history holds what staff set. So is the order watermark: every download moves
    # it, and history would show the move as part of the next staff edit; staff's own edit of it stays
    # in the admin's change log ("Changed Last order sync").
    history = HistoricalRecords(
        excluded_fields=["credentials", "last_order_sync", *CHANNEL_STATE_FIELDS], m2m_fields=[inventory_locations]
    )

    class Meta:
        ordering = ["name"]
        verbose_name = "channel"
        permissions = [("change_channel_credentials", "Can see and replace channel credentials and reauthorise")]
        constraints = [
            models.CheckConstraint(
                condition=Q(max_listed_percentage__isnull=True) | Q(max_listed_percentage__lte=100),
                name="channels_channel_percentage_range",
                violation_error_message="A percentage must be between 0 and 100.",
            ),
            models.CheckConstraint(
                condition=Q(max_listed_quantity__isnull=True) | Q(max_listed_quantity__gte=1),
                name="channels_channel_max_listed_not_zero",
                violation_error_message=MAX_LISTED_VALIDATORS[0].message,
            ),
            models.CheckConstraint(
                condition=Q(latency_days__lte=30), name="channels_channel_latency_range",
                violation_error_message="Latency must be between 0 and 30 days.",
            ),
            models.CheckConstraint(
                condition=Q(utc_offset_hours__gte=-12) & Q(utc_offset_hours__lte=14),
                name="channels_channel_utc_offset_range",
                violation_error_message="The UTC offset must be between -12 and +14 hours.",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        super().clean()
        if self.kind not in CONNECTORS:
            return  # the kind field's own validation names the problem
        connector = self.connector_class
        problems = {
            field: problem for field in connector.allowed_hosts
            if (problem := channel_endpoint_problem(kind=self.kind, field=field, url=getattr(self, field)))
        }
        if problems:
            raise ValidationError(problems)
        if not connector.has_fulfilment_network and (self.fba_enabled or self.fba_sync_inventory):
            raise ValidationError(
                {"fba_enabled": f"{connector.label} channels have no fulfilment network of their own."}
            )
        if "marketplace_id" in connector.account_fields and not self.marketplace_id:
            raise ValidationError({"marketplace_id": f"A {connector.label} channel needs its marketplace id."})
        if others := self.fba_sync_conflicts():
            raise ValidationError({"fba_sync_inventory": (
                f"{', '.join(others)} already syncs this seller's FBA stock. With a unified account only the "
                "channel that controls the shared FBA location syncs it: untick it there first."
            )})

    def seller_channels(self) -> models.QuerySet:
        """The channels of the same kind and seller account, this one included (Amazon's unified accounts)."""
        if not self.seller_id:
            return Channel.objects.filter(pk=self.pk)
        return Channel.objects.filter(kind=self.kind, seller_id=self.seller_id)

    def fba_sync_conflicts(self) -> list[str]:
        """The other channels of the seller that also have FBA Sync Inventory on (there must be none)."""
        if not self.connector_class.has_fulfilment_network or not self.fba_sync_inventory or not self.seller_id:
            return []
        others = self.seller_channels().filter(fba_sync_inventory=True).exclude(pk=self.pk)
        return list(others.order_by("name").values_list("name", flat=True))

    @property
    def connector_class(self):
        """The connector class of this channel's kind: its fields, defaults and capabilities."""
        return connector_class(self.kind)

    @property
    def syncs_inventory(self) -> bool:
        """The three switches that must all be on before any stock is sent."""
        return self.enabled and self.inventory_sync and self.update_inventory

    @property
    def utc_offset(self) -> timedelta:
        return timedelta(hours=float(self.utc_offset_hours))

    @classmethod
    def defaults_for(cls, kind: str) -> dict:
        """The settings a new channel of this kind starts with, as the seeds describe."""
        defaults = {
            "enabled": True,
            "inventory_sync": True,
            "mark_as_despatched": True,
            "update_inventory": True,
            "last_order_sync": NEVER_SYNCED,
            "utc_offset_hours": Decimal("0"),
            "currency": "GBP",
        }
        return defaults | connector_class(kind).channel_defaults()


class OrderStatusMapping(models.Model):
    UNMAPPED = "unmapped"
    HUB_STATUS_CHOICES = [(UNMAPPED, "Unmapped"), *Order.Status.choices]

    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="status_mappings")
    channel_status = models.CharField(max_length=100)
    hub_status = models.CharField(max_length=20, choices=HUB_STATUS_CHOICES, default=UNMAPPED)
    first_seen_at = models.DateTimeField(auto_now_add=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["channel_id", "channel_status"]
        verbose_name = "order status mapping"
        constraints = [
            models.UniqueConstraint(fields=["channel", "channel_status"], name="channels_status_mapping_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.channel_status} → {self.get_hub_status_display()}"


class ShippingMapping(models.Model):
    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="shipping_mappings")
    tag = models.CharField(max_length=255, help_text="The channel's shipping service as it appears on orders.")
    postal_service = models.ForeignKey(
        PostalService, null=True, blank=True, on_delete=models.SET_NULL, help_text="Empty: unmapped."
    )
    first_seen_at = models.DateTimeField(auto_now_add=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["channel_id", "tag"]
        verbose_name = "shipping mapping"
        constraints = [models.UniqueConstraint(fields=["channel", "tag"], name="channels_shipping_mapping_unique")]

    def __str__(self) -> str:
        return f"{self.tag} → {self.postal_service or 'Unmapped'}"


class ChannelListing(models.Model):
    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="listings")
    channel_sku = models.CharField("channel SKU", max_length=100)
    external_id = models.CharField("listing id", max_length=100, blank=True)
    title = models.CharField(max_length=255, blank=True)
    stock_item = models.ForeignKey(
        "inventory.StockItem", null=True, blank=True, on_delete=models.SET_NULL, related_name="listings"
    )
    is_active = models.BooleanField(default=True, help_text="Live on the channel when last downloaded.")
    fulfilled_by_channel = models.BooleanField(
        default=False, help_text="Fulfilled by Amazon: its stock is Amazon's, never sent from the warehouses."
    )

    max_listed_quantity = models.PositiveIntegerField(
        null=True, blank=True, validators=MAX_LISTED_VALIDATORS,
        help_text="Overrides the channel's default. Leave empty to use it."
    )
    max_listed_percentage = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=PERCENTAGE_VALIDATORS, help_text="Overrides the channel's default."
    )
    end_when_quantity = models.PositiveIntegerField(
        null=True, blank=True, validators=QUANTITY_VALIDATORS, help_text="Overrides the channel's default."
    )
    latency_days = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=LATENCY_VALIDATORS, help_text="Overrides the channel's default."
    )
    price_override = models.DecimalField(
        "channel price", max_digits=12, decimal_places=2, null=True, blank=True,
        validators=[MinValueValidator(Decimal("0"), "A price cannot be negative.")],
        help_text="Sell at this price on this channel instead of the stock item's retail price.",
    )

    channel_quantity = models.IntegerField(null=True, blank=True, help_text="As seen at the last listing download.")
    channel_price = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    downloaded_at = models.DateTimeField(null=True, blank=True)
    history = HistoricalRecords(excluded_fields=LISTING_STATE_FIELDS)

    class Meta:
        ordering = ["channel_id", "channel_sku"]
        verbose_name = "listing"
        constraints = [
            models.UniqueConstraint(fields=["channel", "channel_sku"], name="channels_listing_unique_sku"),
            models.CheckConstraint(
                condition=Q(max_listed_percentage__isnull=True) | Q(max_listed_percentage__lte=100),
                name="channels_listing_percentage_range",
                violation_error_message="A percentage must be between 0 and 100.",
            ),
            models.CheckConstraint(
                condition=Q(max_listed_quantity__isnull=True) | Q(max_listed_quantity__gte=1),
                name="channels_listing_max_listed_not_zero",
                violation_error_message=MAX_LISTED_VALIDATORS[0].message,
            ),
            models.CheckConstraint(
                condition=Q(latency_days__isnull=True) | Q(latency_days__lte=30),
                name="channels_listing_latency_range",
                violation_error_message="Latency must be between 0 and 30 days.",
            ),
        ]
        indexes = [
            models.Index(fields=["stock_item", "channel"], name="channels_listing_item_channel"),
            # The listing list sorted by SKU across channels (the only column it sorts by).
            models.Index(fields=["channel_sku", "-id"], name="channels_listing_sku"),
        ]

    def __str__(self) -> str:
        return f"{self.channel.name}: {self.channel_sku}"

    @property
    def last_push(self) -> "ListingPushState | None":
        """What the channel last accepted or refused for this listing; None before its first push."""
        return getattr(self, "push_state", None)

    @property
    def waiting_for_push(self) -> bool:
        # Annotated by channels.selectors.listings_with_push_state; two queries otherwise.
        if hasattr(self, "is_waiting_for_push"):
            return self.is_waiting_for_push
        linked = self.stock_item_id is not None and not self.fulfilled_by_channel
        if linked and ChannelPushMark.objects.filter(channel_id=self.channel_id).exists():
            return True
        return ListingPushMark.objects.filter(listing_id=self.pk).exists()


class ListingPushState(models.Model):
    """What the channel last accepted for a listing, and why it last refused one.

    Apart from the listing because a push rewrites these columns for every listing it sends: on this
    narrow table, covered by no index but its key, PostgreSQL updates the rows in place (heap-only),
    where every update of the listing's row would have to add an entry to each of its search indexes.
    """

    listing = models.OneToOneField(
        ChannelListing, primary_key=True, on_delete=models.CASCADE, related_name="push_state"
    )
    # The listing's channel, copied (a listing never changes channel) so that a plan of the whole channel reads
    # only that channel's rows: joined by listing alone, every plan scanned every channel's push states. Never
    # updated, so its index leaves the updates heap-only; no database constraint, for the same reason as a
    # mark's channel (a foreign-key check per row a first push inserts).
    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="+", db_constraint=False)
    last_pushed_quantity = models.IntegerField(null=True, blank=True)
    last_pushed_price = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    last_pushed_latency = models.PositiveSmallIntegerField(null=True, blank=True)
    last_pushed_at = models.DateTimeField(null=True, blank=True)
    # Defaults in the database too: a refusal is recorded by an upsert that names only the error.
    is_ended = models.BooleanField(
        default=False, db_default=False, help_text="Sent 0 because available fell to End When or below."
    )
    push_error = models.TextField(blank=True, default="", db_default="")
    # How often the channel revised the listing on `revisions_day`, where it caps revisions a day (eBay's 250).
    revisions_day = models.DateField(null=True, blank=True)
    revisions_today = models.PositiveIntegerField(default=0, db_default=0)

    class Meta:
        verbose_name = "listing push state"

    def __str__(self) -> str:
        return f"push state of listing {self.listing_id}"


class ListingPushMark(models.Model):
    """A listing whose quantity, latency or price may have changed since the channel last accepted it.

    A push claims its channel's marks before it computes its plan (`claimed_by_run`), and removes only
    the marks it claimed once it is done; marking again clears the claim, so a change that lands while
    a push is in flight keeps its mark for the next push.
    """

    # No database constraints: marking a whole channel would run a foreign-key check per row (three
    # times the cost of the insert on PostgreSQL); the ORM's cascade removes a deleted listing's mark.
    listing = models.OneToOneField(
        ChannelListing, primary_key=True, on_delete=models.CASCADE, related_name="push_mark", db_constraint=False
    )
    # The listing's channel, copied so a push finds its marks without reading the listings table.
    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="+", db_constraint=False)
    # Not a foreign key: no index to maintain, and a deleted run's claim is just stale.
    claimed_by_run = models.BigIntegerField(null=True, blank=True)

    class Meta:
        verbose_name = "listing waiting for a push"

    def __str__(self) -> str:
        return f"push mark of listing {self.listing_id}"


class ChannelPushMark(models.Model):
    """Every listing of the channel may have changed (its rules or location mapping did): one row stands for
    a mark on each of them, so a rule change costs one write whatever the size of the catalogue. Claimed
    and settled by a push like a listing's mark; the push recomputes the whole channel."""

    channel = models.OneToOneField(Channel, primary_key=True, on_delete=models.CASCADE, related_name="push_mark")
    claimed_by_run = models.BigIntegerField(null=True, blank=True)

    class Meta:
        verbose_name = "channel waiting for a full recompute"

    def __str__(self) -> str:
        return f"push mark of channel {self.channel_id}"


class SyncRun(models.Model):
    class Kind(models.TextChoices):
        ORDERS = "orders", "Order download"
        INVENTORY = "inventory", "Inventory push"
        LISTINGS = "listings", "Listing download"
        DESPATCH = "despatch", "Despatch / cancellation"
        FBA = "fba", "FBA inventory"

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        SUCCESS = "success", "Success"
        PARTIAL = "partial", "Partial"
        FAILED = "failed", "Failed"

    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="sync_runs")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.RUNNING)
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    processed = models.PositiveIntegerField(default=0, help_text="Records handled without error.")
    failed = models.PositiveIntegerField(default=0, help_text="Records that could not be handled.")
    skipped = models.PositiveIntegerField(default=0)
    errors = models.JSONField(default=list, blank=True, help_text="[{record_id, reason}] per failed record.")
    error = models.TextField(blank=True, help_text="Why the run failed as a whole.")

    class Meta:
        ordering = ["-started_at", "-id"]
        indexes = [models.Index(fields=["channel", "kind", "-started_at"], name="channels_syncrun_latest")]

    def __str__(self) -> str:
        return f"{self.channel} {self.get_kind_display()} {self.started_at:%Y-%m-%d %H:%M} {self.status}"


class FulfilmentLocation(models.Model):
    """The stock location of a channel's own fulfilment network (Amazon FBA): its stock is the channel's count,
    read from the channel, and orders reallocated there are sent to the channel to fulfil."""

    channel = models.ForeignKey(Channel, on_delete=models.PROTECT, related_name="fulfilment_locations")
    location = models.OneToOneField("inventory.Location", on_delete=models.CASCADE, related_name="fulfilment")

    class Meta:
        ordering = ["location_id"]

    def __str__(self) -> str:
        return f"{self.location} ({self.channel})"

    def clean(self) -> None:
        if self.location_id is not None and self.location.kind != Location.Kind.EXTERNAL:
            raise ValidationError({"location": "Only an external fulfilment centre belongs to a channel."})


class FulfilmentOrder(models.Model):
    """An order sent to the fulfilment network of the channel whose location holds its stock (Amazon's
    multi-channel fulfilment), and where it stands there. An order at no such location has none."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Waiting to be sent to Amazon"
        # Claimed by the worker asking Amazon right now, so that it holds no row lock during the call.
        SENDING = "sending", "Being sent to Amazon"
        RECEIVED = "received", "Received by Amazon"
        PLANNING = "planning", "Amazon is planning it"
        PROCESSING = "processing", "Amazon is picking and packing it"
        COMPLETE = "complete", "Shipped by Amazon"
        UNFULFILLABLE = "unfulfillable", "Amazon cannot fulfil it"
        CANCELLED = "cancelled", "Cancelled at Amazon"
        REFUSED = "refused", "Refused by Amazon"

    # Amazon holds these: the order may not be processed, cancelled or moved here until Amazon is done.
    WITH_AMAZON = (Status.RECEIVED, Status.PLANNING, Status.PROCESSING)
    # Amazon has given up on these: the order may be sent again, under a new fulfilment order id.
    RESENDABLE = (Status.REFUSED, Status.UNFULFILLABLE, Status.CANCELLED)

    order = models.OneToOneField(Order, on_delete=models.CASCADE, related_name="fulfilment_order")
    status = models.CharField("FBA fulfilment", max_length=20, choices=Status.choices, default=Status.QUEUED)
    fulfilment_order_id = models.CharField(
        "FBA fulfilment order id", max_length=40,
        help_text="The id this order was sent to Amazon's multi-channel fulfilment under.",
    )
    error = models.TextField("FBA fulfilment error", blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["order_id"]
        indexes = [models.Index(fields=["status"], name="channels_fulfilment_status")]

    def __str__(self) -> str:
        return f"{self.order} ({self.get_status_display()})"
