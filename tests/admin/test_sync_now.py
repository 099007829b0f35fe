"""The sync-now buttons of the Channel Integration screen queue the tasks beat and the commands use, and refuse
with a message while a run of their kind is going on."""

from datetime import timedelta
from unittest import mock

import pytest
from django.conf import settings
from django.contrib.auth.models import Permission, User
from django.contrib.messages import get_messages
from django.urls import reverse
from django.utils import timezone

from channels.models import SyncRun
from tests.channels.factories import ChannelFactory

pytestmark = pytest.mark.django_db

VIEWS = "channels.admin.channel_views"
# Button, the view's URL name, the task it queues, and how.
BUTTONS = [
    ("Download orders now", "download_orders", "orders_download_task", mock.call(paced=False)),
    ("Push stock now", "push_stock", "inventory_push_task", mock.call()),
    ("Push all stock", "push_all_stock", "inventory_push_task", mock.call(True)),
    ("Download listings", "download_listings", "listings_download_task", mock.call()),
]


def messages_of(response):
    return [str(m) for m in get_messages(response.wsgi_request)]


def press(client, channel, name, *, task, back=""):
    url = reverse(f"admin:channels_channel_{name}", args=(channel.pk,)) + (f"?next={back}" if back else "")
    with mock.patch(f"{VIEWS}.{task}.delay") as queued:
        response = client.post(url)
    return response, queued


@pytest.mark.parametrize(("label", "name", "task", "arguments"), BUTTONS)
def test_each_button_queues_its_task_and_says_so(admin_client, label, name, task, arguments):
    channel = ChannelFactory(name="EKM teapots")

    response, queued = press(admin_client, channel, name, task=task)

    queued.assert_called_once_with(channel.pk, *arguments.args, **arguments.kwargs)
    assert response.status_code == 302
    assert response.url == reverse("admin:channels_channel_change", args=(channel.pk,))
    assert any(m.startswith("EKM teapots: ") and "queued" in m for m in messages_of(response))


@pytest.mark.parametrize(("kind", "words", "name", "task"), [
    (SyncRun.Kind.ORDERS, "the last order download is still running", "download_orders", "orders_download_task"),
    (SyncRun.Kind.INVENTORY, "the last stock push is still running", "push_stock", "inventory_push_task"),
    (SyncRun.Kind.INVENTORY, "the last stock push is still running", "push_all_stock", "inventory_push_task"),
])
def test_a_button_pressed_while_its_kind_of_run_goes_on_is_refused_and_queues_nothing(
    admin_client, kind, words, name, task
):
    channel = ChannelFactory(name="EKM teapots")
    SyncRun.objects.create(channel=channel, kind=kind)

    response, queued = press(admin_client, channel, name, task=task, back="list")

    queued.assert_not_called()
    assert response.url == reverse("admin:channels_channel_changelist")
    assert any(f"EKM teapots: nothing queued: {words}" in m for m in messages_of(response))


def test_a_run_of_another_kind_does_not_hold_the_button_back(admin_client):
    channel = ChannelFactory()
    SyncRun.objects.create(channel=channel, kind=SyncRun.Kind.INVENTORY)

    _, queued = press(admin_client, channel, "download_orders", task="orders_download_task")

    queued.assert_called_once_with(channel.pk, paced=False)


def test_a_run_left_running_by_a_killed_worker_does_not_hold_the_button_back(admin_client):
    channel = ChannelFactory()
    SyncRun.objects.create(channel=channel, kind=SyncRun.Kind.ORDERS, started_at=timezone.now() - timedelta(
        seconds=settings.CELERY_TASK_TIME_LIMIT + 60))

    _, queued = press(admin_client, channel, "download_orders", task="orders_download_task")

    queued.assert_called_once_with(channel.pk, paced=False)


def test_a_listing_download_in_progress_refuses_the_button_with_its_progress(admin_client):
    channel = ChannelFactory(listing_download_in_progress=True, listing_download_started_at=timezone.now(),
                             listing_download_done=2, listing_download_total=5)

    response, queued = press(admin_client, channel, "download_listings", task="listings_download_task")

    queued.assert_not_called()
    assert any("a listing download is already running (2 of 5 done)" in m for m in messages_of(response))


def test_a_switched_off_channel_or_one_whose_stock_is_not_sent_is_refused_with_the_reason(admin_client):
    off = ChannelFactory(name="Off", enabled=False)
    no_stock = ChannelFactory(name="No stock", inventory_sync=False)

    response, queued = press(admin_client, off, "download_orders", task="orders_download_task")
    queued.assert_not_called()
    assert any("Off: nothing queued: the channel is switched off" in m for m in messages_of(response))

    response, queued = press(admin_client, no_stock, "push_stock", task="inventory_push_task")
    queued.assert_not_called()
    assert any("No stock: nothing queued: stock is not sent to this channel" in m for m in messages_of(response))


def test_the_buttons_show_on_each_row_and_on_the_config_page(admin_client):
    channel = ChannelFactory()

    listing = admin_client.get(reverse("admin:channels_channel_changelist")).content.decode()
    page = admin_client.get(reverse("admin:channels_channel_change", args=(channel.pk,))).content.decode()

    for label, name, _task, _arguments in BUTTONS:
        url = reverse(f"admin:channels_channel_{name}", args=(channel.pk,))
        assert f'formaction="{url}?next=list">{label}</button>' in listing
        assert f'action="{url}"' in page and f">{label}</button>" in page


def test_staff_who_may_only_view_channels_get_no_buttons_and_cannot_press_them(client):
    channel = ChannelFactory()
    user = User.objects.create_user("clerk", password="pw", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="channels", codename="view_channel"))
    client.force_login(user)

    listing = client.get(reverse("admin:channels_channel_changelist")).content.decode()
    assert "Download orders now" not in listing and "Push all stock" not in listing
    for _label, name, task, _arguments in BUTTONS:
        response, queued = press(client, channel, name, task=task)
        assert response.status_code == 403
        queued.assert_not_called()
