"""The listing list's filters: linked or not, waiting for a push, and drift between the channel's quantity and
the last sent."""

from __future__ import annotations

from django.contrib import admin

from channels.selectors import listings_waiting_for_push, listings_with_drift


class LinkStateFilter(admin.SimpleListFilter):
    title = "link"
    parameter_name = "linked"

    def lookups(self, request, model_admin):
        return [("yes", "Linked to a stock item"), ("no", "Unlinked")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(stock_item__isnull=False)
        if self.value() == "no":
            return queryset.filter(stock_item__isnull=True)
        return queryset


class DriftFilter(admin.SimpleListFilter):
    title = "drift"
    parameter_name = "drift"

    def lookups(self, request, model_admin):
        return [("yes", "Channel quantity differs from the last sent")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return listings_with_drift(queryset)
        return queryset


class WaitingForPushFilter(admin.SimpleListFilter):
    title = "waiting for a push"
    parameter_name = "waiting"

    def lookups(self, request, model_admin):
        return [("yes", "Yes"), ("no", "No")]

    def queryset(self, request, queryset):
        if self.value() in ("yes", "no"):
            return listings_waiting_for_push(queryset, waiting=self.value() == "yes")
        return queryset
