"""FBA Inventory v1 summaries and Fulfillment Outbound 2020-07-01 (multi-channel fulfilment):
contract/fba_inventory.json and contract/fulfillment_outbound.json."""

from __future__ import annotations

import json
import time
from typing import Any

from sandbox.amazon.common import AmazonBase, decode_token, encode_token, marketplace
from sandbox.api import Call
from sandbox.state.fulfilment import (
    fba_inventory,
    fulfillment_order_advance,
    fulfillment_order_create,
    fulfillment_order_get,
)
from sandbox.state.listings import asin_for
from sandbox.store import now_iso
from sandbox.web import Response

FULFILLMENT_STATUS_NAMES = {"RECEIVED": "Received", "PLANNING": "Planning", "PROCESSING": "Processing",
                            "COMPLETE": "Complete"}
# Amazon answers at most this many inventory summaries a page; a nextToken lives this many seconds.
SUMMARIES_PAGE = 50
SUMMARIES_TOKEN_LIFETIME = 30


class FbaApi(AmazonBase):
    def inventory_summaries(self, call: Call) -> Response:
        request = call.request
        account_marketplace = call.account.marketplace_id
        self.require_marketplace(call, request.arg("marketplaceIds"))
        if request.arg("granularityId") != account_marketplace:
            raise self.fail(400, "InvalidInput", f"granularityId must be {account_marketplace}.")
        token = request.arg("nextToken")
        start = 0
        if token:
            data = decode_token(token)
            if data is None or not isinstance(data.get("start"), int):
                raise self.fail(400, "InvalidInput", "Invalid nextToken.")
            if time.time() - float(data.get("issued", 0)) > SUMMARIES_TOKEN_LIFETIME:
                raise self.fail(400, "InvalidInput", "The nextToken has expired: tokens live 30 seconds.")
            start = data["start"]
        skus = set(filter(None, (request.arg("sellerSkus") or "").split(",")))
        with call.read() as db:
            stock = [row for row in fba_inventory(db, call.account) if not skus or row["sku"] in skus]
        page = stock[start:start + SUMMARIES_PAGE]
        details = request.arg("details") == "true"
        summaries = [self.render_summary(row, details) for row in page]
        self.spoil_summaries(call, summaries)
        body: dict[str, Any] = {"payload": {"granularity": {"granularityType": "Marketplace",
                                                            "granularityId": account_marketplace},
                                            "inventorySummaries": summaries}}
        if start + SUMMARIES_PAGE < len(stock):
            body["pagination"] = {"nextToken": encode_token({"start": start + SUMMARIES_PAGE, "issued": time.time()})}
        return Response.json(body)

    def render_summary(self, row: dict[str, Any], details: bool) -> dict[str, Any]:
        summary: dict[str, Any] = {
            "asin": asin_for(row["id"]), "fnSku": f"X00{row['id']:07d}", "sellerSku": row["sku"],
            "condition": "NewItem", "lastUpdatedTime": now_iso(), "productName": row["title"],
            "totalQuantity": row["fulfillable"] + row["reserved"],
        }
        if details:
            summary["inventoryDetails"] = {
                "fulfillableQuantity": row["fulfillable"], "inboundWorkingQuantity": 0, "inboundShippedQuantity": 0,
                "inboundReceivingQuantity": 0,
                "reservedQuantity": {"totalReservedQuantity": row["reserved"],
                                     "pendingCustomerOrderQuantity": row["reserved"],
                                     "pendingTransshipmentQuantity": 0, "fcProcessingQuantity": 0},
                "researchingQuantity": {"totalResearchingQuantity": 0, "researchingQuantityBreakdown": []},
                "unfulfillableQuantity": {"totalUnfulfillableQuantity": 0},
            }
        return summary

    def spoil_summaries(self, call: Call, summaries: list[dict[str, Any]]) -> None:
        spoiled = call.take_malformed(summaries)
        if spoiled is None:
            return
        summary = summaries[spoiled["index"]]
        if spoiled["corrupt"] == "id" or "inventoryDetails" not in summary:
            summary["sellerSku"] = ""
        else:
            summary["inventoryDetails"]["fulfillableQuantity"] = "lots"

    def create_fulfillment_order(self, call: Call) -> Response:
        """What Amazon refuses beyond the contract: another marketplace or currency, unknown or short stock, an id
        used before."""
        body = call.request.json()
        account = call.account
        if body.get("marketplaceId") not in (None, account.marketplace_id):
            raise self.fail(400, "InvalidInput", f"marketplaceId must be {account.marketplace_id}.")
        currency = marketplace(account.marketplace_id)[2]
        for item in body["items"]:
            declared = item.get("perUnitDeclaredValue")
            if declared is not None and declared["currencyCode"] != currency:
                raise self.fail(400, "InvalidInput",
                                f"perUnitDeclaredValue for {item['sellerSku']} must be in {currency}, the currency "
                                f"of marketplace {account.marketplace_id}.")
        with call.write() as db:
            if fulfillment_order_get(db, account, body["sellerFulfillmentOrderId"]) is not None:
                raise self.fail(400, "InvalidInput", f"A fulfillment order with sellerFulfillmentOrderId "
                                                     f"{body['sellerFulfillmentOrderId']} already exists.")
            fulfillable = {row["sku"]: row["fulfillable"] for row in fba_inventory(db, account)}
            wanted: dict[str, int] = {}
            for item in body["items"]:
                wanted[item["sellerSku"]] = wanted.get(item["sellerSku"], 0) + item["quantity"]
            for sku, quantity in wanted.items():
                if sku not in fulfillable:
                    raise self.fail(400, "InvalidInput", f"sellerSku {sku} is not in your FBA inventory.")
                if fulfillable[sku] < quantity:
                    raise self.fail(400, "InvalidInput", f"sellerSku {sku}: {fulfillable[sku]} fulfillable, "
                                                         f"{quantity} requested.")
            fulfillment_order_create(db, account, body)
        return Response.json({})

    def get_fulfillment_order(self, call: Call, order_id: str) -> Response:
        with call.write() as db:
            order = fulfillment_order_get(db, call.account, order_id)
            if order is None:
                raise self.fail(404, "NotFound", f"Fulfillment order {order_id} was not found.")
            # Amazon works on the order between polls: each poll finds it one step further on.
            order = fulfillment_order_advance(db, order)
        return Response.json({"payload": self.render_fulfillment_order(call, order)})

    def render_fulfillment_order(self, call: Call, order) -> dict[str, Any]:
        request = json.loads(order["input_document"])
        items = [{"sellerSku": item["sellerSku"], "sellerFulfillmentOrderItemId": item["sellerFulfillmentOrderItemId"],
                  "quantity": item["quantity"], "cancelledQuantity": 0, "unfulfillableQuantity": 0,
                  **({"perUnitDeclaredValue": item["perUnitDeclaredValue"]} if item.get("perUnitDeclaredValue")
                     else {})}
                 for item in request["items"]]
        shipments = []
        if order["status"] == "COMPLETE":
            shipment = json.loads(order["result_document"])
            shipments.append({
                "amazonShipmentId": shipment["shipment_id"], "fulfillmentCenterId": "LTN1",
                "fulfillmentShipmentStatus": "SHIPPED", "shippingDate": shipment["shipped_at"],
                "fulfillmentShipmentItem": [{"sellerSku": item["sellerSku"], "quantity": item["quantity"],
                                             "sellerFulfillmentOrderItemId": item["sellerFulfillmentOrderItemId"],
                                             "packageNumber": 1} for item in request["items"]],
                "fulfillmentShipmentPackage": [{"packageNumber": 1, "carrierCode": shipment["carrier"],
                                                "trackingNumber": shipment["tracking_number"]}],
            })
        return {
            "fulfillmentOrder": {
                "sellerFulfillmentOrderId": request["sellerFulfillmentOrderId"],
                "marketplaceId": call.account.marketplace_id,
                "displayableOrderId": request["displayableOrderId"],
                "displayableOrderDate": request["displayableOrderDate"],
                "displayableOrderComment": request["displayableOrderComment"],
                "shippingSpeedCategory": request["shippingSpeedCategory"],
                "destinationAddress": request["destinationAddress"],
                "fulfillmentAction": request.get("fulfillmentAction", "Ship"),
                "receivedDate": request["receivedDate"],
                "fulfillmentOrderStatus": FULFILLMENT_STATUS_NAMES[order["status"]],
                "statusUpdatedDate": now_iso(),
            },
            "fulfillmentOrderItems": items,
            "fulfillmentShipments": shipments,
            "returnItems": [],
            "returnAuthorizations": [],
        }
