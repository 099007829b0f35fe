"""The stock screens of the admin: a level changed by hand, a stock count, the CSV import with its preview.

Thin: the forms read what staff typed, inventory.services checks and writes it. A preview waits in the
cache (shared by the web processes and the worker) under a random token until staff press Apply, so what
is applied is exactly what was shown, compared level by level with the on hand the preview read.
"""

from __future__ import annotations

import secrets
from urllib.parse import urlencode

from django.contrib import admin, messages
from django.core.cache import cache
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme

from inventory.forms import (
    KitImportForm,
    StockCountForm,
    StockImportForm,
    StockLevelChangeForm,
    StockPlanApplyForm,
)
from inventory.models import StockItem, StockLevel
from inventory.selectors import default_warehouse_id, stock_levels_for_item
from inventory.services import (
    StockPlan,
    StockPlanApplied,
    kits_import_csv,
    stock_count_preview,
    stock_import_preview,
    stock_level_change,
    stock_plan_apply,
)

PLAN_KEY = "stockline:stock-plan:{user_id}:{token}"
PLAN_KEPT_SECONDS = 60 * 60
# The preview lists this many changes; the rest are counted, and applied with them.
PREVIEW_ROWS = 500
MOVED_LISTED = 20
PREVIEW_GONE = "This preview has expired or was applied already: preview it again."


def _permission_check(request) -> None:
    if not request.user.has_perm("inventory.change_stocklevel"):
        raise PermissionDenied


def _context(request, model_admin: admin.ModelAdmin, title: str, **extra) -> dict:
    return {**model_admin.admin_site.each_context(request), "title": title, "opts": StockLevel._meta, **extra}


def _plan_keep(request, plan: StockPlan) -> str:
    token = secrets.token_urlsafe(24)
    cache.set(PLAN_KEY.format(user_id=request.user.pk, token=token), plan, timeout=PLAN_KEPT_SECONDS)
    return token


def _plan_take(request) -> StockPlan | None:
    """The preview Apply was pressed under, taken once: a second press finds nothing instead of applying twice."""
    form = StockPlanApplyForm(request.POST)
    if not form.is_valid():
        return None
    key = PLAN_KEY.format(user_id=request.user.pk, token=form.cleaned_data["token"])
    plan = cache.get(key)
    if plan is None or not cache.delete(key):
        return None
    return plan


def _preview_context(request, plan: StockPlan) -> dict:
    return {
        "plan": plan,
        "plan_rows": plan.changes[:PREVIEW_ROWS],
        "plan_rows_more": max(len(plan.changes) - PREVIEW_ROWS, 0),
        "apply_form": StockPlanApplyForm(initial={"token": _plan_keep(request, plan)}) if plan.changes else None,
    }


def _applied_report(request, plan: StockPlan, applied: StockPlanApplied) -> None:
    if applied.changed:
        messages.success(request, f"{plan.reference}: {applied.changed} stock levels changed.")
    if applied.moved:
        listed = "; ".join(
            f"{line.sku} at {line.location}: {line.on_hand} in the preview, {now} now"
            for line, now in applied.moved[:MOVED_LISTED]
        )
        more = f"; and {len(applied.moved) - MOVED_LISTED} more" if len(applied.moved) > MOVED_LISTED else ""
        messages.warning(
            request,
            f"{len(applied.moved)} stock levels changed after the preview and were left as they are "
            f"(check them and enter them again): {listed}{more}.",
        )


def _back(request, default: str) -> str:
    wanted = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(wanted, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return wanted
    return default


def stock_level_change_view(request, model_admin: admin.ModelAdmin, stock_item_id: int):
    """Add to, remove from or set one item's stock at a location, with a reason."""
    _permission_check(request)
    item = get_object_or_404(StockItem, pk=stock_item_id)
    back = _back(request, reverse("admin:inventory_stockitem_change", args=[item.pk]))
    location = request.GET.get("location") or default_warehouse_id()
    form = StockLevelChangeForm(request.POST or None, initial={"location": location})
    if request.method == "POST" and form.is_valid():
        how, number = form.cleaned_data["change"]
        try:
            change = stock_level_change(
                stock_item_id=item.pk, location_id=form.cleaned_data["location"].pk, note=form.cleaned_data["note"],
                user=request.user, **({"set_to": number} if how == "set" else {"add": number}),
            )
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            if change.before == change.after:
                messages.info(
                    request, f"{change.sku} at {change.location} already has {change.after}: nothing changed."
                )
            else:
                messages.success(
                    request, f"{change.sku} at {change.location}: {change.before} → {change.after} "
                    f"({form.cleaned_data['note'].strip()})."
                )
            if change.available < 0:
                messages.warning(
                    request, f"Open orders hold {change.in_open_orders} of {change.sku} at {change.location}: "
                    f"available is {change.available}, so the channels get 0 until more arrives.",
                )
            return redirect(back)
    context = _context(
        request, model_admin, f"Change stock of {item.sku}", item=item, form=form, back=back,
        levels=stock_levels_for_item(stock_item_id=item.pk),
    )
    return TemplateResponse(request, "admin/inventory/stock_level_change.html", context)


def stock_count_view(request, model_admin: admin.ModelAdmin):
    """Counted quantities for one location, previewed as differences, applied as one ledger batch."""
    _permission_check(request)
    preview: dict = {}
    if request.method == "POST" and "token" in request.POST:
        plan = _plan_take(request)
        if plan is not None:
            _applied_report(request, plan, stock_plan_apply(plan=plan, user=request.user))
            again = urlencode({"location": request.POST.get("location", "")})
            return redirect(f"{reverse('admin:inventory_stocklevel_count')}?{again}")
        # What was counted comes back with the Apply, so it can be previewed again.
        form = StockCountForm(request.POST)
        form.is_valid()
        form.add_error(None, PREVIEW_GONE)
    elif request.method == "POST":
        form = StockCountForm(request.POST)
        if form.is_valid():
            try:
                plan = stock_count_preview(
                    location_id=form.cleaned_data["location"].pk, counted=form.cleaned_data["counted"]
                )
            except ValidationError as exc:
                form.add_error(None, exc)
            else:
                preview = _preview_context(request, plan)
    else:
        form = StockCountForm(initial={"location": request.GET.get("location") or default_warehouse_id()})
    context = _context(request, model_admin, "Stock count", form=form, **preview)
    return TemplateResponse(request, "admin/inventory/stock_count.html", context)


def stock_import_view(request, model_admin: admin.ModelAdmin):
    """The "Import stock CSV" page: every bad line at once, or a preview to apply."""
    _permission_check(request)
    preview: dict = {}
    form = StockImportForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and "token" in request.POST:
        plan = _plan_take(request)
        if plan is None:
            messages.error(request, f"{PREVIEW_GONE} Choose the file again.")
            return redirect("admin:inventory_stocklevel_import")
        _applied_report(request, plan, stock_plan_apply(plan=plan, user=request.user))
        return redirect("admin:inventory_stocklevel_changelist")
    elif request.method == "POST" and form.is_valid():
        try:
            plan = stock_import_preview(file=form.cleaned_data["file"])
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            preview = _preview_context(request, plan)
    context = _context(request, model_admin, "Import stock CSV", form=form, **preview)
    return TemplateResponse(request, "admin/inventory/import_stock.html", context)


# A kit's components are part of the stock item: changing them needs the stock item change permission.
KIT_PERMISSION = "inventory.change_stockitem"


def kit_import_view(request, model_admin: admin.ModelAdmin):
    """The "Import kits CSV" page: every bad line at once on the file, or the kits made."""
    if not request.user.has_perm(KIT_PERMISSION):
        raise PermissionDenied
    form = KitImportForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        try:
            changed = kits_import_csv(file=form.cleaned_data["file"])
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(request, f"{changed} kit(s) made or changed from {form.cleaned_data['file'].name}.")
            return redirect("admin:inventory_stockitem_changelist")
    context = {**model_admin.admin_site.each_context(request), "title": "Import kits CSV",
               "opts": StockItem._meta, "form": form}
    return TemplateResponse(request, "admin/inventory/import_kits.html", context)
