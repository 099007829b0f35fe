"""Kits from a CSV (sku,component_sku,quantity): all or nothing, every bad line named by its number."""

import io

import pytest
from django.contrib.auth.models import Group, User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse

from channels.permissions import WAREHOUSE_STAFF
from inventory.models import KitComponent, StockLevel
from inventory.services import kit_components_set, kits_import_csv, stock_reserve
from tests.inventory.factories import LocationFactory, StockItemFactory, StockLevelFactory

pytestmark = pytest.mark.django_db


def csv_file(text: str) -> io.BytesIO:
    handle = io.BytesIO(text.encode())
    handle.name = "kits.csv"
    return handle


def kits() -> list[tuple[str, str, int]]:
    return sorted(KitComponent.objects.values_list("kit__sku", "component__sku", "quantity"))


@pytest.fixture
def catalogue():
    return {sku: StockItemFactory(sku=sku) for sku in ("GIFT-SET", "MUG", "COASTER", "SOCK", "SOCK-3PK")}


def test_a_file_makes_a_gift_set_and_a_3_pack(catalogue):
    made = kits_import_csv(file=csv_file(
        "sku,component_sku,quantity\nGIFT-SET,MUG,1\nGIFT-SET,COASTER,2\nSOCK-3PK,SOCK,3\n"
    ))

    assert made == 2
    assert kits() == [("GIFT-SET", "COASTER", 2), ("GIFT-SET", "MUG", 1), ("SOCK-3PK", "SOCK", 3)]


def test_a_kit_in_the_file_gets_exactly_its_lines_and_its_open_orders_follow(catalogue):
    warehouse = LocationFactory(name="Main")
    gift_set, mug, coaster = catalogue["GIFT-SET"], catalogue["MUG"], catalogue["COASTER"]
    StockLevelFactory(stock_item=mug, location=warehouse, quantity=10)
    kit_components_set(kit_id=gift_set.pk, components=[(mug.pk, 1), (coaster.pk, 2)])
    stock_reserve(lines=[(gift_set.pk, warehouse.pk, 2)])

    kits_import_csv(file=csv_file("sku,component_sku,quantity\nGIFT-SET,MUG,2\n"))

    assert kits() == [("GIFT-SET", "MUG", 2)]
    held = dict(StockLevel.objects.values_list("stock_item__sku", "in_open_orders"))
    assert (held["MUG"], held["COASTER"]) == (4, 0)


def test_every_bad_line_is_named_and_nothing_is_applied(catalogue):
    text = (
        "sku,component_sku,quantity\n"
        "GIFT-SET,MUG,1\n"
        "GIFT-SET,LID,1\n"
        "SOCK-3PK,SOCK,three\n"
        "GIFT-SET,MUG,2\n"
        "SOCK-3PK,SOCK-3PK,1\n"
        "COASTER,GIFT-SET,1\n"
    )

    with pytest.raises(Exception) as raised:
        kits_import_csv(file=csv_file(text))

    assert raised.value.message_dict["file"] == [
        "Line 3: no stock item has the SKU 'LID'.",
        "Line 4: the quantity per kit 'three' is not a whole number of at least 1.",
        "Line 5: MUG in GIFT-SET is already given on line 2.",
        "Line 6: A kit cannot contain itself: remove SOCK-3PK from its components.",
        "Line 7: GIFT-SET is itself a kit: a kit is made of items stocked on their own; list GIFT-SET's "
        "components instead.",
    ]
    assert kits() == []


def test_the_command_reports_a_bad_file_in_one_line_and_fails(catalogue, tmp_path):
    path = tmp_path / "kits.csv"
    path.write_text("sku,component,quantity\nGIFT-SET,MUG,1\n")

    with pytest.raises(CommandError) as raised:
        call_command("import_kits", str(path))

    assert str(raised.value) == (
        f"{path}: Line 1: the header lacks component_sku; it must name the columns sku, component_sku, quantity. "
        "Nothing was imported."
    )


def test_the_command_makes_the_kits(catalogue, tmp_path):
    path = tmp_path / "kits.csv"
    path.write_text("sku,component_sku,quantity\nSOCK-3PK,SOCK,3\n")
    out = io.StringIO()

    call_command("import_kits", str(path), stdout=out)

    assert out.getvalue() == f"{path}: 1 kits made or changed.\n"
    assert kits() == [("SOCK-3PK", "SOCK", 3)]


def test_warehouse_staff_import_kits_from_the_stock_item_list(client, catalogue):
    staff = User.objects.create_user("packer", password="pw", is_staff=True)
    staff.groups.add(Group.objects.get(name=WAREHOUSE_STAFF))
    client.force_login(staff)
    url = reverse("admin:inventory_stockitem_kit_import")
    assert url in client.get(reverse("admin:inventory_stockitem_changelist")).content.decode()

    bad = client.post(url, {"file": SimpleUploadedFile("kits.csv", b"sku,component_sku,quantity\nGIFT-SET,LID,1\n")})
    good = client.post(url, {"file": SimpleUploadedFile("kits.csv", b"sku,component_sku,quantity\nGIFT-SET,MUG,1\n")})

    assert bad.context["form"].errors == {"file": ["Line 2: no stock item has the SKU 'LID'."]}
    assert good.status_code == 302
    assert kits() == [("GIFT-SET", "MUG", 1)]
