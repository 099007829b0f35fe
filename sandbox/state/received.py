"""What a channel received from the hub, as the control API reports it: stock, events, calls, fulfilment orders."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from sandbox.state.common import Account
from sandbox.state.fulfilment import fulfillment_orders_all
from sandbox.store import now_iso


def event_record(db: sqlite3.Connection, account: Account, kind: str, data: dict[str, Any]) -> None:
    db.execute("INSERT INTO event (account_id, type, data) VALUES (?, ?, ?)",
               (account.id, kind, json.dumps({**data, "at": now_iso()})))


def call_count(db: sqlite3.Connection, account: Account, operation: str) -> None:
    db.execute("INSERT INTO call_count (account_id, operation, count) VALUES (?, ?, 1) "
               "ON CONFLICT (account_id, operation) DO UPDATE SET count = count + 1", (account.id, operation))


def received(db: sqlite3.Connection, account: Account) -> dict[str, Any]:
    stock = {
        row["sku"]: {"quantity": row["quantity"], "latency": row["latency"], "price": row["price"],
                     "updated_at": row["updated_at"], "updates": row["updates"]}
        for row in db.execute("SELECT * FROM stock_received WHERE account_id = ? ORDER BY sku", (account.id,))
    }
    events: dict[str, list[dict[str, Any]]] = {"shipment": [], "cancellation": [], "status": []}
    for row in db.execute("SELECT type, data FROM event WHERE account_id = ? ORDER BY id", (account.id,)):
        events[row["type"]].append(json.loads(row["data"]))
    calls = {row["operation"]: row["count"]
             for row in db.execute("SELECT * FROM call_count WHERE account_id = ? ORDER BY operation", (account.id,))}
    used = db.execute("SELECT refresh_tokens_used FROM account WHERE id = ?", (account.id,)).fetchone()[0]
    received = {"stock": stock, "shipments": events["shipment"], "cancellations": events["cancellation"],
                "status_changes": events["status"], "calls": calls, "refresh_tokens_used": used}
    if account.kind == "amazon":
        received["fulfillment_orders"] = fulfillment_orders_all(db, account)
    return received
