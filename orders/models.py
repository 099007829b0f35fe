from decimal import Decimal

from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q

from orders.validators import validate_currency


class PostalService(models.Model):
    name = models.CharField(max_length=100, unique=True)
    carrier_code = models.CharField(
        max_length=50, blank=True, help_text="The carrier as the channels know it, e.g. Royal Mail, DPD."
    )
    tracking_url_template = models.CharField(
        max_length=255, blank=True, help_text="Use {tracking_number} where the tracking number goes."
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def tracking_url(self, tracking_number: str) -> str:
        if not self.tracking_url_template or not tracking_number:
            return ""
        return self.tracking_url_template.replace("{tracking_number}", tracking_number)


class Order(models.Model):
    class ChannelTold(models.TextChoices):
        """What the order's channel heard of its despatch or cancellation here."""

        NOT_NEEDED = "not_needed", "Not needed"
        TELLING = "telling", "Telling the channel"
        TOLD = "told", "Told"
        REFUSED = "refused", "Refused"

    class Status(models.TextChoices):
        UNPAID = "unpaid", "Unpaid"
        PAID = "paid", "Paid"
        PENDING = "pending", "Pending"
        PROCESSED = "processed", "Processed (shipped)"
        CANCELLED = "cancelled", "Cancelled"

    OPEN_STATUSES = (Status.UNPAID, Status.PAID, Status.PENDING)

    channel = models.ForeignKey("channels.Channel", on_delete=models.PROTECT, related_name="orders")
    channel_order_id = models.CharField("channel order id", max_length=100)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PAID, db_index=True)
    channel_status = models.CharField(max_length=100, blank=True)
    is_paid = models.BooleanField(default=False)
    fulfilled_by_channel = models.BooleanField(
        default=False, help_text="Fulfilled by the channel itself (Amazon AFN): never despatched from here."
    )
    currency = models.CharField(max_length=3, default="GBP", validators=[validate_currency])
    received_at = models.DateTimeField(help_text="When the buyer placed the order, in UTC plus the channel's offset.")
    channel_updated_at = models.DateTimeField(null=True, blank=True)

    buyer_name = models.CharField(max_length=255, blank=True)
    buyer_email = models.CharField(max_length=255, blank=True)
    ship_name = models.CharField("ship to name", max_length=255, blank=True)
    ship_line1 = models.CharField("address line 1", max_length=255, blank=True)
    ship_line2 = models.CharField("address line 2", max_length=255, blank=True)
    ship_city = models.CharField("town / city", max_length=100, blank=True)
    ship_region = models.CharField("county / region", max_length=100, blank=True)
    ship_postcode = models.CharField("postcode", max_length=20, blank=True)
    ship_country = models.CharField("country (ISO 2)", max_length=2, blank=True)
    ship_phone = models.CharField("phone", max_length=50, blank=True)

    channel_shipping_tag = models.CharField(max_length=255, blank=True)
    postal_service = models.ForeignKey(PostalService, null=True, blank=True, on_delete=models.SET_NULL)
    fulfilment_location = models.ForeignKey(
        "inventory.Location", null=True, blank=True, on_delete=models.PROTECT, related_name="orders"
    )
    tracking_number = models.CharField(max_length=100, blank=True)

    subtotal = models.DecimalField(max_digits=12, decimal_places=2, default=Decimal("0"))
    shipping_cost = models.DecimalField(max_digits=12, decimal_places=2, default=Decimal("0"))
    tax = models.DecimalField(max_digits=12, decimal_places=2, default=Decimal("0"))
    total = models.DecimalField(max_digits=12, decimal_places=2, default=Decimal("0"))

    has_unlinked_items = models.BooleanField(
        default=False, help_text="Some items match no stock item: link the listing or the SKU to reserve stock."
    )
    processed_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    despatch_sent_at = models.DateTimeField(null=True, blank=True)
    despatch_error = models.TextField(blank=True)
    cancellation_sent_at = models.DateTimeField(null=True, blank=True)
    cancellation_error = models.TextField(blank=True)
    cancellation_reason = models.CharField(
        max_length=255, blank=True, help_text="The reason given when it was cancelled here, as the channel is sent it.",
    )
    channel_told = models.CharField(
        "channel told", max_length=12, choices=ChannelTold.choices, default=ChannelTold.NOT_NEEDED, db_index=True,
    )
    # When channel_told last changed: a despatch still "telling" long after it was asked for was lost on the way.
    channel_told_at = models.DateTimeField(null=True, blank=True)
    # Which import inserted the row: with INSERT ... ON CONFLICT DO NOTHING, a worker finds the orders
    # it created (and must reserve stock for) by its own batch token, whoever else imports the same window.
    import_batch = models.UUIDField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-received_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["channel", "channel_order_id"], name="orders_order_unique_per_channel"),
            models.CheckConstraint(
                condition=Q(subtotal__gte=0) & Q(shipping_cost__gte=0) & Q(tax__gte=0) & Q(total__gte=0),
                name="orders_order_amounts_not_negative",
                violation_error_message="Order amounts cannot be negative.",
            ),
        ]
        indexes = [
            models.Index(fields=["status", "fulfilment_location"], name="orders_order_open_by_location"),
            models.Index(fields=["channel", "-received_at"], name="orders_order_channel_received"),
            # The order list's default sort: without it PostgreSQL sorts every order for each page.
            models.Index(fields=["-received_at", "-id"], name="orders_order_newest"),
            models.Index(fields=["channel_order_id", "-id"], name="orders_order_by_number"),
        ]

    def __str__(self) -> str:
        return f"{self.channel_order_id}"

    @property
    def is_open(self) -> bool:
        return self.status in self.OPEN_STATUSES


class OrderItem(models.Model):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="items")
    stock_item = models.ForeignKey(
        "inventory.StockItem", null=True, blank=True, on_delete=models.PROTECT, related_name="order_items"
    )
    channel_line_id = models.CharField(max_length=100)
    channel_sku = models.CharField("channel SKU", max_length=100)
    title = models.CharField(max_length=255, blank=True)
    quantity = models.PositiveIntegerField(validators=[MinValueValidator(1)])
    unit_price = models.DecimalField(max_digits=12, decimal_places=2, default=Decimal("0"))
    tax = models.DecimalField(max_digits=12, decimal_places=2, default=Decimal("0"))

    class Meta:
        ordering = ["order_id", "id"]
        constraints = [
            models.UniqueConstraint(fields=["order", "channel_line_id"], name="orders_item_unique_line"),
            models.CheckConstraint(
                condition=Q(quantity__gt=0),
                name="orders_item_quantity_positive",
                violation_error_message="An order line needs a quantity of at least 1.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} × {self.channel_sku}"

    @property
    def is_linked(self) -> bool:
        return self.stock_item_id is not None
