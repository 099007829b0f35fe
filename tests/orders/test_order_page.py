"""Linking an order line to a stock item and moving an order's location hold the stock where it now belongs,
from the service and from the order page."""

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from channels.models import FulfilmentLocation, FulfilmentOrder
from inventory.models import StockLevel
from orders.models import Order
from orders.services import order_item_link, order_process
from tests.admin.pages import change_form_data
from tests.channels.factories import AmazonChannelFactory
from tests.inventory.factories import FbaLocationFactory, LocationFactory, StockItemFactory
from tests.orders.factories import OrderFactory, OrderItemFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def shop():
    """An open order at the main warehouse: 2 mugs reserved, and 3 of a SKU the hub did not know."""
    main, overflow = LocationFactory(name="Main", is_default=True), LocationFactory(name="Overflow")
    mug, vase = StockItemFactory(sku="MUG"), StockItemFactory(sku="VASE")
    for item in (mug, vase):
        for location in (main, overflow):
            StockLevel.objects.create(stock_item=item, location=location, quantity=10,
                                      in_open_orders=2 if (item, location) == (mug, main) else 0)
    order = OrderFactory(fulfilment_location=main, has_unlinked_items=True, channel__mark_as_despatched=False)
    mugs = OrderItemFactory(order=order, stock_item=mug, quantity=2)
    unknown = OrderItemFactory(order=order, stock_item=None, channel_sku="VASE-BLUE", quantity=3)
    return {"order": order, "mugs": mugs, "unknown": unknown, "main": main, "overflow": overflow, "vase": vase,
            "mug": mug}


def held() -> dict[tuple[str, str], int]:
    return {(level.stock_item.sku, level.location.name): level.in_open_orders
            for level in StockLevel.objects.select_related("stock_item", "location") if level.in_open_orders}


def test_linking_a_line_holds_its_stock_and_clears_the_unlinked_flag(shop):
    order_item_link(order_item_id=shop["unknown"].pk, stock_item_id=shop["vase"].pk)

    assert held() == {("MUG", "Main"): 2, ("VASE", "Main"): 3}
    shop["order"].refresh_from_db()
    assert not shop["order"].has_unlinked_items


def test_relinking_moves_the_hold_and_unlinking_releases_it(shop):
    order_item_link(order_item_id=shop["mugs"].pk, stock_item_id=shop["vase"].pk)
    assert held() == {("VASE", "Main"): 2}

    order_item_link(order_item_id=shop["mugs"].pk, stock_item_id=None)
    assert held() == {}
    shop["order"].refresh_from_db()
    assert shop["order"].has_unlinked_items


def test_a_processed_orders_lines_are_not_relinked(shop):
    order_process(order_id=shop["order"].pk)
    with pytest.raises(ValidationError, match="already processed"):
        order_item_link(order_item_id=shop["unknown"].pk, stock_item_id=shop["vase"].pk)
    assert held() == {}


def page_data(client, order: Order, **changes) -> dict:
    return change_form_data(client, reverse("admin:orders_order_change", args=(order.pk,)), **changes)


def test_staff_link_a_line_on_the_order_page(admin_client, shop):
    order = shop["order"]
    url = reverse("admin:orders_order_change", args=(order.pk,))

    response = admin_client.post(url, page_data(admin_client, order, **{"items-1-stock_item": shop["vase"].pk}),
                                 follow=True)

    assert "Line VASE-BLUE: linked to VASE, its stock held for this order." in response.content.decode()
    assert held() == {("MUG", "Main"): 2, ("VASE", "Main"): 3}


def test_changing_the_location_on_the_order_page_moves_the_held_stock(admin_client, shop):
    order = shop["order"]
    url = reverse("admin:orders_order_change", args=(order.pk,))

    admin_client.post(url, page_data(admin_client, order, fulfilment_location=shop["overflow"].pk,
                                     buyer_name="Ann Lee"))

    assert held() == {("MUG", "Overflow"): 2}
    order.refresh_from_db()
    assert order.fulfilment_location == shop["overflow"] and order.buyer_name == "Ann Lee"


def amazon_fba():
    return FulfilmentLocation.objects.create(channel=AmazonChannelFactory(), location=FbaLocationFactory()).location


def test_a_move_the_hub_refuses_is_a_message_next_to_the_location(admin_client, shop):
    order = shop["order"]
    Order.objects.filter(pk=order.pk).update(status=Order.Status.UNPAID, is_paid=False)
    url = reverse("admin:orders_order_change", args=(order.pk,))

    to_amazon = admin_client.post(url, page_data(admin_client, order, fulfilment_location=amazon_fba().pk))
    nowhere = admin_client.post(url, page_data(admin_client, order, fulfilment_location=""))

    assert to_amazon.status_code == nowhere.status_code == 200
    assert to_amazon.context["adminform"].form.errors["fulfilment_location"] == [
        f"Order {order.channel_order_id} is not paid yet: Amazon would ship it unpaid."
    ]
    assert nowhere.context["adminform"].form.errors["fulfilment_location"] == [
        "Choose a location: an open order holds its stock at one."
    ]
    assert held() == {("MUG", "Main"): 2}


def test_an_order_amazon_holds_keeps_its_location(admin_client, shop):
    order = shop["order"]
    FulfilmentOrder.objects.create(order=order, status=FulfilmentOrder.Status.RECEIVED, fulfilment_order_id="SL-1")
    page = admin_client.get(reverse("admin:orders_order_change", args=(order.pk,)))
    assert "fulfilment_location" not in page.context["adminform"].form.fields


def test_a_processed_orders_lines_and_location_are_read_only(admin_client, shop):
    order_process(order_id=shop["order"].pk)
    context = admin_client.get(reverse("admin:orders_order_change", args=(shop["order"].pk,))).context
    assert "fulfilment_location" not in context["adminform"].form.fields
    assert all("stock_item" not in line.fields for line in context["inline_admin_formsets"][0].formset.forms)


def test_staff_move_several_orders_to_another_location_at_once(admin_client, shop):
    other = OrderFactory(fulfilment_location=shop["main"])
    OrderItemFactory(order=other, stock_item=shop["vase"], quantity=1)
    StockLevel.objects.filter(stock_item=shop["vase"], location=shop["main"]).update(in_open_orders=1)
    closed = OrderFactory(fulfilment_location=shop["main"], status=Order.Status.CANCELLED)
    url = reverse("admin:orders_order_changelist")
    chosen = {"action": "reallocate_orders", "_selected_action": [shop["order"].pk, other.pk, closed.pk]}

    asked = admin_client.post(url, chosen)
    response = admin_client.post(url, {**chosen, "apply": "1", "location": shop["overflow"].pk}, follow=True)

    assert "Fulfil from" in asked.content.decode()
    page = response.content.decode()
    refused = closed.channel_order_id
    assert "2 order(s) moved." in page and f"{refused}: Order {refused} is already cancelled." in page
    assert held() == {("MUG", "Overflow"): 2, ("VASE", "Overflow"): 1}
