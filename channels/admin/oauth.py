"""Reauthorise through the channel's consent page: the link the Reauthorise page offers, and the callback the
channel sends the seller's browser back to.

The link carries a `state` signed with the hub's secret key (django.core.signing), naming the channel and the
staff user who opened it, good for CONSENT_MAX_AGE seconds. The callback refuses a state it cannot verify, a
stale one, or one opened by someone else, and then changes nothing; otherwise it hands the code the channel
sent (in the query parameter its connector names) to `channel_reauthorise`, which keeps the stored credentials
when the channel refuses it, and goes back to the channel's page with the outcome.

The redirect URI is the hub's public address (STOCKLINE_PUBLIC_URL, or the address the request came to) and the
callback's path; it must be registered with the channel's application (Amazon's OAuth redirect URIs, EKM's
redirect URIs).
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.core import signing
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponseRedirect
from django.urls import reverse

from channels.models import Channel
from channels.permissions import CREDENTIALS_PERMISSION
from channels.sync.connections import channel_connector, channel_reauthorise

CALLBACK_URL_NAME = "channels_oauth_callback"
CONSENT_SALT = "channels.admin.oauth.consent"
# How long a consent link stays good: time to sign in to the channel and confirm, not a day later.
CONSENT_MAX_AGE = 15 * 60


def consent_redirect_uri(request: HttpRequest) -> str:
    """Where the channel sends the seller back: the callback under the hub's public address."""
    path = reverse(CALLBACK_URL_NAME)
    if settings.STOCKLINE_PUBLIC_URL:
        return settings.STOCKLINE_PUBLIC_URL + path
    return request.build_absolute_uri(path)


def consent_state(*, channel: Channel, user_id: int) -> str:
    return signing.dumps({"channel": channel.pk, "user": user_id}, salt=CONSENT_SALT, compress=True)


def consent_link(request: HttpRequest, channel: Channel) -> str | None:
    """The channel's consent page for this staff user, coming back to the callback; None: the kind has none."""
    connector = channel_connector(channel=channel)
    return connector.consent_url(consent_redirect_uri(request), consent_state(channel=channel, user_id=request.user.pk))


def _refused(request: HttpRequest, message: str, channel: Channel | None = None) -> HttpResponseRedirect:
    messages.error(request, f"{message} Nothing was changed.")
    if channel is None:
        return HttpResponseRedirect(reverse("admin:channels_channel_changelist"))
    return HttpResponseRedirect(reverse("admin:channels_channel_reauthorise", args=(channel.pk,)))


def oauth_callback(request: HttpRequest) -> HttpResponseRedirect:
    """The channel's redirect after the seller consented (wrapped in `admin_view`: staff signed in only)."""
    try:
        claims = signing.loads(request.GET.get("state", ""), salt=CONSENT_SALT, max_age=CONSENT_MAX_AGE)
    except signing.SignatureExpired:
        return _refused(request, "The authorisation came back more than 15 minutes after its consent page was "
                                 "opened: open the consent page again from the channel's Reauthorise page.")
    except signing.BadSignature:
        return _refused(request, "The authorisation came back with a state this hub did not issue (changed, or "
                                 "from another hub): open the consent page again from the channel's Reauthorise page.")
    channel = Channel.objects.filter(pk=claims.get("channel")).first()
    if channel is None:
        return _refused(request, "The authorisation names a channel that no longer exists.")
    if claims.get("user") != request.user.pk:
        return _refused(request, "This authorisation was started by another user: open the consent page yourself "
                                 "from the channel's Reauthorise page.", channel)
    if not (request.user.has_perm("channels.change_channel") and request.user.has_perm(CREDENTIALS_PERMISSION)):
        raise PermissionDenied
    connector_class = channel.connector_class
    parameter = connector_class.consent_code_parameter
    code = request.GET.get(parameter, "").strip() if parameter else ""
    if not code:
        # OAuth2 (RFC 6749 4.1.2.1): a declined or failed consent comes back with `error` instead of a code.
        error = request.GET.get("error_description") or request.GET.get("error") or ""
        why = f": {error[:200]}" if error else "."
        return _refused(request, f"{channel.name}: {connector_class.label} sent no authorisation code back{why}",
                        channel)
    refusal = channel_connector(channel=channel).consent_refusal(request.GET.dict())
    if refusal:
        return _refused(request, f"{channel.name}: {refusal}", channel)
    result = channel_reauthorise(channel_id=channel.pk, authorization_code=code,
                                 redirect_uri=consent_redirect_uri(request))
    if result.ok:
        messages.success(request, f"{channel.name}: Reauthorised on {connector_class.label}'s consent page. "
                                  f"{result.message}")
    else:
        messages.error(request, f"{channel.name}: {result.message}")
    return HttpResponseRedirect(reverse("admin:channels_channel_change", args=(channel.pk,)))
