"""A WooCommerce channel's config page: the seeds' settings that apply to a shop, in WooCommerce's words, and none
that do not; its shop address is checked where it is typed."""

import pytest
from django.urls import reverse

from channels.models import Channel
from tests.channels.factories import WooCommerceChannelFactory

pytestmark = pytest.mark.django_db

APPLIES = ("enabled", "inventory_sync", "api_base_url", "credential_consumer_key", "credential_consumer_secret",
           "mark_as_despatched", "send_despatch_notes", "send_cancellation_notes", "download_unpaid_orders",
           "use_channel_tax", "currency", "last_order_sync_0", "utc_offset_hours", "default_email",
           "update_inventory", "max_listed_quantity", "max_listed_percentage", "end_when_quantity", "price_change")
DOES_NOT = ("latency_days", "product_based_latency", "fba_enabled", "fba_sync_inventory", "marketplace_id",
            "seller_id", "auth_base_url", "import_profile_id", "credential_client_secret")


def test_the_config_page_has_every_seed_setting_that_applies_to_a_shop_and_none_other(admin_client):
    page = admin_client.get(reverse("admin:channels_channel_change",
                                    args=(WooCommerceChannelFactory().pk,))).content.decode()

    assert [name for name in APPLIES if f'name="{name}"' not in page] == []
    assert [name for name in DOES_NOT if f'name="{name}"' in page] == []
    assert "/wp-json/wc/v3" in page and "Shipment Tracking" in page


def test_a_shop_address_without_https_is_refused_next_to_the_field(settings):
    settings.CHANNEL_EXTRA_ALLOWED_HOSTS = []
    channel = WooCommerceChannelFactory.build(api_base_url="http://teapots.example.co.uk")
    with pytest.raises(Exception) as refused:
        channel.full_clean(exclude=["credentials"])
    assert "Use https" in str(refused.value)
    assert Channel(kind="woocommerce").connector_class.label == "WooCommerce"
