"""Orders by webhook, against the sandbox's EKM: the hub's endpoint takes a delivery as a hint, checks it, queues it
and answers; the task reads the order through the API and stores it as the download would. Tasks run inline
(tests/conftest.py), so a hint accepted here is already stored when the endpoint has answered."""

import json
import time

import pytest
import requests
from celery.exceptions import Retry
from django.core.management import call_command
from django.core.management.base import CommandError
from kombu.exceptions import OperationalError

from channels.models import Channel, SyncRun
from channels.sync.order_download import orders_download
from channels.sync.order_hints import (
    channel_webhook_token,
    channel_webhook_token_matches,
    channel_webhook_url,
    channel_webhooks_follow,
)
from channels.tasks import channel_webhooks_follow_task, orders_hint_task
from channels.webhooks import MAX_WEBHOOK_BYTES
from inventory.models import StockLevel
from orders.models import Order
from sandbox.control import default_credentials
from tests.inventory.factories import LocationFactory, StockItemFactory, StockLevelFactory

pytestmark = pytest.mark.django_db

SHOP = "teapots"


@pytest.fixture
def public_url(settings):
    settings.STOCKLINE_PUBLIC_URL = "https://hub.example.com"
    return settings.STOCKLINE_PUBLIC_URL


@pytest.fixture
def mug():
    warehouse = LocationFactory(name="Main warehouse", is_default=True)
    return StockLevelFactory(stock_item=StockItemFactory(sku="MUG"), location=warehouse, quantity=10)


@pytest.fixture
def channel(sandbox, mug):
    """An EKM channel on the sandbox shop `teapots`, connected once (so it holds an access token)."""
    credentials = default_credentials("ekm", SHOP)
    sandbox.account("ekm", SHOP, credentials=credentials, rate_limits={"profile": "off"})
    url = sandbox.channel_url("ekm", SHOP)
    channel = Channel.objects.create(**{
        **Channel.defaults_for("ekm"), "name": "Teapots EKM", "kind": "ekm", "api_base_url": url,
        "auth_base_url": url, "credentials": credentials,
    })
    channel.status_mappings.create(channel_status="PENDING", hub_status="paid")
    orders_download(channel_id=channel.pk)
    channel.refresh_from_db()
    return channel


def webhook_path(channel) -> str:
    return f"/webhooks/{channel.pk}/{channel_webhook_token(channel_id=channel.pk)}/"


def hint(client, channel, **fields):
    body = {"username": SHOP, "topic": "order.created", "entity_id": "1", **fields}
    return client.post(webhook_path(channel), json.dumps(body), content_type="application/json")


def place_order(sandbox, quantity=2) -> str:
    (order_id,) = sandbox.orders("ekm", SHOP, [{"items": [{"sku": "MUG", "quantity": quantity, "price": "9.99"}]}])
    return order_id


def calls(sandbox, operation) -> int:
    return sandbox.received("ekm", SHOP)["calls"].get(operation, 0)


def subscriptions(sandbox, channel) -> list[dict]:
    channel.refresh_from_db()
    answer = requests.get(f"{sandbox.channel_url('ekm', SHOP)}/api/v2/Webhooks/webhooks", timeout=5,
                          headers={"Authorization": f"Bearer {channel.credentials['access_token']}"})
    return sorted((entry["topic"], entry["endpoint"]) for entry in answer.json()["data"])


def test_a_hint_stores_the_order_it_names_without_waiting_for_the_download(client, sandbox, channel, mug):
    watermark = channel.last_order_sync
    order_id = place_order(sandbox)
    answer = hint(client, channel, entity_id=order_id)
    assert (answer.status_code, answer.content) == (200, b"Queued.\n")
    order = Order.objects.get(channel=channel, channel_order_id=order_id)
    assert [(line.channel_sku, line.quantity) for line in order.items.all()] == [("MUG", 2)]
    mug.refresh_from_db()
    assert mug.in_open_orders == 2
    channel.refresh_from_db()
    # The watermark is the download's: the next one still looks at the window the hint came from.
    assert channel.last_order_sync == watermark
    run = SyncRun.objects.filter(channel=channel).first()
    assert (run.kind, run.status, run.processed) == (SyncRun.Kind.ORDERS, SyncRun.Status.SUCCESS, 1)


def test_a_hint_naming_another_merchant_is_refused_and_nothing_is_read(client, sandbox, channel):
    order_id = place_order(sandbox)
    answer = hint(client, channel, username="someone-else", entity_id=order_id)
    assert answer.status_code == 400
    assert b"another merchant" in answer.content
    assert calls(sandbox, "Orders_GetById") == 0
    assert not Order.objects.filter(channel=channel).exists()
    run = SyncRun.objects.filter(channel=channel).first()
    assert run.status == SyncRun.Status.FAILED and "another merchant" in run.error


@pytest.mark.parametrize(("body", "reason"), [
    (b"not json", b"not JSON"),
    (json.dumps({"username": SHOP, "topic": "customer.created", "entity_id": "1"}).encode(), b"topic"),
    (json.dumps({"username": SHOP, "topic": "order.created", "entity_id": "1/items"}).encode(), b"not an order id"),
])
def test_a_delivery_that_is_not_a_hint_is_a_400_saying_why(client, sandbox, channel, body, reason):
    answer = client.post(webhook_path(channel), body, content_type="application/json")
    assert answer.status_code == 400 and reason in answer.content
    assert calls(sandbox, "Orders_GetById") == 0


def test_a_duplicate_hint_stores_the_order_once(client, sandbox, channel, mug):
    order_id = place_order(sandbox, quantity=3)
    assert hint(client, channel, entity_id=order_id).status_code == 200
    assert hint(client, channel, topic="order.updated", entity_id=int(order_id)).status_code == 200
    assert Order.objects.filter(channel=channel, channel_order_id=order_id).count() == 1
    mug.refresh_from_db()
    assert mug.in_open_orders == 3


def test_a_hint_while_the_channel_is_down_is_retried_until_the_order_is_stored(sandbox, channel):
    order_id = place_order(sandbox)
    sandbox.faults("ekm", SHOP, [{"path": f"/api/v2/orders/{order_id}$", "type": "503", "retry_after": 0,
                                  "times": 2}])
    # Inline, a retry surfaces as Retry; a worker would run the task again after the countdown.
    for _ in range(2):
        with pytest.raises(Retry):
            orders_hint_task.delay(channel.pk, [order_id])
        assert not Order.objects.filter(channel=channel).exists()
    assert orders_hint_task.delay(channel.pk, [order_id]).get() == SyncRun.Status.SUCCESS
    assert Order.objects.filter(channel=channel, channel_order_id=order_id).exists()
    runs = list(SyncRun.objects.filter(channel=channel).order_by("pk").values_list("status", flat=True))
    # The download that connected the channel, two attempts the channel failed, and the one that stored it.
    assert runs == [SyncRun.Status.SUCCESS, SyncRun.Status.FAILED, SyncRun.Status.FAILED, SyncRun.Status.SUCCESS]


def test_a_hint_for_an_order_the_shop_does_not_have_is_the_runs_error(sandbox, channel):
    assert orders_hint_task.delay(channel.pk, ["999"]).get() == SyncRun.Status.PARTIAL
    run = SyncRun.objects.filter(channel=channel).first()
    assert [error["record_id"] for error in run.errors] == ["999"]
    assert not Order.objects.filter(channel=channel).exists()


def test_a_disabled_channel_takes_the_delivery_and_reads_nothing(client, sandbox, channel):
    order_id = place_order(sandbox)
    Channel.objects.filter(pk=channel.pk).update(enabled=False)
    answer = hint(client, channel, entity_id=order_id)
    assert answer.status_code == 200
    assert calls(sandbox, "Orders_GetById") == 0
    assert orders_hint_task.delay(channel.pk, [order_id]).get() == "channel disabled"


def test_an_oversized_body_is_a_413_and_nothing_is_read(client, sandbox, channel):
    body = json.dumps({"username": SHOP, "topic": "order.created", "entity_id": "1",
                       "padding": "x" * MAX_WEBHOOK_BYTES}).encode()
    answer = client.post(webhook_path(channel), body, content_type="application/json")
    assert answer.status_code == 413
    assert calls(sandbox, "Orders_GetById") == 0


def test_an_unknown_channel_or_token_is_a_404_and_only_post_is_taken(client, channel):
    body = json.dumps({"username": SHOP, "topic": "order.created", "entity_id": "1"})
    assert client.post(f"/webhooks/{channel.pk}/{'0' * 32}/", body, content_type="application/json").status_code == 404
    other_token = channel_webhook_token(channel_id=channel.pk + 1)
    assert client.post(f"/webhooks/{channel.pk + 1}/{other_token}/", body,
                       content_type="application/json").status_code == 404
    assert client.get(webhook_path(channel)).status_code == 405


def test_each_channel_has_its_own_path_and_an_old_secret_key_still_opens_it(settings):
    first, second = channel_webhook_token(channel_id=1), channel_webhook_token(channel_id=2)
    assert first != second and len(first) == 32
    settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS = "a new key", [settings.SECRET_KEY]
    assert channel_webhook_token(channel_id=1) != first
    assert channel_webhook_token_matches(channel_id=1, token=first)
    assert not channel_webhook_token_matches(channel_id=2, token=first)


def test_following_twice_keeps_one_subscription_per_topic_at_the_channels_path(sandbox, channel, public_url):
    assert "subscribed" in channel_webhooks_follow(channel_id=channel.pk)
    assert "subscribed" in channel_webhooks_follow(channel_id=channel.pk)
    endpoint = channel_webhook_url(channel_id=channel.pk)
    assert endpoint == f"https://hub.example.com{webhook_path(channel)}"
    assert subscriptions(sandbox, channel) == [("order.created", endpoint), ("order.updated", endpoint)]


def test_a_new_public_url_points_the_subscriptions_at_it(sandbox, channel, public_url, settings):
    channel_webhooks_follow(channel_id=channel.pk)
    settings.STOCKLINE_PUBLIC_URL = "https://new-hub.example.com"
    channel_webhooks_follow(channel_id=channel.pk)
    endpoint = f"https://new-hub.example.com{webhook_path(channel)}"
    assert subscriptions(sandbox, channel) == [("order.created", endpoint), ("order.updated", endpoint)]


def test_a_disabled_channel_or_no_public_url_unsubscribes(sandbox, channel, public_url, settings):
    channel_webhooks_follow(channel_id=channel.pk)
    Channel.objects.filter(pk=channel.pk).update(enabled=False)
    assert channel_webhooks_follow(channel_id=channel.pk) == "order webhooks unsubscribed: the channel is disabled"
    assert subscriptions(sandbox, channel) == []
    Channel.objects.filter(pk=channel.pk).update(enabled=True)
    channel_webhooks_follow(channel_id=channel.pk)
    settings.STOCKLINE_PUBLIC_URL = ""
    assert "STOCKLINE_PUBLIC_URL is not set" in channel_webhooks_follow(channel_id=channel.pk)
    assert subscriptions(sandbox, channel) == []


def test_the_command_follows_the_named_channels_and_names_an_unknown_one(sandbox, channel, public_url, capsys):
    call_command("channel_webhooks_follow", channel.name)
    assert capsys.readouterr().out == "Teapots EKM: order webhooks subscribed (2 subscriptions)\n"
    with pytest.raises(CommandError, match="No channel is named 'Nope'"):
        call_command("channel_webhooks_follow", "Nope")


@pytest.mark.django_db(transaction=True)
def test_the_sandboxs_delivery_reaches_the_live_hub_and_stores_the_order(sandbox, live_server, settings, mug):
    settings.STOCKLINE_PUBLIC_URL = live_server.url
    credentials = default_credentials("ekm", SHOP)
    sandbox.account("ekm", SHOP, credentials=credentials, rate_limits={"profile": "off"})
    url = sandbox.channel_url("ekm", SHOP)
    channel = Channel.objects.create(**{
        **Channel.defaults_for("ekm"), "name": "Teapots EKM", "kind": "ekm", "api_base_url": url,
        "auth_base_url": url, "credentials": credentials,
    })
    channel.status_mappings.create(channel_status="PENDING", hub_status="paid")
    channel_webhooks_follow(channel_id=channel.pk)
    order_id = place_order(sandbox)
    # The delivery comes from the sandbox's thread; the hint's run finishes once the order is stored.
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and not SyncRun.objects.filter(channel=channel, processed=1).exists():
        time.sleep(0.1)
    order = Order.objects.get(channel=channel)
    assert order.channel_order_id == order_id
    assert StockLevel.objects.get(pk=mug.pk).in_open_orders == 2
    # Stored by the hint alone: its run is the channel's only one, no order download has run.
    assert SyncRun.objects.filter(channel=channel).count() == 1


def test_a_hint_the_channel_refuses_the_credentials_for_flags_it_for_reauthorisation(sandbox, channel):
    order_id = place_order(sandbox)
    Channel.objects.filter(pk=channel.pk).update(credentials={**default_credentials("ekm", SHOP),
                                                              "refresh_token": "revoked"})
    assert orders_hint_task.delay(channel.pk, [order_id]).get() == "needs reauthorisation"
    channel.refresh_from_db()
    assert channel.needs_reauthorisation
    assert not Order.objects.filter(channel=channel).exists()


def test_a_hint_that_cannot_be_queued_is_a_503_so_the_channel_sends_it_again(client, sandbox, channel, monkeypatch):
    def broker_down(*args, **kwargs):
        raise OperationalError("the broker is down")

    monkeypatch.setattr(orders_hint_task, "delay", broker_down)
    assert hint(client, channel, entity_id=place_order(sandbox)).status_code == 503


def test_the_follow_task_subscribes_the_channel(sandbox, channel, public_url):
    assert channel_webhooks_follow_task.delay(channel.pk).get() == "order webhooks subscribed (2 subscriptions)"
    assert channel_webhooks_follow_task.delay(channel.pk + 1).get() == "channel deleted"
