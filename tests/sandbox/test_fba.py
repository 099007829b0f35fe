"""The sandbox's FBA inventory summaries and multi-channel fulfilment orders (sandbox/README.md)."""

from tests.sandbox.conftest import amazon_login, make_account

UK = "A1F83G8C2ARO7P"
SUMMARIES = "/fba/inventory/v1/summaries"
FULFILMENT_ORDERS = "/fba/outbound/2020-07-01/fulfillmentOrders"


def summaries(amazon, **params):
    query = {"granularityType": "Marketplace", "granularityId": UK, "marketplaceIds": UK, "details": "true", **params}
    return amazon.session.get(amazon.url + SUMMARIES, params=query, timeout=5)


def fulfilment_order(order_id="SL-1", sku="MUG", quantity=2, currency="GBP", **overrides):
    return {
        "marketplaceId": UK, "sellerFulfillmentOrderId": order_id, "displayableOrderId": "10042",
        "displayableOrderDate": "2026-11-29T10:00:00Z", "displayableOrderComment": "Thank you for your order.",
        "shippingSpeedCategory": "Standard",
        "destinationAddress": {"name": "Jo Bloggs", "addressLine1": "1 High Street", "city": "York",
                               "postalCode": "YO1 7HH", "countryCode": "GB"},
        "items": [{"sellerSku": sku, "sellerFulfillmentOrderItemId": "1", "quantity": quantity,
                   "perUnitDeclaredValue": {"currencyCode": currency, "value": "9.99"}}],
        **overrides,
    }


def test_summaries_page_through_the_fba_stock_with_fulfillable_quantities(sandbox, amazon):
    sandbox.fba_inventory("uk", [{"sku": f"SKU-{n:03d}", "fulfillable": n} for n in range(60)])

    first = summaries(amazon).json()
    second = summaries(amazon, nextToken=first["pagination"]["nextToken"]).json()

    rows = first["payload"]["inventorySummaries"] + second["payload"]["inventorySummaries"]
    assert len(first["payload"]["inventorySummaries"]) == 50 and "pagination" not in second
    assert {row["sellerSku"]: row["inventoryDetails"]["fulfillableQuantity"] for row in rows} == {
        f"SKU-{n:03d}": n for n in range(60)
    }


def test_summaries_without_details_leave_the_breakdown_out_and_refuse_a_bad_granularity(sandbox, amazon):
    sandbox.fba_inventory("uk", [{"sku": "MUG", "fulfillable": 4}])

    row = summaries(amazon, details="false").json()["payload"]["inventorySummaries"][0]

    assert row["totalQuantity"] == 4 and "inventoryDetails" not in row
    assert summaries(amazon, granularityId="A13V1IB3VIYZZH").status_code == 400


def test_a_fulfilment_order_holds_its_stock_and_ships_after_a_few_polls(sandbox, amazon):
    sandbox.fba_inventory("uk", [{"sku": "MUG", "fulfillable": 5}])

    created = amazon.session.post(amazon.url + FULFILMENT_ORDERS, json=fulfilment_order(), timeout=5)
    row = summaries(amazon).json()["payload"]["inventorySummaries"][0]
    statuses = []
    for _ in range(3):
        body = amazon.session.get(f"{amazon.url}{FULFILMENT_ORDERS}/SL-1", timeout=5).json()["payload"]
        statuses.append(body["fulfillmentOrder"]["fulfillmentOrderStatus"])

    assert created.status_code == 200
    assert row["inventoryDetails"]["fulfillableQuantity"] == 3
    assert row["inventoryDetails"]["reservedQuantity"]["pendingCustomerOrderQuantity"] == 2
    assert statuses == ["Planning", "Processing", "Complete"]
    package = body["fulfillmentShipments"][0]["fulfillmentShipmentPackage"][0]
    recorded = sandbox.received("amazon", "uk")["fulfillment_orders"]
    assert recorded[0]["tracking_number"] == package["trackingNumber"] and recorded[0]["status"] == "COMPLETE"
    assert recorded[0]["displayable_order_id"] == "10042"


def test_the_control_api_ships_a_fulfilment_order_with_a_chosen_tracking_number(sandbox, amazon):
    sandbox.fba_inventory("uk", [{"sku": "MUG", "fulfillable": 5}])
    amazon.session.post(amazon.url + FULFILMENT_ORDERS, json=fulfilment_order(), timeout=5)

    sandbox.fulfillment_order_ship("uk", "SL-1", tracking_number="QA0000000042", carrier="Royal Mail")

    body = amazon.session.get(f"{amazon.url}{FULFILMENT_ORDERS}/SL-1", timeout=5).json()["payload"]
    assert body["fulfillmentOrder"]["fulfillmentOrderStatus"] == "Complete"
    assert body["fulfillmentShipments"][0]["fulfillmentShipmentPackage"] == [
        {"packageNumber": 1, "carrierCode": "Royal Mail", "trackingNumber": "QA0000000042"}
    ]


def test_fulfilment_orders_amazon_cannot_accept_are_refused(sandbox, amazon):
    sandbox.fba_inventory("uk", [{"sku": "MUG", "fulfillable": 1}])
    post = lambda body: amazon.session.post(amazon.url + FULFILMENT_ORDERS, json=body, timeout=5)  # noqa: E731

    wrong_currency = post(fulfilment_order(quantity=1, currency="EUR"))
    too_many = post(fulfilment_order(quantity=2))
    unknown = post(fulfilment_order(sku="LAMP", quantity=1))
    no_address = post(fulfilment_order(quantity=1, destinationAddress={"name": "Jo"}))
    # Fulfillment Outbound's Address requires a postal code, not a city.
    no_postcode = post(fulfilment_order(quantity=1, destinationAddress={"name": "Jo", "addressLine1": "1 High St",
                                                                        "countryCode": "GB"}))
    accepted = post(fulfilment_order(quantity=1))
    duplicate = post(fulfilment_order(quantity=1))

    for refused, words in ((wrong_currency, "GBP"), (too_many, "1 fulfillable"), (unknown, "LAMP"),
                           (no_address, "addressLine1"), (no_postcode, "postalCode"), (duplicate, "already exists")):
        assert refused.status_code == 400 and words in refused.json()["errors"][0]["message"]
    assert accepted.status_code == 200
    assert amazon.session.get(f"{amazon.url}{FULFILMENT_ORDERS}/NOPE", timeout=5).status_code == 404


def test_fba_endpoints_need_a_token_and_count_their_calls(sandbox):
    account = make_account(sandbox, "amazon", "uk")
    assert summaries(account).status_code == 403
    amazon_login(account)
    assert summaries(account).status_code == 200
    assert sandbox.received("amazon", "uk")["calls"]["getInventorySummaries"] == 2
