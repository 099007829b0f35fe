from datetime import UTC, datetime

import pytest
from django.test import override_settings
from django.urls import reverse

from tests.admin.pages import change_form_data
from tests.channels.factories import ChannelFactory

pytestmark = pytest.mark.django_db


@override_settings(TIME_ZONE="Europe/London")
def test_last_order_sync_is_shown_and_typed_in_utc_in_summer(admin_client):
    channel = ChannelFactory(name="EKM", last_order_sync=datetime(2026, 7, 1, 10, 0, tzinfo=UTC))
    url = reverse("admin:channels_channel_change", args=(channel.pk,))
    page = admin_client.get(url).content.decode()
    assert 'value="10:00:00"' in page
    data = change_form_data(admin_client, url)
    data.update({"last_order_sync_0": "01/07/2026", "last_order_sync_1": "12:00:00"})
    admin_client.post(url, data)
    channel.refresh_from_db()
    assert channel.last_order_sync == datetime(2026, 7, 1, 12, 0, tzinfo=UTC)
