"""Edits staff make in the admin reach the channel: listings marked, one push queued on commit, periodic tasks
in step with the channel's switches, gone with the channel."""

import pytest
from django.urls import reverse
from django_celery_beat.models import PeriodicTask

from channels.models import Channel, ChannelListing
from channels.services import channel_create
from tests.channels.factories import ChannelFactory, ChannelListingFactory, waiting_for_push
from tests.security.conftest import change_form_data

pytestmark = pytest.mark.django_db


@pytest.fixture
def queued(monkeypatch):
    """The channel of every inventory push queued with Celery, in order."""
    pushes = []
    monkeypatch.setattr("channels.tasks.inventory_push_task.apply_async", lambda args, **kw: pushes.append(args[0]))
    return pushes


@pytest.fixture
def channel():
    return channel_create(channel=ChannelFactory.build(name="EKM shop", end_when_quantity=0))


def pending(listing) -> bool:
    return waiting_for_push(listing)


def settled_listings(channel, count: int = 2) -> list[ChannelListing]:
    return [ChannelListingFactory(channel=channel, push_pending=False) for _ in range(count)]


def beat(channel, key: str) -> PeriodicTask:
    return PeriodicTask.objects.get(name=f"channel-{channel.pk}-{key}")


def test_editing_end_when_in_the_admin_marks_the_channels_listings_and_queues_one_push(
    admin_client, channel, queued, django_capture_on_commit_callbacks
):
    listings = settled_listings(channel)
    url = reverse("admin:channels_channel_change", args=(channel.pk,))
    data = change_form_data(admin_client, url, end_when_quantity=3)

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(url, data)

    assert response.status_code == 302, response.context["adminform"].form.errors
    assert Channel.objects.get(pk=channel.pk).end_when_quantity == 3
    assert all(pending(listing) for listing in listings)
    assert queued == [channel.pk]


def test_saving_the_config_page_without_a_change_marks_nothing_and_queues_nothing(
    admin_client, channel, queued, django_capture_on_commit_callbacks
):
    listings = settled_listings(channel)
    url = reverse("admin:channels_channel_change", args=(channel.pk,))
    data = change_form_data(admin_client, url)

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(url, data)

    assert response.status_code == 302, response.context["adminform"].form.errors
    assert not any(pending(listing) for listing in listings)
    assert queued == []


def test_the_lists_inventory_sync_switch_stops_and_restarts_the_push(
    admin_client, channel, queued, django_capture_on_commit_callbacks
):
    ChannelListingFactory(channel=channel)
    url = reverse("admin:channels_channel_changelist")

    def switch(inventory_sync: bool):
        data = {
            "form-TOTAL_FORMS": "1", "form-INITIAL_FORMS": "1", "form-0-id": str(channel.pk),
            "form-0-enabled": "on", "_save": "Save",
        }
        if inventory_sync:
            data["form-0-inventory_sync"] = "on"
        with django_capture_on_commit_callbacks(execute=True):
            assert admin_client.post(url, data).status_code == 302

    switch(False)
    assert not beat(channel, "inventory").enabled and beat(channel, "orders").enabled
    assert queued == []

    switch(True)
    assert beat(channel, "inventory").enabled
    assert queued == [channel.pk]


def test_editing_a_listing_override_in_the_admin_marks_it_and_a_title_edit_does_not(
    admin_client, channel, queued, django_capture_on_commit_callbacks
):
    listing, other = settled_listings(channel)
    url = reverse("admin:channels_channellisting_change", args=(listing.pk,))
    other_url = reverse("admin:channels_channellisting_change", args=(other.pk,))
    override = change_form_data(admin_client, url, max_listed_quantity=5)
    retitle = change_form_data(admin_client, other_url, title="Blue mug")

    with django_capture_on_commit_callbacks(execute=True):
        assert admin_client.post(url, override).status_code == 302
        assert admin_client.post(other_url, retitle).status_code == 302

    assert (pending(listing), pending(other)) == (True, False)
    assert ChannelListing.objects.get(pk=other.pk).title == "Blue mug"
    assert queued == [channel.pk]


def test_a_listing_stays_on_its_channel_when_edited_and_its_channel_is_chosen_when_added(admin_client, channel):
    [listing] = settled_listings(channel, count=1)
    other = channel_create(channel=ChannelFactory.build(name="Rakuten"))
    url = reverse("admin:channels_channellisting_change", args=(listing.pk,))
    edit = {**change_form_data(admin_client, url, title="Blue mug"), "channel": other.pk}

    assert admin_client.post(url, edit).status_code == 302

    listing.refresh_from_db()
    assert (listing.channel_id, listing.title) == (channel.pk, "Blue mug")
    assert 'name="channel"' in admin_client.get(reverse("admin:channels_channellisting_add")).content.decode()


def test_deleting_a_channel_in_the_admin_removes_its_periodic_tasks(admin_client, channel):
    response = admin_client.post(reverse("admin:channels_channel_delete", args=(channel.pk,)), {"post": "yes"})

    assert response.status_code == 302
    assert not Channel.objects.filter(pk=channel.pk).exists()
    assert not PeriodicTask.objects.filter(name__startswith=f"channel-{channel.pk}-").exists()


def test_deleting_channels_from_the_list_removes_their_periodic_tasks(admin_client, channel):
    kept = channel_create(channel=ChannelFactory.build(name="Rakuten"))
    response = admin_client.post(
        reverse("admin:channels_channel_changelist"),
        {"action": "delete_selected", "_selected_action": [channel.pk], "post": "yes"},
    )

    assert response.status_code == 302
    assert not PeriodicTask.objects.filter(name__startswith=f"channel-{channel.pk}-").exists()
    assert PeriodicTask.objects.filter(name__startswith=f"channel-{kept.pk}-").count() == 3
