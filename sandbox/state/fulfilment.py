"""Amazon FBA: stock in Amazon's fulfilment network and multi-channel fulfilment orders."""

from __future__ import annotations

import json
import secrets
import sqlite3
from typing import Any

from sandbox.state.common import Account, ControlError, money
from sandbox.state.listings import listing_by_sku
from sandbox.store import now_iso

# An FBA SKU is an Amazon-fulfilled listing: its quantity is what Amazon can fulfil now. A fulfilment
# order is a `job` of kind 'fulfillment' (id `{account id}:{sellerFulfillmentOrderId}`, `type` its
# sellerFulfillmentOrderId, `input_document` the request as JSON, `result_document` the shipment as JSON).
FULFILLMENT_STEPS = ("RECEIVED", "PLANNING", "PROCESSING", "COMPLETE")


def fba_inventory_set(db: sqlite3.Connection, account: Account, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Set the fulfillable quantity of FBA SKUs; a SKU not listed yet becomes an Amazon-fulfilled listing."""
    if not isinstance(items, list) or not all(isinstance(item, dict) and item.get("sku") for item in items):
        raise ControlError('fba_inventory: a list of objects, each with a sku and "fulfillable"')
    for item in items:
        fulfillable = int(item.get("fulfillable", 0))
        if fulfillable < 0:
            raise ControlError(f"{item['sku']}: fulfillable cannot be negative")
        existing = listing_by_sku(db, account, item["sku"])
        if existing:
            db.execute("UPDATE listing SET quantity = ?, fulfilled_by_channel = 1 WHERE id = ?",
                       (fulfillable, existing["id"]))
        else:
            db.execute("INSERT INTO listing (title, quantity, price, account_id, sku, fulfilled_by_channel, "
                       "created_at) VALUES (?, ?, ?, ?, ?, 1, ?)",
                       (item.get("title") or item["sku"], fulfillable, str(money(item.get("price", "9.99"))),
                        account.id, item["sku"], now_iso()))
    return fba_inventory(db, account)


def fba_inventory(db: sqlite3.Connection, account: Account) -> list[dict[str, Any]]:
    """Every FBA SKU with its fulfillable quantity and what open fulfilment orders hold of it."""
    reserved: dict[str, int] = {}
    for order in _fulfillment_rows(db, account):
        if order["status"] != "COMPLETE":
            for item in json.loads(order["input_document"])["items"]:
                reserved[item["sellerSku"]] = reserved.get(item["sellerSku"], 0) + int(item["quantity"])
    rows = db.execute("SELECT * FROM listing WHERE account_id = ? AND fulfilled_by_channel = 1 ORDER BY id",
                      (account.id,)).fetchall()
    return [{"id": row["id"], "sku": row["sku"], "title": row["title"], "fulfillable": row["quantity"],
             "reserved": reserved.get(row["sku"], 0)} for row in rows]


def _fulfillment_rows(db: sqlite3.Connection, account: Account) -> list[sqlite3.Row]:
    return db.execute("SELECT * FROM job WHERE account_id = ? AND kind = 'fulfillment' ORDER BY rowid",
                      (account.id,)).fetchall()


def fulfillment_order_get(db: sqlite3.Connection, account: Account, order_id: str) -> sqlite3.Row | None:
    return db.execute("SELECT * FROM job WHERE id = ? AND account_id = ? AND kind = 'fulfillment'",
                      (f"{account.id}:{order_id}", account.id)).fetchone()


def fulfillment_order_create(db: sqlite3.Connection, account: Account, request: dict[str, Any]) -> None:
    """Keep a validated createFulfillmentOrder request; its units leave the fulfillable quantity at once."""
    for item in request["items"]:
        db.execute("UPDATE listing SET quantity = quantity - ? WHERE account_id = ? AND sku = ? "
                   "AND fulfilled_by_channel = 1", (int(item["quantity"]), account.id, item["sellerSku"]))
    db.execute("INSERT INTO job (id, account_id, kind, type, input_document, status) "
               "VALUES (?, ?, 'fulfillment', ?, ?, 'RECEIVED')",
               (f"{account.id}:{request['sellerFulfillmentOrderId']}", account.id,
                request["sellerFulfillmentOrderId"], json.dumps({**request, "receivedDate": now_iso()})))


def fulfillment_order_advance(db: sqlite3.Connection, order: sqlite3.Row, *, tracking_number: str = "",
                              carrier: str = "", to_the_end: bool = False) -> sqlite3.Row:
    """One step on (RECEIVED, PLANNING, PROCESSING, COMPLETE), or straight to COMPLETE; shipped with a package."""
    if order["status"] == "COMPLETE":
        return order
    step = FULFILLMENT_STEPS.index(order["status"]) + 1
    status = "COMPLETE" if to_the_end else FULFILLMENT_STEPS[step]
    shipment = order["result_document"]
    if status == "COMPLETE":
        shipment = json.dumps({"tracking_number": tracking_number or f"QA{secrets.randbelow(10**10):010d}",
                               "carrier": carrier or "AMZN_UK", "shipped_at": now_iso(),
                               "shipment_id": f"D{secrets.randbelow(10**8):08d}"})
    db.execute("UPDATE job SET status = ?, polls = polls + 1, result_document = ? WHERE id = ?",
               (status, shipment, order["id"]))
    return db.execute("SELECT * FROM job WHERE id = ?", (order["id"],)).fetchone()


def fulfillment_orders_all(db: sqlite3.Connection, account: Account) -> list[dict[str, Any]]:
    orders = []
    for row in _fulfillment_rows(db, account):
        request = json.loads(row["input_document"])
        shipment = json.loads(row["result_document"]) if row["result_document"] else {}
        orders.append({
            "fulfillment_order_id": row["type"], "displayable_order_id": request["displayableOrderId"],
            "status": row["status"], "shipping_speed": request["shippingSpeedCategory"],
            "address": request["destinationAddress"], "comment": request.get("displayableOrderComment", ""),
            "items": [{"sku": item["sellerSku"], "item_id": item["sellerFulfillmentOrderItemId"],
                       "quantity": int(item["quantity"]),
                       "declared_value": (item.get("perUnitDeclaredValue") or {}).get("value"),
                       "currency": (item.get("perUnitDeclaredValue") or {}).get("currencyCode")}
                      for item in request["items"]],
            "tracking_number": shipment.get("tracking_number"), "carrier": shipment.get("carrier"),
            "received_at": request["receivedDate"],
        })
    return orders
