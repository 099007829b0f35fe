"""A stock count: the counted quantities of one location, previewed as differences and applied as one batch."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from inventory.models import StockLevel, StockMovement
from inventory.services import stock_count_preview, stock_plan_apply
from tests.channels.factories import ChannelFactory, ChannelListingFactory
from tests.inventory.factories import FbaLocationFactory, LocationFactory, StockItemFactory, StockLevelFactory

pytestmark = pytest.mark.django_db

COUNT_URL = "admin:inventory_stocklevel_count"


@pytest.fixture
def leeds():
    location = LocationFactory(name="Leeds")
    for sku, quantity in (("MUG-1", 10), ("LAMP-2", 4), ("CUP-3", 7), ("BOWL-4", 3)):
        StockLevelFactory(stock_item=StockItemFactory(sku=sku), location=location, quantity=quantity)
    return location


def on_hand(location) -> dict[str, int]:
    return dict(StockLevel.objects.filter(location=location).values_list("stock_item__sku", "quantity"))


def preview(client, location, counted: str):
    return client.post(reverse(COUNT_URL), {"location": location.pk, "counted": counted})


def apply(client, page):
    """Press Apply under the preview, as the page's form sends it."""
    keep = page.context["form"]
    data = {"token": page.context["apply_form"]["token"].value(), "location": keep["location"].value(),
            "counted": keep["counted"].value()}
    return client.post(reverse(COUNT_URL), data)


def test_the_preview_shows_each_difference_and_writes_nothing(admin_client, leeds):
    page = preview(admin_client, leeds, "sku,counted\nMUG-1,12\nLAMP-2\t1\nCUP-3,7\n")

    rows = [(line.sku, line.on_hand, line.quantity, line.difference) for line in page.context["plan"].changes]
    assert sorted(rows) == [("LAMP-2", 4, 1, -3), ("MUG-1", 10, 12, 2)]
    text = page.content.decode()
    assert "<td>MUG-1</td><td>Leeds</td><td>10</td><td>→ 12</td>" in text
    assert "<td>+2</td>" in text and "<td>-3</td>" in text
    assert "1 already has that quantity" in text
    assert on_hand(leeds) == {"MUG-1": 10, "LAMP-2": 4, "CUP-3": 7, "BOWL-4": 3}
    assert not StockMovement.objects.exists()


def test_applying_a_count_writes_one_batch_and_queues_a_push(
    admin_client, admin_user, leeds, pushes_queued, django_capture_on_commit_callbacks
):
    channel = ChannelFactory(name="EKM shop")
    ChannelListingFactory(channel=channel, stock_item=StockLevel.objects.get(stock_item__sku="MUG-1").stock_item)
    page = preview(admin_client, leeds, "MUG-1,12\nLAMP-2,1\nCUP-3,7\n")

    with django_capture_on_commit_callbacks(execute=True):
        response = apply(admin_client, page)

    assert response.status_code == 302
    assert on_hand(leeds) == {"MUG-1": 12, "LAMP-2": 1, "CUP-3": 7, "BOWL-4": 3}
    movements = StockMovement.objects.order_by("stock_item__sku")
    assert [(m.stock_item.sku, m.delta, m.quantity_after) for m in movements] == [("LAMP-2", -3, 1), ("MUG-1", 2, 12)]
    assert {(m.reason, m.reference, m.user) for m in movements} == {
        (StockMovement.Reason.STOCK_COUNT, page.context["plan"].reference, admin_user)
    }
    assert page.context["plan"].reference.startswith("Stock count Leeds ")
    assert pushes_queued == [channel.pk]
    assert "2 stock levels changed" in admin_client.get(response.url).content.decode()


def test_a_counted_sku_with_no_level_at_the_location_gets_one(admin_client, leeds):
    StockItemFactory(sku="NEW-5")

    apply(admin_client, preview(admin_client, leeds, "NEW-5,6"))

    assert on_hand(leeds)["NEW-5"] == 6


def test_every_bad_line_is_reported_with_its_line_number_and_nothing_is_written(admin_client, leeds):
    page = preview(admin_client, leeds, "MUG-1,12\nNOPE,1\n\nLAMP-2,lots\nCUP-3,-1\nMUG-1,3\nBOWL-4\n")

    assert page.context["form"].errors == {"counted": [
        "Line 2: no stock item has the SKU 'NOPE'.",
        "Line 4: the count 'lots' is not a whole number.",
        "Line 5: the count -1 is negative; physical stock cannot go below zero.",
        "Line 6: MUG-1 is already counted on line 1.",
        "Line 7: expected two columns, sku,counted; found 1.",
    ]}
    assert "plan" not in page.context
    assert page.context["form"]["counted"].value().startswith("MUG-1,12\nNOPE,1")
    assert on_hand(leeds)["MUG-1"] == 10


def test_a_level_changed_after_the_preview_is_reported_not_overwritten(admin_client, leeds):
    page = preview(admin_client, leeds, "MUG-1,12\nLAMP-2,1\n")
    # An order despatched one lamp between the preview and Apply.
    StockLevel.objects.filter(stock_item__sku="LAMP-2", location=leeds).update(quantity=3)

    response = apply(admin_client, page)

    assert on_hand(leeds)["LAMP-2"] == 3
    assert on_hand(leeds)["MUG-1"] == 12
    text = admin_client.get(response.url).content.decode()
    assert "1 stock levels changed after the preview and were left as they are" in text
    assert "LAMP-2 at Leeds: 4 in the preview, 3 now" in text
    assert list(StockMovement.objects.values_list("stock_item__sku", flat=True)) == ["MUG-1"]


def test_pressing_apply_twice_applies_once(admin_client, leeds):
    page = preview(admin_client, leeds, "MUG-1,12\n")
    apply(admin_client, page)

    again = apply(admin_client, page)

    assert again.status_code == 200
    assert "This preview has expired or was applied already" in again.content.decode()
    assert again.context["form"]["counted"].value() == "MUG-1,12\n"
    assert StockMovement.objects.count() == 1


def test_an_external_fulfilment_centre_cannot_be_counted(admin_client):
    fba = FbaLocationFactory(name="FBA UK")
    StockItemFactory(sku="MUG-1")

    page = preview(admin_client, fba, "MUG-1,1")

    assert "location" in page.context["form"].errors
    assert not StockLevel.objects.exists()


def test_the_count_reads_and_writes_in_as_many_statements_for_100_lines_as_for_3():
    location = LocationFactory(name="Leeds")
    items = [StockItemFactory(sku=f"C-{n:03d}") for n in range(100)]
    StockLevel.objects.bulk_create(StockLevel(stock_item=item, location=location, quantity=5) for item in items)

    def statements(count: int) -> int:
        lines = "\n".join(f"{item.sku},{count}" for item in items[: count])
        with CaptureQueriesContext(connection) as queries:
            stock_plan_apply(plan=stock_count_preview(location_id=location.pk, counted=lines), user=None)
        return len(queries)

    assert statements(3) == statements(100)


def test_only_staff_allowed_to_change_stock_levels_see_the_count(client, django_user_model, leeds):
    from django.contrib.auth.models import Permission

    viewer = django_user_model.objects.create_user("viewer", password="pw-long-enough-1", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_stocklevel"))
    client.force_login(viewer)

    assert client.get(reverse(COUNT_URL)).status_code == 403
    assert "Stock count" not in client.get(reverse("admin:inventory_stocklevel_changelist")).content.decode()
    assert preview(client, leeds, "MUG-1,1").status_code == 403


def test_each_warehouse_in_the_locations_list_opens_its_count(admin_client, leeds):
    FbaLocationFactory(name="FBA UK")

    page = admin_client.get(reverse("admin:inventory_location_changelist")).content.decode()

    assert page.count("Count stock</a>") == 1
    count_page = admin_client.get(reverse(COUNT_URL), {"location": leeds.pk})
    assert count_page.context["form"]["location"].value() == str(leeds.pk)
