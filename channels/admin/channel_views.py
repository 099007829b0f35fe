"""The Channel Integration screen's own pages: the row and form buttons (Test, Test before Save, Reauthorise,
Download orders now, Push stock now, Push all stock, Download listings and its progress), the three mapping pages
and the sync dashboard.

Each view checks the user's right, calls one service, selector or task, and turns the answer into a message,
a page or JSON. ChannelAdmin wires them in its get_urls.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse

from channels.admin.oauth import consent_link
from channels.admin.presentation import download_state
from channels.connectors.base import ChannelError
from channels.dashboard import (
    activity_by_day,
    activity_chart_svg,
    activity_totals,
    dashboard_channels,
    oversold_levels,
    runs_needing_attention,
)
from channels.forms import (
    CREDENTIAL_PREFIX,
    LocationMappingForm,
    ShippingMappingForm,
    StatusMappingForm,
    credential_fields,
)
from channels.models import Channel, OrderStatusMapping
from channels.permissions import CREDENTIALS_PERMISSION
from channels.services import (
    channel_location_mapping_save,
    channel_shipping_mappings_save,
    channel_status_mappings_save,
)
from channels.sync.connections import (
    channel_locations_offered,
    channel_order_statuses,
    channel_reauthorise,
    channel_test,
    channel_test_unsaved,
)
from channels.sync.listings_download import listings_download_asked
from channels.sync.now import SyncNow, sync_now_refusal
from channels.tasks import inventory_push_task, listings_download_task, orders_download_task

TESTED_CREDENTIALS_SESSION_KEY = "channels:tested-credentials"


class ReauthoriseForm(forms.Form):
    authorization_code = forms.CharField(
        label="Authorisation code", required=False, strip=True, widget=forms.PasswordInput(render_value=False),
        help_text="Amazon: the spapi_oauth_code from Seller Central's authorisation page. EKM: the code from "
        "EKM's consent page. Rakuten: a new web services token. Shopify: none (the app's client id and secret "
        "obtain each token; a new secret goes in the account's Client secret). Leave empty to check that the stored "
        "credentials still work.",
    )


def requested_kind(request: HttpRequest, obj: Channel | None) -> str:
    """The channel's kind, or on the add page the one chosen (?kind=), "" when none valid is."""
    if obj is not None:
        return obj.kind
    kind = request.GET.get("kind", "")
    return kind if kind in Channel.Kind.values else ""


class ChannelViewsMixin:
    """The custom views of ChannelAdmin; it needs the ModelAdmin's permissions, forms and messages."""

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

    # --- buttons --------------------------------------------------------------------------------

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
        kind = requested_kind(request, None)
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
        # The channel's own consent page where it has one; the code field stays for a code copied by hand.
        return self._page(request, channel, "Reauthorise", "admin/channels/channel/reauthorise.html", {
            "form": form, "consent_url": consent_link(request, channel), "consent_label": channel.connector_class.label,
        })

    def _sync_now(self, request: HttpRequest, object_id: int, *, what: SyncNow, queue: Callable[[int], object],
                  queued: str) -> HttpResponseRedirect:
        """A sync-now button: queue the task beat and the commands use, unless sync.now refuses it."""
        channel = self._channel_for_button(request, object_id)
        if request.method != "POST":
            return self._back(request, channel)
        refusal = sync_now_refusal(channel=channel, what=what)
        if refusal:
            self.message_user(request, f"{channel.name}: nothing queued: {refusal}.", messages.WARNING)
        else:
            queue(channel.pk)
            self.message_user(request, f"{channel.name}: {queued}", messages.SUCCESS)
        return self._back(request, channel)

    def download_orders_view(self, request: HttpRequest, object_id: int):
        # Staff asked for it now: not held back to the quota's pace like beat's (the rate limiter still is).
        return self._sync_now(
            request, object_id, what=SyncNow.ORDERS,
            queue=lambda channel_id: orders_download_task.delay(channel_id, paced=False),
            queued="order download queued; it shows under Last order sync.",
        )

    def push_stock_view(self, request: HttpRequest, object_id: int):
        return self._sync_now(
            request, object_id, what=SyncNow.PUSH, queue=inventory_push_task.delay,
            queued="push of the changed stock queued; it shows under Last inventory sync.",
        )

    def push_all_stock_view(self, request: HttpRequest, object_id: int):
        return self._sync_now(
            request, object_id, what=SyncNow.PUSH,
            queue=lambda channel_id: inventory_push_task.delay(channel_id, True),
            queued="push of every listing's stock queued; it shows under Last inventory sync.",
        )

    def download_listings_view(self, request: HttpRequest, object_id: int):
        def queue(channel_id: int) -> None:
            # Stamped before it is queued: a worker that claims it at once then overwrites the stamp, not after.
            listings_download_asked(channel_id=channel_id)
            listings_download_task.delay(channel_id)

        return self._sync_now(
            request, object_id, what=SyncNow.LISTINGS, queue=queue,
            queued="listing download queued; its progress shows under Listings.",
        )

    def download_status_view(self, request: HttpRequest, object_id: int):
        channel = self._channel_for_button(request, object_id, change=False)
        return JsonResponse(download_state(channel))

    # --- mapping pages --------------------------------------------------------------------------

    def location_mapping_view(self, request: HttpRequest, object_id: int):
        channel = self._channel_for_button(request, object_id)
        offered, note = None, ""
        if channel.connector_class.has_channel_locations:
            try:
                offered = channel_locations_offered(channel=channel)
            except ChannelError as exc:
                note = f"The channel's locations could not be fetched ({exc}); its location is left as it is."
        form = LocationMappingForm(request.POST or None, channel=channel, channel_locations=offered)
        if request.method == "POST" and form.is_valid():
            before = form.initial_summary()
            channel_location_mapping_save(
                channel_id=channel.pk, from_locations=form.cleaned_data["update_inventory_from_locations"],
                location_ids=[location.pk for location in form.cleaned_data["locations"]],
                channel_location_id=form.cleaned_data.get("channel_location_id"),
            )
            channel.refresh_from_db()
            after = LocationMappingForm(channel=channel, channel_locations=offered).initial_summary()
            return self._saved(request, channel, "Location mapping", [after] if after != before else [])
        return self._page(request, channel, "Location mapping", "admin/channels/channel/mapping.html",
                          {"form": form, "note": note})

    def status_mapping_view(self, request: HttpRequest, object_id: int):
        channel = self._channel_for_button(request, object_id)
        offered, note = [], ""
        try:
            offered = channel_order_statuses(channel=channel)
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
        orders_total, pushed_total = activity_totals(points)
        context = {
            **self.admin_site.each_context(request), "opts": self.opts, "title": "Sync dashboard",
            "summaries": dashboard_channels(), "attention": runs_needing_attention(),
            "oversold": oversold_levels(), "chart": activity_chart_svg(points),
            "orders_total": orders_total, "pushed_total": pushed_total,
        }
        return TemplateResponse(request, "admin/channels/dashboard.html", context)
