"""Login with Amazon's token endpoint (contract/auth.json) and the Sellers API (contract/sellers.json)."""

from __future__ import annotations

import secrets
from urllib.parse import urlencode

from sandbox.amazon.common import AmazonBase, marketplace
from sandbox.api import Call
from sandbox.state.accounts import (
    access_token_issue,
    authorization_code_use,
    grant_create,
    refresh_token_issue,
    refresh_tokens_used_bump,
)
from sandbox.web import Response


class AuthApi(AmazonBase):
    def token(self, call: Call) -> Response:
        form = call.request.form()
        account = call.account
        credentials = account.credentials
        if form["client_id"] != credentials["client_id"] or form["client_secret"] != credentials["client_secret"]:
            return Response.json({"error": "invalid_client", "error_description": "Client authentication failed"},
                                 401)
        with call.write() as db:
            if form["grant_type"] == "refresh_token":
                row = db.execute("SELECT grant_id FROM refresh_token WHERE token = ? AND account_id = ?",
                                 (form["refresh_token"], account.id)).fetchone()
                if row is None:
                    return self.invalid_grant("The request has an invalid grant parameter : refresh_token")
                refresh_tokens_used_bump(db, account)
                access = access_token_issue(db, account, row["grant_id"], "Atza|")
                return Response.json({"access_token": access, "token_type": "bearer",
                                      "expires_in": account.token_lifetime})
            if not authorization_code_use(db, account, form["code"]):
                return self.invalid_grant("The request has an invalid grant parameter : code")
            grant_id = grant_create(db, account)
            refresh = refresh_token_issue(db, account, grant_id, "Atzr|")
            access = access_token_issue(db, account, grant_id, "Atza|")
        return Response.json({"access_token": access, "token_type": "bearer", "expires_in": account.token_lifetime,
                              "refresh_token": refresh})

    def consent(self, call: Call) -> Response:
        """Seller Central's consent page, confirmed at once: back to the redirect URI with a code `token` takes once.

        The account's credentials may register the application: `application_id` (then another is refused) and
        `redirect_uris` (then the redirect URI must be one of them, the first when none is sent, as on Amazon)."""
        credentials = call.account.credentials
        application_id = call.request.arg("application_id") or ""
        if credentials.get("application_id") and application_id != credentials["application_id"]:
            return Response.json({"error": "invalid_request",
                                  "error_description": f"No application {application_id} is registered."}, 400)
        registered = list(credentials.get("redirect_uris") or [])
        redirect_uri = call.request.arg("redirect_uri") or (registered[0] if registered else "")
        if not redirect_uri or (registered and redirect_uri not in registered):
            return Response.json({"error": "invalid_request", "error_description":
                                  f"The redirect URI {redirect_uri!r} is not registered for the application."}, 400)
        answer = {"state": call.request.arg("state") or "", "selling_partner_id": call.account.seller_id,
                  "spapi_oauth_code": "ANsandbox" + secrets.token_urlsafe(18)}
        back = redirect_uri + ("&" if "?" in redirect_uri else "?") + urlencode(answer)
        return Response(302, b"", [("Location", back)])

    def invalid_grant(self, description: str) -> Response:
        return Response.json({"error": "invalid_grant", "error_description": description}, 400)

    def participations(self, call: Call) -> Response:
        name, country, currency, language, domain = marketplace(call.account.marketplace_id)
        return Response.json({"payload": [{
            "marketplace": {"id": call.account.marketplace_id, "name": name, "countryCode": country,
                            "defaultCurrencyCode": currency, "defaultLanguageCode": language, "domainName": domain},
            "participation": {"isParticipating": True, "hasSuspendedListings": False},
            "storeName": f"{call.account.name} store",
        }]})
