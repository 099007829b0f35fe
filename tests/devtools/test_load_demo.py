"""The demo loader: a working shop on the sandbox, and a second run that changes nothing."""

import pytest
import requests
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError
from django_celery_beat.models import PeriodicTask

from channels.models import Channel, ChannelListing, OrderStatusMapping, SyncRun
from channels.sync.connections import channel_connector
from inventory.models import Location, StockItem, StockLevel, StockMovement
from orders.models import Order

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def developer_machine(settings):
    settings.DEBUG = True


def counts() -> dict[str, int]:
    return {
        model.__name__: model.objects.count()
        for model in (Location, StockItem, StockLevel, StockMovement, Channel, ChannelListing, OrderStatusMapping,
                      Order, PeriodicTask, SyncRun, get_user_model())
    }


def test_the_demo_is_a_working_shop_and_loading_it_twice_changes_nothing(sandbox, capsys):
    call_command("load_demo", sandbox_url=sandbox.base_url)

    first = counts()
    out = capsys.readouterr().out
    assert "Demo login: demo / stockline-demo" in out
    assert first["Location"] == 2 and first["StockItem"] >= 300 and first["Channel"] == 6
    assert set(Channel.objects.values_list("kind", flat=True)) == {
        "amazon", "ebay", "ekm", "rakuten", "shopify", "woocommerce"}
    assert all(channel.api_base_url.startswith(sandbox.base_url) for channel in Channel.objects.all())
    assert ChannelListing.objects.filter(stock_item__isnull=False).count() >= 700
    assert Order.objects.filter(status=Order.Status.PAID).count() >= 12
    assert StockLevel.objects.filter(in_open_orders__gt=0).exists()
    assert get_user_model().objects.get(username="demo").check_password("stockline-demo")
    amazon = Channel.objects.get(kind="amazon")
    consent_page = channel_connector(channel=amazon).consent_url("http://127.0.0.1:8000/callback/", "state")
    assert "application_id" not in amazon.credentials
    assert requests.get(consent_page, allow_redirects=False, timeout=5).status_code == 302

    call_command("load_demo", sandbox_url=sandbox.base_url)

    assert counts() == first
    assert "already set up" in capsys.readouterr().out


def test_without_a_sandbox_it_says_how_to_start_one():
    with pytest.raises(CommandError, match="No sandbox at http://127.0.0.1:9"):
        call_command("load_demo", sandbox_url="http://127.0.0.1:9", wait=0.5)


def test_with_debug_off_it_refuses_to_create_a_superuser_with_a_published_password(settings, sandbox):
    settings.DEBUG = False

    with pytest.raises(CommandError, match="--allow-production"):
        call_command("load_demo", sandbox_url=sandbox.base_url)
    assert not get_user_model().objects.exists()
