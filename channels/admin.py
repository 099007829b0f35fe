from celery import current_app
from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from channels.connections import STALE_DOWNLOAD_AFTER, channel_reauthorise, channel_test
from channels.forms import CREDENTIAL_PREFIX, channel_form_for
from channels.models import (
    ACCOUNT_FIELDS,
    CREDENTIAL_FIELDS,
    Channel,
    ChannelListing,
    OrderStatusMapping,
    ShippingMapping,
    SyncRun,
)

ORDER_FIELDS = [
    "mark_as_despatched", "send_despatch_notes", "send_cancellation_notes", "download_unpaid_orders",
    "use_channel_tax", "currency", "last_order_sync", "utc_offset_hours", "default_email",
]
INVENTORY_FIELDS = [
    "update_inventory", "update_inventory_from_locations", "inventory_locations",
    "max_listed_quantity", "max_listed_percentage", "end_when_quantity",
]
LATENCY_FIELDS = ["latency_days", "product_based_latency", "latency_property_name"]
LISTING_FIELDS = [
    "listing_download_in_progress", "listing_download_started_at",
    "listing_download_completed_at", "listing_download_estimated_completion",
]
FBA_FIELDS = ["fba_enabled", "fba_sync_inventory", "fba_convert_currency"]


class OrderStatusMappingInline(admin.TabularInline):
    model = OrderStatusMapping
    extra = 0
    fields = ["channel_status", "hub_status", "first_seen_at"]
    readonly_fields = ["first_seen_at"]
    verbose_name_plural = "Order status mapping (statuses appear as orders with them are downloaded)"


class ShippingMappingInline(admin.TabularInline):
    model = ShippingMapping
    extra = 0
    fields = ["tag", "postal_service", "first_seen_at"]
    readonly_fields = ["first_seen_at"]
    verbose_name_plural = "Shipping mapping (tags appear once an order with them is downloaded)"


class ReauthoriseForm(forms.Form):
    authorization_code = forms.CharField(
        label="Authorisation code", required=False, strip=True, widget=forms.PasswordInput(render_value=False),
        help_text="Amazon: the spapi_oauth_code from Seller Central's authorisation page. EKM: the code from "
        "EKM's consent page. Rakuten: a new web services token. Leave empty to check that the stored "
        "credentials still work.",
    )


def _kind_of(request: HttpRequest, obj: Channel | None) -> str:
    if obj is not None:
        return obj.kind
    kind = request.GET.get("kind", "")
    return kind if kind in Channel.Kind.values else ""


@admin.register(Channel)
class ChannelAdmin(admin.ModelAdmin):
    """The Channel Integration screen: one row per channel, its switches and its config."""

    list_display = [
        "name", "kind", "enabled", "inventory_sync", "health", "last_order_sync", "last_inventory_sync",
    ]
    list_display_links = ["name"]
    list_editable = ["enabled", "inventory_sync"]
    list_filter = ["kind", "enabled", "inventory_sync", "needs_reauthorisation"]
    search_fields = ["name", "seller_id", "shop_url"]
    inlines = [OrderStatusMappingInline, ShippingMappingInline]
    readonly_fields = [
        "needs_reauthorisation", "reauthorisation_reason", "last_inventory_sync", *LISTING_FIELDS, "credentials_state",
    ]

    change_form_template = "admin/channels/channel/change_form.html"

    def get_urls(self):
        own = [
            path("<int:object_id>/test/", self.admin_site.admin_view(self.test_view), name="channels_channel_test"),
            path("<int:object_id>/reauthorise/", self.admin_site.admin_view(self.reauthorise_view),
                 name="channels_channel_reauthorise"),
            path("<int:object_id>/download-listings/", self.admin_site.admin_view(self.download_listings_view),
                 name="channels_channel_download_listings"),
        ]
        return own + super().get_urls()

    def _channel_for_button(self, request: HttpRequest, object_id: int) -> Channel:
        channel = get_object_or_404(Channel, pk=object_id)
        if not self.has_change_permission(request, channel):
            raise PermissionDenied
        return channel

    def _back(self, channel: Channel) -> HttpResponseRedirect:
        return HttpResponseRedirect(reverse("admin:channels_channel_change", args=(channel.pk,)))

    def _report(self, request: HttpRequest, channel: Channel, result) -> None:
        level = messages.SUCCESS if result.ok else messages.ERROR
        self.message_user(request, f"{channel.name}: {result.message}", level)

    def test_view(self, request: HttpRequest, object_id: int):
        channel = self._channel_for_button(request, object_id)
        if request.method == "POST":
            self._report(request, channel, channel_test(channel_id=channel.pk))
        return self._back(channel)

    def reauthorise_view(self, request: HttpRequest, object_id: int):
        channel = self._channel_for_button(request, object_id)
        form = ReauthoriseForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            result = channel_reauthorise(
                channel_id=channel.pk, authorization_code=form.cleaned_data["authorization_code"]
            )
            self._report(request, channel, result)
            return self._back(channel)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "original": channel,
            "title": f"Reauthorise {channel.name}",
            "form": form,
        }
        return TemplateResponse(request, "admin/channels/channel/reauthorise.html", context)

    @staticmethod
    def _download_running(channel: Channel) -> bool:
        started = channel.listing_download_started_at
        return channel.listing_download_in_progress and bool(started) and (
            timezone.now() - started < STALE_DOWNLOAD_AFTER
        )

    def download_listings_view(self, request: HttpRequest, object_id: int):
        channel = self._channel_for_button(request, object_id)
        if request.method != "POST":
            return self._back(channel)
        if self._download_running(channel):
            self.message_user(
                request,
                f"{channel.name}: a listing download is already running "
                f"({channel.listing_download_done} of {channel.listing_download_total} done).",
                messages.WARNING,
            )
        else:
            current_app.send_task("channels.tasks.listings_download_task", args=(channel.pk,))
            self.message_user(
                request, f"{channel.name}: listing download queued; its progress shows under Listings.",
                messages.SUCCESS,
            )
        return self._back(channel)

    def get_form(self, request, obj=None, change=False, **kwargs):
        kwargs["form"] = channel_form_for(_kind_of(request, obj))
        return super().get_form(request, obj, change=change, **kwargs)

    def get_readonly_fields(self, request, obj=None):
        readonly = list(super().get_readonly_fields(request, obj))
        return [*readonly, "kind"] if obj is not None else readonly

    def get_fieldsets(self, request, obj=None):
        kind = _kind_of(request, obj)
        credentials = [CREDENTIAL_PREFIX + key for key, _ in CREDENTIAL_FIELDS.get(kind, ())]
        account = ["name", "kind", ("enabled", "inventory_sync"), *ACCOUNT_FIELDS.get(kind, ()), *credentials]
        if obj is not None:
            account += ["credentials_state", ("needs_reauthorisation", "reauthorisation_reason")]
        inventory = [*INVENTORY_FIELDS]
        if kind == Channel.Kind.AMAZON:
            inventory += LATENCY_FIELDS
        inventory += ["price_change", "last_inventory_sync"]
        fieldsets = [
            ("Account", {"fields": account}),
            ("Orders", {"fields": ORDER_FIELDS}),
            ("Inventory", {
                "fields": inventory,
                "description": "What each listing gets: available stock (physical less open orders) from the "
                "chosen locations, 0 at or below End When, capped by Max Listed, then the Percentage, rounded down.",
            }),
        ]
        if obj is not None:
            fieldsets.append(("Listings", {"fields": LISTING_FIELDS}))
        if kind == Channel.Kind.AMAZON:
            fieldsets.append(("FBA", {"fields": FBA_FIELDS}))
        return fieldsets

    def get_changeform_initial_data(self, request):
        initial = super().get_changeform_initial_data(request)
        kind = _kind_of(request, None)
        return {**Channel.defaults_for(kind), **initial} if kind else initial

    def add_view(self, request, form_url="", extra_context=None):
        if not _kind_of(request, None):
            context = {
                **self.admin_site.each_context(request),
                "opts": self.opts,
                "title": "Add a channel: choose its kind",
                "kinds": Channel.Kind.choices,
            }
            return TemplateResponse(request, "admin/channels/channel/choose_kind.html", context)
        return super().add_view(request, form_url, extra_context)

    @admin.display(description="credentials")
    def credentials_state(self, obj: Channel) -> str:
        keys = [label for key, label in CREDENTIAL_FIELDS.get(obj.kind, ()) if obj.credentials.get(key)]
        return ", ".join(keys) + " set" if keys else "none set"

    @admin.display(description="health")
    def health(self, obj: Channel) -> str:
        if obj.needs_reauthorisation:
            return format_html('<span style="color:#b00">{}</span>', "needs reauthorisation")
        if not obj.enabled:
            return "disabled"
        return "ok"


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


@admin.register(ChannelListing)
class ChannelListingAdmin(admin.ModelAdmin):
    list_display = [
        "channel_sku", "channel", "title", "stock_item", "channel_quantity", "last_pushed_quantity",
        "last_pushed_at", "is_ended", "push_pending",
    ]
    list_filter = ["channel", LinkStateFilter, "push_pending", "is_ended", "fulfilled_by_channel", "is_active"]
    search_fields = ["channel_sku", "title", "external_id", "stock_item__sku"]
    list_select_related = ["channel", "stock_item"]
    autocomplete_fields = ["stock_item"]
    show_full_result_count = False
    fieldsets = [
        (None, {"fields": ["channel", "channel_sku", "external_id", "title", "stock_item", "is_active",
                           "fulfilled_by_channel"]}),
        ("Overrides of the channel's defaults", {"fields": [
            "max_listed_quantity", "max_listed_percentage", "end_when_quantity", "latency_days", "price_override",
        ]}),
        ("Sync state", {"fields": [
            ("channel_quantity", "channel_price", "downloaded_at"),
            ("last_pushed_quantity", "last_pushed_latency", "last_pushed_price", "last_pushed_at"),
            "is_ended", "push_pending", "push_error",
        ]}),
    ]
    readonly_fields = [
        "channel_quantity", "channel_price", "downloaded_at", "last_pushed_quantity", "last_pushed_latency",
        "last_pushed_price", "last_pushed_at", "is_ended", "push_pending", "push_error",
    ]


@admin.register(OrderStatusMapping)
class OrderStatusMappingAdmin(admin.ModelAdmin):
    list_display = ["channel", "channel_status", "hub_status", "first_seen_at"]
    list_editable = ["hub_status"]
    list_filter = ["channel", "hub_status"]
    search_fields = ["channel_status"]
    list_select_related = ["channel"]


@admin.register(ShippingMapping)
class ShippingMappingAdmin(admin.ModelAdmin):
    list_display = ["channel", "tag", "postal_service", "first_seen_at"]
    list_editable = ["postal_service"]
    list_filter = ["channel", ("postal_service", admin.EmptyFieldListFilter)]
    search_fields = ["tag"]
    list_select_related = ["channel", "postal_service"]


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


from channels import stock_admin  # noqa: E402,F401  (the stock item page with what each channel gets)
