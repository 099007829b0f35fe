"""The listings of every channel: their link to a stock item, their overrides and what was last sent."""

from __future__ import annotations

from django.contrib import admin, messages
from django.urls import reverse
from django.utils.html import format_html
from simple_history.admin import SimpleHistoryAdmin

from channels.admin.filters import DriftFilter, LinkStateFilter, WaitingForPushFilter
from channels.admin.presentation import progress_bar
from channels.dashboard import listing_download_channels
from channels.models import ChannelListing
from channels.selectors import listing_drift, listings_with_push_state
from channels.services import listing_create, listing_overrides_update, listings_link_by_sku
from inventory.search import StockItemSearchMixin


@admin.register(ChannelListing)
class ChannelListingAdmin(StockItemSearchMixin, SimpleHistoryAdmin):
    list_display = [
        "channel_sku", "channel", "title", "link", "channel_quantity", "last_pushed_quantity", "drift",
        "last_pushed_at", "is_ended", "waiting_for_push",
    ]
    list_filter = ["channel", LinkStateFilter, DriftFilter, "push_state__is_ended", WaitingForPushFilter,
                   "fulfilled_by_channel", "is_active"]
    search_fields = ["channel_sku", "title", "external_id", "stock_item__sku"]
    search_help_text = "Channel SKU, title or listing ID, or the linked stock item's SKU."
    # Sorting half a million rows by an unindexed column takes ~0.5 s a page: filters narrow the list instead.
    sortable_by = ["channel_sku"]
    list_select_related = ["channel", "stock_item"]
    autocomplete_fields = ["stock_item"]
    show_full_result_count = False
    actions = ["auto_link_by_sku"]
    change_list_template = "admin/channels/channellisting/change_list.html"
    fieldsets = [
        (None, {"fields": ["channel", "channel_sku", "external_id", "title", "stock_item", "is_active",
                           "fulfilled_by_channel"]}),
        ("Overrides of the channel's defaults", {
            "fields": ["max_listed_quantity", "max_listed_percentage", "end_when_quantity", "latency_days",
                       "price_override"],
            "description": "Empty: the channel's default applies. The stock item page shows what this listing "
            "gets and why.",
        }),
        ("Sync state", {"fields": [
            ("channel_quantity", "channel_price", "downloaded_at"),
            ("last_pushed_quantity", "last_pushed_latency", "last_pushed_price", "last_pushed_at"),
            "is_ended", "waiting_for_push", "push_error",
        ]}),
    ]
    readonly_fields = [
        "channel_quantity", "channel_price", "downloaded_at", "last_pushed_quantity", "last_pushed_latency",
        "last_pushed_price", "last_pushed_at", "is_ended", "waiting_for_push", "push_error",
    ]

    def get_readonly_fields(self, request, obj=None):
        # A listing is the channel's record of a product: its marks and push state carry that channel.
        return [*self.readonly_fields, "channel"] if obj is not None else self.readonly_fields

    def get_queryset(self, request):
        # The changelist applies list_select_related only to a queryset without select_related.
        return listings_with_push_state(super().get_queryset(request)).select_related(*self.list_select_related)

    @admin.display(description="last pushed quantity")
    def last_pushed_quantity(self, obj: ChannelListing) -> int | None:
        return obj.last_push.last_pushed_quantity if obj.last_push else None

    @admin.display(description="last pushed latency")
    def last_pushed_latency(self, obj: ChannelListing) -> int | None:
        return obj.last_push.last_pushed_latency if obj.last_push else None

    @admin.display(description="last pushed price")
    def last_pushed_price(self, obj: ChannelListing):
        return obj.last_push.last_pushed_price if obj.last_push else None

    @admin.display(description="last pushed at")
    def last_pushed_at(self, obj: ChannelListing):
        return obj.last_push.last_pushed_at if obj.last_push else None

    @admin.display(description="ended", boolean=True)
    def is_ended(self, obj: ChannelListing) -> bool:
        return bool(obj.last_push and obj.last_push.is_ended)

    @admin.display(description="waiting for a push", boolean=True)
    def waiting_for_push(self, obj: ChannelListing) -> bool:
        return obj.waiting_for_push

    @admin.display(description="last push refused")
    def push_error(self, obj: ChannelListing) -> str:
        return obj.last_push.push_error if obj.last_push else ""

    @admin.display(description="stock item")
    def link(self, obj: ChannelListing) -> str:
        if obj.stock_item_id is None:
            return format_html('<span style="color:#b00020">{}</span>', "Unlinked")
        return format_html(
            '<a href="{}">{}</a>', reverse("admin:inventory_stockitem_change", args=(obj.stock_item_id,)),
            obj.stock_item.sku,
        )

    @admin.display(description="drift", boolean=True)
    def drift(self, obj: ChannelListing) -> bool | None:
        return listing_drift(listing=obj)

    def save_model(self, request, obj, form, change):
        obj._history_user = request.user
        if change:
            listing_overrides_update(listing=obj, changed_fields=form.changed_data)
        else:
            listing_create(listing=obj)

    @admin.action(description="Link selected unlinked listings to the stock item with the same SKU",
                  permissions=["change"])
    def auto_link_by_sku(self, request, queryset):
        linked = listings_link_by_sku(listing_ids=queryset.values_list("pk", flat=True))
        self.message_user(request, f"{linked} listing(s) linked by SKU.", messages.SUCCESS)

    def changelist_view(self, request, extra_context=None):
        channel_id = request.GET.get("channel__id__exact", "")
        shown = listing_download_channels(channel_id=int(channel_id) if channel_id.isdigit() else None)
        extra_context = {**(extra_context or {}), "downloads": [(channel, progress_bar(channel)) for channel in shown]}
        return super().changelist_view(request, extra_context=extra_context)
