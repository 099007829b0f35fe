"""Login throttling hooks for django-axes: which address a request comes from, and what a locked-out user sees."""

from __future__ import annotations

from django.conf import settings
from django.contrib import admin
from django.contrib.auth.forms import AuthenticationForm
from django.http import HttpRequest
from django.template.response import TemplateResponse

LOCKED_OUT_STATUS = 429


def client_ip(request: HttpRequest) -> str | None:
    """The client's address: REMOTE_ADDR, or behind TRUSTED_PROXY_COUNT proxies the address the outermost
    one saw. Entries further left were written by the client and could be forged to dodge the lockout."""
    proxies = settings.TRUSTED_PROXY_COUNT
    forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
    if proxies and len(forwarded) >= proxies:
        return forwarded[-proxies]
    return request.META.get("REMOTE_ADDR")


def lockout_message() -> str:
    minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
    return (
        f"Too many failed sign-in attempts: this account is locked on this computer for {minutes} minutes. "
        "Try again later, or ask an administrator to unlock it (Axes › Access attempts)."
    )


def lockout_response(request: HttpRequest, original_response=None, credentials=None) -> TemplateResponse:
    """The admin's own login page with the lockout explained, answered with 429 Too Many Requests."""
    form = AuthenticationForm(request)
    form.full_clean()  # an unbound form gets an empty error list, which the lockout message then fills
    form.add_error(None, lockout_message())
    context = {
        **admin.site.each_context(request),
        "title": "Log in",
        "site_header": admin.site.site_header,
        "app_path": request.get_full_path(),
        "form": form,
        "username": (credentials or {}).get("username", ""),
    }
    return TemplateResponse(request, "admin/login.html", context, status=LOCKED_OUT_STATUS)
