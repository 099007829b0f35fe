"""EKM's consent page (contract/connect.json, operation `authorize`): the OAuth2 authorization-code request of
RFC 6749 4.1.1 at `{auth}/connect/authorize`, which the swagger's securitySchemes name as the flow's
authorizationUrl. EKM sends the browser back to `redirect_uri` (one registered for the application) with
`code` and `state`; the code is exchanged at /connect/token with the same redirect_uri."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlencode

from channels.connectors.base import ConnectorConfig
from channels.connectors.ekm.client import SCOPES

CODE_PARAMETER = "code"
AUTHORIZE_PATH = "/connect/authorize"


def consent_url(config: ConnectorConfig, credentials: Mapping[str, str], *, redirect_uri: str,
                state: str) -> str | None:
    """The consent page for this channel's application; None without a client id."""
    client_id = str(credentials.get("client_id") or "").strip()
    if not client_id:
        return None
    query = {"client_id": client_id, "redirect_uri": redirect_uri, "response_type": "code", "scope": SCOPES,
             "state": state}
    return f"{config.auth_base_url.rstrip('/')}{AUTHORIZE_PATH}?{urlencode(query)}"
