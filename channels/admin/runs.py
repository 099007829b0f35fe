"""The sync runs: a read-only log of every download and push with what it did."""

from __future__ import annotations

from django.contrib import admin

from channels.models import SyncRun


@admin.register(SyncRun)
class SyncRunAdmin(admin.ModelAdmin):
    list_display = ["started_at", "channel", "kind", "status", "processed", "failed", "skipped", "finished_at"]
    list_filter = ["kind", "status", "channel"]
    list_select_related = ["channel"]
    date_hierarchy = "started_at"
    show_full_result_count = False

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
