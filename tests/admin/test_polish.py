"""What staff see of Stockline's admin: its own name, a seller's menu, each channel's config page showing only
the settings that do something on its kind (in its kind's words), each channel's schedule on its own page,
downloaded amounts left as the channel sent them, and a Max Listed Quantity of 0 refused."""

from pathlib import Path

import pytest
from django.contrib.auth.models import Permission, User
from django.contrib.staticfiles import finders
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.urls import reverse
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from channels.models import Channel, ChannelListing
from channels.services import channel_create
from tests.channels.factories import AmazonChannelFactory, ChannelFactory, ChannelListingFactory, RakutenChannelFactory
from tests.orders.factories import OrderItemFactory
from tests.security.conftest import change_form_data

pytestmark = pytest.mark.django_db

ZERO_REFUSED = "A maximum of 0 would end every listing: leave empty for no maximum."


def config_page(client, channel: Channel) -> str:
    return client.get(reverse("admin:channels_channel_change", args=(channel.pk,))).content.decode()


def clerk(client, *codenames: str) -> User:
    """A member of staff who is not a superuser, with these permissions of any app."""
    user = User.objects.create_user("clerk", password="pw", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    client.force_login(user)
    return user


# --- Stockline's own name -------------------------------------------------------------------------------


def test_the_admin_is_titled_stockline_with_its_favicon(admin_client):
    page = admin_client.get(reverse("admin:index")).content.decode()

    assert "Django" not in page
    assert '<div id="site-name"><a href="/admin/">Stockline</a></div>' in page
    assert "<title>Channels, orders and stock | Stockline</title>" in page
    assert 'rel="icon" href="/static/stockline/favicon.svg"' in page


def test_favicon_ico_leads_to_the_favicon(client):
    response = client.get("/favicon.ico")

    assert response.status_code == 302 and response["Location"] == "/static/stockline/favicon.svg"
    assert "<svg" in Path(finders.find("stockline/favicon.svg")).read_text()


# --- a seller's menu ---------------------------------------------------------------------------------------


def test_staff_who_are_not_superusers_see_no_axes_or_raw_periodic_tasks_in_the_menu(client):
    clerk(client, "view_channel", "view_accessattempt", "view_periodictask", "view_intervalschedule")

    page = client.get(reverse("admin:index")).content.decode()

    assert "app-channels" in page
    assert "app-axes" not in page and "Access attempts" not in page
    assert "app-django_celery_beat" not in page and "Periodic tasks" not in page


def test_superusers_still_see_the_machinery(admin_client):
    page = admin_client.get(reverse("admin:index")).content.decode()
    assert "app-axes" in page and "app-django_celery_beat" in page


# --- each kind's own settings ------------------------------------------------------------------------------


def test_send_despatch_notes_is_only_on_channels_that_let_the_seller_choose(admin_client):
    ekm, amazon, rakuten = ChannelFactory(), AmazonChannelFactory(), RakutenChannelFactory()

    assert 'name="send_despatch_notes"' in config_page(admin_client, ekm)
    assert 'name="send_despatch_notes"' not in config_page(admin_client, amazon)
    assert 'name="send_despatch_notes"' not in config_page(admin_client, rakuten)


def test_fba_and_latency_are_only_on_amazon(admin_client):
    amazon, ekm = config_page(admin_client, AmazonChannelFactory()), config_page(admin_client, ChannelFactory())

    for name in ("fba_enabled", "latency_days"):
        assert f'name="{name}"' in amazon and f'name="{name}"' not in ekm


def test_download_unpaid_orders_is_not_on_rakuten_whose_sales_are_all_paid(admin_client):
    assert 'name="download_unpaid_orders"' not in config_page(admin_client, RakutenChannelFactory())
    assert 'name="download_unpaid_orders"' in config_page(admin_client, ChannelFactory())


def test_help_texts_are_the_kinds_own(admin_client):
    amazon, ekm = config_page(admin_client, AmazonChannelFactory()), config_page(admin_client, ChannelFactory())

    assert "instead of “NOT DISCLOSED BY AMAZON”" in amazon and "NOT DISCLOSED" not in ekm
    assert "Use EKM's tax settings for the orders' tax" in ekm
    assert "Used for orders that arrive without the buyer's email." in ekm


# --- each channel's schedule on its own page -------------------------------------------------------------


@pytest.fixture
def saved():
    """An EKM channel saved as staff add one: with its periodic tasks."""
    return channel_create(channel=ChannelFactory.build(name="EKM shop"))


def every(channel: Channel, key: str) -> tuple[int, str]:
    interval = PeriodicTask.objects.get(name=f"channel-{channel.pk}-{key}").interval
    return interval.every, interval.period


def test_the_config_page_shows_and_sets_the_channels_schedule(admin_client, saved):
    url = reverse("admin:channels_channel_change", args=(saved.pk,))
    form = admin_client.get(url).context["adminform"].form
    assert form["listings_every"].value() == 24 * 60

    response = admin_client.post(url, change_form_data(admin_client, url, orders_every=60, listings_every=120))

    assert response.status_code == 302, response.context["adminform"].form.errors
    assert every(saved, "orders") == (60, IntervalSchedule.SECONDS)
    assert every(saved, "listings") == (120, IntervalSchedule.MINUTES)
    assert every(saved, "inventory") == (15, IntervalSchedule.MINUTES)


def test_an_interval_staff_set_stays_when_the_channel_is_saved_again(admin_client, saved):
    url = reverse("admin:channels_channel_change", args=(saved.pk,))
    admin_client.post(url, change_form_data(admin_client, url, inventory_every=5))

    admin_client.post(url, change_form_data(admin_client, url, name="EKM shop renamed", enabled=False))

    assert every(saved, "inventory") == (5, IntervalSchedule.MINUTES)


def test_orders_are_never_downloaded_faster_than_the_channels_quota(admin_client):
    amazon = channel_create(channel=AmazonChannelFactory.build(name="Amazon UK"))
    url = reverse("admin:channels_channel_change", args=(amazon.pk,))
    quota = amazon.connector_class.order_download_quota_seconds()
    before = every(amazon, "orders")

    refused = admin_client.post(url, change_form_data(admin_client, url, orders_every=quota - 1))
    assert refused.status_code == 200
    assert refused.context["adminform"].form.errors["orders_every"] == [
        f"Amazon's quota allows an order download every {quota} s at most: faster, its calls would be refused."
    ]
    assert every(amazon, "orders") == before

    accepted = admin_client.post(url, change_form_data(admin_client, url, orders_every=quota))
    assert accepted.status_code == 302
    assert every(amazon, "orders") == (quota, IntervalSchedule.SECONDS)


def test_staff_who_may_only_view_the_channel_see_no_schedule_inputs(client, saved):
    clerk(client, "view_channel")
    assert 'name="orders_every"' not in config_page(client, saved)


# --- downloaded amounts -----------------------------------------------------------------------------------


def test_an_orders_downloaded_amounts_are_read_only(admin_client):
    line = OrderItemFactory()

    page = admin_client.get(reverse("admin:orders_order_change", args=(line.order.pk,))).content.decode()

    for name in ("subtotal", "shipping_cost", "tax", "total", "currency"):
        assert f'name="{name}"' not in page
    assert 'name="items-0-unit_price"' not in page
    assert "19.98" in page


# --- Max Listed Quantity 0 --------------------------------------------------------------------------------


def test_a_max_listed_quantity_of_0_is_refused_on_the_channel(admin_client, saved):
    url = reverse("admin:channels_channel_change", args=(saved.pk,))

    response = admin_client.post(url, change_form_data(admin_client, url, max_listed_quantity=0))

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["max_listed_quantity"] == [ZERO_REFUSED]
    saved.refresh_from_db()
    assert saved.max_listed_quantity is None


def test_a_max_listed_quantity_of_0_is_refused_on_a_listing(admin_client):
    listing = ChannelListingFactory()
    url = reverse("admin:channels_channellisting_change", args=(listing.pk,))

    response = admin_client.post(url, change_form_data(admin_client, url, max_listed_quantity=0))

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["max_listed_quantity"] == [ZERO_REFUSED]


def test_an_empty_max_listed_quantity_means_no_maximum_and_1_is_accepted(saved):
    saved.max_listed_quantity = 1
    saved.full_clean()
    saved.max_listed_quantity = None
    saved.full_clean()
    saved.max_listed_quantity = 0
    with pytest.raises(ValidationError):
        saved.full_clean()


@pytest.mark.parametrize("model", [Channel, ChannelListing])
def test_the_database_refuses_a_max_listed_quantity_of_0(model):
    row = ChannelFactory() if model is Channel else ChannelListingFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        model.objects.filter(pk=row.pk).update(max_listed_quantity=0)
