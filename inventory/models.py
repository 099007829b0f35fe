from decimal import Decimal

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q


class Location(models.Model):
    class Kind(models.TextChoices):
        WAREHOUSE = "warehouse", "Warehouse"
        # A fulfilment centre run by someone else (a channel's own network): its stock is their count.
        EXTERNAL = "fba", "External fulfilment centre"

    name = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.WAREHOUSE)
    is_default = models.BooleanField(
        default=False, help_text="Orders are allocated here unless they are fulfilled by the channel."
    )

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["is_default"], condition=Q(is_default=True), name="inventory_one_default_location"
            ),
            models.CheckConstraint(
                condition=~Q(kind="fba") | Q(is_default=False),
                name="inventory_fba_location_not_default",
                violation_error_message="An FBA location cannot be the default warehouse.",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class StockItem(models.Model):
    sku = models.CharField("SKU", max_length=100, unique=True)
    title = models.CharField(max_length=255)
    barcode = models.CharField(max_length=50, blank=True, db_index=True)
    retail_price = models.DecimalField(
        max_digits=12, decimal_places=2, default=Decimal("0"), validators=[MinValueValidator(Decimal("0"))]
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["sku"]
        constraints = [
            models.CheckConstraint(
                condition=Q(retail_price__gte=0),
                name="inventory_stockitem_price_not_negative",
                violation_error_message="The retail price cannot be negative.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.sku} — {self.title}"


class KitComponent(models.Model):
    """One part of a kit (a bundle, a gift set, a 3-pack): the kit is sold, its components are stocked.

    A kit's availability at a warehouse is the fewest whole kits its components make there, and its orders
    hold and take its components. A component is never a kit itself, and a kit never contains itself.
    """

    kit = models.ForeignKey(StockItem, on_delete=models.CASCADE, related_name="components")
    component = models.ForeignKey(StockItem, on_delete=models.PROTECT, related_name="in_kits")
    quantity = models.IntegerField(
        "quantity per kit", default=1, validators=[MinValueValidator(1, "A kit needs at least 1 of each component.")]
    )

    class Meta:
        verbose_name = "kit component"
        ordering = ["kit_id", "component_id"]
        constraints = [
            models.UniqueConstraint(fields=["kit", "component"], name="inventory_kit_component_once"),
            models.CheckConstraint(
                condition=~Q(kit=models.F("component")), name="inventory_kit_not_itself",
                violation_error_message="A kit cannot contain itself.",
            ),
            models.CheckConstraint(
                condition=Q(quantity__gte=1), name="inventory_kit_quantity_positive",
                violation_error_message="A kit needs at least 1 of each component.",
            ),
        ]
        indexes = [models.Index(fields=["component", "kit"], name="inventory_kit_by_component")]

    def __str__(self) -> str:
        return f"{self.quantity} x {self.component_id} in {self.kit_id}"


class StockItemProperty(models.Model):
    """An extended property, e.g. `Latency` = 3 for product-based latency."""

    stock_item = models.ForeignKey(StockItem, on_delete=models.CASCADE, related_name="properties")
    name = models.CharField(max_length=100)
    value = models.CharField(max_length=255, blank=True)

    class Meta:
        verbose_name = "extended property"
        verbose_name_plural = "extended properties"
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["stock_item", "name"], name="inventory_property_unique_name"),
        ]

    def __str__(self) -> str:
        return f"{self.name}={self.value}"


class StockLevel(models.Model):
    """Physical stock of one item at one location, and how much of it open orders hold.

    `in_open_orders` is a counter kept by the reservation services under row lock, so that
    availability is a column subtraction rather than an aggregate over order lines.
    """

    stock_item = models.ForeignKey(StockItem, on_delete=models.CASCADE, related_name="levels")
    location = models.ForeignKey(Location, on_delete=models.PROTECT, related_name="levels")
    quantity = models.IntegerField(default=0, validators=[MinValueValidator(0, "Physical stock cannot go below zero.")])
    in_open_orders = models.IntegerField(
        default=0, validators=[MinValueValidator(0, "Open orders cannot hold a negative quantity.")]
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["stock_item_id", "location_id"]
        constraints = [
            models.UniqueConstraint(fields=["stock_item", "location"], name="inventory_level_unique_item_location"),
            models.CheckConstraint(
                condition=Q(quantity__gte=0),
                name="inventory_level_quantity_not_negative",
                violation_error_message="Physical stock cannot go below zero.",
            ),
            models.CheckConstraint(
                condition=Q(in_open_orders__gte=0),
                name="inventory_level_open_orders_not_negative",
                violation_error_message="Open orders cannot hold a negative quantity.",
            ),
        ]
        indexes = [models.Index(fields=["location", "stock_item"], name="inventory_level_loc_item")]

    def __str__(self) -> str:
        return f"{self.stock_item.sku} @ {self.location.name}: {self.quantity}"

    @property
    def available(self) -> int:
        """May be negative: an oversold item shows as such, and channels get 0."""
        return self.quantity - self.in_open_orders


class StockMovement(models.Model):
    """The ledger: every change of physical stock writes one row."""

    class Reason(models.TextChoices):
        ADJUSTMENT = "adjustment", "Manual adjustment"
        STOCK_COUNT = "stock_count", "Stock count"
        IMPORT = "import", "Stock import"
        DESPATCH = "despatch", "Order despatched"
        FBA_SYNC = "fba_sync", "FBA inventory sync"
        DEMO = "demo", "Demo data"

    stock_item = models.ForeignKey(StockItem, on_delete=models.PROTECT, related_name="movements")
    location = models.ForeignKey(Location, on_delete=models.PROTECT, related_name="movements")
    delta = models.IntegerField()
    quantity_after = models.IntegerField()
    reason = models.CharField(max_length=20, choices=Reason.choices)
    reference = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    # The kit an order sold when this component left with it (a despatch of a kit order).
    kit = models.ForeignKey(
        StockItem, null=True, blank=True, on_delete=models.PROTECT, related_name="kit_movements",
        help_text="Sold as part of this kit.",
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(delta=0), name="inventory_movement_delta_not_zero",
                violation_error_message="A movement must change the stock.",
            ),
            models.CheckConstraint(
                condition=Q(quantity_after__gte=0), name="inventory_movement_result_not_negative",
                violation_error_message="Physical stock cannot go below zero.",
            ),
        ]
        indexes = [
            models.Index(fields=["stock_item", "-created_at"], name="inventory_movement_item_time"),
            # The ledger's default sort, for the movement list's pages.
            models.Index(fields=["-created_at", "-id"], name="inventory_movement_newest"),
        ]

    def __str__(self) -> str:
        return f"{self.stock_item_id}@{self.location_id} {self.delta:+d} ({self.reason})"

