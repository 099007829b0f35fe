"""Process with tracking numbers: many orders processed from `order number, tracking number[, carrier]` lines,
every bad line reported at once with its number, nothing applied for a bad file."""

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from inventory.models import StockLevel
from orders.models import Order
from orders.services import order_cancel, orders_process_with_tracking, tracking_lines_check, tracking_lines_read
from tests.channels.factories import (
    AmazonChannelFactory,
    ChannelFactory,
    OrderStatusMappingFactory,
    RakutenChannelFactory,
)
from tests.inventory.factories import StockLevelFactory
from tests.orders.factories import OrderFactory, OrderItemFactory, PostalServiceFactory
from tests.orders.test_despatch_retry import downloaded_order, said, sandbox_channel, shipments

pytestmark = pytest.mark.django_db

URL = "admin:orders_order_process_with_tracking"


@pytest.fixture
def carriers():
    return {"colissimo": PostalServiceFactory(name="Colissimo", carrier_code="Colissimo", tracking_url_template=""),
            "royal_mail": PostalServiceFactory(name="Royal Mail 48", carrier_code="Royal Mail")}


def order_holding_a_mug(channel, **fields):
    level = StockLevelFactory(quantity=5, in_open_orders=1)
    order = OrderItemFactory(stock_item=level.stock_item, order__channel=channel,
                             order__fulfilment_location=level.location, **{f"order__{k}": v for k, v in fields.items()}
                             ).order
    return order, level


def post_lines(client, text):
    return client.post(reverse(URL), {"lines": text}, follow=True)


def test_the_order_list_links_to_the_page(admin_client):
    page = admin_client.get(reverse("admin:orders_order_changelist")).content.decode()

    assert reverse(URL) in page and "Process with tracking numbers" in page


def test_a_file_with_bad_lines_applies_nothing_and_lists_every_bad_line(admin_client, carriers):
    amazon, rakuten = AmazonChannelFactory(name="Amazon UK"), RakutenChannelFactory(name="Rakuten FR")
    good, good_level = order_holding_a_mug(amazon)
    shipped = OrderFactory(channel=amazon, status=Order.Status.PROCESSED)
    french, _ = order_holding_a_mug(rakuten)
    text = "\n".join([
        "order number,tracking number,carrier",
        f"{good.channel_order_id},RM1GB,Royal Mail 48",
        "NO-SUCH-ORDER,RM2GB",
        f"{shipped.channel_order_id},RM3GB",
        f"{french.channel_order_id},BV-1,Bob's Vans",
        f"{good.channel_order_id}",
    ])
    upload = SimpleUploadedFile("tracking.csv", text.encode(), content_type="text/csv")

    response = admin_client.post(reverse(URL), {"file": upload})

    errors = response.context["form"].non_field_errors()
    assert list(errors) == [
        "Line 3 (order NO-SUCH-ORDER): no order has this number.",
        f"Line 4 (order {shipped.channel_order_id}): Order {shipped.channel_order_id} is already processed (shipped).",
        f"Line 5 (order {french.channel_order_id}): no postal service is named or has the carrier code “Bob's "
        "Vans”: add it under Postal services, or use one of Colissimo, Royal Mail 48.",
        f"Line 6 (order {good.channel_order_id}): no tracking number.",
    ]
    page = response.content.decode()
    assert "Nothing was processed" in page and "Line 3 (order NO-SUCH-ORDER)" in page
    good.refresh_from_db()
    assert (good.status, good.tracking_number) == (Order.Status.PAID, "")
    assert StockLevel.objects.get(pk=good_level.pk).quantity == 5


def test_the_channels_rules_are_checked_for_every_line(admin_client, carriers):
    amazon, rakuten = AmazonChannelFactory(name="Amazon UK"), RakutenChannelFactory(name="Rakuten FR")
    untracked, _ = order_holding_a_mug(amazon)
    no_carrier, _ = order_holding_a_mug(rakuten)
    PostalServiceFactory(name="Bob's Vans", carrier_code="Bob's Vans", tracking_url_template="")
    off_list, _ = order_holding_a_mug(rakuten)

    response = post_lines(admin_client, "\n".join([
        f"{untracked.channel_order_id}\t ",
        f"{no_carrier.channel_order_id}\t6A1",
        f"{off_list.channel_order_id}\tBV-1\tBob's Vans",
    ]))

    errors = list(response.context["form"].non_field_errors())
    assert errors[0] == f"Line 1 (order {untracked.channel_order_id}): no tracking number."
    assert errors[1] == (f"Line 2 (order {no_carrier.channel_order_id}): Choose the postal service: Rakuten must be "
                         "told the carrier.")
    assert errors[2].startswith(f"Line 3 (order {off_list.channel_order_id}): “Bob's Vans” is not on Rakuten's "
                                "carrier list, so it is sent as “Autre”")
    assert not Order.objects.filter(status=Order.Status.PROCESSED).exists()


def test_an_order_number_twice_in_the_file_is_a_bad_line(admin_client, carriers):
    order, _ = order_holding_a_mug(AmazonChannelFactory(name="Amazon UK"))

    response = post_lines(admin_client, f"{order.channel_order_id},RM1GB,Royal Mail\n{order.channel_order_id},RM2GB")

    assert list(response.context["form"].non_field_errors()) == [
        f"Line 2 (order {order.channel_order_id}): the order is already on line 1."]
    assert Order.objects.get(pk=order.pk).status == Order.Status.PAID


def test_lines_without_an_order_number_or_with_too_many_values_are_bad_lines():
    rows, unreadable = tracking_lines_read(text=",RM1GB\n1001,RM2GB,Royal Mail,Next day,extra\n1002,RM3GB")

    assert [row.order_number for row in rows] == ["1002"]
    assert unreadable == [
        (1, "Line 1: no order number."),
        (2, "Line 2: expected “order number, tracking number[, carrier]”, found 5 values: “1001 | RM2GB | Royal "
            "Mail | Next day | extra”."),
    ]


def test_an_empty_page_or_a_file_that_is_not_text_is_refused(admin_client):
    empty = admin_client.post(reverse(URL), {"lines": "  \n"})
    binary = admin_client.post(reverse(URL), {"file": SimpleUploadedFile("t.xlsx", b"PK\x03\x04\xff\xfe")})

    assert list(empty.context["form"].non_field_errors()) == ["Paste the lines, or upload a file of them."]
    assert binary.context["form"].errors["file"][0].startswith("The file is not UTF-8 text")


def test_the_lines_are_checked_with_a_fixed_number_of_queries(carriers):
    amazon = AmazonChannelFactory(name="Amazon UK")
    # EKM is told of a despatch through its status mapping: asked once per channel, not once per line.
    ekm = ChannelFactory(name="EKM shop")
    OrderStatusMappingFactory(channel=ekm, channel_status="DISPATCHED", hub_status=Order.Status.PROCESSED)
    few = [order_holding_a_mug(channel)[0] for channel in (amazon, ekm)]
    many = few + [order_holding_a_mug(channel)[0] for channel in (amazon, ekm) * 4]

    def queries(orders):
        rows, errors = tracking_lines_read(text="\n".join(f"{o.channel_order_id},T{o.pk},Royal Mail" for o in orders))
        with CaptureQueriesContext(connection) as captured:
            lines, problems = tracking_lines_check(rows=rows)
        assert (len(lines), errors, problems) == (len(orders), [], [])
        return len(captured)

    assert queries(many) == queries(few)


def test_good_lines_process_every_order_and_rakuten_receives_each_tracking_number(
    sandbox, admin_client, carriers, django_capture_on_commit_callbacks
):
    rakuten = sandbox_channel(sandbox, "rakuten")
    first, second = downloaded_order(sandbox, rakuten), downloaded_order(sandbox, rakuten)
    second.postal_service = carriers["colissimo"]
    second.save(update_fields=["postal_service"])

    with django_capture_on_commit_callbacks(execute=True):
        response = post_lines(admin_client, f"{first.channel_order_id}, 6A1, colissimo\n{second.channel_order_id}, 6A2")

    assert said(response) == [f"Orders {', '.join(sorted([first.channel_order_id, second.channel_order_id]))} "
                              "processed; telling Rakuten…"]
    assert sorted((s["order_id"], s["tracking_number"], s["carrier"]) for s in shipments(sandbox, "rakuten")) == [
        (first.channel_order_id, "6A1", "Colissimo"), (second.channel_order_id, "6A2", "Colissimo")]
    assert set(Order.objects.values_list("channel_told", flat=True)) == {Order.ChannelTold.TOLD}


def test_a_spreadsheets_semicolons_or_tabs_are_read_like_commas(carriers):
    order, _ = order_holding_a_mug(AmazonChannelFactory(name="Amazon UK"))

    for text in (f"Order number;Tracking number\n{order.channel_order_id};RM1GB;Royal Mail 48",
                 f"{order.channel_order_id}\tRM1GB\tRoyal Mail 48\n"):
        rows, unreadable = tracking_lines_read(text=text)
        lines, refused = tracking_lines_check(rows=rows)
        assert (unreadable, refused) == ([], [])
        assert [(line.order, line.tracking_number, line.postal_service) for line in lines] == [
            (order, "RM1GB", carriers["royal_mail"])]


def test_an_order_that_changed_since_the_check_undoes_the_whole_file(carriers):
    channel = AmazonChannelFactory(name="Amazon UK")
    (first, first_level), (second, _) = order_holding_a_mug(channel), order_holding_a_mug(channel)
    rows, _ = tracking_lines_read(text=f"{first.channel_order_id},RM1GB,Royal Mail\n{second.channel_order_id},RM2GB,"
                                       "Royal Mail")
    lines, _ = tracking_lines_check(rows=rows)
    order_cancel(order_id=second.pk, reason="Cancelled by the seller")

    with pytest.raises(ValidationError) as refused:
        orders_process_with_tracking(lines=lines)

    assert refused.value.messages == [f"Line 2 (order {second.channel_order_id}): Order {second.channel_order_id} is "
                                      "already cancelled. Nothing was processed."]
    first.refresh_from_db()
    assert (first.status, first.tracking_number) == (Order.Status.PAID, "")
    assert StockLevel.objects.get(pk=first_level.pk).quantity == 5
