"""The listing download's progress bar: from the click it shows the new run (starting, at 0 %), not the last one's
100 %; the JSON its page polls follows the run's pages, estimated completion and end."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from channels.connectors.base import ExternalListing, ListingPage
from channels.models import Channel
from channels.sync.listings_download import listings_download
from tests.channels.factories import ChannelFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def downloaded_yesterday():
    """A channel whose last listing download completed a day ago: its bar stands at 100 %."""
    yesterday = timezone.now() - timedelta(days=1)
    return ChannelFactory(name="EKM shop", listing_download_started_at=yesterday - timedelta(minutes=3),
                          listing_download_completed_at=yesterday, listing_download_done=40,
                          listing_download_total=40)


def asked_for(channel: Channel, *, ago: timedelta = timedelta(0)) -> None:
    """As the Download listings button leaves the row: the start stamped, no worker's in-progress flag yet."""
    Channel.objects.filter(pk=channel.pk).update(listing_download_started_at=timezone.now() - ago,
                                                 listing_download_done=0, listing_download_total=0)


def status(client, channel: Channel) -> dict:
    response = client.get(reverse("admin:channels_channel_download_status", args=(channel.pk,)))
    assert response.status_code == 200
    return response.json()


def listings_page(client, channel: Channel) -> str:
    url = reverse("admin:channels_channellisting_changelist") + f"?channel__id__exact={channel.pk}"
    return client.get(url).content.decode()


def test_before_a_new_download_the_bar_shows_the_last_one_completed(admin_client, downloaded_yesterday):
    state = status(admin_client, downloaded_yesterday)

    assert (state["running"], state["starting"], state["percent"]) == (False, False, 100)
    assert state["text"].startswith("last download completed ")
    assert 'data-following="0"' in listings_page(admin_client, downloaded_yesterday)


def test_once_asked_for_the_bar_shows_the_new_download_starting_not_the_last_ones_100(
    admin_client, downloaded_yesterday
):
    asked_for(downloaded_yesterday)

    state = status(admin_client, downloaded_yesterday)
    assert (state["running"], state["starting"], state["percent"], state["done"]) == (False, True, 0, 0)
    assert state["text"].startswith("starting (asked for at ")
    page = listings_page(admin_client, downloaded_yesterday)
    # Drawn at 0 % and followed by the page's script from the first second.
    assert 'data-following="1"><progress max="100" value="0"></progress>' in page
    assert "starting (asked for at " in page


def test_a_download_asked_for_that_never_started_gives_the_bar_back_to_the_last_one(
    admin_client, downloaded_yesterday
):
    asked_for(downloaded_yesterday, ago=timedelta(hours=7))

    state = status(admin_client, downloaded_yesterday)
    assert (state["starting"], state["percent"]) == (False, 100)


class TwoPages:
    """A channel's 30 listings in two pages; the status is read before each page, while the download runs."""

    def __init__(self, client, channel):
        self.client, self.channel, self.seen = client, channel, []

    def fetch_listings(self):
        for done in (20, 30):
            self.seen.append(status(self.client, self.channel))
            listings = tuple(ExternalListing(channel_sku=f"SKU-{n}", external_id=f"{n}") for n in range(done))
            yield ListingPage(listings=listings, done=done, total=30)


def test_the_status_follows_the_run_page_by_page_to_its_end(admin_client, downloaded_yesterday, monkeypatch):
    asked_for(downloaded_yesterday)
    connector = TwoPages(admin_client, downloaded_yesterday)
    monkeypatch.setattr("channels.sync.listings_download.channel_connector", lambda channel: connector)

    listings_download(channel_id=downloaded_yesterday.pk)

    first, second = connector.seen
    assert (first["running"], first["in_progress"], first["percent"], first["done"]) == (True, True, 0, 0)
    assert first["completed"] == "" and first["estimated_completion"] == ""
    assert (second["running"], second["done"], second["total"], second["percent"]) == (True, 20, 30, 66)
    assert second["estimated_completion"] and "estimated completion" in second["text"]
    assert second["text"].startswith("20 of 30 listings, started ")
    end = status(admin_client, downloaded_yesterday)
    assert (end["running"], end["starting"], end["in_progress"], end["percent"]) == (False, False, False, 100)
    assert end["completed"] and end["text"] == f"last download completed {end['completed']}"


def test_the_download_listings_button_shows_the_new_download_starting_at_once(
    admin_client, downloaded_yesterday, monkeypatch
):
    queued = []
    monkeypatch.setattr("channels.admin.channel_views.listings_download_task.delay", queued.append)

    admin_client.post(reverse("admin:channels_channel_download_listings", args=(downloaded_yesterday.pk,))
                      + "?next=listings")

    assert queued == [downloaded_yesterday.pk]
    state = status(admin_client, downloaded_yesterday)
    assert (state["starting"], state["percent"]) == (True, 0)
