"""Account deletion notices: a channel that requires every application to erase the data of a user who closed
their account (eBay's marketplace account deletion notifications) first proves the endpoint with a challenge,
then posts signed notices. The connector answers the challenge and verifies each notice; the buyer's personal
data is then erased from the channel's orders (orders.services.orders_buyer_erase).

Each channel has its own endpoint: its webhook path plus /account-deletion/, registered with the channel's
application together with the verification token kept in the channel's credentials.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from django.conf import settings
from django.urls import reverse

from channels.connectors.base import WebhookRefused
from channels.models import Channel
from channels.sync.connections import channel_connector
from channels.sync.order_hints import channel_webhook_token
from orders.services import orders_buyer_erase

logger = logging.getLogger(__name__)

ACCOUNT_DELETION_URL_NAME = "channel-account-deletion"


def account_deletion_url(*, channel_id: int) -> str:
    """The endpoint to register with the channel's application (empty without STOCKLINE_PUBLIC_URL)."""
    if not settings.STOCKLINE_PUBLIC_URL:
        return ""
    path = reverse(ACCOUNT_DELETION_URL_NAME, kwargs={"channel_id": channel_id,
                                                      "token": channel_webhook_token(channel_id=channel_id)})
    return settings.STOCKLINE_PUBLIC_URL + path


def _connector(channel_id: int):
    channel = Channel.objects.get(pk=channel_id)
    connector = channel_connector(channel=channel)
    if not connector.receives_account_deletion_notices:
        raise WebhookRefused(f"{connector.label} channels send no account deletion notices")
    return connector


def account_deletion_challenge(*, channel_id: int, challenge_code: str, endpoint_url: str) -> dict[str, str]:
    """The answer to the channel's check of this endpoint. Raises Channel.DoesNotExist or WebhookRefused."""
    return _connector(channel_id).account_deletion_challenge(challenge_code, endpoint_url)


def account_deletion_receive(*, channel_id: int, headers: Mapping[str, str], body: bytes) -> int:
    """Verify one notice and erase its user's personal data from the channel's orders; returns how many orders
    held it. Raises WebhookRefused for a notice that cannot be trusted (nothing is erased then)."""
    deletion = _connector(channel_id).account_deletion_notice(headers, body)
    erased = orders_buyer_erase(channel_id=channel_id, buyer_name=deletion.username)
    # The user is named by the channel's own id only: their username is what was just erased.
    logger.info("channels.account_deletion.erased channel=%s user_id=%s orders=%s", channel_id, deletion.user_id,
                erased)
    return erased
