"""Every admin screen a member of staff can reach renders, and secrets never reach the page."""

import pytest
from django.contrib import admin
from django.urls import reverse

from channels.models import Channel
from tests.channels.factories import (
    AmazonChannelFactory,
    ChannelListingFactory,
    OrderStatusMappingFactory,
    ShippingMappingFactory,
    SyncRunFactory,
)
from tests.inventory.factories import StockItemPropertyFactory, StockLevelFactory
from tests.orders.factories import OrderItemFactory, PostalServiceFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def one_of_everything():
    level = StockLevelFactory()
    StockItemPropertyFactory(stock_item=level.stock_item)
    channel = AmazonChannelFactory(
        credentials={"client_id": "amzn-id", "client_secret": "TOPSECRET-1", "refresh_token": "Atzr|SECRET-2"}
    )
    ChannelListingFactory(channel=channel, stock_item=level.stock_item)
    OrderStatusMappingFactory(channel=channel)
    ShippingMappingFactory(channel=channel, postal_service=PostalServiceFactory())
    SyncRunFactory(channel=channel)
    OrderItemFactory(order__channel=channel, stock_item=level.stock_item, order__fulfilment_location=level.location)
    return channel


def test_every_changelist_and_change_form_renders(admin_client, one_of_everything):
    for model in admin.site._registry:
        name = f"admin:{model._meta.app_label}_{model._meta.model_name}"
        assert admin_client.get(reverse(f"{name}_changelist")).status_code == 200, name

        obj = model._default_manager.first()
        if obj is not None:
            assert admin_client.get(reverse(f"{name}_change", args=[obj.pk])).status_code == 200, name


def test_channel_page_never_shows_credentials(admin_client, one_of_everything):
    page = admin_client.get(reverse("admin:channels_channel_change", args=[one_of_everything.pk])).content.decode()
    listing = admin_client.get(reverse("admin:channels_channel_changelist")).content.decode()

    for secret in ("TOPSECRET-1", "SECRET-2"):
        assert secret not in page
        assert secret not in listing
    assert "LWA client id, LWA client secret, Refresh token set" in page


def test_channel_form_is_grouped_in_the_documented_sections(admin_client, one_of_everything):
    page = admin_client.get(reverse("admin:channels_channel_change", args=[one_of_everything.pk])).content.decode()

    for section in ("Account", "Orders", "Inventory", "Listings", "FBA"):
        assert f">{section}</h2>" in page
    for label in (
        "Mark as despatched", "Download unpaid orders", "Use channel tax", "Last order sync (UTC)",
        "UTC offset (hours)", "Default email", "Update inventory from location", "Default max listed quantity",
        "Default max listed percentage", "Default end when quantity", "Default latency (days)",
        "Product based latency", "Price change", "Listing download in progress", "FBA sync inventory",
        "FBA convert currency", "Order status mapping", "Shipping mapping",
    ):
        assert label.lower() in page.lower(), label


def test_fba_section_is_only_for_amazon(admin_client):
    ekm = Channel.objects.create(name="EKM", kind=Channel.Kind.EKM, api_base_url="http://127.0.0.1:8100/ekm/x")

    page = admin_client.get(reverse("admin:channels_channel_change", args=[ekm.pk])).content.decode()

    assert ">FBA</h2>" not in page
    assert "Default latency" not in page


def test_adding_a_channel_asks_for_the_kind_first(admin_client):
    chooser = admin_client.get(reverse("admin:channels_channel_add")).content.decode()
    ekm_form = admin_client.get(reverse("admin:channels_channel_add") + "?kind=ekm").content.decode()
    amazon_form = admin_client.get(reverse("admin:channels_channel_add") + "?kind=amazon").content.decode()

    assert "choose its kind" in chooser
    assert "?kind=amazon" in chooser and "?kind=ekm" in chooser and "?kind=rakuten" in chooser
    assert 'name="shop_url"' in ekm_form and 'name="marketplace_id"' not in ekm_form
    assert 'name="marketplace_id"' in amazon_form and 'name="shop_url"' not in amazon_form


def _post_data(form) -> dict:
    """What a browser would post for this form as rendered, with the mapping inlines left untouched."""
    data = {}
    for name in form.fields:
        value = form[name].value()
        if value is None or value is False:
            continue
        if isinstance(value, bool):
            data[name] = "on"
        elif hasattr(value, "date") and hasattr(value, "time"):
            data[f"{name}_0"], data[f"{name}_1"] = value.date().isoformat(), value.time().isoformat()
        else:
            data[name] = value
    for prefix in ("status_mappings", "shipping_mappings"):
        data |= {f"{prefix}-TOTAL_FORMS": "0", f"{prefix}-INITIAL_FORMS": "0"}
    return data


def test_adding_an_amazon_channel_saves_its_secrets_and_seed_defaults(admin_client):
    url = reverse("admin:channels_channel_add") + "?kind=amazon"
    data = _post_data(admin_client.get(url).context["adminform"].form) | {
        "name": "Amazon UK", "kind": "amazon", "seller_id": "A2SELLER", "api_base_url": "http://127.0.0.1:8100/amazon/uk",
        "credential_client_id": "cid", "credential_client_secret": "csecret", "credential_refresh_token": "rtoken",
    }

    response = admin_client.post(url, data)

    assert response.status_code == 302, response.context["adminform"].form.errors
    channel = Channel.objects.get(name="Amazon UK")
    assert channel.credentials == {"client_id": "cid", "client_secret": "csecret", "refresh_token": "rtoken"}
    assert channel.mark_as_despatched and channel.update_inventory
    assert channel.utc_offset_hours == 1


def test_adding_a_channel_without_its_secrets_says_which_are_missing(admin_client):
    url = reverse("admin:channels_channel_add") + "?kind=ekm"
    data = _post_data(admin_client.get(url).context["adminform"].form) | {
        "name": "EKM", "kind": "ekm", "api_base_url": "http://127.0.0.1:8100/ekm/shop",
    }

    response = admin_client.post(url, data)

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["credential_refresh_token"] == [
        "Refresh token is needed to connect the channel."
    ]
    assert not Channel.objects.exists()


def test_a_bad_percentage_is_shown_next_to_the_field(admin_client, one_of_everything):
    url = reverse("admin:channels_channel_change", args=[one_of_everything.pk])
    data = _post_data(admin_client.get(url).context["adminform"].form) | {"max_listed_percentage": "150"}

    response = admin_client.post(url, data)

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["max_listed_percentage"] == ["A percentage cannot be above 100."]


def test_saving_config_keeps_the_secrets_when_left_empty(admin_client, one_of_everything):
    url = reverse("admin:channels_channel_change", args=[one_of_everything.pk])
    data = _post_data(admin_client.get(url).context["adminform"].form) | {"max_listed_percentage": "50"}

    response = admin_client.post(url, data)

    assert response.status_code == 302
    one_of_everything.refresh_from_db()
    assert one_of_everything.max_listed_percentage == 50
    assert one_of_everything.credentials["client_secret"] == "TOPSECRET-1"
