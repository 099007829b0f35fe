import json
from unittest import mock
from urllib.parse import parse_qs

import pytest
import responses
from django.contrib.messages import get_messages
from django.urls import reverse
from django.utils import timezone

from channels.connectors.ratelimit import in_process_limiter
from tests.channels.factories import ChannelFactory

pytestmark = pytest.mark.django_db

EKM = "http://127.0.0.1:8100/ekm/demo"
WRAP = {"meta": {"pages_total": 1, "items_total": 0}, "links": {}, "validation_result": [], "errors": []}


@pytest.fixture(autouse=True)
def fresh_buckets():
    in_process_limiter().reset()


def messages_of(response):
    return [str(m) for m in get_messages(response.wsgi_request)]


def test_the_change_page_shows_the_buttons_and_the_reauthorisation_badge(admin_client):
    channel = ChannelFactory(needs_reauthorisation=True, reauthorisation_reason="EKM refused the refresh token")
    page = admin_client.get(reverse("admin:channels_channel_change", args=(channel.pk,))).content.decode()
    assert "Download listings" in page and "Reauthorise" in page and ">Test<" in page
    assert "Needs reauthorisation: EKM refused the refresh token" in page
    assert "s3cret" not in page


@responses.activate
def test_the_test_button_reports_the_result_as_a_message(admin_client):
    channel = ChannelFactory()

    def refresh(request):
        token = parse_qs(request.body)["refresh_token"][0]
        return 200, {}, json.dumps({"access_token": "a", "expires_in": 3600, "refresh_token": f"{token}+"})

    responses.add_callback(responses.POST, f"{EKM}/connect/token", callback=refresh)
    responses.add(responses.GET, f"{EKM}/api/v1/settings/shop_information",
                  json={**WRAP, "data": {"shop_name": "Teapots Ltd"}})
    response = admin_client.post(reverse("admin:channels_channel_test", args=(channel.pk,)))
    assert response.status_code == 302
    assert any("Connected to EKM shop Teapots Ltd" in m for m in messages_of(response))


@responses.activate
def test_reauthorise_asks_for_a_code_and_reports_a_refusal(admin_client):
    channel = ChannelFactory()
    url = reverse("admin:channels_channel_reauthorise", args=(channel.pk,))
    assert "Authorisation code" in admin_client.get(url).content.decode()
    responses.add(responses.POST, f"{EKM}/connect/token", status=400, json={"error": "invalid_grant"})
    response = admin_client.post(url, {"authorization_code": "bad-code"})
    assert response.status_code == 302
    assert any("Authorisation failed" in m for m in messages_of(response))
    channel.refresh_from_db()
    # The code was refused, not the stored refresh token: the channel goes on with it.
    assert not channel.needs_reauthorisation and channel.credentials["refresh_token"] == "r1"


def test_download_listings_queues_the_task_once(admin_client):
    channel = ChannelFactory()
    url = reverse("admin:channels_channel_download_listings", args=(channel.pk,))
    with mock.patch("channels.admin.channel_views.listings_download_task.delay") as send_task:
        response = admin_client.post(url)
        assert any("queued" in m for m in messages_of(response))
        send_task.assert_called_once_with(channel.pk)
        channel.listing_download_in_progress = True
        channel.listing_download_started_at = timezone.now()
        channel.save()
        response = admin_client.post(url)
        assert any("already running" in m for m in messages_of(response))
        assert send_task.call_count == 1
