"""Stock typed on screen: a level added to, taken from or set with a reason, from the stock item page and the
stock levels list, written to the ledger and followed by a push to the item's channels."""

import pytest
from django.contrib.auth.models import Permission, User
from django.urls import reverse

from inventory.models import StockLevel, StockMovement
from tests.channels.factories import ChannelFactory, ChannelListingFactory
from tests.inventory.factories import FbaLocationFactory, LocationFactory, StockItemFactory, StockLevelFactory

pytestmark = pytest.mark.django_db


def change_url(level: StockLevel) -> str:
    return reverse("admin:inventory_stockitem_stock_change", args=[level.stock_item_id])


def post_change(client, level: StockLevel, change: str, note: str = "Found in returns", **extra):
    data = {"location": level.location_id, "change": change, "note": note, **extra}
    return client.post(change_url(level), data)


@pytest.fixture
def level():
    return StockLevelFactory(
        stock_item=StockItemFactory(sku="MUG-1"), location=LocationFactory(name="Leeds"), quantity=10
    )


def test_adding_stock_with_a_reason_writes_the_ledger_and_queues_a_push(
    admin_client, admin_user, level, pushes_queued, django_capture_on_commit_callbacks
):
    channel = ChannelFactory(name="EKM shop")
    ChannelListingFactory(channel=channel, stock_item=level.stock_item)

    with django_capture_on_commit_callbacks(execute=True):
        response = post_change(admin_client, level, "+5")

    assert response.status_code == 302
    level.refresh_from_db()
    assert level.quantity == 15
    movement = StockMovement.objects.get()
    assert (movement.delta, movement.quantity_after, movement.reason, movement.reference, movement.user) == (
        5, 15, StockMovement.Reason.ADJUSTMENT, "Found in returns", admin_user,
    )
    assert pushes_queued == [channel.pk]
    page = admin_client.get(response.url).content.decode()
    assert "MUG-1 at Leeds: 10 → 15 (Found in returns)." in page
    assert "<td>+5</td><td>15</td><td>Manual adjustment</td><td>Found in returns</td>" in page


@pytest.mark.parametrize(("change", "after", "delta"), [("-3", 7, -3), ("−4", 6, -4), ("=2", 2, -8), ("= 25", 25, 15)])
def test_removing_or_setting_writes_the_difference(admin_client, level, change, after, delta):
    post_change(admin_client, level, change, note="Stock check")

    level.refresh_from_db()
    assert level.quantity == after
    assert list(StockMovement.objects.values_list("delta", "reference")) == [(delta, "Stock check")]


def test_setting_the_level_it_already_has_writes_nothing(admin_client, level, pushes_queued,
                                                         django_capture_on_commit_callbacks):
    ChannelListingFactory(stock_item=level.stock_item)

    with django_capture_on_commit_callbacks(execute=True):
        response = post_change(admin_client, level, "=10")

    assert "already has 10: nothing changed" in admin_client.get(response.url).content.decode()
    assert not StockMovement.objects.exists()
    assert pushes_queued == []


def test_on_hand_may_go_below_what_open_orders_hold_and_staff_are_told(admin_client, level):
    StockLevel.objects.filter(pk=level.pk).update(in_open_orders=5)

    response = post_change(admin_client, level, "=2", note="Two broken in the warehouse")

    level.refresh_from_db()
    assert (level.quantity, level.available) == (2, -3)
    page = admin_client.get(response.url).content.decode()
    assert "Open orders hold 5 of MUG-1 at Leeds: available is -3, so the channels get 0" in page


@pytest.mark.parametrize(
    ("change", "note", "field", "message"),
    [
        ("-11", "Damaged", "change",
         "Cannot remove 11 of MUG-1 at Leeds: only 10 in stock. Physical stock cannot go below zero."),
        ("5", "Damaged", "change", "Say whether to add, remove or set: +5, -5 or =5."),
        ("+five", "Damaged", "change", "Type a whole number after +, - or =. +5 adds 5, -3 removes 3, "
                                       "=12 sets the level to 12."),
        ("+0", "Damaged", "change", "Adding or removing 0 changes nothing."),
        ("+3", "", "note", "This field is required."),
        ("+3", "   ", "note", "This field is required."),
    ],
)
def test_bad_input_is_shown_on_its_field_and_writes_nothing(
    admin_client, level, pushes_queued, django_capture_on_commit_callbacks, change, note, field, message
):
    ChannelListingFactory(stock_item=level.stock_item)

    with django_capture_on_commit_callbacks(execute=True):
        response = post_change(admin_client, level, change, note=note)

    assert response.status_code == 200
    assert response.context["form"].errors == {field: [message]}
    level.refresh_from_db()
    assert level.quantity == 10
    assert not StockMovement.objects.exists()
    assert pushes_queued == []


def test_stock_can_be_added_at_a_location_the_item_has_no_level_at_yet(admin_client, level):
    york = LocationFactory(name="York")

    admin_client.post(change_url(level), {"location": york.pk, "change": "+4", "note": "First delivery"})

    assert StockLevel.objects.get(stock_item=level.stock_item, location=york).quantity == 4


def test_an_external_fulfilment_centre_is_not_changed_by_hand(admin_client, level):
    fba = FbaLocationFactory(name="FBA UK")
    at_fba = StockLevelFactory(stock_item=level.stock_item, location=fba, quantity=3)

    response = admin_client.post(change_url(level), {"location": fba.pk, "change": "+4", "note": "Sent in"})

    assert "location" in response.context["form"].errors
    at_fba.refresh_from_db()
    assert at_fba.quantity == 3
    item_page = admin_client.get(reverse("admin:inventory_stockitem_change", args=[level.stock_item_id]))
    assert item_page.content.decode().count("Change stock</a>") == 2  # the Leeds row and the page's button


def test_the_stock_item_page_links_each_level_to_its_change_form(admin_client, level):
    page = admin_client.get(reverse("admin:inventory_stockitem_change", args=[level.stock_item_id])).content.decode()

    assert f'href="{change_url(level)}?location={level.location_id}"' in page


def test_the_stock_levels_list_links_each_row_and_comes_back_to_the_same_page(admin_client, level):
    listing = reverse("admin:inventory_stocklevel_changelist") + f"?location__id__exact={level.location_id}"
    page = admin_client.get(listing).content.decode()
    link = page.split('href="')[[i for i, part in enumerate(page.split('href="'))
                                  if part.startswith(change_url(level))][0]].split('"')[0]
    form_page = admin_client.get(link.replace("&amp;", "&"))

    response = admin_client.post(
        change_url(level), {"location": level.location_id, "change": "+1", "note": "Recount",
                            "next": form_page.context["back"]},
    )

    assert response.url == listing
    level.refresh_from_db()
    assert level.quantity == 11


def test_staff_without_the_stock_level_change_permission_cannot_change_stock(client, level):
    user = User.objects.create_user("viewer", password="pw-long-enough-1", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=["view_stockitem", "view_stocklevel"]))
    client.force_login(user)

    assert client.post(change_url(level), {"location": level.location_id, "change": "+5", "note": "x"}).status_code \
        == 403
    item_page = client.get(reverse("admin:inventory_stockitem_change", args=[level.stock_item_id])).content.decode()
    assert "Change stock" not in item_page
    level.refresh_from_db()
    assert level.quantity == 10


def test_an_outside_address_to_come_back_to_is_ignored(admin_client, level):
    response = post_change(admin_client, level, "+1", next="https://evil.example/")

    assert response.url == reverse("admin:inventory_stockitem_change", args=[level.stock_item_id])


def test_the_form_opened_from_the_page_button_offers_the_default_warehouse_first(admin_client, level):
    default = LocationFactory(name="Main", is_default=True)

    page = admin_client.get(change_url(level))

    assert page.context["form"]["location"].value() == default.pk
