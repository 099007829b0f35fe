"""Kits on the stock item pages: components edited inline, the kit filter, the ledger, what each channel gets."""

import pytest
from django.urls import reverse

from inventory.models import KitComponent, StockLevel
from inventory.services import kit_components_set, stock_consume, stock_reserve
from tests.admin.pages import change_form_data
from tests.channels.factories import ChannelFactory, ChannelListingFactory
from tests.inventory.factories import LocationFactory, StockItemFactory, StockLevelFactory

pytestmark = pytest.mark.django_db


def page_of(item) -> str:
    return reverse("admin:inventory_stockitem_change", args=[item.pk])


def with_component(admin_client, item, component, quantity) -> dict:
    data = change_form_data(admin_client, page_of(item))
    data.update({"components-0-component": str(component.pk), "components-0-quantity": str(quantity)})
    return data


def test_a_3_pack_is_made_on_its_page_and_its_open_orders_hold_the_singles(admin_client):
    warehouse = LocationFactory(name="Main")
    pack, single = StockItemFactory(sku="SOCK-3PK"), StockItemFactory(sku="SOCK")
    StockLevelFactory(stock_item=single, location=warehouse, quantity=10)
    # Sold before it was a kit: the pack's open order held the pack itself.
    stock_reserve(lines=[(pack.pk, warehouse.pk, 1)])

    response = admin_client.post(page_of(pack), with_component(admin_client, pack, single, 3))

    assert response.status_code == 302
    assert list(KitComponent.objects.values_list("component__sku", "quantity")) == [("SOCK", 3)]
    assert StockLevel.objects.get(stock_item=single).in_open_orders == 3


def test_a_kit_of_kits_is_refused_on_the_page_and_nothing_is_saved(admin_client):
    gift_set, mug, hamper = StockItemFactory(sku="GIFT-SET"), StockItemFactory(sku="MUG"), StockItemFactory()
    kit_components_set(kit_id=gift_set.pk, components=[(mug.pk, 1)])

    response = admin_client.post(page_of(hamper), with_component(admin_client, hamper, gift_set, 1))

    assert response.status_code == 200
    errors = [str(error) for inline in response.context["inline_admin_formsets"]
              for error in inline.formset.non_form_errors()]
    assert errors == ["GIFT-SET is itself a kit: a kit is made of items stocked on their own; "
                      "list GIFT-SET's components instead."]
    assert not KitComponent.objects.filter(kit=hamper).exists()


def test_the_component_is_chosen_by_searching_the_stock_items(admin_client):
    item, wanted = StockItemFactory(), StockItemFactory(sku="RIBBON-RED")
    StockItemFactory(sku="TAPE")

    page = admin_client.get(page_of(item)).content.decode()
    found = admin_client.get(reverse("admin:autocomplete"), {
        "app_label": "inventory", "model_name": "kitcomponent", "field_name": "component", "term": "RIBBON",
    }).json()

    assert 'name="components-0-component"' in page and "admin-autocomplete" in page
    assert [result["id"] for result in found["results"]] == [str(wanted.pk)]


def test_the_kit_filter_lists_kits_and_their_parts(admin_client):
    kit, part = StockItemFactory(sku="KIT-A"), StockItemFactory(sku="PART-A")
    StockItemFactory(sku="LONE")
    kit_components_set(kit_id=kit.pk, components=[(part.pk, 2)])
    url = reverse("admin:inventory_stockitem_changelist")

    def listed(value):
        return {item.sku for item in admin_client.get(url, {"kit": value}).context["cl"].result_list}

    assert (listed("yes"), listed("component"), listed("no")) == ({"KIT-A"}, {"PART-A"}, {"PART-A", "LONE"})


def test_the_ledger_shows_a_kit_order_against_its_parts_on_both_pages(admin_client):
    warehouse = LocationFactory(name="Main")
    kit, mug = StockItemFactory(sku="GIFT-SET"), StockItemFactory(sku="MUG")
    StockLevelFactory(stock_item=mug, location=warehouse, quantity=10)
    kit_components_set(kit_id=kit.pk, components=[(mug.pk, 2)])
    stock_reserve(lines=[(kit.pk, warehouse.pk, 1)])
    stock_consume(lines=[(kit.pk, warehouse.pk, 1)], reference="EKM order 1001")

    assert "kit GIFT-SET" in admin_client.get(page_of(mug)).content.decode()
    kit_page = admin_client.get(page_of(kit)).content.decode()
    assert "MUG (part of this kit)" in kit_page and "EKM order 1001" in kit_page


def test_the_kit_page_explains_what_each_channel_gets_by_its_limiting_part(admin_client):
    warehouse = LocationFactory(name="Leeds")
    kit, mug, coaster = StockItemFactory(sku="GIFT-SET"), StockItemFactory(sku="MUG"), StockItemFactory(sku="COASTER")
    StockLevelFactory(stock_item=mug, location=warehouse, quantity=5)
    StockLevelFactory(stock_item=coaster, location=warehouse, quantity=30)
    kit_components_set(kit_id=kit.pk, components=[(mug.pk, 1), (coaster.pk, 2)])
    ChannelListingFactory(channel=ChannelFactory(name="EKM shop"), stock_item=kit)

    page = admin_client.get(page_of(kit)).content.decode()

    assert "Kits at Leeds" in page
    assert "limited by MUG: 5 available / 1 per kit; COASTER makes 15" in page
