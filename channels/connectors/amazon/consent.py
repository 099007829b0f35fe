"""Seller Central's website authorisation workflow: the consent page the hub links to (contract/auth.json,
operation `consent`).

Amazon's SP-API documentation (Website Authorization Workflow, Seller Central URLs): the seller opens
`{Seller Central URL}/apps/authorize/consent?application_id=...&state=...` (plus `version=beta` while the
application is in draft, and `redirect_uri`, one of the application's OAuth redirect URIs; without it Amazon
uses the first), signs in and confirms; Amazon then sends the browser to the redirect URI with `state`,
`selling_partner_id` and `spapi_oauth_code`, a code that lives five minutes and is exchanged at LWA's token
endpoint (grant_type=authorization_code).

The application id (amzn1.sp.solution...) is not the LWA client id: it is the channel's account setting
`application_id`, with `application_draft` on while the application is unpublished (the draft workflow).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from urllib.parse import urlencode, urlsplit

from channels.connectors.base import ConnectorConfig

CODE_PARAMETER = "spapi_oauth_code"
CONSENT_PATH = "/apps/authorize/consent"
# Seller Central by marketplace (Amazon's "Seller Central URLs" table); a marketplace not listed: the
# European one, where the hub's default marketplace (UK) is.
SELLER_CENTRAL_EUROPE = "https://sellercentral-europe.amazon.com"
SELLER_CENTRAL: Mapping[str, str] = {
    "A1F83G8C2ARO7P": SELLER_CENTRAL_EUROPE,  # UK
    "A1PA6795UKMFR9": SELLER_CENTRAL_EUROPE,  # Germany
    "A13V1IB3VIYZZH": SELLER_CENTRAL_EUROPE,  # France
    "APJ6JRA9NG5V4": SELLER_CENTRAL_EUROPE,  # Italy
    "A1RKKUPIHCS9HS": SELLER_CENTRAL_EUROPE,  # Spain
    "A1805IZSGTT6HS": "https://sellercentral.amazon.nl",
    "AMEN7PMS3EDWL": "https://sellercentral.amazon.com.be",
    "A2NODRKZP88ZB9": "https://sellercentral.amazon.se",
    "A1C3SOZRARQ6R3": "https://sellercentral.amazon.pl",
    "A33AVAJ2PDY3EV": "https://sellercentral.amazon.com.tr",
    "ARBP9OOSHTCHU": "https://sellercentral.amazon.eg",
    "A17E79C6D8DWNP": "https://sellercentral.amazon.sa",
    "A2VIGQ35RCS4UG": "https://sellercentral.amazon.ae",
    "A21TJRUUN4KGV": "https://sellercentral.amazon.in",
    "AE08WJ6YKNBMC": "https://sellercentral.amazon.co.za",
    "ATVPDKIKX0DER": "https://sellercentral.amazon.com",
    "A2EUQ1WTGCTBG2": "https://sellercentral.amazon.ca",
    "A1AM78C64UM0Y8": "https://sellercentral.amazon.com.mx",
    "A2Q3Y263D00KWC": "https://sellercentral.amazon.com.br",
    "A1VC38T7YXB528": "https://sellercentral.amazon.co.jp",
    "A39IBJ37TRP1C6": "https://sellercentral.amazon.com.au",
    "A19VAU5U5O7RUS": "https://sellercentral.amazon.sg",
}


def consent_base(config: ConnectorConfig, lwa_hosts: Collection[str]) -> str:
    """Where the consent page is: Seller Central for the channel's marketplace when the channel talks to Login
    with Amazon; under the authorisation URL otherwise (a staging server, the sandbox), which then plays it."""
    host = (urlsplit(config.auth_base_url).hostname or "").lower()
    if host in lwa_hosts:
        return SELLER_CENTRAL.get(config.marketplace_id, SELLER_CENTRAL_EUROPE)
    return config.auth_base_url.rstrip("/")


def consent_url(config: ConnectorConfig, *, lwa_hosts: Collection[str], redirect_uri: str, state: str) -> str | None:
    """The consent page for this channel's application; None without an application id."""
    application_id = str(config.extra.get("application_id") or "").strip()
    if not application_id:
        return None
    query = {"application_id": application_id, "state": state, "redirect_uri": redirect_uri}
    if config.extra.get("application_draft"):
        query["version"] = "beta"
    return f"{consent_base(config, lwa_hosts)}{CONSENT_PATH}?{urlencode(query)}"


def consent_refusal(config: ConnectorConfig, callback: Mapping[str, str]) -> str:
    """Why the seller Amazon sent back cannot be this channel's: they signed in as another selling partner."""
    partner = (callback.get("selling_partner_id") or "").strip()
    if partner and config.seller_id and partner != config.seller_id:
        return (f"Amazon sent back selling partner {partner[:40]}, but this channel is seller {config.seller_id}: "
                f"sign in to Seller Central as {config.seller_id} and open the consent page again.")
    return ""
