"""A channel's endpoints are part of its credentials: tried as a Channel managers user, and as an admin."""

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.test import override_settings
from django.urls import reverse

from channels.models import Channel
from tests.channels.factories import AmazonChannelFactory
from tests.security.conftest import change_form_data

pytestmark = pytest.mark.django_db

SECRET = "lwa-secret-9c1e77aa40d1"
REFRESH = "Atzr|refresh-5f2b9c1e"


class Recorder(BaseHTTPRequestHandler):
    """An attacker's server: records every request it is sent and answers like a token endpoint."""

    received: list[bytes]

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.server.received.append(self.path.encode() + b" " + self.rfile.read(length))
        body = b'{"access_token": "stolen", "expires_in": 3600}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def attacker_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    server.received = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def amazon_channel():
    return AmazonChannelFactory(
        name="Amazon UK",
        api_base_url="https://sellingpartnerapi-eu.amazon.com",
        auth_base_url="https://api.amazon.com",
        credentials={"client_id": "amzn1.app", "client_secret": SECRET, "refresh_token": REFRESH},
    )


def test_a_channel_manager_cannot_move_the_endpoints_and_test_sends_nothing_to_his_server(
    manager_client, amazon_channel, attacker_server
):
    url = reverse("admin:channels_channel_change", args=(amazon_channel.pk,))
    attacker = f"http://127.0.0.1:{attacker_server.server_port}"

    page = manager_client.get(url)
    manager_client.post(url, change_form_data(manager_client, url, api_base_url=attacker, auth_base_url=attacker))
    manager_client.post(reverse("admin:channels_channel_test", args=(amazon_channel.pk,)))
    manager_client.get(reverse("admin:channels_channel_status_mapping", args=(amazon_channel.pk,)))

    amazon_channel.refresh_from_db()
    assert 'name="api_base_url"' not in page.content.decode()
    assert amazon_channel.api_base_url == "https://sellingpartnerapi-eu.amazon.com"
    assert amazon_channel.auth_base_url == "https://api.amazon.com"
    assert attacker_server.received == []


def test_an_admin_cannot_point_a_channel_at_a_host_its_kind_does_not_declare(admins_client, amazon_channel):
    url = reverse("admin:channels_channel_change", args=(amazon_channel.pk,))
    data = change_form_data(admins_client, url, auth_base_url="https://tokens.example.net",
                            credential_client_id="amzn1.app", credential_client_secret=SECRET,
                            credential_refresh_token=REFRESH)

    with override_settings(CHANNEL_EXTRA_ALLOWED_HOSTS=[]):
        response = admins_client.post(url, data)

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "only sent to api.amazon.com" in errors["auth_base_url"][0]
    amazon_channel.refresh_from_db()
    assert amazon_channel.auth_base_url == "https://api.amazon.com"


def test_a_declared_host_must_be_https(admins_client, amazon_channel):
    url = reverse("admin:channels_channel_change", args=(amazon_channel.pk,))
    data = change_form_data(admins_client, url, api_base_url="http://sellingpartnerapi-na.amazon.com",
                            credential_client_id="amzn1.app", credential_client_secret=SECRET,
                            credential_refresh_token=REFRESH)

    response = admins_client.post(url, data)

    assert response.context["adminform"].form.errors["api_base_url"] == [
        "Use https: the channel's secrets are sent to this address."
    ]


def test_moving_an_endpoint_needs_the_secrets_typed_again_and_is_recorded(admins_client, amazon_channel):
    url = reverse("admin:channels_channel_change", args=(amazon_channel.pk,))
    moved = "https://sellingpartnerapi-na.amazon.com"

    refused = admins_client.post(url, change_form_data(admins_client, url, api_base_url=moved))
    saved = admins_client.post(url, change_form_data(
        admins_client, url, api_base_url=moved, credential_client_id="amzn1.app",
        credential_client_secret="a-new-secret-for-na", credential_refresh_token=REFRESH,
    ))

    errors = refused.context["adminform"].form.errors
    assert "The API base URL changed: enter LWA client secret again" in errors["credential_client_secret"][0]
    assert saved.status_code == 302
    amazon_channel.refresh_from_db()
    assert amazon_channel.api_base_url == moved
    assert amazon_channel.credentials["client_secret"] == "a-new-secret-for-na"
    latest = amazon_channel.history.latest()
    assert latest.history_change_reason.startswith("Endpoints changed: API base URL; Credentials replaced: LWA")
    assert len(latest.history_change_reason) <= 100
    assert latest.api_base_url == moved


def test_a_host_named_in_the_settings_is_accepted_for_staging(admins_client, amazon_channel):
    url = reverse("admin:channels_channel_change", args=(amazon_channel.pk,))
    data = change_form_data(admins_client, url, api_base_url="https://spapi-staging.seller.test",
                            credential_client_id="amzn1.app", credential_client_secret=SECRET,
                            credential_refresh_token=REFRESH)

    with override_settings(CHANNEL_EXTRA_ALLOWED_HOSTS=["spapi-staging.seller.test"]):
        response = admins_client.post(url, data)

    assert response.status_code == 302
    assert Channel.objects.get(pk=amazon_channel.pk).api_base_url == "https://spapi-staging.seller.test"
