"""Despatch you can trust, in a real browser against the sandbox's Rakuten: refused next to the field before
anything is sent, a message saying what Rakuten heard, the orders Rakuten was not told of listed, a retry after
fixing the carrier, and a tracking file with a bad line that processes nothing.

Tasks run inline (tests/conftest.py), so the despatch is sent within the request that processes the order."""

import pytest

from orders.models import Order, PostalService
from orders.services import order_process
from tests.orders.test_despatch_retry import downloaded_order, sandbox_channel, shipments

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]

@pytest.fixture
def staff_page(page, staff_admin):
    return page, staff_admin


def test_processing_retrying_and_a_tracking_file_for_rakuten(staff_page, sandbox):
    page, admin = staff_page
    rakuten = sandbox_channel(sandbox, "rakuten")
    PostalService.objects.create(name="Colissimo", carrier_code="Colissimo")
    amazon_logistics = PostalService.objects.create(name="Amazon Logistics", carrier_code="AMZN_UK")
    order, untold, waiting = (downloaded_order(sandbox, rakuten) for _ in range(3))
    # Shipped by a path that does not ask Rakuten's rules first: a carrier Rakuten does not know.
    order_process(order_id=untold.pk, tracking_number="QA1", postal_service_id=amazon_logistics.pk,
                  check_despatch=False)

    # No tracking number: refused next to the field, nothing sent.
    page.goto(f"{admin}/orders/order/{order.pk}/change/")
    page.click("a:text-is('Process')")
    page.select_option("#id_postal_service", label="Colissimo")
    page.click("input[name=apply]")
    assert "Rakuten refuses a despatch without a tracking number" in page.locator(".errorlist").inner_text()
    assert len(shipments(sandbox, "rakuten")) == 0

    page.fill("#id_tracking_number", "6A1")
    page.click("input[name=apply]")
    page.wait_for_selector(f"text=Order {order.channel_order_id} processed; Rakuten told.")

    # The order Rakuten was not told of, listed, retried with a carrier Rakuten knows.
    page.goto(f"{admin}/orders/order/?channel_told=not_told")
    assert page.locator("#result_list tbody tr").count() == 1
    assert "Rakuten refused" in page.locator("#result_list tbody").inner_text()
    page.click(f"a:text-is('{untold.channel_order_id}')")
    page.click("a:text-is('Retry telling the channel')")
    page.select_option("#id_postal_service", label="Colissimo")
    page.click("input[name=apply]")
    page.wait_for_selector(f"text=Order {untold.channel_order_id} sent again; Rakuten told.")

    # A tracking file with one bad line: every bad line listed, nothing processed.
    page.goto(f"{admin}/orders/order/")
    page.click("a:text-is('Process with tracking numbers')")
    page.fill("#id_lines", f"{waiting.channel_order_id},6A3,Colissimo\nNO-SUCH-ORDER,6A4")
    page.click("input[value='Process these orders']")
    assert "Line 2 (order NO-SUCH-ORDER): no order has this number." in page.locator(".tracking-errors").inner_text()
    assert Order.objects.get(pk=waiting.pk).status == Order.Status.PAID

    page.fill("#id_lines", f"{waiting.channel_order_id},6A3,Colissimo")
    page.click("input[value='Process these orders']")
    page.wait_for_selector(f"text=Order {waiting.channel_order_id} processed; Rakuten told.")
    assert sorted(s["tracking_number"] for s in shipments(sandbox, "rakuten")) == ["6A1", "6A3", "QA1"]
