"""A WooCommerce shop is the seller's own server: its https address is its allow-list, and nothing else is."""

import pytest

from channels.endpoints import channel_allowed_hosts, channel_endpoint_problem
from channels.sync.connections import channel_connector
from tests.channels.factories import ChannelFactory


@pytest.mark.parametrize(("url", "refused"), [
    ("https://shop.example.com", ""),
    ("http://shop.example.com", "Use https"),
    ("https://10.0.0.5", "not on the public internet"),
    ("https://169.254.169.254", "not on the public internet"),
    ("https://intranet", "public host name"),
    ("https://ck:cs@shop.example.com", "no user name or password"),
])
def test_the_shop_address_must_be_a_public_https_host(settings, url, refused):
    settings.CHANNEL_EXTRA_ALLOWED_HOSTS = []
    problem = channel_endpoint_problem(kind="woocommerce", field="api_base_url", url=url)
    assert (refused in problem) if refused else problem == ""


def test_a_loopback_host_the_settings_allow_may_use_plain_http(settings):
    settings.CHANNEL_EXTRA_ALLOWED_HOSTS = ["127.0.0.1"]
    assert channel_endpoint_problem(kind="woocommerce", field="api_base_url", url="http://127.0.0.1:8100/x") == ""


def test_the_keys_go_to_the_shops_own_host_only(settings):
    settings.CHANNEL_EXTRA_ALLOWED_HOSTS = []
    assert channel_allowed_hosts(kind="woocommerce", urls={"api_base_url": "https://shop.example.com"}) == {
        "shop.example.com"}
    assert channel_allowed_hosts(kind="woocommerce", urls={"api_base_url": "http://shop.example.com"}) == set()
    assert "shop.example.com" not in channel_allowed_hosts(kind="ekm", urls={"api_base_url": "https://shop.example.com"})


@pytest.mark.django_db
def test_the_hub_gives_a_woocommerce_connector_its_shops_host(settings):
    settings.CHANNEL_EXTRA_ALLOWED_HOSTS = []
    channel = ChannelFactory(kind="woocommerce", api_base_url="https://teapots.example.co.uk")
    assert channel_connector(channel=channel).config.allowed_hosts == {"teapots.example.co.uk"}
