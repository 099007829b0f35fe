from django.contrib import admin
from django.db.models import F, Sum
from django.db.models.functions import Coalesce

from inventory.models import Location, StockItem, StockItemProperty, StockLevel, StockMovement


@admin.register(Location)
class LocationAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "is_default", "channel"]
    list_filter = ["kind", "is_default"]
    search_fields = ["name"]
    list_select_related = ["channel"]


class StockLevelInline(admin.TabularInline):
    model = StockLevel
    extra = 0
    fields = ["location", "quantity", "in_open_orders", "available"]
    readonly_fields = ["quantity", "in_open_orders", "available"]
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        # Physical stock changes only through the ledger (stock adjustments and imports).
        return False

    @admin.display(description="available")
    def available(self, obj: StockLevel) -> int:
        return obj.available


class StockItemPropertyInline(admin.TabularInline):
    model = StockItemProperty
    extra = 1


@admin.register(StockItem)
class StockItemAdmin(admin.ModelAdmin):
    list_display = ["sku", "title", "barcode", "retail_price", "stock_quantity", "stock_in_open_orders", "available"]
    search_fields = ["sku", "title", "barcode"]
    inlines = [StockLevelInline, StockItemPropertyInline]
    readonly_fields = ["created_at", "updated_at"]
    list_per_page = 50
    show_full_result_count = False

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(
                total_quantity=Coalesce(Sum("levels__quantity"), 0),
                total_in_open_orders=Coalesce(Sum("levels__in_open_orders"), 0),
            )
            .annotate(total_available=F("total_quantity") - F("total_in_open_orders"))
        )

    @admin.display(description="stock", ordering="total_quantity")
    def stock_quantity(self, obj: StockItem) -> int:
        return obj.total_quantity

    @admin.display(description="in open orders", ordering="total_in_open_orders")
    def stock_in_open_orders(self, obj: StockItem) -> int:
        return obj.total_in_open_orders

    @admin.display(description="available", ordering="total_available")
    def available(self, obj: StockItem) -> int:
        return obj.total_available


class AvailabilityFilter(admin.SimpleListFilter):
    title = "availability"
    parameter_name = "availability"

    def lookups(self, request, model_admin):
        return [("oversold", "Oversold (available below 0)"), ("out", "Out of stock"), ("in", "In stock")]

    def queryset(self, request, queryset):
        available = F("quantity") - F("in_open_orders")
        if self.value() == "oversold":
            return queryset.alias(a=available).filter(a__lt=0)
        if self.value() == "out":
            return queryset.alias(a=available).filter(a__lte=0)
        if self.value() == "in":
            return queryset.alias(a=available).filter(a__gt=0)
        return queryset


@admin.register(StockLevel)
class StockLevelAdmin(admin.ModelAdmin):
    list_display = ["stock_item", "location", "quantity", "in_open_orders", "available"]
    list_filter = ["location", AvailabilityFilter]
    search_fields = ["stock_item__sku", "stock_item__title"]
    list_select_related = ["stock_item", "location"]
    readonly_fields = ["stock_item", "location", "quantity", "in_open_orders", "updated_at"]
    show_full_result_count = False

    def has_add_permission(self, request) -> bool:
        return False

    @admin.display(description="available")
    def available(self, obj: StockLevel) -> int:
        return obj.available


@admin.register(StockMovement)
class StockMovementAdmin(admin.ModelAdmin):
    list_display = ["created_at", "stock_item", "location", "delta", "quantity_after", "reason", "reference", "user"]
    list_filter = ["reason", "location"]
    search_fields = ["stock_item__sku", "reference"]
    list_select_related = ["stock_item", "location", "user"]
    date_hierarchy = "created_at"
    show_full_result_count = False

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
