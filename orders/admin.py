from datetime import timedelta
from datetime import timezone as fixed_offset

from django.contrib import admin, messages
from django.core.exceptions import NON_FIELD_ERRORS, PermissionDenied, ValidationError
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import formats, timezone
from django.utils.html import format_html

from orders.external_fulfilment import order_stock_can_move
from orders.forms import (
    OrderCancelForm,
    OrderChangeForm,
    OrderProcessForm,
    OrderReallocateForm,
    OrderRetellForm,
    TrackingLinesForm,
)
from orders.models import Order, OrderItem, PostalService
from orders.selectors import (
    order_channel_not_told,
    order_channel_told,
    orders_channel_not_told,
    orders_channel_told_report,
    orders_with_item_counts,
)
from orders.services import (
    RETRY_ACTION,
    order_cancel,
    order_channel_retell,
    order_item_link,
    order_process_keeping_details,
    order_reallocate,
    orders_process_with_tracking,
    orders_tracking_number_problem,
)

# How each outcome of telling the channel is shown to staff: a channel left untold by its settings is worth a
# second look, since the marketplace then never hears of it.
TOLD_LEVELS = {"told": messages.SUCCESS, "telling": messages.INFO, "none": messages.WARNING,
               "not told": messages.ERROR}


@admin.register(PostalService)
class PostalServiceAdmin(admin.ModelAdmin):
    list_display = ["name", "carrier_code", "tracking_url_template"]
    search_fields = ["name", "carrier_code"]


class OrderItemInline(admin.TabularInline):
    model = OrderItem
    extra = 0
    fields = ["channel_sku", "stock_item", "title", "quantity", "unit_price", "tax", "channel_line_id"]
    readonly_fields = ["channel_sku", "title", "quantity", "unit_price", "tax", "channel_line_id"]
    # Found by SKU, title or barcode as staff type.
    autocomplete_fields = ["stock_item"]
    # Lines come from the channel; a deleted line would leave its reservation behind.
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and order_stock_can_move(obj):
            return self.readonly_fields
        return [*self.readonly_fields, "stock_item"]


class OpenFilter(admin.SimpleListFilter):
    title = "open"
    parameter_name = "open"

    def lookups(self, request, model_admin):
        return [("yes", "Open (unpaid, paid, pending)"), ("no", "Processed or cancelled")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(status__in=Order.OPEN_STATUSES)
        if self.value() == "no":
            return queryset.exclude(status__in=Order.OPEN_STATUSES)
        return queryset


class ChannelToldFilter(admin.SimpleListFilter):
    title = "channel told"
    parameter_name = "channel_told"

    def lookups(self, request, model_admin):
        return [("not_told", "Channel not told (refused, failed or lost)"),
                (Order.ChannelTold.TELLING, "Telling the channel now"), (Order.ChannelTold.TOLD, "Told"),
                (Order.ChannelTold.NOT_NEEDED, "Not needed")]

    def queryset(self, request, queryset):
        if self.value() == "not_told":
            return orders_channel_not_told(queryset)
        if self.value() in Order.ChannelTold.values:
            return queryset.filter(channel_told=self.value())
        return queryset


def _field_errors_added(form, error: ValidationError) -> bool:
    """Put a refusal's messages next to the form's fields they name; False when it names none of them."""
    if not hasattr(error, "error_dict") or not set(error.error_dict) & {*form.fields, NON_FIELD_ERRORS}:
        return False
    for field, errors in error.error_dict.items():
        form.add_error(field if field in form.fields else None, errors)
    return True


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    # Status with the channel's own beneath it (paid or not is the status), the unlinked flag beneath the items
    # and total with its currency: the list fits a 1366 px laptop with the filters beside it; what the channel
    # was told sits beside the status.
    list_display = [
        "channel_order_id", "channel", "status_on_both_sides", "channel_confirmation", "received", "items_count",
        "total_in_currency", "location", "postal_service",
    ]
    list_filter = [OpenFilter, ChannelToldFilter, "status", "channel", "is_paid", "has_unlinked_items",
                   "fulfilment_location", "fulfilled_by_channel"]
    search_fields = ["channel_order_id", "buyer_name", "buyer_email", "ship_postcode", "tracking_number"]
    search_help_text = "Order number, buyer's name or email, postcode or tracking number."
    # Sorts backed by an index; the filters narrow by channel, paid, location and the rest.
    sortable_by = ["channel_order_id", "status_on_both_sides", "received"]
    list_select_related = ["channel", "fulfilment_location", "postal_service"]
    date_hierarchy = "received_at"
    inlines = [OrderItemInline]
    show_full_result_count = False
    actions = ["process_orders", "retry_telling_channel", "cancel_orders", "reallocate_orders"]
    form = OrderChangeForm
    change_form_template = "admin/orders/order/change_form.html"
    change_list_template = "admin/orders/order/change_list.html"
    readonly_fields = [
        "channel", "channel_order_id", "status", "channel_status", "is_paid", "fulfilled_by_channel",
        "received_at", "received_channel_time", "channel_updated_at", "processed_at", "cancelled_at",
        "channel_confirmation", "despatch_sent_at", "despatch_error", "cancellation_sent_at", "cancellation_reason",
        "cancellation_error", "has_unlinked_items", "created_at", "updated_at",
        # What the channel charged the buyer: kept as downloaded (the lines' prices too).
        "currency", "subtotal", "shipping_cost", "tax", "total",
    ]
    fieldsets = [
        (None, {"fields": [
            ("channel", "channel_order_id"), ("status", "channel_status", "is_paid"),
            ("received_at", "received_channel_time", "channel_updated_at"), "fulfilled_by_channel",
            "has_unlinked_items",
        ]}),
        ("Buyer and delivery", {"fields": [
            ("buyer_name", "buyer_email"), "ship_name", "ship_line1", "ship_line2",
            ("ship_city", "ship_region"), ("ship_postcode", "ship_country"), "ship_phone",
        ]}),
        ("Shipping", {"fields": [
            "channel_shipping_tag", "postal_service", "fulfilment_location", "tracking_number",
        ]}),
        ("Amounts", {"fields": [("currency", "subtotal", "shipping_cost", "tax", "total")]}),
        ("Channel confirmation", {"fields": [
            "channel_confirmation", ("processed_at", "despatch_sent_at"), "despatch_error",
            ("cancelled_at", "cancellation_sent_at"), "cancellation_reason", "cancellation_error",
            ("created_at", "updated_at"),
        ]}),
    ]

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and order_stock_can_move(obj):
            return self.readonly_fields
        return [*self.readonly_fields, "fulfilment_location"]

    def save_model(self, request, obj, form, change):
        if change and {"tracking_number", "postal_service"} & set(form.changed_data) and order_channel_not_told(obj):
            # Saving changes the order here only: the channel that refused it hears of it on a retry.
            self.message_user(request, f"Order {obj.channel_order_id}: the channel has not been told yet; use "
                                       f"“{RETRY_ACTION}” to send it the new details.", messages.WARNING)
        if not change or "fulfilment_location" not in form.changed_data:
            return super().save_model(request, obj, form, change)
        # The stock moves with the location, through the service; the rest of the form saves as usual.
        obj.save(update_fields=[*(f for f in form.changed_data if f != "fulfilment_location"), "updated_at"])
        self._through_service(request, lambda: order_reallocate(
            order_id=obj.pk, location_id=obj.fulfilment_location_id, user=request.user,
        ), done=f"Order {obj.channel_order_id}: its stock is now held at {obj.fulfilment_location}.")

    def save_formset(self, request, form, formset, change):
        if formset.model is not OrderItem:
            return super().save_formset(request, form, formset, change)
        # Each relinked line moves its reservation (order_item_link); lines have nothing else to save.
        # commit=False records what changed, for the page's history entry, without writing it.
        formset.save(commit=False)
        for line, changed in formset.changed_objects:
            if "stock_item" not in changed:
                continue
            done = (f"Line {line.channel_sku}: linked to {line.stock_item.sku}, its stock held for this order."
                    if line.stock_item_id else f"Line {line.channel_sku}: unlinked, its stock released.")
            self._through_service(request, lambda line=line: order_item_link(
                order_item_id=line.pk, stock_item_id=line.stock_item_id, user=request.user,
            ), done=done)

    def _through_service(self, request, call, *, done: str) -> None:
        # The form checked the same rules; this only fails if the order changed in between.
        try:
            call()
        except ValidationError as exc:
            self.message_user(request, " ".join(exc.messages), messages.ERROR)
        else:
            self.message_user(request, done, messages.SUCCESS)

    def get_queryset(self, request):
        return orders_with_item_counts(super().get_queryset(request))

    def get_urls(self):
        def view(action: str):
            return path(
                f"<int:object_id>/{action}/", self.admin_site.admin_view(lambda request, object_id: self.one_order_view(
                    request, object_id, action=action)), name=f"orders_order_{action}",
            )

        tracking = path("process-with-tracking/", self.admin_site.admin_view(self.tracking_lines_view),
                        name="orders_order_process_with_tracking")
        return [view("process"), view("cancel"), view("retry"), tracking, *super().get_urls()]

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "has_change_permission": self.has_change_permission(request)}
        return super().changelist_view(request, extra_context)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        order = self.get_object(request, object_id)
        retry = order is not None and order_channel_not_told(order)
        return super().change_view(request, object_id, form_url, {**(extra_context or {}), "offer_retry": retry,
                                                                   "retry_action": RETRY_ACTION})

    def one_order_view(self, request, object_id: int, *, action: str):
        """The order page's Process, Retry and Cancel buttons: the bulk action's page for this one order."""
        order = get_object_or_404(Order, pk=object_id)
        if not self.has_change_permission(request, order):
            raise PermissionDenied
        apply = {"process": self.process_orders, "cancel": self.cancel_orders,
                 "retry": self.retry_telling_channel}[action]
        response = apply(request, Order.objects.filter(pk=order.pk))
        if response is None:
            return HttpResponseRedirect(reverse("admin:orders_order_change", args=(order.pk,)))
        response.context_data["single"] = True
        return response

    @admin.display(description="status", ordering="status")
    def status_on_both_sides(self, obj: Order) -> str:
        if not obj.channel_status:
            return obj.get_status_display()
        return format_html('{}<br><span class="quiet">{} on the channel</span>', obj.get_status_display(),
                           obj.channel_status)

    @admin.display(description="received", ordering="received_at")
    def received(self, obj: Order) -> str:
        # Sorted on the instant, shown in the staff's zone; the channel's own clock beneath when it reads
        # otherwise (an Amazon order at its UTC offset 1, say), as the status shows the channel's beneath.
        shown = timezone.localtime(obj.received_at)
        if shown.utcoffset() == obj.channel.utc_offset:
            return formats.localize(shown)
        return format_html('{}<br><span class="quiet">{} channel time</span>', formats.localize(shown),
                           self.received_channel_time(obj))

    @admin.display(description="received (channel time)")
    def received_channel_time(self, obj: Order) -> str:
        """When the order was received on the channel's clock: the instant at the channel's UTC offset setting."""
        offset = obj.channel.utc_offset
        return f"{formats.localize(obj.received_at.astimezone(fixed_offset(offset)))} ({_utc_offset_label(offset)})"

    @admin.display(description="total")
    def total_in_currency(self, obj: Order) -> str:
        return f"{obj.total} {obj.currency}"

    @admin.display(description="items")
    def items_count(self, obj: Order) -> str:
        # Flagged only when true: a red cross on every healthy order would read as an error.
        if not obj.has_unlinked_items:
            return str(obj.items_total)
        return format_html('{}<br><span style="color:#b00020">{}</span>', obj.items_total, "unlinked item")

    @admin.display(description="location")
    def location(self, obj: Order) -> str:
        return str(obj.fulfilment_location or "-")

    @admin.display(description="channel told")
    def channel_confirmation(self, obj: Order) -> str:
        state, words = order_channel_told(order=obj)
        if state == "not told":
            return format_html('<span style="color:#b00020">{}</span>', words[:120])
        return words

    def _told_report(self, request, order_ids: list[int], *, verb: str) -> None:
        for state, message in orders_channel_told_report(order_ids=order_ids, done=verb):
            self.message_user(request, message, TOLD_LEVELS[state])

    def _apply(self, request, queryset, *, form_class, title: str, verb: str, apply, report: bool = True,
               intro: str = ""):
        """An intermediate page asking the action's details, then the service for each order; with `report`,
        what each order's channel heard is said too."""
        form = form_class(request.POST if "apply" in request.POST else None)
        if form.is_bound and form.is_valid():
            if problem := orders_tracking_number_problem(
                order_count=len(queryset), tracking_number=form.cleaned_data.get("tracking_number", ""),
            ):
                form.add_error("tracking_number", problem)
            else:
                done, failed = [], []
                orders = list(queryset.select_related("channel", "postal_service"))
                for order in orders:
                    try:
                        apply(order, form)
                        done.append(order.pk)
                    except ValidationError as exc:
                        if len(orders) == 1 and _field_errors_added(form, exc):
                            break
                        failed.append(f"{order.channel_order_id}: {' '.join(exc.messages)}")
                else:
                    # Read after each order's transaction committed: an inline despatch has its answer already.
                    if done and report:
                        self._told_report(request, done, verb=verb)
                    elif done:
                        self.message_user(request, f"{len(done)} order(s) {verb}.", messages.SUCCESS)
                    for line in failed:
                        self.message_user(request, line, messages.ERROR)
                    return None
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts, "title": title, "form": form, "orders": queryset, "single": False, "intro": intro,
            "action": request.POST.get("action"), "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/orders/order/action_form.html", context)

    @admin.action(description="Process (despatch) selected orders", permissions=["change"])
    def process_orders(self, request, queryset):
        return self._apply(
            request, queryset, form_class=OrderProcessForm, title="Process orders", verb="processed",
            apply=lambda order, form: order_process_keeping_details(
                order=order, tracking_number=form.cleaned_data["tracking_number"],
                postal_service_id=_pk(form.cleaned_data["postal_service"]), user=request.user,
            ),
        )

    @admin.action(description=RETRY_ACTION, permissions=["change"])
    def retry_telling_channel(self, request, queryset):
        return self._apply(
            request, queryset, form_class=OrderRetellForm, title=RETRY_ACTION, verb="sent again",
            intro="The channel is sent the despatch (or cancellation) again, once the tracking number or carrier "
                  "it refused is fixed here or left as the order has it.",
            apply=lambda order, form: order_channel_retell(
                order_id=order.pk, tracking_number=form.cleaned_data["tracking_number"],
                postal_service_id=_pk(form.cleaned_data["postal_service"]), user=request.user,
            ),
        )

    @admin.action(description="Cancel selected orders", permissions=["change"])
    def cancel_orders(self, request, queryset):
        orders = list(queryset.select_related("channel"))
        return self._apply(
            request, queryset, form_class=lambda data: OrderCancelForm(data, orders=orders), title="Cancel orders",
            verb="cancelled", apply=lambda order, form: order_cancel(
                order_id=order.pk, reason=form.reason_for(order), user=request.user),
        )

    @admin.action(description="Fulfil selected orders from another location (or from FBA)", permissions=["change"])
    def reallocate_orders(self, request, queryset):
        return self._apply(
            request, queryset, form_class=OrderReallocateForm, title="Fulfil from another location",
            verb="moved", report=False, apply=lambda order, form: order_reallocate(
                order_id=order.pk, location_id=form.cleaned_data["location"].pk, user=request.user,
            ),
        )

    def tracking_lines_view(self, request):
        """Process with tracking numbers: every line checked first, every bad line listed, nothing applied
        unless all are good; then every order processed at once, as processing one does."""
        if not self.has_change_permission(request):
            raise PermissionDenied
        form = TrackingLinesForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            try:
                ids = orders_process_with_tracking(lines=form.tracking_lines, user=request.user)
            except ValidationError as exc:
                form.add_error(None, exc)
            else:
                self._told_report(request, ids, verb="processed")
                return HttpResponseRedirect(reverse("admin:orders_order_changelist"))
        context = {**self.admin_site.each_context(request), "opts": self.opts, "form": form,
                   "title": "Process with tracking numbers"}
        return TemplateResponse(request, "admin/orders/order/tracking_lines.html", context)


def _utc_offset_label(offset: timedelta) -> str:
    minutes = round(offset.total_seconds() / 60)
    hours, rest = divmod(abs(minutes), 60)
    return f"UTC{'−' if minutes < 0 else '+'}{hours}" + (f":{rest:02d}" if rest else "")


def _pk(instance) -> int | None:
    return instance.pk if instance is not None else None
