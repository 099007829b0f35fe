"""OAuth2 for the channels that use it (Amazon LWA, EKM): the access tokens, cached in memory and shared through
the store, the client base that asks the token endpoint for them, and the connector base that reauthorises.

A worker first uses the token it holds, then one another worker saved in the credential store, and only
then asks the channel for a new one. With single-use refresh tokens (EKM) the refresh runs under the
store's lock and re-reads the store inside it: another worker may have rotated the refresh token a moment
ago and left a fresh access token, and refreshing again with the old refresh token would revoke the grant.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, ClassVar

from channels.connectors.base import (
    ChannelAuthError,
    ChannelPayloadError,
    ConnectionResult,
    Connector,
    ConnectorConfig,
    CredentialStore,
    RateLimiter,
)

if TYPE_CHECKING:
    from channels.connectors.http import HttpClient

# A token this close to its expiry is renewed first, so it does not expire in the middle of a call.
EXPIRY_MARGIN_SECONDS = 120
ACCESS_TOKEN = "access_token"
ACCESS_TOKEN_EXPIRES_AT = "access_token_expires_at"


@dataclass(frozen=True)
class TokenGrant:
    access_token: str
    expires_in: int
    refresh_token: str = ""


class AccessTokens:
    def __init__(
        self,
        store: CredentialStore,
        refresh: Callable[[dict[str, str]], TokenGrant],
        *,
        single_use_refresh: bool,
        clock: Callable[[], float] = time.time,
        needs_refresh_token: bool = True,
    ) -> None:
        self.store = store
        self._refresh = refresh
        self.single_use_refresh = single_use_refresh
        self._clock = clock
        # False for a client credentials grant (Shopify): the client id and secret obtain each token.
        self.needs_refresh_token = needs_refresh_token
        self._token = ""
        self._expires_at = 0.0
        self.known_secrets: set[str] = set()

    def _fresh(self, expires_at: float) -> bool:
        return expires_at - EXPIRY_MARGIN_SECONDS > self._clock()

    def _load(self) -> dict[str, str]:
        credentials = dict(self.store.load())
        self.known_secrets |= {str(v) for v in credentials.values() if v}
        return credentials

    def _adopt_stored(self, credentials: dict[str, str], *, stale: str) -> bool:
        token = credentials.get(ACCESS_TOKEN, "")
        try:
            expires_at = datetime.fromisoformat(credentials.get(ACCESS_TOKEN_EXPIRES_AT, "")).timestamp()
        except ValueError:
            return False
        if token and token != stale and self._fresh(expires_at):
            self._token, self._expires_at = token, expires_at
            return True
        return False

    @property
    def held(self) -> str:
        """The access token this worker last used (empty before the first call)."""
        return self._token

    def current(self) -> str:
        if self._token and self._fresh(self._expires_at):
            return self._token
        if self._adopt_stored(self._load(), stale=""):
            return self._token
        return self.renew(stale="")

    def renew(self, *, stale: str, force: bool = False) -> str:
        """A new access token; `stale` is the one the channel just refused, never to be adopted again.

        `force` always asks the channel, which proves the stored refresh token still works.
        """
        if not self.single_use_refresh:
            return self._renew_from(self._load(), stale=stale, force=force)
        with self.store.locked():
            return self._renew_from(self._load(), stale=stale, force=force)

    def _renew_from(self, credentials: dict[str, str], *, stale: str, force: bool) -> str:
        if not force and self._adopt_stored(credentials, stale=stale):
            return self._token
        return self._grant(credentials)

    def exchange(self, grant: Callable[[dict[str, str]], TokenGrant]) -> str:
        """Replace the connection by a new grant (an authorization code): the old refresh token is dropped."""
        with self.store.locked():
            return self._grant(self._load(), obtain=grant)

    def _grant(self, credentials: dict[str, str], obtain: Callable[[dict[str, str]], TokenGrant] | None = None) -> str:
        if self.needs_refresh_token and not credentials.get("refresh_token") and obtain is None:
            raise ChannelAuthError("no refresh token is stored: authorise the channel first")
        grant = (obtain or self._refresh)(credentials)
        expires_at = self._clock() + grant.expires_in
        saved = {
            ACCESS_TOKEN: grant.access_token,
            ACCESS_TOKEN_EXPIRES_AT: datetime.fromtimestamp(expires_at, UTC).isoformat(),
        }
        if grant.refresh_token:
            saved["refresh_token"] = grant.refresh_token
        self.known_secrets |= {grant.access_token, grant.refresh_token} - {""}
        # Saved before use: with single-use refresh tokens the old one is already spent.
        self.store.save(saved)
        self._token, self._expires_at = grant.access_token, expires_at
        return self._token

    def forget(self) -> None:
        self._token, self._expires_at = "", 0.0


class OAuthClient:
    """The OAuth2 plumbing the OAuth channels share (Amazon's Login with Amazon, EKM): the token endpoint's
    refresh and authorization-code grants, the access token on every call, one refresh when it is refused.

    A subclass names its service and token path, whether its refresh tokens are single-use, the header the
    token travels in and any form fields its refresh grant adds (EKM's scope); it builds `self.http` with
    `auth=self.auth_headers`.
    """

    service: ClassVar[str]
    token_path: ClassVar[str]
    single_use_refresh: ClassVar[bool] = False
    refresh_form: ClassVar[Mapping[str, str]] = {}
    http: HttpClient

    def __init__(self, config: ConnectorConfig, credentials: CredentialStore, limiter: RateLimiter, *,
                 sleep: Callable[[float], None]) -> None:
        self.config = config
        self.limiter = limiter
        self.sleep = sleep
        self.tokens = AccessTokens(credentials, self._refresh_grant, single_use_refresh=self.single_use_refresh)

    def access_headers(self, token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    def auth_headers(self, refresh: bool) -> dict[str, str]:
        if refresh:
            self.tokens.renew(stale=self.tokens.held)
        return self.access_headers(self.tokens.current())

    def token_call(self, form: Mapping[str, str]) -> TokenGrant:
        response = self.http.request("POST", self.config.auth_base_url.rstrip("/") + self.token_path,
                                     operation="token", authenticated=False, absolute=True, data=dict(form))
        body = self.http.json(response, what="token")
        try:
            return TokenGrant(str(body["access_token"]), int(body.get("expires_in", 3600)),
                              str(body.get("refresh_token") or ""))
        except (KeyError, TypeError, ValueError) as exc:
            raise ChannelPayloadError(f"{self.service} token: the answer has no access token") from exc

    @staticmethod
    def _client_form(credentials: Mapping[str, str]) -> dict[str, str]:
        return {"client_id": credentials.get("client_id", ""), "client_secret": credentials.get("client_secret", "")}

    def _refresh_grant(self, credentials: dict[str, str]) -> TokenGrant:
        return self.token_call({
            "grant_type": "refresh_token", "refresh_token": credentials.get("refresh_token", ""),
            **self._client_form(credentials), **self.refresh_form,
        })

    def exchange_code(self, authorization_code: str, redirect_uri: str = "") -> None:
        """Replace the connection by the grant an authorization code stands for (it must bring a refresh token).

        `redirect_uri` is the one the consent page was opened with, which OAuth2 wants again with its code
        (RFC 6749 4.1.3); empty: a code typed by staff, sent with the stored one if any."""
        self.tokens.known_secrets.add(authorization_code)

        def exchange(credentials: dict[str, str]) -> TokenGrant:
            form = {"grant_type": "authorization_code", "code": authorization_code, **self._client_form(credentials)}
            if redirect_uri or credentials.get("redirect_uri"):
                form["redirect_uri"] = redirect_uri or credentials["redirect_uri"]
            grant = self.token_call(form)
            if not grant.refresh_token:
                raise ChannelPayloadError(f"{self.service} token: the authorisation gave no refresh token")
            return grant

        self.tokens.exchange(exchange)

    def renew_token(self) -> None:
        """Ask the channel for a new access token now: proves the stored refresh token still works."""
        self.tokens.renew(stale=self.tokens.held, force=True)


class OAuthConnector(Connector):
    """The connector of an OAuth channel: it names its `client_class`; building the client and reauthorising
    are the same for every such channel."""

    client_class: ClassVar[type[OAuthClient]]
    client: OAuthClient

    def __init__(
        self, config: ConnectorConfig, credentials: CredentialStore, limiter: RateLimiter | None = None
    ) -> None:
        super().__init__(config, credentials, limiter)
        # Looked up at each pause, so that a test can replace the connector's `sleep` once it is built.
        self.sleep = time.sleep
        self.client = self.client_class(config, credentials, self.limiter, sleep=lambda seconds: self.sleep(seconds))

    def reauthorise(self, *, authorization_code: str = "", redirect_uri: str = "") -> ConnectionResult:
        service = self.client.service
        if authorization_code:
            self.client.exchange_code(authorization_code, redirect_uri)
            return ConnectionResult(True, f"Authorised: {service} gave a new refresh token, which is saved.")
        self.client.renew_token()
        # A single-use refresh token is replaced by each renewal, so the channel issued both tokens.
        issued = "new tokens, which are saved" if self.client.single_use_refresh else "a new access token"
        return ConnectionResult(True, f"The stored refresh token works: {service} issued {issued}.")
