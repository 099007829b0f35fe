import uuid

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import HttpRequest, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from simple_history.admin import SimpleHistoryAdmin

from channels.connectors.base import ChannelError
from channels.dashboard import (
    activity_by_day,
    activity_chart_svg,
    channel_health,
    channels_with_last_runs,
    dashboard_channels,
    oversold_levels,
    runs_needing_attention,
)
from channels.endpoints import channel_endpoint_fields
from channels.forms import (
    CREDENTIAL_PREFIX,
    LocationMappingForm,
    ShippingMappingForm,
    StatusMappingForm,
    channel_form_for,
    credential_fields,
)
from channels.models import (
    Channel,
    ChannelListing,
    OrderStatusMapping,
    ShippingMapping,
    SyncRun,
)
from channels.permissions import CREDENTIALS_PERMISSION
from channels.selectors import listings_with_drift
from channels.services import (
    channel_create,
    channel_location_mapping_save,
    channel_settings_update,
    channel_shipping_mappings_save,
    channel_status_mappings_save,
    channels_delete,
    listing_create,
    listing_overrides_update,
    listings_link_by_sku,
)
from channels.sync.connections import (
    channel_connector,
    channel_reauthorise,
    channel_test,
    channel_test_unsaved,
    tested_credentials_open,
)
from channels.sync.listings_download import STALE_DOWNLOAD_AFTER
from channels.tasks import listings_download_task
from inventory.search import StockItemSearchMixin

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
HEALTH_COLOURS = {"ok": "#2e7d32", "errors": "#b26a00", "reauthorise": "#b00020", "disabled": "#777"}
TESTED_CREDENTIALS_SESSION_KEY = "channels:tested-credentials"
RUN_COLOURS = {"success": "#2e7d32", "partial": "#b26a00", "failed": "#b00020", "running": "#1565c0"}


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


def download_running(channel: Channel) -> bool:
    started = channel.listing_download_started_at
    return channel.listing_download_in_progress and bool(started) and (
        timezone.now() - started < STALE_DOWNLOAD_AFTER
    )


def download_state(channel: Channel) -> dict:
    """What the progress bar shows; the JSON the page polls while a download runs."""
    running = download_running(channel)
    done, total = channel.listing_download_done, channel.listing_download_total
    if running:
        percent = min(100, done * 100 // total) if total else 0
    else:
        percent = 100 if channel.listing_download_completed_at else 0
    stamp = lambda value: timezone.localtime(value).strftime("%Y-%m-%d %H:%M:%S") if value else ""  # noqa: E731
    return {
        "running": running, "done": done, "total": total, "percent": percent,
        "started": stamp(channel.listing_download_started_at),
        "estimated_completion": stamp(channel.listing_download_estimated_completion),
        "completed": stamp(channel.listing_download_completed_at),
    }


def _run_cell(channel: Channel, kind: str) -> str:
    status = getattr(channel, f"last_{kind}_status")
    if status is None:
        return "never"
    started = getattr(channel, f"last_{kind}_started_at")
    processed, failed = getattr(channel, f"last_{kind}_processed"), getattr(channel, f"last_{kind}_failed")
    url = reverse("admin:channels_syncrun_changelist") + f"?channel__id__exact={channel.pk}&kind__exact={kind}"
    return format_html(
        '<a href="{}">{}</a> <span style="color:{}">{}</span> ({} done{})',
        url, f"{timezone.localtime(started):%Y-%m-%d %H:%M}", RUN_COLOURS.get(status, "#333"),
        SyncRun.Status(status).label, processed, f", {failed} failed" if failed else "",
    )


@admin.register(Channel)
class ChannelAdmin(SimpleHistoryAdmin):
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
        state, words = channel_health(obj)
        return format_html(
            '<span class="health health-{}" style="color:{};font-weight:bold">&#9679; {}</span>',
            state, HEALTH_COLOURS[state], words,
        )

    @admin.display(description="last order sync", ordering="last_orders_started_at")
    def last_order_download(self, obj: Channel) -> str:
        return _run_cell(obj, SyncRun.Kind.ORDERS)

    @admin.display(description="last inventory sync", ordering="last_inventory_started_at")
    def last_inventory_push(self, obj: Channel) -> str:
        return _run_cell(obj, SyncRun.Kind.INVENTORY)

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
        return self._buttons(obj, test=True, reauthorise=True)

    @admin.display(description="")
    def config_and_test_buttons(self, obj: Channel) -> str:
        return self._buttons(obj, test=True, reauthorise=False)

    @admin.display(description="")
    def config_button(self, obj: Channel) -> str:
        return self._buttons(obj, test=False, reauthorise=False)

    def _buttons(self, obj: Channel, *, test: bool, reauthorise: bool) -> str:
        buttons = [format_html('<a class="button" href="{}">Config</a>',
                               reverse("admin:channels_channel_change", args=(obj.pk,)))]
        if test:
            # The list is one form (its toggles save in place), so Test posts that form to its own URL.
            buttons.append(format_html(
                '<button type="submit" class="button" formaction="{}?next=list" name="_test">Test</button>',
                reverse("admin:channels_channel_test", args=(obj.pk,)),
            ))
        if reauthorise:
            buttons.append(format_html('<a class="button" href="{}">Reauthorise</a>',
                                       reverse("admin:channels_channel_reauthorise", args=(obj.pk,))))
        return format_html_join(" ", "{}", ((button,) for button in buttons))

    # --- buttons --------------------------------------------------------------------------------

    def _channel_for_button(self, request: HttpRequest, object_id: int, *, change: bool = True) -> Channel:
        channel = get_object_or_404(Channel, pk=object_id)
        allowed = self.has_change_permission(request, channel) if change else self.has_view_permission(request, channel)
        if not allowed:
            raise PermissionDenied
        return channel

    def _back(self, request: HttpRequest, channel: Channel) -> HttpResponseRedirect:
        if request.GET.get("next") == "list":
            return HttpResponseRedirect(reverse("admin:channels_channel_changelist"))
        if request.GET.get("next") == "listings":
            return HttpResponseRedirect(
                reverse("admin:channels_channellisting_changelist") + f"?channel__id__exact={channel.pk}"
            )
        return HttpResponseRedirect(reverse("admin:channels_channel_change", args=(channel.pk,)))

    def _report(self, request: HttpRequest, channel: Channel, result) -> None:
        level = messages.SUCCESS if result.ok else messages.ERROR
        self.message_user(request, f"{channel.name}: {result.message}", level)

    def test_view(self, request: HttpRequest, object_id: int):
        channel = self._channel_for_button(request, object_id)
        if request.method == "POST":
            self._report(request, channel, channel_test(channel_id=channel.pk))
        return self._back(request, channel)

    def test_unsaved_view(self, request: HttpRequest):
        """Test before Save on the add page: the form's data, posted by its Test button, answered in JSON."""
        if request.method != "POST":
            return JsonResponse({"ok": False, "message": "Use the Test button of the form."}, status=405)
        if not self.has_add_permission(request):
            raise PermissionDenied
        kind = _kind_of(request, None)
        if not kind:
            return JsonResponse({"ok": False, "message": "Choose the kind of channel first."}, status=400)
        form = self.get_form(request, None)(request.POST)
        form.is_valid()
        connection_fields = {
            *Channel(kind=kind).connector_class.account_fields,
            *(CREDENTIAL_PREFIX + key for key, _ in credential_fields(kind)),
        }
        problems = {name: errors for name, errors in form.errors.items() if name in connection_fields}
        if problems:
            return JsonResponse({
                "ok": False, "errors": problems,
                "message": "Fill in the account details first: " + ", ".join(
                    str(form.fields[name].label) for name in problems
                ) + ".",
            })
        typed = {key: form.cleaned_data[CREDENTIAL_PREFIX + key] for key, _ in credential_fields(kind)}
        result, sealed = channel_test_unsaved(channel=form.instance, credentials=typed)
        handle = ""
        if sealed:
            # Kept in the user's session, not in the page: the form only carries a handle to it.
            handle = uuid.uuid4().hex
            request.session[TESTED_CREDENTIALS_SESSION_KEY] = {handle: sealed}
        return JsonResponse({"ok": result.ok, "message": result.message, "tested_credentials": handle})

    def reauthorise_view(self, request: HttpRequest, object_id: int):
        channel = self._channel_for_button(request, object_id)
        if not request.user.has_perm(CREDENTIALS_PERMISSION):
            raise PermissionDenied
        form = ReauthoriseForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            result = channel_reauthorise(
                channel_id=channel.pk, authorization_code=form.cleaned_data["authorization_code"]
            )
            self._report(request, channel, result)
            return self._back(request, channel)
        return self._page(request, channel, "Reauthorise", "admin/channels/channel/reauthorise.html", {"form": form})

    def download_listings_view(self, request: HttpRequest, object_id: int):
        channel = self._channel_for_button(request, object_id)
        if request.method != "POST":
            return self._back(request, channel)
        if download_running(channel):
            self.message_user(
                request,
                f"{channel.name}: a listing download is already running "
                f"({channel.listing_download_done} of {channel.listing_download_total} done).",
                messages.WARNING,
            )
        else:
            listings_download_task.delay(channel.pk)
            self.message_user(
                request, f"{channel.name}: listing download queued; its progress shows under Listings.",
                messages.SUCCESS,
            )
        return self._back(request, channel)

    def download_status_view(self, request: HttpRequest, object_id: int):
        channel = self._channel_for_button(request, object_id, change=False)
        return JsonResponse(download_state(channel))

    # --- mapping pages --------------------------------------------------------------------------

    def _page(self, request: HttpRequest, channel: Channel, title: str, template: str, extra: dict):
        context = {
            **self.admin_site.each_context(request), "opts": self.opts, "original": channel,
            "title": f"{title}: {channel.name}", "page": title, **extra,
        }
        return TemplateResponse(request, template, context)

    def _saved(self, request: HttpRequest, channel: Channel, what: str, changes: list[str]) -> HttpResponseRedirect:
        # The admin's own history (LogEntry) records who changed which mapping, on the channel's history page.
        if changes:
            self.log_change(request, channel, f"{what}: {'; '.join(changes)}.")
            self.message_user(request, f"{what} saved for {channel.name}: {'; '.join(changes)}.", messages.SUCCESS)
        else:
            self.message_user(request, f"{what} for {channel.name}: nothing changed.", messages.INFO)
        return HttpResponseRedirect(request.path)

    def location_mapping_view(self, request: HttpRequest, object_id: int):
        channel = self._channel_for_button(request, object_id)
        form = LocationMappingForm(request.POST or None, channel=channel)
        if request.method == "POST" and form.is_valid():
            before = form.initial_summary()
            channel_location_mapping_save(
                channel_id=channel.pk, from_locations=form.cleaned_data["update_inventory_from_locations"],
                location_ids=[location.pk for location in form.cleaned_data["locations"]],
            )
            channel.refresh_from_db()
            after = LocationMappingForm(channel=channel).initial_summary()
            return self._saved(request, channel, "Location mapping", [after] if after != before else [])
        return self._page(request, channel, "Location mapping", "admin/channels/channel/mapping.html", {"form": form})

    def status_mapping_view(self, request: HttpRequest, object_id: int):
        channel = self._channel_for_button(request, object_id)
        offered, note = [], ""
        try:
            offered = channel_connector(channel=channel).order_statuses()
        except ChannelError as exc:
            note = f"The channel's list of statuses could not be fetched ({exc}); the statuses seen are shown."
        form = StatusMappingForm(request.POST or None, channel=channel, offered=offered)
        if request.method == "POST" and form.is_valid():
            changed = channel_status_mappings_save(channel_id=channel.pk, mapping=form.mapping())
            labels = dict(OrderStatusMapping.HUB_STATUS_CHOICES)
            return self._saved(
                request, channel, "Order status mapping",
                [f"{status} → {labels[form.mapping()[status]]}" for status in changed],
            )
        return self._page(
            request, channel, "Order status mapping", "admin/channels/channel/mapping.html",
            {"form": form, "note": note, "help": "Orders with an Unmapped status are not downloaded unless the "
             "channel marks them paid. Map the hub's Processed status to the channel's shipped status, or "
             "despatch notes cannot be sent."},
        )

    def shipping_mapping_view(self, request: HttpRequest, object_id: int):
        channel = self._channel_for_button(request, object_id)
        form = ShippingMappingForm(request.POST or None, channel=channel)
        if request.method == "POST" and form.is_valid():
            changed = channel_shipping_mappings_save(channel_id=channel.pk, mapping=form.mapping())
            names = form.service_names()
            return self._saved(
                request, channel, "Shipping mapping",
                [f"{tag} → {names.get(form.mapping()[tag], 'Unmapped')}" for tag in changed],
            )
        return self._page(
            request, channel, "Shipping mapping", "admin/channels/channel/mapping.html",
            {"form": form, "help": "A channel's shipping tags appear here once an order with them is downloaded; "
             "you can also add one by hand."},
        )

    # --- dashboard ------------------------------------------------------------------------------

    def dashboard_view(self, request: HttpRequest):
        if not self.has_view_permission(request):
            raise PermissionDenied
        points = activity_by_day()
        context = {
            **self.admin_site.each_context(request), "opts": self.opts, "title": "Sync dashboard",
            "summaries": dashboard_channels(), "attention": runs_needing_attention(),
            "oversold": oversold_levels(), "chart": activity_chart_svg(points),
            "orders_total": sum(p.orders for p in points), "pushed_total": sum(p.pushed for p in points),
        }
        return TemplateResponse(request, "admin/channels/dashboard.html", context)

    # --- the config page ------------------------------------------------------------------------

    def has_add_permission(self, request) -> bool:
        # A new channel is its credentials: adding one needs the right to enter them.
        return super().has_add_permission(request) and request.user.has_perm(CREDENTIALS_PERMISSION)

    def get_form(self, request, obj=None, change=False, **kwargs):
        # Without the credentials permission the form has no credential fields, so none can be replaced.
        kind = _kind_of(request, obj) if request.user.has_perm(CREDENTIALS_PERMISSION) else ""
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
        kind = _kind_of(request, obj)
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
        inventory = [*INVENTORY_FIELDS]
        if connector and connector.supports_latency:
            inventory += LATENCY_FIELDS
        inventory += ["price_change", "last_inventory_sync"]
        orders = [name for name in ORDER_FIELDS if name != "send_despatch_notes"
                  or (connector is None or connector.supports_despatch_notes)]
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
        if connector and connector.has_fulfilment_network:
            fieldsets.append(("FBA", {
                "fields": FBA_FIELDS,
                "description": "Fulfilled by Amazon: Amazon holds and ships this stock; it is never sent from "
                "your warehouses.",
            }))
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

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = {**(extra_context or {}), "can_reauthorise": request.user.has_perm(CREDENTIALS_PERMISSION)}
        return super().change_view(request, object_id, form_url, extra_context)

    def save_model(self, request, obj, form, change):
        if not change:
            typed = {
                key: form.cleaned_data.get(CREDENTIAL_PREFIX + key, "") for key, _ in credential_fields(obj.kind)
            }
            stash = request.session.pop(TESTED_CREDENTIALS_SESSION_KEY, {})
            rotated = tested_credentials_open(sealed=stash.get(form.cleaned_data.get("tested_credentials", ""), ""),
                                              typed=typed)
            if rotated:
                # The Test before Save used up single-use tokens: keep the ones the channel issued instead.
                obj.credentials = {**obj.credentials, **rotated}
        obj._history_user = request.user
        # The change form and the list's switches alike: the form says what staff changed.
        if change:
            channel_settings_update(channel=obj, changed_fields=form.changed_data)
        else:
            channel_create(channel=obj)

    def delete_model(self, request, obj):
        channels_delete(channel_ids=[obj.pk])

    def delete_queryset(self, request, queryset):
        channels_delete(channel_ids=queryset.values_list("pk", flat=True))

    @admin.display(description="credentials")
    def credentials_state(self, obj: Channel) -> str:
        keys = [label for key, label in credential_fields(obj.kind) if obj.credentials.get(key)]
        return ", ".join(keys) + " set" if keys else "none set"

    @admin.display(description="Location mapping")
    def location_mapping(self, obj: Channel) -> str:
        if obj.update_inventory_from_locations:
            names = ", ".join(obj.inventory_locations.order_by("name").values_list("name", flat=True))
            summary = f"from {names or 'no location (nothing is sent)'}"
        else:
            summary = "from all warehouses"
        return format_html(
            '<a class="button" href="{}">Location Mapping</a> <span class="help">Stock sent {}.</span>',
            reverse("admin:channels_channel_location_mapping", args=(obj.pk,)), summary,
        )

    @admin.display(description="Order status mapping")
    def order_status_mapping(self, obj: Channel) -> str:
        unmapped = obj.status_mappings.filter(hub_status=OrderStatusMapping.UNMAPPED).count()
        return format_html(
            '<a class="button" href="{}">Order Status Mapping</a> <span class="help">{} statuses, {} unmapped.</span>',
            reverse("admin:channels_channel_status_mapping", args=(obj.pk,)), obj.status_mappings.count(), unmapped,
        )

    @admin.display(description="Shipping mapping")
    def shipping_mapping(self, obj: Channel) -> str:
        unmapped = obj.shipping_mappings.filter(postal_service__isnull=True).count()
        return format_html(
            '<a class="button" href="{}">Shipping Mapping</a> <span class="help">{} tags, {} unmapped.</span>',
            reverse("admin:channels_channel_shipping_mapping", args=(obj.pk,)), obj.shipping_mappings.count(),
            unmapped,
        )

    @admin.display(description="listing download")
    def listing_download_progress(self, obj: Channel) -> str:
        return format_html(
            '{} <a href="{}">Listings of this channel</a>',
            progress_bar(obj), reverse("admin:channels_channellisting_changelist") + f"?channel__id__exact={obj.pk}",
        )


def progress_bar(channel: Channel) -> str:
    """The listing download's progress; the page's script polls the status view while it runs."""
    state = download_state(channel)
    return format_html(
        '<div class="download-progress" data-status-url="{}" data-running="{}">'
        '<progress max="100" value="{}"></progress> <span class="download-percent">{}%</span> '
        '<span class="download-text"></span></div>',
        reverse("admin:channels_channel_download_status", args=(channel.pk,)),
        "1" if state["running"] else "0", state["percent"], state["percent"],
    )


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


@admin.register(ChannelListing)
class ChannelListingAdmin(StockItemSearchMixin, SimpleHistoryAdmin):
    list_display = [
        "channel_sku", "channel", "title", "link", "channel_quantity", "last_pushed_quantity", "drift",
        "last_pushed_at", "is_ended", "push_pending",
    ]
    list_filter = ["channel", LinkStateFilter, DriftFilter, "is_ended", "push_pending", "fulfilled_by_channel",
                   "is_active"]
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
            "is_ended", "push_pending", "push_error",
        ]}),
    ]
    readonly_fields = [
        "channel_quantity", "channel_price", "downloaded_at", "last_pushed_quantity", "last_pushed_latency",
        "last_pushed_price", "last_pushed_at", "is_ended", "push_pending", "push_error",
    ]

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
        if obj.channel_quantity is None or obj.last_pushed_quantity is None:
            return None
        return obj.channel_quantity != obj.last_pushed_quantity

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
        shown = Channel.objects.filter(
            Q(pk=channel_id) if channel_id.isdigit() else Q(listing_download_in_progress=True)
        ).order_by("name")
        extra_context = {**(extra_context or {}), "downloads": [(channel, progress_bar(channel)) for channel in shown]}
        return super().changelist_view(request, extra_context=extra_context)


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
