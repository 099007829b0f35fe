import json
from datetime import timedelta
from decimal import Decimal
from urllib.parse import parse_qs

import pytest
import requests
import responses
from django.utils import timezone

from channels.connectors.amazon.connector import AmazonConnector
from channels.connectors.base import ChannelTransientError
from channels.connectors.ratelimit import in_process_limiter
from channels.models import Channel, ChannelListing, SyncRun
from channels.selectors import listings_with_drift
from channels.sync.connections import ChannelCredentialStore, channel_connector, channel_reauthorise, channel_test
from channels.sync.listings_download import ListingDownloadRunning, listings_download
from channels.sync.locks import channel_lock
from tests.channels.connectors.conftest import fixture_json
from tests.channels.factories import AmazonChannelFactory, ChannelFactory, ChannelListingFactory
from tests.inventory.factories import StockItemFactory

pytestmark = pytest.mark.django_db

EKM = "http://127.0.0.1:8100/ekm/demo"
AMAZON = "http://127.0.0.1:8100/amazon/demo"
WRAP = {"meta": {"pages_total": 1, "items_total": 0}, "links": {}, "validation_result": [], "errors": []}


@pytest.fixture(autouse=True)
def fresh_buckets():
    in_process_limiter().reset()
    yield
    in_process_limiter().reset()


def ekm_token_endpoint(used=None):
    used = [] if used is None else used

    def refresh(request):
        token = parse_qs(request.body)["refresh_token"][0]
        if token in used:
            return 400, {}, json.dumps({"error": "invalid_grant"})
        used.append(token)
        return 200, {}, json.dumps({"access_token": f"access-after-{token}", "expires_in": 3600,
                                    "refresh_token": f"{token}-next"})

    responses.add_callback(responses.POST, f"{EKM}/connect/token", callback=refresh)
    return used


def ekm_products(pages):
    for number, body in enumerate(pages, start=1):
        responses.add(responses.GET, f"{EKM}/api/v1/products", json=body,
                      match=[responses.matchers.query_param_matcher({"page": str(number), "limit": "20"})])


# --- Building a connector, credentials ---


def test_connector_gets_the_channels_account_and_falls_back_to_the_api_url_for_auth():
    channel = AmazonChannelFactory(auth_base_url="")
    connector = channel_connector(channel=channel)
    assert isinstance(connector, AmazonConnector)
    assert connector.config.auth_base_url == AMAZON
    assert connector.config.marketplace_id == "A1F83G8C2ARO7P" and connector.config.seller_id == "A2SELLER"


def test_credential_store_merges_saves_and_reads_fresh():
    channel = ChannelFactory()
    store = ChannelCredentialStore(channel.pk)
    store.save({"refresh_token": "r2", "access_token": "a2"})
    Channel.objects.filter(pk=channel.pk).update(credentials={**store.load(), "client_secret": "rotated"})
    assert store.load() == {"client_id": "id", "client_secret": "rotated", "refresh_token": "r2", "access_token": "a2"}


def test_credential_lock_held_elsewhere_is_a_transient_error():
    channel = ChannelFactory()
    with channel_lock(channel_id=channel.pk, purpose="credentials", ttl=60) as held:
        assert held
        with pytest.raises(ChannelTransientError), ChannelCredentialStore(channel.pk, lock_wait=0.1).locked():
            pass


# --- Test and reauthorise ---


@responses.activate
def test_a_working_channel_tests_ok_clears_the_flag_and_keeps_the_rotated_token():
    channel = ChannelFactory(needs_reauthorisation=True, reauthorisation_reason="old failure")
    used = ekm_token_endpoint()
    responses.add(responses.GET, f"{EKM}/api/v1/settings/shop_information",
                  json={**WRAP, "data": {"shop_name": "Teapots Ltd", "domain": "teapots.example"}})
    result = channel_test(channel_id=channel.pk)
    assert result.ok and "Teapots Ltd" in result.message
    channel.refresh_from_db()
    assert not channel.needs_reauthorisation and channel.reauthorisation_reason == ""
    assert channel.credentials["refresh_token"] == "r1-next"
    # The next worker uses the saved access token and never spends a refresh token again.
    responses.add(responses.GET, f"{EKM}/api/v1/settings/shop_information", json={**WRAP, "data": {}})
    assert channel_test(channel_id=channel.pk).ok
    assert used == ["r1"]


@responses.activate
def test_a_refused_channel_is_flagged_for_reauthorisation_without_secrets():
    channel = ChannelFactory()
    responses.add(responses.POST, f"{EKM}/connect/token", status=400,
                  json={"error": "invalid_grant", "error_description": "refresh token r1 was already used"})
    result = channel_test(channel_id=channel.pk)
    assert not result.ok and result.message.startswith("Authorisation failed")
    channel.refresh_from_db()
    assert channel.needs_reauthorisation
    assert "invalid_grant" in channel.reauthorisation_reason
    assert "s3cret" not in channel.reauthorisation_reason and "s3cret" not in result.message


@responses.activate
def test_an_unreachable_channel_fails_without_flagging_reauthorisation():
    channel = ChannelFactory()
    responses.add(responses.POST, f"{EKM}/connect/token", body=requests.ConnectionError("refused"))
    result = channel_test(channel_id=channel.pk)
    assert not result.ok and result.message.startswith("Could not connect")
    channel.refresh_from_db()
    assert not channel.needs_reauthorisation


@responses.activate
def test_reauthorise_with_a_code_stores_the_new_refresh_token_and_clears_the_flag():
    channel = AmazonChannelFactory(needs_reauthorisation=True, reauthorisation_reason="expired")
    responses.add(responses.POST, f"{AMAZON}/auth/o2/token",
                  json={"access_token": "Atza|a", "expires_in": 3600, "refresh_token": "Atzr|new"})
    result = channel_reauthorise(channel_id=channel.pk, authorization_code=" spapi-code ")
    assert result.ok
    assert "code=spapi-code" in responses.calls[0].request.body
    channel.refresh_from_db()
    assert channel.credentials["refresh_token"] == "Atzr|new"
    assert not channel.needs_reauthorisation


# --- Listing download ---


@responses.activate
def test_listing_download_upserts_links_by_sku_and_keeps_staff_settings():
    channel = ChannelFactory()
    mug = StockItemFactory(sku="MUG-RED")
    tee = StockItemFactory(sku="TEE-M")
    other = StockItemFactory(sku="SOMETHING-ELSE")
    # Linked by hand to a different item, with an override: both must survive the download.
    kept = ChannelListingFactory(channel=channel, channel_sku="MUG-RED", stock_item=other, max_listed_quantity=3,
                                 last_pushed_quantity=5, last_pushed_at=timezone.now() - timedelta(hours=1),
                                 external_id="old", title="old")
    ekm_token_endpoint()
    ekm_products([fixture_json("ekm_products_page1.json"), fixture_json("ekm_products_page2.json")])
    run = listings_download(channel_id=channel.pk)

    assert run.kind == SyncRun.Kind.LISTINGS and run.status == SyncRun.Status.SUCCESS
    assert run.processed == 4
    listings = {li.channel_sku: li for li in ChannelListing.objects.filter(channel=channel)}
    assert set(listings) == {"MUG-RED", "TEE-M", "TEE-L", "TEAPOT"}
    kept.refresh_from_db()
    assert kept.stock_item == other and kept.max_listed_quantity == 3
    assert (kept.external_id, kept.title, kept.channel_quantity, kept.channel_price) == ("55", "Red mug", 8,
                                                                                         Decimal("12.50"))
    assert listings["TEE-M"].stock_item == tee and listings["TEE-M"].external_id == "56/7"
    assert listings["TEE-L"].stock_item is None
    assert not listings["TEAPOT"].is_active
    assert mug.listings.count() == 0
    channel.refresh_from_db()
    assert not channel.listing_download_in_progress and channel.listing_download_completed_at
    assert (channel.listing_download_done, channel.listing_download_total) == (3, 3)
    # Quantity 8 on EKM, 5 last sent: staff see the drift.
    assert list(listings_with_drift(ChannelListing.objects.filter(channel=channel))) == [kept]


@responses.activate
def test_progress_is_on_the_channel_while_the_download_runs():
    channel = ChannelFactory()
    ekm_token_endpoint()
    seen = {}

    def second_page(request):
        row = Channel.objects.get(pk=channel.pk)
        seen.update(running=row.listing_download_in_progress, done=row.listing_download_done,
                    total=row.listing_download_total, eta=row.listing_download_estimated_completion,
                    started=row.listing_download_started_at)
        return 200, {}, json.dumps(fixture_json("ekm_products_page2.json"))

    ekm_products([fixture_json("ekm_products_page1.json")])
    responses.add_callback(responses.GET, f"{EKM}/api/v1/products", callback=second_page,
                           match=[responses.matchers.query_param_matcher({"page": "2", "limit": "20"})])
    listings_download(channel_id=channel.pk)
    assert seen["running"] and (seen["done"], seen["total"]) == (2, 3)
    assert seen["eta"] is not None and seen["eta"] >= seen["started"]


@responses.activate
def test_a_second_download_is_refused_while_one_runs_but_a_stale_one_is_taken_over():
    channel = ChannelFactory(listing_download_in_progress=True, listing_download_started_at=timezone.now())
    with pytest.raises(ListingDownloadRunning, match="already running"):
        listings_download(channel_id=channel.pk)
    assert not responses.calls
    assert not SyncRun.objects.filter(channel=channel).exists()

    Channel.objects.filter(pk=channel.pk).update(listing_download_started_at=timezone.now() - timedelta(hours=7))
    ekm_token_endpoint()
    ekm_products([{**WRAP, "data": []}])
    assert listings_download(channel_id=channel.pk).status == SyncRun.Status.SUCCESS


@responses.activate
def test_a_failed_download_is_recorded_flags_auth_and_frees_the_channel():
    channel = ChannelFactory()
    ekm_token_endpoint()
    ekm_products([fixture_json("ekm_products_page1.json")])
    responses.add(responses.GET, f"{EKM}/api/v1/products", status=403,
                  match=[responses.matchers.query_param_matcher({"page": "2", "limit": "20"})])
    with pytest.raises(Exception, match="refused the credentials"):
        listings_download(channel_id=channel.pk)
    run = SyncRun.objects.get(channel=channel, kind=SyncRun.Kind.LISTINGS)
    assert run.status == SyncRun.Status.PARTIAL and run.processed == 3 and "ChannelAuthError" in run.error
    channel.refresh_from_db()
    assert not channel.listing_download_in_progress and channel.listing_download_completed_at
    assert channel.needs_reauthorisation


@responses.activate
def test_unreadable_records_are_listed_in_the_run():
    channel = ChannelFactory()
    ekm_token_endpoint()
    ekm_products([{**WRAP, "data": [{"id": 90, "name": "No code", "product_code": "", "variants": []},
                                    {"id": 91, "name": "Fine", "product_code": "FINE", "number_in_stock": 1}]}])
    run = listings_download(channel_id=channel.pk)
    assert run.status == SyncRun.Status.PARTIAL and run.failed == 1
    assert run.errors[0]["record_id"] == "90"


@responses.activate
def test_a_listing_gone_from_the_channel_is_marked_inactive():
    channel = ChannelFactory()
    gone = ChannelListingFactory(channel=channel, channel_sku="GONE", downloaded_at=timezone.now() - timedelta(days=1))
    ekm_token_endpoint()
    ekm_products([fixture_json("ekm_products_page2.json") | {"meta": {"pages_total": 1, "items_total": 1}}])
    listings_download(channel_id=channel.pk)
    gone.refresh_from_db()
    assert not gone.is_active
