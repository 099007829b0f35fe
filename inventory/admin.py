from urllib.parse import urlencode

from django.contrib import admin
from django.core.exceptions import ValidationError
from django.db.models import Exists, OuterRef
from django.forms.models import BaseInlineFormSet
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from inventory.models import KitComponent, Location, StockItem, StockItemProperty, StockLevel, StockMovement
from inventory.search import StockItemSearchMixin
from inventory.selectors import (
    AVAILABILITY,
    stock_items_with_totals,
    stock_levels_by_availability,
    stock_movements_for_item,
)
from inventory.services import (
    kit_components_problems,
    kit_components_set,
    stock_changed_announce,
    stock_item_save,
)
from inventory.views import (
    KIT_PERMISSION,
    kit_import_view,
    stock_count_view,
    stock_import_view,
    stock_level_change_view,
)

STOCK_CHANGE_PERMISSION = "inventory.change_stocklevel"


def stock_change_link(level: StockLevel, *, back: str = "") -> str:
    """The "Change stock" link of a level, to the small form that adds, removes or sets it with a reason."""
    if level.location.kind == Location.Kind.EXTERNAL:
        # The channel's count, set by its sync.
        return "—"
    query = {"location": level.location_id, **({"next": back} if back else {})}
    url = reverse("admin:inventory_stockitem_stock_change", args=[level.stock_item_id])
    return format_html('<a href="{}?{}">Change stock</a>', url, urlencode(query))


@admin.register(Location)
class LocationAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "is_default"]
    list_filter = ["kind", "is_default"]
    search_fields = ["name"]

    def get_list_display(self, request):
        if request.user.has_perm(STOCK_CHANGE_PERMISSION):
            return [*self.list_display, "stock_count"]
        return self.list_display

    @admin.display(description="stock count")
    def stock_count(self, location: Location) -> str:
        if location.kind == Location.Kind.EXTERNAL:
            return "—"
        url = reverse("admin:inventory_stocklevel_count")
        return format_html('<a href="{}?{}">Count stock</a>', url, urlencode({"location": location.pk}))


class StockLevelInline(admin.TabularInline):
    model = StockLevel
    extra = 0
    fields = ["location", "quantity", "in_open_orders", "available"]
    readonly_fields = ["quantity", "in_open_orders", "available", "change_stock"]
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        # Physical stock changes only through the ledger (the Change stock form, counts and imports).
        return False

    def get_fields(self, request, obj=None):
        if request.user.has_perm(STOCK_CHANGE_PERMISSION):
            return [*self.fields, "change_stock"]
        return self.fields

    @admin.display(description="available")
    def available(self, obj: StockLevel) -> int:
        return obj.available

    @admin.display(description="change")
    def change_stock(self, obj: StockLevel) -> str:
        return stock_change_link(obj)


class StockItemPropertyInline(admin.TabularInline):
    model = StockItemProperty
    extra = 1


def _kit_parts_of(formset) -> list[tuple[StockItem, int]]:
    """The components the formset's rows leave, as (stock item, quantity per kit)."""
    return [
        (form.cleaned_data["component"], form.cleaned_data["quantity"])
        for form in formset.forms
        if form.cleaned_data and not form.cleaned_data.get("DELETE") and form.cleaned_data.get("component")
    ]


class KitComponentFormSet(BaseInlineFormSet):
    def clean(self):
        super().clean()
        if any(self.errors):
            return
        problems = kit_components_problems(kit=self.instance, components=_kit_parts_of(self))
        if problems:
            raise ValidationError(problems)

    def save(self, commit=True):
        # Through the service, not row by row: what open orders hold of the kit moves to its new components.
        self.new_objects, self.changed_objects, self.deleted_objects = [], [], []
        if self.has_changed():
            kit_components_set(
                kit_id=self.instance.pk, components=[(item.pk, quantity) for item, quantity in _kit_parts_of(self)]
            )
        return []


class KitComponentInline(admin.TabularInline):
    """A kit's components: selling the kit holds and takes them, and its availability is what they make."""

    model = KitComponent
    fk_name = "kit"
    formset = KitComponentFormSet
    fields = ["component", "quantity"]
    autocomplete_fields = ["component"]
    extra = 1
    verbose_name = "kit component"
    verbose_name_plural = "kit components (a kit has no stock of its own: each one sold takes these)"

    # What a stock item is made of is part of the stock item: whoever may change the item may change its kit.
    def has_view_permission(self, request, obj=None) -> bool:
        return request.user.has_perm("inventory.view_stockitem")

    def has_add_permission(self, request, obj=None) -> bool:
        return request.user.has_perm(KIT_PERMISSION)

    def has_change_permission(self, request, obj=None) -> bool:
        return request.user.has_perm(KIT_PERMISSION)

    def has_delete_permission(self, request, obj=None) -> bool:
        return request.user.has_perm(KIT_PERMISSION)


class KitFilter(admin.SimpleListFilter):
    title = "kit"
    parameter_name = "kit"

    def lookups(self, request, model_admin):
        return [("yes", "Kits"), ("component", "Components of a kit"), ("no", "Not a kit")]

    def queryset(self, request, queryset):
        is_kit = Exists(KitComponent.objects.filter(kit_id=OuterRef("pk")))
        in_kit = Exists(KitComponent.objects.filter(component_id=OuterRef("pk")))
        return {"yes": queryset.filter(is_kit), "component": queryset.filter(in_kit),
                "no": queryset.exclude(is_kit)}.get(self.value(), queryset)


class StockScreensMixin:
    """The stock count and import pages' URLs, linked from the change lists."""

    def get_urls(self):
        def view(function):
            return self.admin_site.admin_view(lambda request, **kwargs: function(request, self, **kwargs))

        prefix = f"{self.opts.app_label}_{self.opts.model_name}"
        return [
            path("import/", view(stock_import_view), name=f"{prefix}_import"),
            path("count/", view(stock_count_view), name=f"{prefix}_count"),
            *super().get_urls(),
        ]

    def changelist_view(self, request, extra_context=None):
        if request.user.has_perm(STOCK_CHANGE_PERMISSION):
            extra_context = {
                **(extra_context or {}),
                "stock_import_url": reverse("admin:inventory_stocklevel_import"),
                "stock_count_url": reverse("admin:inventory_stocklevel_count"),
            }
        return super().changelist_view(request, extra_context=extra_context)


@admin.register(StockItem)
class StockItemAdmin(StockScreensMixin, admin.ModelAdmin):
    list_display = ["sku", "title", "barcode", "retail_price", "stock_quantity", "stock_in_open_orders", "available"]
    search_fields = ["sku", "title", "barcode"]
    search_help_text = "SKU, title or barcode."
    # The totals are sums over every location: sorting by them sums the whole catalogue. The stock level
    # list filters by availability (oversold, out of stock) instead.
    sortable_by = ["sku", "title", "barcode", "retail_price"]
    list_filter = [KitFilter]
    inlines = [StockLevelInline, KitComponentInline, StockItemPropertyInline]
    readonly_fields = ["created_at", "updated_at", "movement_ledger"]
    list_per_page = 50
    show_full_result_count = False
    change_list_template = "admin/inventory/stock_change_list.html"

    def get_urls(self):
        view = self.admin_site.admin_view(
            lambda request, stock_item_id: stock_level_change_view(request, self, stock_item_id)
        )
        kits = self.admin_site.admin_view(lambda request: kit_import_view(request, self))
        return [
            path("<int:stock_item_id>/stock/", view, name="inventory_stockitem_stock_change"),
            path("kits/import/", kits, name="inventory_stockitem_kit_import"),
            *super().get_urls(),
        ]

    def changelist_view(self, request, extra_context=None):
        if request.user.has_perm(KIT_PERMISSION):
            extra_context = {**(extra_context or {}), "kit_import_url": reverse("admin:inventory_stockitem_kit_import")}
        return super().changelist_view(request, extra_context=extra_context)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        if request.user.has_perm(STOCK_CHANGE_PERMISSION) and str(object_id).isdigit():
            extra_context = {
                **(extra_context or {}),
                "stock_change_url": reverse("admin:inventory_stockitem_stock_change", args=[object_id]),
            }
        return super().change_view(request, object_id, form_url=form_url, extra_context=extra_context)

    def save_model(self, request, obj, form, change):
        # Through the service, so that a price change reaches the channels with Price Change on.
        stock_item_save(stock_item=obj, changed_fields=form.changed_data if change else ())

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        # An extended property may be a product's latency: let the channels recompute.
        if change and any(fs.model is StockItemProperty and fs.has_changed() for fs in formsets):
            stock_changed_announce(stock_item_ids=[form.instance.pk])

    @admin.display(description="stock movements (latest 50)")
    def movement_ledger(self, obj: StockItem) -> str:
        if obj.pk is None:
            return "—"
        rows = [
            (
                f"{movement.created_at:%Y-%m-%d %H:%M}", movement.location.name, f"{movement.delta:+d}",
                movement.quantity_after, movement.get_reason_display(), movement.reference,
                movement.user.get_username() if movement.user else "", _sold_as(movement, obj),
            )
            for movement in stock_movements_for_item(stock_item_id=obj.pk)
        ]
        if not rows:
            return "No movements yet."
        labels = ("When", "Location", "Change", "After", "Reason", "Reference", "User", "Sold as")
        header = format_html_join("", "<th>{}</th>", ((label,) for label in labels))
        body = format_html_join(
            "", "<tr>" + "<td>{}</td>" * len(labels) + "</tr>", rows
        )
        return format_html("<table><thead><tr>{}</tr></thead><tbody>{}</tbody></table>", header, body)

    def get_queryset(self, request):
        return stock_items_with_totals(super().get_queryset(request))

    @admin.display(description="stock")
    def stock_quantity(self, obj: StockItem) -> int:
        return obj.total_quantity

    @admin.display(description="in open orders")
    def stock_in_open_orders(self, obj: StockItem) -> int:
        return obj.total_in_open_orders

    @admin.display(description="available")
    def available(self, obj: StockItem) -> int:
        return obj.total_available


def _sold_as(movement: StockMovement, item: StockItem) -> str:
    """On a component's page the kit it left in; on a kit's page the component that left."""
    if movement.kit_id is None:
        return ""
    if movement.kit_id == item.pk:
        return f"{movement.stock_item.sku} (part of this kit)"
    return f"kit {movement.kit.sku}"


class AvailabilityFilter(admin.SimpleListFilter):
    title = "availability"
    parameter_name = "availability"

    def lookups(self, request, model_admin):
        return [("oversold", "Oversold (available below 0)"), ("out", "Out of stock"), ("in", "In stock")]

    def queryset(self, request, queryset):
        if self.value() in AVAILABILITY:
            return stock_levels_by_availability(queryset, availability=self.value())
        return queryset


@admin.register(StockLevel)
class StockLevelAdmin(StockItemSearchMixin, StockScreensMixin, admin.ModelAdmin):
    change_list_template = "admin/inventory/stock_change_list.html"
    list_display = ["stock_item", "location", "quantity", "in_open_orders", "available"]
    list_filter = ["location", AvailabilityFilter]
    search_fields = ["stock_item__sku", "stock_item__title"]
    search_help_text = "The stock item's SKU or title."
    sortable_by = ["stock_item", "quantity", "in_open_orders"]
    list_select_related = ["stock_item", "location"]
    readonly_fields = ["stock_item", "location", "quantity", "in_open_orders", "updated_at"]
    show_full_result_count = False

    def has_add_permission(self, request) -> bool:
        return False

    def get_list_display(self, request):
        if not request.user.has_perm(STOCK_CHANGE_PERMISSION):
            return self.list_display
        # Back to this page of the list, with its filters, once the change is saved.
        back = request.get_full_path()

        @admin.display(description="change")
        def change_stock(level: StockLevel) -> str:
            return stock_change_link(level, back=back)

        return [*self.list_display, change_stock]

    @admin.display(description="available")
    def available(self, obj: StockLevel) -> int:
        return obj.available


@admin.register(StockMovement)
class StockMovementAdmin(StockItemSearchMixin, admin.ModelAdmin):
    list_display = [
        "created_at", "stock_item", "location", "delta", "quantity_after", "reason", "reference", "kit", "user"
    ]
    list_filter = ["reason", "location"]
    search_fields = ["stock_item__sku", "reference"]
    search_help_text = "The stock item's SKU, or the movement's reference (an order number, an import)."
    # The ledger is read newest first; other sorts would order every movement ever made.
    sortable_by = ["created_at"]
    list_select_related = ["stock_item", "location", "user", "kit"]
    date_hierarchy = "created_at"
    show_full_result_count = False

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
