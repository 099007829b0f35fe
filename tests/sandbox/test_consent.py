"""The sandbox's consent pages: Amazon's Seller Central authorisation and EKM's /connect/authorize send the
browser back to the redirect URI with the state and a code the token endpoint takes once, and refuse an
application or redirect URI the account does not register."""

from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from sandbox.control import default_credentials
from tests.sandbox.conftest import ChannelAccount

HUB = "https://hub.example.com/admin/channels/oauth/callback/"
APPLICATION_ID = "amzn1.sp.solution.aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"


def account_with(sandbox, kind: str, **registered) -> ChannelAccount:
    credentials = {**default_credentials(kind, "consent"), **registered}
    created = sandbox.account(kind, "consent", credentials=credentials)
    return ChannelAccount(kind, "consent", sandbox.channel_url(kind, "consent"), credentials, created["seller_id"])


def query_of(url: str) -> dict[str, str]:
    return {name: values[0] for name, values in parse_qs(urlsplit(url).query).items()}


def amazon_consent(account: ChannelAccount, **query) -> requests.Response:
    return requests.get(f"{account.url}/apps/authorize/consent", params={
        "application_id": APPLICATION_ID, "state": "s-1", **query}, allow_redirects=False, timeout=5)


def ekm_authorize(account: ChannelAccount, **query) -> requests.Response:
    return requests.get(f"{account.url}/connect/authorize", params={
        "client_id": account.credentials["client_id"], "redirect_uri": HUB, "response_type": "code",
        "scope": "tempest.orders.read offline_access", "state": "s-1", **query}, allow_redirects=False, timeout=5)


def token(account: ChannelAccount, path: str, code: str, **form) -> requests.Response:
    return requests.post(f"{account.url}{path}", data={
        "grant_type": "authorization_code", "code": code, "client_id": account.credentials["client_id"],
        "client_secret": account.credentials["client_secret"], **form}, timeout=5)


def test_amazon_sends_the_seller_back_with_the_state_their_id_and_a_code_lwa_takes_once(sandbox):
    account = account_with(sandbox, "amazon", application_id=APPLICATION_ID, redirect_uris=[HUB])

    answer = amazon_consent(account, redirect_uri=HUB, version="beta")

    assert answer.status_code == 302 and answer.headers["Location"].startswith(HUB + "?")
    back = query_of(answer.headers["Location"])
    assert back["state"] == "s-1" and back["selling_partner_id"] == account.seller_id
    first = token(account, "/auth/o2/token", back["spapi_oauth_code"])
    assert first.status_code == 200 and first.json()["refresh_token"]
    again = token(account, "/auth/o2/token", back["spapi_oauth_code"])
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"


def test_amazon_uses_the_first_registered_redirect_uri_when_none_is_sent(sandbox):
    account = account_with(sandbox, "amazon", redirect_uris=[HUB, "https://other.example.com/back"])

    answer = amazon_consent(account)

    assert answer.status_code == 302 and answer.headers["Location"].startswith(HUB + "?")


def test_amazon_refuses_another_application_or_an_unregistered_redirect_uri(sandbox):
    account = account_with(sandbox, "amazon", application_id=APPLICATION_ID, redirect_uris=[HUB])

    other_app = amazon_consent(account, application_id="amzn1.sp.solution.other", redirect_uri=HUB)
    elsewhere = amazon_consent(account, redirect_uri="https://evil.example.com/steal")
    no_state = requests.get(f"{account.url}/apps/authorize/consent", params={"application_id": APPLICATION_ID},
                            allow_redirects=False, timeout=5)

    assert other_app.status_code == 400 and "No application" in other_app.json()["error_description"]
    assert elsewhere.status_code == 400 and "not registered" in elsewhere.json()["error_description"]
    assert no_state.status_code == 400
    assert "Location" not in other_app.headers and "Location" not in elsewhere.headers


def test_ekm_sends_the_merchant_back_with_a_code_the_token_endpoint_takes_once(sandbox):
    account = account_with(sandbox, "ekm", redirect_uris=[HUB])

    answer = ekm_authorize(account)

    assert answer.status_code == 302 and answer.headers["Location"].startswith(HUB + "?")
    back = query_of(answer.headers["Location"])
    assert back["state"] == "s-1" and back["code"]
    first = token(account, "/connect/token", back["code"], redirect_uri=HUB)
    assert first.status_code == 200 and first.json()["refresh_token"]
    again = token(account, "/connect/token", back["code"], redirect_uri=HUB)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"


@pytest.mark.parametrize(("query", "error"), [
    ({"client_id": "someone-else"}, "invalid_client"),
    ({"redirect_uri": "https://evil.example.com/steal"}, "invalid_request"),
])
def test_ekm_refuses_an_unknown_client_or_redirect_uri_on_the_page_itself(sandbox, query, error):
    account = account_with(sandbox, "ekm", redirect_uris=[HUB])

    answer = ekm_authorize(account, **query)

    assert answer.status_code == 400 and answer.json()["error"] == error and "Location" not in answer.headers


def test_ekm_answers_another_response_type_back_at_the_redirect_uri(sandbox):
    account = account_with(sandbox, "ekm")

    answer = ekm_authorize(account, response_type="token")

    back = query_of(answer.headers["Location"])
    assert answer.status_code == 302 and back == {"error": "unsupported_response_type", "state": "s-1"}
