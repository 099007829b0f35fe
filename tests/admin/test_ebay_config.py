"""An eBay channel's config page: every seed setting that does something on eBay, in eBay's words, and none that
does not; its orders polled no faster than the Fulfillment API's daily quota allows."""

import pytest
from django.urls import reverse

from channels.models import Channel
from channels.services import channel_create
from tests.channels.factories import EbayChannelFactory

pytestmark = pytest.mark.django_db

APPLIES = (
    "enabled", "inventory_sync", "marketplace_id", "api_base_url", "auth_base_url", "credential_client_id",
    "credential_client_secret", "credential_ru_name", "credential_refresh_token",
    "credential_deletion_verification_token", "mark_as_despatched", "send_despatch_notes", "download_unpaid_orders",
    "use_channel_tax", "currency", "last_order_sync_0", "utc_offset_hours", "default_email", "update_inventory",
    "update_inventory_from_locations", "max_listed_quantity", "max_listed_percentage", "end_when_quantity",
    "price_change",
)
# eBay's Sell APIs have no seller cancellation and take no handling time with the stock; eBay runs no fulfilment
# network of the seller's; the other kinds' account settings are not eBay's.
DOES_NOT_APPLY = (
    "send_cancellation_notes", "latency_days", "product_based_latency", "latency_property_name", "fba_enabled",
    "fba_sync_inventory", "fba_convert_currency", "seller_id", "shop_url", "import_profile_id",
)


def config_page(client, channel: Channel) -> str:
    return client.get(reverse("admin:channels_channel_change", args=(channel.pk,))).content.decode()


def test_the_config_page_has_every_setting_that_applies_to_ebay_and_none_other(admin_client):
    page = config_page(admin_client, EbayChannelFactory())

    assert [name for name in APPLIES if f'name="{name}"' not in page] == []
    assert [name for name in DOES_NOT_APPLY if f'name="{name}"' in page] == []


def test_the_config_page_speaks_ebays_words(admin_client):
    page = config_page(admin_client, EbayChannelFactory())

    assert "RuName (eBay redirect URL name)" in page and "Cert ID (client secret)" in page
    assert "EBAY_GB (the default)" in page and "Amazon only" not in page
    assert "Also download eBay orders whose payment is PENDING or FAILED." in page


def test_a_new_ebay_channel_starts_as_the_seeds_say():
    channel = channel_create(channel=Channel(name="eBay UK", kind="ebay", api_base_url="https://api.ebay.com",
                                             **Channel.defaults_for("ebay")))

    assert (channel.marketplace_id, channel.mark_as_despatched, channel.update_inventory) == ("EBAY_GB", True, True)
    assert channel.send_cancellation_notes is False
    assert channel.connector_class.order_download_quota_seconds() == 1
    assert channel.connector_class.order_download_interval() == 18
