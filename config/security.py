"""Login throttling hooks for django-axes: which address a request comes from, and what a locked-out user sees."""

from __future__ import annotations

from django.conf import settings
from django.contrib import admin
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

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


class LockedOutForm(AuthenticationForm):
    """The admin's login form, refusing with the lockout message whatever was typed."""

    def clean(self):
        raise ValidationError(lockout_message(), code="locked_out")


def lockout_response(request: HttpRequest, original_response=None, credentials=None) -> HttpResponse:
    """The admin's own login page with the lockout explained, answered with 429 Too Many Requests."""
    username = (credentials or {}).get("username") or request.POST.get("username", "")
    # Bound only so the message shows; the password is never checked nor rendered back.
    form = LockedOutForm(request, data={"username": username, "password": "-"})
    form.is_valid()
    context = {
        **admin.site.each_context(request),
        "title": "Log in",
        "app_path": request.get_full_path(),
        "form": form,
        "username": username,
    }
    # Rendered now: axes returns it from its middleware, after the response phase that renders templates.
    return render(request, "admin/login.html", context, status=LOCKED_OUT_STATUS)
