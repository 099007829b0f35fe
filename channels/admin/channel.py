"""The Channel Integration screen: one row per channel with its switches, health and last runs, and each
channel's config page, its fields shaped by the channel's kind and the user's rights."""

from __future__ import annotations

from datetime import UTC

from django.contrib import admin
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import formats
from django.utils.html import format_html_join
from simple_history.admin import SimpleHistoryAdmin

from channels.admin.channel_views import TESTED_CREDENTIALS_SESSION_KEY, ChannelViewsMixin, requested_kind
from channels.admin.presentation import (
    channel_buttons,
    credentials_summary,
    health_badge,
    listing_download_cell,
    location_mapping_summary,
    row_buttons,
    run_cell,
    shipping_mapping_summary,
    status_mapping_summary,
)
from channels.dashboard import channels_with_last_runs
from channels.endpoints import channel_endpoint_fields
from channels.forms import CREDENTIAL_PREFIX, SCHEDULE_FIELDS, ChannelForm, channel_form_for, credential_fields
from channels.models import Channel, SyncRun
from channels.permissions import CREDENTIALS_PERMISSION
from channels.scheduling import channel_schedule_update
from channels.services import channel_create_tested, channel_settings_update, channels_delete
from channels.sync.connections import tested_credentials_open

ORDER_FIELDS = [
    "mark_as_despatched", "send_despatch_notes", "send_cancellation_notes", "download_unpaid_orders",
    "use_channel_tax", "currency", "last_order_sync", "utc_offset_hours", "default_email",
]
INVENTORY_FIELDS = [
    "update_inventory", "update_inventory_from_locations", "max_listed_quantity", "max_listed_percentage",
    "end_when_quantity",
]
LATENCY_FIELDS = ["latency_days", "product_based_latency", "latency_property_name"]
LISTING_FIELDS = [
    "listing_download_progress", "listing_download_in_progress", "listing_download_started_at",
    "listing_download_completed_at", "listing_download_estimated_completion",
]
MAPPING_FIELDS = ["location_mapping", "order_status_mapping", "shipping_mapping"]
FBA_FIELDS = ["fba_enabled", "fba_sync_inventory", "fba_convert_currency"]
# The sync-now buttons of a row: (label, view name).
SYNC_NOW_BUTTONS = (
    ("Download orders now", "download_orders"), ("Push stock now", "push_stock"), ("Push all stock", "push_all_stock"),
    ("Download listings", "download_listings"),
)


def sync_now_buttons(channel: Channel) -> str:
    """The list is one form (its toggles save in place), so each button posts that form to its own URL."""
    return format_html_join(" ", '<button type="submit" class="button" formaction="{}?next=list">{}</button>', (
        (reverse(f"admin:channels_channel_{name}", args=(channel.pk,)), label) for label, name in SYNC_NOW_BUTTONS
    ))


@admin.register(Channel)
class ChannelAdmin(ChannelViewsMixin, SimpleHistoryAdmin):
    """The Channel Integration screen: one row per channel, its switches and its config."""

    list_display = [
        "name", "kind", "enabled", "inventory_sync", "health", "last_order_download", "last_inventory_push",
        "buttons",
    ]
    list_display_links = ["name"]
    list_editable = ["enabled", "inventory_sync"]
    list_filter = ["kind", "enabled", "inventory_sync", "needs_reauthorisation"]
    search_fields = ["name", "seller_id", "shop_url"]
    readonly_fields = [
        "needs_reauthorisation", "reauthorisation_reason", "last_inventory_sync", *LISTING_FIELDS, *MAPPING_FIELDS,
        "credentials_state", "client_secret_replaced_at",
    ]

    change_form_template = "admin/channels/channel/change_form.html"
    change_list_template = "admin/channels/channel/change_list.html"

    def get_urls(self):
        def view(func, route: str, name: str):
            return path(route, self.admin_site.admin_view(func), name=f"channels_channel_{name}")

        own = [
            view(self.dashboard_view, "dashboard/", "dashboard"),
            view(self.test_unsaved_view, "test-unsaved/", "test_unsaved"),
            view(self.test_view, "<int:object_id>/test/", "test"),
            view(self.reauthorise_view, "<int:object_id>/reauthorise/", "reauthorise"),
            view(self.download_orders_view, "<int:object_id>/download-orders/", "download_orders"),
            view(self.push_stock_view, "<int:object_id>/push-stock/", "push_stock"),
            view(self.push_all_stock_view, "<int:object_id>/push-all-stock/", "push_all_stock"),
            view(self.download_listings_view, "<int:object_id>/download-listings/", "download_listings"),
            view(self.download_status_view, "<int:object_id>/download-status/", "download_status"),
            view(self.location_mapping_view, "<int:object_id>/location-mapping/", "location_mapping"),
            view(self.status_mapping_view, "<int:object_id>/order-status-mapping/", "status_mapping"),
            view(self.shipping_mapping_view, "<int:object_id>/shipping-mapping/", "shipping_mapping"),
        ]
        return own + super().get_urls()

    def get_queryset(self, request):
        return channels_with_last_runs(super().get_queryset(request))

    # --- the list -------------------------------------------------------------------------------

    @admin.display(description="health")
    def health(self, obj: Channel) -> str:
        return health_badge(obj)

    @admin.display(description="orders synced", ordering="last_orders_started_at")
    def last_order_download(self, obj: Channel) -> str:
        return run_cell(obj, SyncRun.Kind.ORDERS)

    @admin.display(description="stock synced", ordering="last_inventory_started_at")
    def last_inventory_push(self, obj: Channel) -> str:
        return run_cell(obj, SyncRun.Kind.INVENTORY)

    def get_list_display(self, request):
        # Only the buttons this user may press: Test and Reauthorise change the channel's state, and
        # Reauthorise replaces its credentials.
        if not self.has_change_permission(request):
            buttons = "config_button"
        elif not request.user.has_perm(CREDENTIALS_PERMISSION):
            buttons = "config_and_test_buttons"
        else:
            buttons = "buttons"
        return [buttons if column == "buttons" else column for column in super().get_list_display(request)]

    @admin.display(description="")
    def buttons(self, obj: Channel) -> str:
        return row_buttons(channel_buttons(obj, test=True, reauthorise=True), sync_now_buttons(obj))

    @admin.display(description="")
    def config_and_test_buttons(self, obj: Channel) -> str:
        return row_buttons(channel_buttons(obj, test=True, reauthorise=False), sync_now_buttons(obj))

    @admin.display(description="")
    def config_button(self, obj: Channel) -> str:
        return row_buttons(channel_buttons(obj, test=False, reauthorise=False))

    # --- the config page ------------------------------------------------------------------------

    def has_add_permission(self, request) -> bool:
        # A new channel is its credentials: adding one needs the right to enter them.
        return super().has_add_permission(request) and request.user.has_perm(CREDENTIALS_PERMISSION)

    def get_form(self, request, obj=None, change=False, **kwargs):
        # Without the credentials permission the form has no credential fields, so none can be replaced.
        kind = requested_kind(request, obj) if request.user.has_perm(CREDENTIALS_PERMISSION) else ""
        kwargs["form"] = channel_form_for(kind)
        return super().get_form(request, obj, change=change, **kwargs)

    def get_readonly_fields(self, request, obj=None):
        readonly = list(super().get_readonly_fields(request, obj))
        if obj is None:
            return readonly
        if not request.user.has_perm(CREDENTIALS_PERMISSION):
            # An endpoint is where the secrets are sent: only staff who may enter the secrets may move it.
            readonly += channel_endpoint_fields(kind=obj.kind)
        return [*readonly, "kind"]

    def get_fieldsets(self, request, obj=None):
        kind = requested_kind(request, obj)
        connector = Channel(kind=kind).connector_class if kind else None
        credentials = [CREDENTIAL_PREFIX + key for key, _ in credential_fields(kind)]
        if not request.user.has_perm(CREDENTIALS_PERMISSION):
            credentials = []
        account_fields = connector.account_fields if connector else ()
        account = ["name", "kind", ("enabled", "inventory_sync"), *account_fields, *credentials]
        if obj is None:
            account.append("tested_credentials")
        else:
            account += ["credentials_state", ("needs_reauthorisation", "reauthorisation_reason")]
            if connector and connector.client_secret_lifetime_days:
                account.append("client_secret_replaced_at")
        def supported(names: list[str]) -> list[str]:
            # Before the kind is chosen every setting may apply; after, only those that do something on it.
            return [name for name in names if connector is None or connector.supports_setting(name)]

        inventory = supported([*INVENTORY_FIELDS, *LATENCY_FIELDS, "price_change", "last_inventory_sync"])
        orders = supported(ORDER_FIELDS)
        if obj is not None and not self.has_change_permission(request, obj):
            # Read only, it is shown in UTC as the form shows it.
            orders = ["last_order_sync_utc" if name == "last_order_sync" else name for name in orders]
        fieldsets = [
            ("Account", {
                "fields": account,
                "description": "The account the hub connects to. Secrets are never shown again once saved: type a "
                "new value only to replace one. Use Test to check the details before you save.",
            }),
            ("Orders", {
                "fields": orders,
                "description": "How orders come down from the channel and what the channel is told when you "
                "process or cancel them.",
            }),
            ("Inventory", {
                "fields": inventory,
                "description": "What each listing gets: available stock (physical less open orders) from the "
                "chosen locations, 0 at or below End When, capped by Max Listed, then the Percentage, rounded down. "
                "Example: 20 available, Max Listed 10, Percentage 50: 5 is sent.",
            }),
        ]
        if obj is not None:
            fieldsets.append(("Mapping", {
                "fields": MAPPING_FIELDS,
                "description": "Which locations' stock is sent, and how the channel's order statuses and shipping "
                "services translate into the hub's.",
            }))
            fieldsets.append(("Listings", {"fields": LISTING_FIELDS}))
        if obj is not None and self.has_change_permission(request, obj):
            fieldsets.append(("Schedule", {
                "fields": SCHEDULE_FIELDS,
                "description": "How often the hub does each job for this channel by itself. An interval you set "
                "here stays.",
            }))
        if connector and (fba := supported(FBA_FIELDS)):
            fieldsets.append(("FBA", {
                "fields": fba,
                "description": "Fulfilled by Amazon: Amazon holds and ships this stock; it is never sent from "
                "your warehouses.",
            }))
        return fieldsets

    def get_changeform_initial_data(self, request):
        initial = super().get_changeform_initial_data(request)
        kind = requested_kind(request, None)
        return {**Channel.defaults_for(kind), **initial} if kind else initial

    def add_view(self, request, form_url="", extra_context=None):
        if not requested_kind(request, None):
            context = {
                **self.admin_site.each_context(request),
                "opts": self.opts,
                "title": "Add a channel: choose its kind",
                "kinds": Channel.Kind.choices,
            }
            return TemplateResponse(request, "admin/channels/channel/choose_kind.html", context)
        return super().add_view(request, form_url, extra_context)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = {**(extra_context or {}), "can_reauthorise": request.user.has_perm(CREDENTIALS_PERMISSION)}
        return super().change_view(request, object_id, form_url, extra_context)

    def save_model(self, request, obj, form, change):
        obj._history_user = request.user
        # The change form and the list's switches alike: the form says what staff changed.
        if change:
            channel_settings_update(channel=obj, changed_fields=form.changed_data)
            # The list's switches have no schedule: only the config page's form does.
            if isinstance(form, ChannelForm) and (every := form.schedule()):
                channel_schedule_update(channel=obj, every=every)
            return
        typed = {key: form.cleaned_data.get(CREDENTIAL_PREFIX + key, "") for key, _ in credential_fields(obj.kind)}
        stash = request.session.pop(TESTED_CREDENTIALS_SESSION_KEY, {})
        rotated = tested_credentials_open(sealed=stash.get(form.cleaned_data.get("tested_credentials", ""), ""),
                                          typed=typed)
        channel_create_tested(channel=obj, rotated_credentials=rotated)

    def delete_model(self, request, obj):
        channels_delete(channel_ids=[obj.pk])

    def delete_queryset(self, request, queryset):
        channels_delete(channel_ids=queryset.values_list("pk", flat=True))

    @admin.display(description="credentials")
    def credentials_state(self, obj: Channel) -> str:
        return credentials_summary(obj)

    @admin.display(description="Location mapping")
    def location_mapping(self, obj: Channel) -> str:
        return location_mapping_summary(obj)

    @admin.display(description="Order status mapping")
    def order_status_mapping(self, obj: Channel) -> str:
        return status_mapping_summary(obj)

    @admin.display(description="Shipping mapping")
    def shipping_mapping(self, obj: Channel) -> str:
        return shipping_mapping_summary(obj)

    @admin.display(description="last order sync (UTC)")
    def last_order_sync_utc(self, obj: Channel) -> str:
        return formats.localize(obj.last_order_sync.astimezone(UTC))

    @admin.display(description="listing download")
    def listing_download_progress(self, obj: Channel) -> str:
        return listing_download_cell(obj)
