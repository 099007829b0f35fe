"""Staff without the channel permissions can neither see the secrets nor change a channel's settings.

Written against Django's plain model permissions (view_channel / change_channel)."""

import pytest
from django.contrib.auth.models import Permission, User
from django.urls import reverse

from channels.models import Channel
from tests.channels.factories import ChannelFactory

pytestmark = pytest.mark.django_db

SECRETS = ("s3cret", "r1")


def staff(client, *codenames: str) -> User:
    user = User.objects.create_user("clerk", password="pw", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="channels", codename__in=codenames))
    client.force_login(user)
    return user


@pytest.fixture
def channel():
    return ChannelFactory(name="EKM", credentials={"client_id": "id", "client_secret": "s3cret", "refresh_token": "r1"})


def test_view_only_staff_see_the_config_without_secrets_or_inputs(client, channel):
    staff(client, "view_channel")

    listing = client.get(reverse("admin:channels_channel_changelist")).content.decode()
    page = client.get(reverse("admin:channels_channel_change", args=(channel.pk,))).content.decode()

    assert "EKM" in listing and 'name="form-0-enabled"' not in listing
    assert 'name="credential_' not in page and 'name="max_listed_percentage"' not in page
    for secret in SECRETS:
        assert f">{secret}<" not in page and f'"{secret}"' not in page


@pytest.mark.parametrize("route", [
    "channels_channel_test", "channels_channel_download_listings", "channels_channel_location_mapping",
    "channels_channel_status_mapping", "channels_channel_shipping_mapping", "channels_channel_reauthorise",
])
def test_view_only_staff_cannot_change_settings(client, channel, route):
    staff(client, "view_channel")
    response = client.post(reverse(f"admin:{route}", args=(channel.pk,)), {"update_inventory_from_locations": ""})
    assert response.status_code == 403


def test_view_only_staff_cannot_save_the_config_or_test_new_details(client, channel):
    staff(client, "view_channel")
    change = client.post(reverse("admin:channels_channel_change", args=(channel.pk,)), {"max_listed_percentage": "5"})
    unsaved = client.post(reverse("admin:channels_channel_test_unsaved") + "?kind=ekm", {})
    assert change.status_code == 403 and unsaved.status_code == 403
    channel.refresh_from_db()
    assert channel.max_listed_percentage is None


def test_staff_without_channel_permissions_see_nothing_of_the_channels(client, channel):
    staff(client)
    for url in (
        reverse("admin:channels_channel_changelist"), reverse("admin:channels_channel_dashboard"),
        reverse("admin:channels_channel_download_status", args=(channel.pk,)),
        reverse("admin:channels_channel_change", args=(channel.pk,)),
    ):
        assert client.get(url).status_code == 403, url
    assert Channel.objects.count() == 1


def test_buttons_are_only_those_the_user_may_press(client, channel):
    Channel.objects.filter(pk=channel.pk).update(needs_reauthorisation=True)
    list_url = reverse("admin:channels_channel_changelist")
    config_url = reverse("admin:channels_channel_change", args=(channel.pk,))

    staff(client, "view_channel")
    listing, config = client.get(list_url).content.decode(), client.get(config_url).content.decode()
    assert ">Config</a>" in listing and ">Test</button>" not in listing and ">Reauthorise</a>" not in listing
    assert ">Test</button>" not in config and ">Reauthorise</a>" not in config
    assert "Someone allowed to change the channel's credentials must reauthorise it" in config

    User.objects.all().delete()
    staff(client, "view_channel", "change_channel")
    listing, config = client.get(list_url).content.decode(), client.get(config_url).content.decode()
    assert ">Test</button>" in listing and ">Reauthorise</a>" not in listing
    assert ">Test</button>" in config and ">Reauthorise</a>" not in config

    User.objects.all().delete()
    staff(client, "view_channel", "change_channel", "change_channel_credentials")
    listing, config = client.get(list_url).content.decode(), client.get(config_url).content.decode()
    assert ">Test</button>" in listing and ">Reauthorise</a>" in listing
    assert ">Reauthorise</a>" in config and "Use <a href" in config
