"""WooCommerce payloads to the hub's values (pure), and what a webhook delivery must carry to be acted on."""

from decimal import Decimal

import pytest

from channels.connectors.woocommerce.client import oauth_signature, page_title
from channels.connectors.woocommerce.mapper import (
    MANAGED_BY_PARENT,
    listings_from_products,
    listings_from_variations,
    order_from_woo,
    parse_external_id,
    webhook_delivery,
    webhook_signature,
)

ORDER = {"id": 77, "status": "on-hold", "currency": "eur", "prices_include_tax": False,
         "date_created_gmt": "2026-11-29T10:00:00", "date_modified_gmt": None, "date_paid_gmt": None,
         "total": "26.00", "total_tax": "4.00", "shipping_total": "2.00", "shipping_tax": "0.40",
         "billing": {"first_name": "Ana", "last_name": "Moreau", "email": "", "city": "Lyon", "postcode": "69002",
                     "address_1": "2 Rue", "country": "FR"},
         "shipping": {"first_name": "Léa", "last_name": "Moreau", "address_1": "9 Quai", "city": "Paris",
                      "postcode": "75001", "country": "FR"},
         "line_items": [{"id": 1, "sku": "TEE-S", "name": "T-shirt - S", "product_id": 20, "variation_id": 21,
                         "quantity": 2, "total": "20.00", "total_tax": "4.00"}],
         "shipping_lines": [{"method_title": "Colissimo"}, {"method_title": "Gift wrap"}]}


def test_an_unpaid_order_maps_with_its_shipping_address_lines_and_every_shipping_line():
    order = order_from_woo(ORDER)

    assert (order.channel_status, order.is_paid, order.is_cancelled, order.currency) == ("on-hold", False, False, "EUR")
    assert order.updated_at == order.created_at, "never modified: its order time"
    assert (order.shipping_address.name, order.shipping_address.city) == ("Léa Moreau", "Paris")
    assert order.buyer_email is None, "the channel's default email applies"
    assert order.shipping_tag == "Colissimo + Gift wrap"
    line, = order.items
    assert (line.unit_price, line.tax, line.external_product_id) == (Decimal("10.00"), Decimal("4.00"), "21")
    assert order.shipping_cost == Decimal("2.00") and order.total == Decimal("26.00")


@pytest.mark.parametrize("broken", [{"id": "77/items"}, {"line_items": [{"id": 1, "quantity": 0, "total": "1"}]},
                                    {"billing": "nobody"}])
def test_an_unreadable_order_raises_for_the_page_to_report_it(broken):
    with pytest.raises((ValueError, KeyError, TypeError)):
        order_from_woo({**ORDER, **broken})


def test_a_variation_managed_by_its_parent_is_listed_and_reported():
    parent = {"id": 20, "name": "T-shirt", "status": "publish", "type": "variable"}
    listings, errors = listings_from_variations(parent, [
        {"id": 21, "sku": "TEE-S", "manage_stock": "parent", "stock_quantity": None, "status": "publish"},
        {"id": 22, "sku": "", "manage_stock": True, "stock_quantity": 3, "status": "publish"}])

    assert [(listing.channel_sku, listing.external_id, listing.title) for listing in listings] == [
        ("TEE-S", "20/21", "T-shirt")]
    assert [(error.record_id, error.reason) for error in errors] == [
        ("TEE-S", MANAGED_BY_PARENT), ("variation 20/22", "it has no SKU, so it cannot be linked")]


def test_grouped_and_external_products_hold_no_stock_and_a_draft_is_inactive():
    listings, errors, variable = listings_from_products([
        {"id": 1, "type": "grouped", "sku": "SET"}, {"id": 2, "type": "external", "sku": "EXT"},
        {"id": 3, "type": "simple", "sku": "MUG", "status": "draft", "manage_stock": True, "stock_quantity": 2},
        {"id": 4, "type": "variable", "sku": "TEE"}, {"type": "simple", "sku": "NOID"}])

    assert [(listing.channel_sku, listing.is_active) for listing in listings] == [("MUG", False)]
    assert [product["id"] for product in variable] == [4]
    assert errors[0].record_id == "(no product id)"


def test_an_external_id_is_a_product_or_a_parent_and_variation():
    assert parse_external_id("55") == ("", "55") and parse_external_id("55/70") == ("55", "70")
    with pytest.raises(ValueError):
        parse_external_id("55/../orders")


SIGNED = b'{"id": 501, "status": "processing"}'


@pytest.mark.parametrize(("headers", "secret", "refused"), [
    ({"X-WC-Webhook-Topic": "order.created"}, "s", "carries no X-WC-Webhook-Signature"),
    ({"X-WC-Webhook-Topic": "order.created", "X-WC-Webhook-Signature": webhook_signature("s", SIGNED)}, "",
     "holds no webhook secret"),
    ({"X-WC-Webhook-Topic": "customer.created", "X-WC-Webhook-Signature": webhook_signature("s", SIGNED)}, "s",
     "not one the hub subscribes to"),
])
def test_a_delivery_is_refused_unless_signed_with_the_hubs_secret_for_an_order_topic(headers, secret, refused):
    with pytest.raises(ValueError, match=refused):
        webhook_delivery(headers, SIGNED, secret)


def test_the_shops_ping_names_no_order_and_a_signed_delivery_its_order():
    assert webhook_delivery({}, b"webhook_id=12", "s").is_ping
    signed = {"x-wc-webhook-topic": "order.updated", "x-wc-webhook-signature": webhook_signature("s", SIGNED)}
    assert webhook_delivery(signed, SIGNED, "s").order_id == "501"


def test_the_oauth_signature_covers_the_method_url_and_every_parameter():
    params = {"per_page": "100", "modified_after": "2026-11-29T10:15:00", "oauth_nonce": "n"}
    signed = oauth_signature("GET", "http://127.0.0.1/wp-json/wc/v3/orders", params, "cs", algorithm="HMAC-SHA256")

    assert signed != oauth_signature("GET", "http://127.0.0.1/wp-json/wc/v3/orders", {**params, "page": "2"}, "cs",
                                     algorithm="HMAC-SHA256")
    assert signed != oauth_signature("POST", "http://127.0.0.1/wp-json/wc/v3/orders", params, "cs",
                                     algorithm="HMAC-SHA256")
    assert signed == oauth_signature("GET", "http://127.0.0.1/wp-json/wc/v3/orders", dict(reversed(params.items())),
                                     "cs", algorithm="HMAC-SHA256"), "the parameters are sorted"


def test_a_page_is_named_by_its_title_or_first_heading():
    assert page_title(b"<html><head><title>Briefly unavailable &amp; back soon</title>") == \
        "Briefly unavailable & back soon"
    assert page_title(b"<body><h1>Error establishing a <b>database</b> connection</h1>") == \
        "Error establishing a database connection"
