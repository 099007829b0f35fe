"""Amazon's LWA client secret expires 180 days after issue: the channel shows when it was replaced, the
dashboard warns 14 days before."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from tests.channels.factories import AmazonChannelFactory, ChannelFactory
from tests.security.conftest import change_form_data

pytestmark = pytest.mark.django_db


def dashboard(client) -> str:
    return client.get(reverse("admin:channels_channel_dashboard")).content.decode()


def test_typing_a_new_client_secret_records_when(admin_client):
    channel = AmazonChannelFactory(name="Amazon UK")
    url = reverse("admin:channels_channel_change", args=(channel.pk,))
    before = timezone.now()

    admin_client.post(url, change_form_data(admin_client, url, credential_client_secret="amzn-new-secret-2"))

    channel.refresh_from_db()
    assert channel.client_secret_replaced_at >= before
    assert "client secret last replaced" in admin_client.get(url).content.decode().lower()


@pytest.mark.parametrize("age_days, warned", [(160, False), (167, True), (181, True)])
def test_the_dashboard_warns_from_14_days_before_180(admin_client, age_days, warned):
    AmazonChannelFactory(name="Amazon UK", client_secret_replaced_at=timezone.now() - timedelta(days=age_days))

    page = dashboard(admin_client)

    assert ("secret-warning" in page) is warned
    if age_days > 180:
        assert "The client secret expired on" in page


def test_a_channel_whose_secret_does_not_expire_is_never_warned(admin_client):
    ChannelFactory(name="EKM shop", client_secret_replaced_at=timezone.now() - timedelta(days=400))

    assert "secret-warning" not in dashboard(admin_client)


def test_an_amazon_secret_of_unknown_age_asks_to_be_entered_again(admin_client):
    AmazonChannelFactory(name="Amazon UK", client_secret_replaced_at=None)

    assert "When the client secret was issued is not recorded" in dashboard(admin_client)
