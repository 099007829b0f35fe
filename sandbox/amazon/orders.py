"""searchOrders (Orders v2026-01-01) and confirmShipment (Orders v0): contract/orders.json."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal
from typing import Any

from sandbox.amazon.common import (
    AmazonBase,
    amount,
    decode_token,
    encode_token,
    item_pk_from,
    marketplace,
    order_item_id,
)
from sandbox.api import Call, render_rows
from sandbox.state.common import included_tax
from sandbox.state.listings import asin_for
from sandbox.state.orders import order_get, order_items, order_status_set, order_totals
from sandbox.state.received import event_record
from sandbox.store import iso, parse_time, utc_now
from sandbox.web import Response

# A ...Before must be at least this long before the request.
LATEST_BEFORE = timedelta(minutes=2)


def breakdown(kind: str, value: Decimal, currency: str, details: list[tuple[str, Decimal]] = ()) -> dict[str, Any]:
    entry: dict[str, Any] = {"type": kind, "subtotal": amount(value, currency)}
    if details:
        entry["detailedBreakdowns"] = [{"subtype": subtype, "value": amount(part, currency)}
                                       for subtype, part in details]
    return entry


class OrdersApi(AmazonBase):
    def search_orders(self, call: Call) -> Response:
        request = call.request
        if request.arg("marketplaceIds"):
            self.require_marketplace(call, request.arg("marketplaceIds"))
        token = request.arg("paginationToken")
        if token:
            query = decode_token(token)
            if query is None:
                raise self.fail(400, "InvalidInput", "Invalid paginationToken.")
        else:
            query = self.order_query(call)
        size = int(request.arg("maxResultsPerPage") or query.get("size", 100))
        # A token carries the query it continues, includedData too.
        query["included"] = request.arg("includedData") or query.get("included", "")
        included = set(query["included"].split(","))
        field = query["field"]
        where = [f"account_id = ? AND {field} >= ?"]
        params: list[Any] = [call.account.id, query["after"]]
        if query.get("before"):
            where.append(f"{field} <= ?")
            params.append(query["before"])
        if query.get("statuses"):
            where.append(f"status IN ({','.join('?' * len(query['statuses']))})")
            params.extend(query["statuses"])
        if query.get("fulfilled_by"):
            where.append(f"fulfilled_by_channel IN ({','.join('?' * len(query['fulfilled_by']))})")
            params.extend(int(party == "AMAZON") for party in query["fulfilled_by"])
        if query.get("cursor"):
            where.append(f"({field}, id) > (?, ?)")
            params.extend(query["cursor"])
        with call.read() as db:
            rows = db.execute(f"SELECT * FROM channel_order WHERE {' AND '.join(where)} ORDER BY {field}, id "
                              f"LIMIT ?", (*params, size + 1)).fetchall()
            page = rows[:size]
            orders = render_rows(call, page, ",".join(sorted(included)), lambda pks: order_items(db, pks),
                                 lambda row, items: json.dumps(self.render_order(call, row, items, included)))
        self.spoil(call, orders)
        pagination: dict[str, str] = {}
        if len(rows) > size:
            last = page[-1]
            pagination["nextToken"] = encode_token({**query, "size": size, "cursor": [last[field], last["id"]]})
        body = '{"orders":[' + ",".join(orders) + '],"pagination":' + json.dumps(pagination) + "}"
        return Response.raw(body.encode(), "application/json")

    def order_query(self, call: Call) -> dict[str, Any]:
        """The filter of a first page; the contract has already checked which parameters go together."""
        request = call.request
        created_after = request.arg("createdAfter")
        before = request.arg("createdBefore") if created_after else request.arg("lastUpdatedBefore")
        query: dict[str, Any] = {
            "field": "created_at" if created_after else "updated_at",
            "after": parse_time(created_after or request.arg("lastUpdatedAfter")),
            "before": parse_time(before) if before else None,
        }
        if query["before"] and query["before"] > iso(utc_now() - LATEST_BEFORE):
            raise self.fail(400, "InvalidInput", "createdBefore and lastUpdatedBefore must be at least two minutes "
                                                 "before the time of the request.")
        if request.arg("fulfillmentStatuses"):
            query["statuses"] = request.arg("fulfillmentStatuses").split(",")
        if request.arg("fulfilledBy"):
            query["fulfilled_by"] = request.arg("fulfilledBy").split(",")
        return query

    def render_order(self, call: Call, order, items, included: set[str]) -> dict[str, Any]:
        address = json.loads(order["address"])
        name = f"{address['first_name']} {address['last_name']}"
        currency = order["currency"] or "GBP"
        rendered: dict[str, Any] = {
            "orderId": order["order_id"],
            "createdTime": order["created_at"],
            "lastUpdatedTime": order["updated_at"],
            "salesChannel": {"channelName": "AMAZON", "marketplaceId": call.account.marketplace_id,
                             "marketplaceName": marketplace(call.account.marketplace_id)[0]},
        }
        if "BUYER" in included:
            buyer = {"buyerName": name}
            if order["buyer_email"]:
                buyer["buyerEmail"] = order["buyer_email"]
            rendered["buyer"] = buyer
        if "RECIPIENT" in included:
            rendered["recipient"] = {"deliveryAddress": {
                "name": name, "addressLine1": address["line1"], "addressLine2": address["line2"],
                "city": address["city"], "stateOrRegion": address["region"], "postalCode": address["postcode"],
                "countryCode": address["country"], "phone": address["phone"]}}
        if "FULFILLMENT" in included:
            rendered["fulfillment"] = {
                "fulfillmentStatus": order["status"],
                "fulfilledBy": "AMAZON" if order["fulfilled_by_channel"] else "MERCHANT",
                "fulfillmentServiceLevel": order["shipping_tag"]}
        lines = []
        # The order's delivery charge is carried by its first item, as Amazon attributes shipping to items.
        shipping_left = Decimal(order["shipping_cost"])
        for item in items:
            line: dict[str, Any] = {
                "orderItemId": order_item_id(item["id"]), "quantityOrdered": item["quantity"],
                "product": {"sellerSku": item["sku"], "asin": asin_for(item["variant_id"] or item["listing_id"]
                                                                             or 0),
                            "title": item["title"], "price": {"unitPrice": amount(Decimal(item["price"]), currency)}}}
            if "PROCEEDS" in included:
                line["proceeds"] = self.item_proceeds(Decimal(item["price"]) * item["quantity"], shipping_left,
                                                      currency)
                shipping_left = Decimal("0")
            lines.append(line)
        rendered["orderItems"] = lines
        if "PROCEEDS" in included:
            rendered["proceeds"] = self.order_proceeds(order, items, [line["proceeds"] for line in lines], currency)
        return rendered

    def item_proceeds(self, goods: Decimal, shipping: Decimal, currency: str) -> dict[str, Any]:
        """Prices are VAT-inclusive, as on Amazon's European marketplaces: TAX is the VAT within ITEM and SHIPPING."""
        breakdowns = [breakdown("ITEM", goods, currency)]
        if shipping:
            breakdowns.append(breakdown("SHIPPING", shipping, currency))
        goods_tax, shipping_tax = included_tax(goods), included_tax(shipping)
        details = [("ITEM", goods_tax)] + ([("SHIPPING", shipping_tax)] if shipping else [])
        breakdowns.append(breakdown("TAX", goods_tax + shipping_tax, currency, details))
        return {"proceedsTotal": amount(goods + shipping, currency), "breakdowns": breakdowns}

    def order_proceeds(self, order, items, line_proceeds: list[dict[str, Any]], currency: str) -> dict[str, Any]:
        """The items' breakdowns summed by type, and the grand total."""
        totals: dict[str, Decimal] = {}
        for proceeds in line_proceeds:
            for entry in proceeds["breakdowns"]:
                totals[entry["type"]] = totals.get(entry["type"], Decimal("0")) + Decimal(entry["subtotal"]["amount"])
        return {"grandTotal": amount(order_totals(order, items)["total"], currency),
                "breakdowns": [breakdown(kind, value, currency) for kind, value in totals.items()]}

    def spoil(self, call: Call, orders: list[str]) -> None:
        spoiled = call.take_malformed(orders)
        if spoiled is None:
            return
        order = json.loads(orders[spoiled["index"]])
        if spoiled["corrupt"] == "id" or not order["orderItems"]:
            del order["orderId"]
        else:
            order["orderItems"][0]["quantityOrdered"] = "one"
        orders[spoiled["index"]] = json.dumps(order)

    def confirm_shipment(self, call: Call, order_id: str) -> Response:
        body = call.request.json()
        self.require_marketplace(call, [body["marketplaceId"]])
        package = body["packageDetail"]
        with call.write() as db:
            order = order_get(db, call.account, order_id)
            if order is None:
                raise self.fail(404, "NotFound", f"Order {order_id} was not found.")
            if order["status"] != "UNSHIPPED":
                raise self.fail(400, "InvalidInput", f"Order {order_id} is {order['status']}, not UNSHIPPED.")
            shipped = []
            for line in package["orderItems"]:
                item = db.execute("SELECT * FROM order_item WHERE id = ? AND order_pk = ?",
                                  (item_pk_from(line["orderItemId"]), order["id"])).fetchone()
                if item is None:
                    raise self.fail(400, "InvalidInput", f"orderItemId {line['orderItemId']} is not on the order.")
                shipped.append({"line_id": order_item_id(item["id"]), "sku": item["sku"], "quantity": line["quantity"]})
            order_status_set(db, order, "SHIPPED")
            carrier = package["carrierName"] if package["carrierCode"] == "Other" else package["carrierCode"]
            event_record(db, call.account, "shipment", {
                "order_id": order_id, "tracking_number": package["trackingNumber"], "carrier": carrier,
                "shipping_method": package.get("shippingMethod", ""), "items": shipped,
                "ship_date": package["shipDate"]})
        return Response.empty(204)
