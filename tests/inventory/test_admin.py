from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from inventory.models import StockLevel
from inventory.signals import stock_changed
from tests.channels.factories import AmazonChannelFactory, ChannelListingFactory
from tests.inventory.factories import LocationFactory, StockItemFactory, StockLevelFactory

pytestmark = pytest.mark.django_db


def upload(text: str) -> SimpleUploadedFile:
    return SimpleUploadedFile("stock.csv", text.encode(), content_type="text/csv")


def test_the_stock_lists_link_to_the_import_page(admin_client):
    url = reverse("admin:inventory_stocklevel_import")

    for changelist in ("admin:inventory_stocklevel_changelist", "admin:inventory_stockitem_changelist"):
        assert url in admin_client.get(reverse(changelist)).content.decode()


def test_the_import_page_applies_a_good_file_once_its_preview_is_applied(admin_client):
    item = StockItemFactory(sku="MUG-1")
    LocationFactory(name="Leeds")
    url = reverse("admin:inventory_stocklevel_import")

    preview = admin_client.post(url, {"file": upload("sku,location,quantity\nMUG-1,Leeds,6\n")})
    assert preview.status_code == 200
    assert not StockLevel.objects.exists()
    response = admin_client.post(url, {"token": preview.context["apply_form"]["token"].value()})

    assert response.status_code == 302
    assert StockLevel.objects.get(stock_item=item).quantity == 6


def test_the_import_page_shows_the_bad_line_on_the_file_field_and_applies_nothing(admin_client):
    StockItemFactory(sku="MUG-1")
    LocationFactory(name="Leeds")

    response = admin_client.post(
        reverse("admin:inventory_stocklevel_import"),
        {"file": upload("sku,location,quantity\nMUG-1,Leeds,6\nMUG-2,Leeds,1\n")},
    )

    assert response.status_code == 200
    assert response.context["form"].errors == {"file": ["Line 3: no stock item has the SKU 'MUG-2'."]}
    assert not StockLevel.objects.exists()


def test_the_stock_item_page_shows_levels_ledger_and_what_each_channel_gets(admin_client):
    level = StockLevelFactory(quantity=20, in_open_orders=4, location=LocationFactory(name="Leeds"))
    channel = AmazonChannelFactory(name="Amazon UK", max_listed_quantity=10, max_listed_percentage=50)
    ChannelListingFactory(channel=channel, stock_item=level.stock_item)

    page = admin_client.get(reverse("admin:inventory_stockitem_change", args=[level.stock_item_id]))

    text = page.content.decode()
    assert "What each channel gets" in text
    assert "Amazon UK" in text
    assert "floor(10 x 50 / 100) = 5" in text
    assert "stock movements (latest 50)" in text.lower()


def test_saving_a_new_price_in_the_admin_announces_it(admin_client, django_capture_on_commit_callbacks):
    item = StockItemFactory(retail_price=Decimal("9.99"))
    sent = []
    stock_changed.connect(lambda sender, **kwargs: sent.append(kwargs), dispatch_uid="admin-price", weak=False)
    data = {
        "sku": item.sku, "title": item.title, "barcode": "", "retail_price": "12.00",
        "levels-TOTAL_FORMS": "0", "levels-INITIAL_FORMS": "0",
        "properties-TOTAL_FORMS": "0", "properties-INITIAL_FORMS": "0",
        "components-TOTAL_FORMS": "0", "components-INITIAL_FORMS": "0",
    }
    try:
        with django_capture_on_commit_callbacks(execute=True):
            response = admin_client.post(reverse("admin:inventory_stockitem_change", args=[item.pk]), data)
    finally:
        stock_changed.disconnect(dispatch_uid="admin-price")

    assert response.status_code == 302
    assert [kwargs["price_changed"] for kwargs in sent] == [True]
