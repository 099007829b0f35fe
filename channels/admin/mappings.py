"""Every channel's order status and shipping mappings in one list each, besides the channel's own pages."""

from __future__ import annotations

from django.contrib import admin
from simple_history.admin import SimpleHistoryAdmin

from channels.models import OrderStatusMapping, ShippingMapping


@admin.register(OrderStatusMapping)
class OrderStatusMappingAdmin(SimpleHistoryAdmin):
    list_display = ["channel", "channel_status", "hub_status", "first_seen_at"]
    list_editable = ["hub_status"]
    list_filter = ["channel", "hub_status"]
    search_fields = ["channel_status"]
    list_select_related = ["channel"]


@admin.register(ShippingMapping)
class ShippingMappingAdmin(SimpleHistoryAdmin):
    list_display = ["channel", "tag", "postal_service", "first_seen_at"]
    list_filter = ["channel", ("postal_service", admin.EmptyFieldListFilter)]
    search_fields = ["tag"]
    list_select_related = ["channel", "postal_service"]
