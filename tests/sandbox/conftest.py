"""Sandbox accounts seen from a test (the `sandbox` fixture itself is in tests/conftest.py)."""

from dataclasses import dataclass, field

import pytest
import requests

from sandbox.control import SandboxControl, default_credentials


@dataclass
class ChannelAccount:
    """One sandbox account seen from a test: its base URL, credentials and a session carrying auth."""

    kind: str
    name: str
    url: str
    credentials: dict[str, str]
    seller_id: str = ""
    session: requests.Session = field(default_factory=requests.Session)


def amazon_login(account: ChannelAccount) -> str:
    credentials = account.credentials
    response = account.session.post(f"{account.url}/auth/o2/token", data={
        "grant_type": "refresh_token", "refresh_token": credentials["refresh_token"],
        "client_id": credentials["client_id"], "client_secret": credentials["client_secret"]}, timeout=5)
    response.raise_for_status()
    token = response.json()["access_token"]
    account.session.headers["x-amz-access-token"] = token
    return token


def ekm_login(account: ChannelAccount) -> dict:
    """Refresh with the current refresh token and keep the new one, as the connector must."""
    credentials = account.credentials
    response = account.session.post(f"{account.url}/connect/token", data={
        "grant_type": "refresh_token", "refresh_token": credentials["refresh_token"],
        "client_id": credentials["client_id"], "client_secret": credentials["client_secret"],
        "scope": "tempest.orders.read offline_access"}, timeout=5)
    response.raise_for_status()
    body = response.json()
    credentials["refresh_token"] = body["refresh_token"]
    account.session.headers["Authorization"] = f"Bearer {body['access_token']}"
    return body


def make_account(control: SandboxControl, kind: str, name: str, **settings) -> ChannelAccount:
    credentials = default_credentials(kind, name)
    created = control.account(kind, name, credentials=dict(credentials), **settings)
    return ChannelAccount(kind, name, control.channel_url(kind, name), dict(credentials), created["seller_id"])


@pytest.fixture
def amazon(sandbox) -> ChannelAccount:
    account = make_account(sandbox, "amazon", "uk")
    amazon_login(account)
    return account


@pytest.fixture
def ekm(sandbox) -> ChannelAccount:
    account = make_account(sandbox, "ekm", "shop")
    ekm_login(account)
    return account


@pytest.fixture
def rakuten(sandbox) -> ChannelAccount:
    account = make_account(sandbox, "rakuten", "fr")
    account.session.params = {"login": account.credentials["login"], "pwd": account.credentials["token"],
                              "version": "2017-08-07"}
    return account
