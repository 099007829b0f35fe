import json
from unittest import mock
from urllib.parse import parse_qs

import pytest
import responses
from django.core.management import ManagementUtility, call_command
from django.core.management.base import CommandError
from django.utils import timezone

from channels.connectors.ratelimit import in_process_limiter
from channels.models import ChannelListing
from tests.channels.connectors.conftest import fixture_json
from tests.channels.factories import ChannelFactory
from tests.inventory.factories import StockItemFactory

pytestmark = pytest.mark.django_db

EKM = "http://127.0.0.1:8100/ekm/demo"
WRAP = {"meta": {"pages_total": 1, "items_total": 0}, "links": {}, "validation_result": [], "errors": []}


@pytest.fixture(autouse=True)
def fresh_buckets():
    in_process_limiter().reset()


def token_endpoint():
    def refresh(request):
        token = parse_qs(request.body)["refresh_token"][0]
        return 200, {}, json.dumps({"access_token": "a", "expires_in": 3600, "refresh_token": f"{token}+"})

    responses.add_callback(responses.POST, f"{EKM}/connect/token", callback=refresh)


def run_cli(*argv):
    """Run a command as `manage.py` would: its exit code and what it printed.

    `manage.py` closes every database connection on the way out; here that would close the test's own
    transaction on PostgreSQL, so that one step is left out."""
    try:
        with mock.patch("django.core.management.base.connections.close_all"):
            ManagementUtility(["manage.py", *argv]).execute()
    except SystemExit as exit_:
        return exit_.code
    return 0


@responses.activate
def test_test_channel_prints_one_line_and_exits_0(capsys):
    ChannelFactory(name="EKM shop")
    token_endpoint()
    responses.add(responses.GET, f"{EKM}/api/v1/settings/shop_information",
                  json={**WRAP, "data": {"shop_name": "Teapots Ltd"}})
    assert run_cli("test_channel", "EKM shop") == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "Teapots Ltd" in out


@responses.activate
def test_test_channel_auth_failure_is_one_line_on_stderr_and_exit_1(capsys):
    ChannelFactory(name="EKM shop")
    responses.add(responses.POST, f"{EKM}/connect/token", status=400, json={"error": "invalid_grant"})
    assert run_cli("test_channel", "EKM shop") == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "Authorisation failed" in err and "Traceback" not in err and "s3cret" not in err


def test_an_unknown_channel_name_is_a_readable_error():
    ChannelFactory(name="EKM shop")
    with pytest.raises(CommandError, match="No channel is named 'Ebay'.*EKM shop"):
        call_command("test_channel", "Ebay")
    with pytest.raises(CommandError, match="No channel is named"):
        call_command("download_listings", "Ebay")
    with pytest.raises(CommandError, match="No channel is named"):
        call_command("reauthorise_channel", "Ebay")


@responses.activate
def test_test_channel_connection_failure_exits_non_zero(capsys):
    ChannelFactory(name="EKM shop")
    responses.add(responses.POST, f"{EKM}/connect/token", status=503)
    assert run_cli("test_channel", "EKM shop") == 1
    assert "Could not connect" in capsys.readouterr().err


@responses.activate
def test_reauthorise_channel_with_a_code(capsys):
    channel = ChannelFactory(name="EKM shop", needs_reauthorisation=True)
    responses.add(responses.POST, f"{EKM}/connect/token",
                  json={"access_token": "a", "expires_in": 3600, "refresh_token": "granted-1"})
    call_command("reauthorise_channel", "EKM shop", "--code", "consent-code")
    assert "new refresh token" in capsys.readouterr().out
    assert "grant_type=authorization_code" in responses.calls[0].request.body
    channel.refresh_from_db()
    assert channel.credentials["refresh_token"] == "granted-1" and not channel.needs_reauthorisation


@responses.activate
def test_download_listings_reports_what_it_stored(capsys):
    channel = ChannelFactory(name="EKM shop")
    StockItemFactory(sku="MUG-RED")
    token_endpoint()
    responses.add(responses.GET, f"{EKM}/api/v1/products", json=fixture_json("ekm_products_page1.json"),
                  match=[responses.matchers.query_param_matcher({"page": "1", "limit": "20"})])
    responses.add(responses.GET, f"{EKM}/api/v1/products", json=fixture_json("ekm_products_page2.json"),
                  match=[responses.matchers.query_param_matcher({"page": "2", "limit": "20"})])
    assert run_cli("download_listings", "EKM shop") == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1
    assert "Downloaded 4 listing(s) for EKM shop: 3 not linked" in out
    assert ChannelListing.objects.filter(channel=channel, stock_item__sku="MUG-RED").exists()


def test_download_listings_refuses_while_one_runs(capsys):
    ChannelFactory(name="EKM shop", listing_download_in_progress=True, listing_download_started_at=timezone.now())
    assert run_cli("download_listings", "EKM shop") == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "already running" in err
