"""The listing download's progress bar in a real browser: a download asked for shows as starting, not as the last
run's 100 %, and the bar and the channel page's download fields follow the run without a reload.

The worker is played by the test: it writes the channel row as the download does (claim, pages, end)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from channels.models import Channel
from tests.channels.factories import ChannelFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]

@pytest.fixture
def admin(staff_admin):
    return staff_admin


@pytest.fixture
def asked_for():
    """A channel whose last download completed yesterday, and a new one asked for (no worker has it yet)."""
    yesterday = timezone.now() - timedelta(days=1)
    return ChannelFactory(name="EKM Shop", listing_download_started_at=timezone.now(),
                          listing_download_completed_at=yesterday, listing_download_done=0, listing_download_total=0)


def worker_writes(channel: Channel, **row) -> None:
    Channel.objects.filter(pk=channel.pk).update(**row)


def wait_for_percent(page, percent: int) -> None:
    page.wait_for_function(f"document.querySelector('.download-percent').textContent === '{percent}%'")


def test_the_bar_follows_a_new_download_from_the_click_to_its_end(page, admin, asked_for):
    page.goto(f"{admin}/channels/channellisting/?channel__id__exact={asked_for.pk}")
    assert page.locator(".download-percent").inner_text() == "0%"
    assert page.locator(".download-text").inner_text().startswith("starting (asked for at ")

    worker_writes(asked_for, listing_download_in_progress=True, listing_download_started_at=timezone.now(),
                  listing_download_completed_at=None, listing_download_done=10, listing_download_total=40,
                  listing_download_estimated_completion=timezone.now() + timedelta(minutes=3))
    wait_for_percent(page, 25)
    text = page.locator(".download-text").inner_text()
    assert text.startswith("10 of 40 listings, started ") and "estimated completion" in text

    worker_writes(asked_for, listing_download_in_progress=False, listing_download_completed_at=timezone.now(),
                  listing_download_done=40)
    wait_for_percent(page, 100)
    page.wait_for_selector(".download-text:text-matches('^last download completed ')")
    assert page.locator(".download-progress").get_attribute("data-following") == "0"


def test_the_channel_pages_download_fields_are_live(page, admin, asked_for):
    page.goto(f"{admin}/channels/channel/{asked_for.pk}/change/")
    flag = page.locator(".field-listing_download_in_progress .readonly img")
    assert flag.get_attribute("alt") == "False"

    worker_writes(asked_for, listing_download_in_progress=True, listing_download_completed_at=None,
                  listing_download_done=5, listing_download_total=10,
                  listing_download_estimated_completion=timezone.now() + timedelta(minutes=1))
    page.wait_for_function(
        "document.querySelector('.field-listing_download_in_progress .readonly img').alt === 'True'"
    )
    wait_for_percent(page, 50)
    assert page.locator(".field-listing_download_completed_at .readonly").inner_text() == "-"
    assert page.locator(".field-listing_download_estimated_completion .readonly").inner_text() != "-"

    worker_writes(asked_for, listing_download_in_progress=False, listing_download_completed_at=timezone.now())
    page.wait_for_function(
        "document.querySelector('.field-listing_download_in_progress .readonly img').alt === 'False'"
    )
    assert page.locator(".field-listing_download_completed_at .readonly").inner_text() != "-"
