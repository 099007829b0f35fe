"""The CSV import: every bad line reported at once, or a preview of before → after that staff apply."""

import io

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse

from inventory.models import StockLevel, StockMovement
from inventory.services import BAD_LINES_LISTED, stock_import_preview
from tests.channels.factories import ChannelFactory, ChannelListingFactory
from tests.inventory.factories import LocationFactory, StockItemFactory, StockLevelFactory

pytestmark = pytest.mark.django_db

IMPORT_URL = "admin:inventory_stocklevel_import"
THREE_BAD = "sku,location,quantity\nMUG-1,Leeds,6\nNOPE,Leeds,1\nLAMP-2,York,2\nLAMP-2,Leeds,2\nMUG-1,Leeds,x\n"


@pytest.fixture
def stock():
    leeds = LocationFactory(name="Leeds")
    mug = StockLevelFactory(stock_item=StockItemFactory(sku="MUG-1"), location=leeds, quantity=10)
    lamp = StockLevelFactory(stock_item=StockItemFactory(sku="LAMP-2"), location=leeds, quantity=4)
    return mug, lamp


def upload(text: str, name: str = "stock.csv") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, text.encode(), content_type="text/csv")


def quantities() -> dict[str, int]:
    return dict(StockLevel.objects.values_list("stock_item__sku", "quantity"))


def test_a_file_with_three_bad_lines_reports_all_three_and_applies_nothing(admin_client, stock):
    page = admin_client.post(reverse(IMPORT_URL), {"file": upload(THREE_BAD)})

    assert page.context["form"].errors == {"file": [
        "Line 3: no stock item has the SKU 'NOPE'.",
        "Line 4: no location is called 'York'.",
        "Line 6: the quantity 'x' is not a whole number.",
    ]}
    assert "plan" not in page.context
    assert quantities() == {"MUG-1": 10, "LAMP-2": 4}
    assert not StockMovement.objects.exists()


def test_the_preview_shows_before_and_after_and_writes_nothing_until_applied(
    admin_client, stock, pushes_queued, django_capture_on_commit_callbacks
):
    channel = ChannelFactory(name="Rakuten")
    ChannelListingFactory(channel=channel, stock_item=stock[0].stock_item)
    body = "sku,location,quantity\nMUG-1,leeds,6\nLAMP-2,Leeds,4\n"

    page = admin_client.post(reverse(IMPORT_URL), {"file": upload(body)})

    text = page.content.decode()
    assert "<td>MUG-1</td><td>Leeds</td><td>10</td><td>→ 6</td>" in text
    assert "<td>-4</td>" in text
    assert "1 stock level changes, 1 already has that quantity" in " ".join(text.split())
    assert quantities() == {"MUG-1": 10, "LAMP-2": 4}

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(reverse(IMPORT_URL), {"token": page.context["apply_form"]["token"].value()})

    assert response.url == reverse("admin:inventory_stocklevel_changelist")
    assert quantities() == {"MUG-1": 6, "LAMP-2": 4}
    assert list(StockMovement.objects.values_list("delta", "reason", "reference")) == [
        (-4, StockMovement.Reason.IMPORT, "CSV import stock.csv")
    ]
    assert pushes_queued == [channel.pk]
    assert "CSV import stock.csv: 1 stock levels changed." in admin_client.get(response.url).content.decode()


def test_a_level_changed_after_the_preview_is_reported_not_overwritten(admin_client, stock):
    mug, lamp = stock
    page = admin_client.post(
        reverse(IMPORT_URL), {"file": upload("sku,location,quantity\nMUG-1,Leeds,6\nLAMP-2,Leeds,9\n")}
    )
    StockLevel.objects.filter(pk=mug.pk).update(quantity=8)

    response = admin_client.post(reverse(IMPORT_URL), {"token": page.context["apply_form"]["token"].value()})

    assert quantities() == {"MUG-1": 8, "LAMP-2": 9}
    assert "MUG-1 at Leeds: 10 in the preview, 8 now" in admin_client.get(response.url).content.decode()


def test_an_expired_preview_applies_nothing_and_says_so(admin_client, stock):
    response = admin_client.post(reverse(IMPORT_URL), {"token": "no-such-preview"}, follow=True)

    assert "This preview has expired or was applied already" in response.content.decode()
    assert not StockMovement.objects.exists()


def test_a_file_that_changes_nothing_offers_no_apply(admin_client, stock):
    page = admin_client.post(reverse(IMPORT_URL), {"file": upload("sku,location,quantity\nMUG-1,Leeds,10\n")})

    assert page.context["apply_form"] is None
    assert "Nothing changes" in page.content.decode()


def test_past_the_listed_bad_lines_the_rest_are_counted(stock):
    body = "sku,location,quantity\n" + "NOPE,Leeds,1\n" * (BAD_LINES_LISTED + 3)
    handle = io.BytesIO(body.encode())

    with pytest.raises(ValidationError) as exc:
        stock_import_preview(file=handle)

    messages = exc.value.message_dict["file"]
    assert len(messages) == BAD_LINES_LISTED + 1
    assert messages[-1] == "… and 3 more bad lines."


def test_the_command_reports_every_bad_line_on_one_line_and_applies_nothing(tmp_path, stock):
    bad = tmp_path / "bad.csv"
    bad.write_text(THREE_BAD)

    with pytest.raises(CommandError) as exc:
        call_command("import_stock", str(bad))

    assert str(exc.value) == (
        f"{bad}: Line 3: no stock item has the SKU 'NOPE'. Line 4: no location is called 'York'. "
        "Line 6: the quantity 'x' is not a whole number. Nothing was imported."
    )
    assert quantities() == {"MUG-1": 10, "LAMP-2": 4}
