"""eBay's consent page (contract/identity.json, operation `authorize`): https://auth.ebay.com/oauth2/authorize with
the application's client id, its RuName as redirect_uri, the scopes and state. eBay sends the browser on to the
RuName's "auth accepted URL" (set in the developer portal to the hub's OAuth callback) with `code` and `state`;
the code is exchanged with the same RuName."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlencode, urlsplit

from channels.connectors.base import ConnectorConfig
from channels.connectors.ebay.client import SCOPES

CODE_PARAMETER = "code"
AUTHORIZE_PATH = "/oauth2/authorize"
# Where each eBay token host's sellers consent; any other auth address (the sandbox) plays the page itself.
CONSENT_HOSTS: Mapping[str, str] = {
    "api.ebay.com": "https://auth.ebay.com", "api.sandbox.ebay.com": "https://auth.sandbox.ebay.com",
}


def consent_url(config: ConnectorConfig, credentials: Mapping[str, str], *, state: str) -> str | None:
    """The consent page for this channel's application; None without a client id or RuName."""
    client_id = str(credentials.get("client_id") or "").strip()
    ru_name = str(credentials.get("ru_name") or "").strip()
    if not client_id or not ru_name:
        return None
    host = (urlsplit(config.auth_base_url).hostname or "").lower()
    base = CONSENT_HOSTS.get(host, config.auth_base_url.rstrip("/"))
    query = {"client_id": client_id, "redirect_uri": ru_name, "response_type": "code", "scope": SCOPES,
             "state": state}
    return f"{base}{AUTHORIZE_PATH}?{urlencode(query)}"
