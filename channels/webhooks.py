"""The hub's webhook endpoint: POST /webhooks/<channel id>/<token>/, one path per channel.

Any channel kind that sends order webhooks posts here: its connector's `webhook_hint` checks the delivery
(a signature where the channel signs, the merchant, the topic) and names the orders to read. The answer comes
at once, once the hint is queued (EKM waits 5 s, then retries); the orders are read by the task.
"""

from __future__ import annotations

import logging

from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST
from kombu.exceptions import OperationalError

from channels.connectors.base import WebhookRefused, WebhookUnsigned
from channels.models import Channel
from channels.sync.account_deletion import account_deletion_challenge, account_deletion_receive, account_deletion_url
from channels.sync.order_hints import channel_webhook_token_matches, order_hint_receive
from channels.tasks import orders_hint_task

logger = logging.getLogger(__name__)

# EKM's delivery is a few hundred bytes ({username, topic, entity_id}), but Shopify's and WooCommerce's carry the
# whole order, a few KiB a line: an order of a few hundred lines must still be read to check its signature.
MAX_WEBHOOK_BYTES = 1024 * 1024


def text(message: str, status: int) -> HttpResponse:
    return HttpResponse(message + "\n", status=status, content_type="text/plain; charset=utf-8")


@csrf_exempt
@require_POST
def channel_webhook(request: HttpRequest, channel_id: int, token: str) -> HttpResponse:
    if not channel_webhook_token_matches(channel_id=channel_id, token=token):
        raise Http404("no such webhook")
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return text("Content-Length is not a number.", 400)
    # Read one byte past the limit, so a body sent without a length is bounded too.
    body = b"" if declared > MAX_WEBHOOK_BYTES else request.read(MAX_WEBHOOK_BYTES + 1)
    if declared > MAX_WEBHOOK_BYTES or len(body) > MAX_WEBHOOK_BYTES:
        return text(f"The body is larger than {MAX_WEBHOOK_BYTES // 1024 // 1024} MiB.", 413)
    try:
        hint = order_hint_receive(channel_id=channel_id, headers=request.headers, body=body)
    except Channel.DoesNotExist:
        raise Http404("no such webhook") from None
    except WebhookUnsigned as exc:
        return text(str(exc), 401)
    except WebhookRefused as exc:
        return text(str(exc), 400)
    if hint is None:
        return text("The channel is disabled: nothing to read.", 200)
    try:
        orders_hint_task.delay(channel_id, list(hint.order_ids))
    except OperationalError:
        # Not queued: the channel is told to try again later, and the download still finds the order.
        logger.exception("channels.webhooks.not_queued channel=%s", channel_id)
        return text("The hint could not be queued; try again.", 503)
    return text("Queued.", 200)


@csrf_exempt
@require_http_methods(["GET", "POST"])
def channel_account_deletion(request: HttpRequest, channel_id: int, token: str) -> HttpResponse:
    """A channel's account deletion endpoint (channels.sync.account_deletion): GET answers its challenge, POST
    takes a notice. Acknowledged at once; a notice that cannot be verified is refused with why."""
    if not channel_webhook_token_matches(channel_id=channel_id, token=token):
        raise Http404("no such endpoint")
    try:
        if request.method == "GET":
            code = request.GET.get("challenge_code", "")
            if not code:
                return text("challenge_code is missing.", 400)
            endpoint = account_deletion_url(channel_id=channel_id) or request.build_absolute_uri(request.path)
            return JsonResponse(account_deletion_challenge(channel_id=channel_id, challenge_code=code,
                                                           endpoint_url=endpoint))
        body = request.read(MAX_WEBHOOK_BYTES + 1)
        if len(body) > MAX_WEBHOOK_BYTES:
            return text(f"The body is larger than {MAX_WEBHOOK_BYTES // 1024 // 1024} MiB.", 413)
        account_deletion_receive(channel_id=channel_id, headers=request.headers, body=body)
    except Channel.DoesNotExist:
        raise Http404("no such endpoint") from None
    except WebhookRefused as exc:
        logger.warning("channels.account_deletion.refused channel=%s reason=%s", channel_id, exc)
        return text(str(exc), 412 if request.method == "POST" else 400)
    return HttpResponse(status=204)
