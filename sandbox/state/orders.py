"""Channel orders and their items, in one channel-neutral form."""

from __future__ import annotations

import json
import random
import sqlite3
import time
from decimal import Decimal
from typing import Any

from sandbox.state.common import Account, ControlError, included_tax, money
from sandbox.state.listings import listing_by_sku
from sandbox.store import now_iso, parse_time

ORDER_DEFAULTS = {
    "amazon": {"status": "UNSHIPPED", "currency": "GBP", "shipping_tag": "STANDARD", "country": "GB",
               "shipping_cost": "0.00"},
    "ebay": {"status": "NOT_STARTED", "currency": "GBP", "shipping_tag": "UK_RoyalMailSecondClassStandard",
             "country": "GB", "shipping_cost": "2.85"},
    "ekm": {"status": "PENDING", "currency": None, "shipping_tag": "Royal Mail 1st Class", "country": "GB",
            "shipping_cost": "2.95"},
    "woocommerce": {"status": "processing", "unpaid_status": "pending", "currency": "GBP",
                    "shipping_tag": "Flat rate", "country": "GB", "shipping_cost": "3.50"},
    "rakuten": {"status": "ACCEPTED", "currency": "EUR", "shipping_tag": "Normal", "country": "FR",
                "shipping_cost": "3.90"},
    "shopify": {"status": "UNFULFILLED", "currency": "GBP", "shipping_tag": "Standard Shipping", "country": "GB",
                "shipping_cost": "4.99"},
}
# Shopify order ids are large numbers; the order's name is #1001 onwards.
SHOPIFY_ORDER_BASE = 5_000_000_000
# EKM's default statuses plus the shop-defined CANCELLED the hub's default mapping uses.
EKM_ORDER_STATUSES = ["PENDING", "PROCESSING", "DISPATCHED", "COMPLETE", "FAILED", "DECLINED", "REFUNDED",
                      "CANCELLED"]
FIRST_NAMES = ["Jo", "Sam", "Alex", "Chris", "Pat", "Morgan", "Robin", "Charlie", "Jamie", "Taylor"]
LAST_NAMES = ["Bloggs", "Smith", "Jones", "Martin", "Dubois", "Taylor", "Brown", "Wilson", "Moreau", "Evans"]
TOWNS = {
    "GB": [("London", "Greater London", "SW1A 1AA"), ("Leeds", "West Yorkshire", "LS1 4AP"),
           ("Bristol", "Avon", "BS1 5TR"), ("York", "North Yorkshire", "YO1 7HH")],
    "FR": [("Paris", "Ile-de-France", "75001"), ("Lyon", "Rhone", "69002"), ("Lille", "Nord", "59000")],
}


def _fake_address(rng: random.Random, country: str) -> dict[str, str]:
    town, region, postcode = rng.choice(TOWNS.get(country, TOWNS["GB"]))
    return {"first_name": rng.choice(FIRST_NAMES), "last_name": rng.choice(LAST_NAMES),
            "line1": f"{rng.randint(1, 220)} {rng.choice(['High Street', 'Station Road', 'Rue de la Paix'])}",
            "line2": rng.choice(["", "Flat 2", "Bâtiment B"]), "city": town, "region": region,
            "postcode": postcode, "phone": f"0{rng.randint(1000000000, 1999999999)}"}


def _next_id(db: sqlite3.Connection, table: str) -> int:
    return db.execute(f"SELECT COALESCE(MAX(id), 0) + 1 FROM {table}").fetchone()[0]


def _native_order_id(kind: str, pk: int, rng: random.Random) -> tuple[str, str]:
    """(order_id, order_number) in the channel's own form."""
    if kind == "amazon":
        return f"202-{rng.randint(1000000, 9999999)}-{pk:07d}", ""
    if kind == "ekm":
        return str(pk), str(10000 + pk)
    if kind == "woocommerce":
        # An order is a WordPress post: its id is the post's.
        return str(1000 + pk), ""
    if kind == "ebay":
        return f"{pk % 100:02d}-{rng.randint(10000, 99999)}-{pk:05d}", ""
    if kind == "shopify":
        return str(SHOPIFY_ORDER_BASE + pk), str(1000 + pk)
    return str(300000000 + pk), ""


def orders_insert(db: sqlite3.Connection, account: Account, specs: list[dict[str, Any]]) -> list[str]:
    if not isinstance(specs, list) or not all(isinstance(spec, dict) for spec in specs):
        raise ControlError("orders: a list of objects, or {\"generate\": N, \"skus\": [...]}")
    defaults = ORDER_DEFAULTS[account.kind]
    ids = []
    for spec in specs:
        items = spec.get("items")
        if not isinstance(items, list) or not items or not all(isinstance(item, dict) and item.get("sku")
                                                                 for item in items):
            raise ControlError("an order needs items: [{sku, quantity, price}]")
        pk = _next_id(db, "channel_order")
        rng = random.Random(f"{account.kind}/{account.name}/{pk}")
        order_id, order_number = _native_order_id(account.kind, pk, rng)
        if spec.get("order_id"):
            order_id = str(spec["order_id"])
            if account.kind not in ("amazon", "ebay") and not order_id.isdigit():
                raise ControlError(f"{account.kind} order ids are numeric: {order_id!r}")
            order_number = str(10000 + int(order_id)) if account.kind == "ekm" else ""
        if db.execute("SELECT 1 FROM channel_order WHERE account_id = ? AND order_id = ?",
                      (account.id, order_id)).fetchone():
            raise ControlError(f"order {order_id} already exists", status=409)
        paid = bool(spec.get("paid", True))
        unpaid = "PENDING" if account.kind == "amazon" else defaults.get("unpaid_status")
        status = spec.get("status") or (unpaid if unpaid and not paid else defaults["status"])
        try:
            created_at = parse_time(spec["created_at"]) if spec.get("created_at") else now_iso()
            updated_at = parse_time(spec["updated_at"]) if spec.get("updated_at") else created_at
        except ValueError as error:
            raise ControlError(f"bad time: {error}") from error
        country = spec.get("country") or defaults["country"]
        address = {**_fake_address(rng, country), **(spec.get("address") or {}), "country": country}
        buyer_email = spec["buyer_email"] if "buyer_email" in spec else (
            f"{address['first_name'].lower()}.{pk}@marketplace.amazon.co.uk" if account.kind == "amazon"
            else f"{address['first_name'].lower()}.{pk}@example.com")
        db.execute(
            "INSERT INTO channel_order (id, account_id, order_id, order_number, status, paid, created_at, updated_at, "
            "shipping_tag, buyer_email, address, fulfilled_by_channel, currency, shipping_cost) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (pk, account.id, order_id, order_number, status, int(paid), created_at, updated_at,
             spec.get("shipping_tag") or defaults["shipping_tag"], buyer_email, json.dumps(address),
             int(bool(spec.get("fulfilled_by_channel"))), spec.get("currency", defaults["currency"]),
             str(money(spec.get("shipping_cost", defaults["shipping_cost"])))),
        )
        for item in items:
            listing = listing_by_sku(db, account, item["sku"])
            product_id, variant_id = None, None
            if listing is not None:
                product_id, variant_id = ((listing["parent_id"], listing["id"]) if listing["parent_id"]
                                          else (listing["id"], None))
            price = item.get("price", listing["price"] if listing else "9.99")
            quantity = int(item.get("quantity", 1))
            # A Rakuten item is one unit with its own itemid: a line of n units is n items.
            for units in [1] * quantity if account.kind == "rakuten" else [quantity]:
                db.execute(
                    "INSERT INTO order_item (order_pk, sku, title, quantity, price, listing_id, variant_id, status) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (pk, item["sku"], item.get("title") or (listing["title"] if listing else item["sku"]),
                     units, str(money(price)), product_id, variant_id, status),
                )
        ids.append(order_id)
    return ids


def orders_generate(db: sqlite3.Connection, account: Account, count: int, skus: list[str],
                    status: str | None = None) -> list[str]:
    """`count` plausible orders over `skus`, created a second apart ending now."""
    if not skus or count < 0:
        raise ControlError("generate needs N >= 0 and a non-empty skus list")
    rng = random.Random(f"{account.kind}/{account.name}/generate/{_next_id(db, 'channel_order')}")
    end = time.time()
    specs = []
    for index in range(count):
        chosen = rng.sample(skus, k=min(len(skus), rng.choice([1, 1, 1, 2])))
        created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(end - (count - index)))
        spec: dict[str, Any] = {"created_at": created, "items": [{"sku": sku, "quantity": rng.choice([1, 1, 2])}
                                                                 for sku in chosen]}
        if status:
            spec["status"] = status
        specs.append(spec)
    return orders_insert(db, account, specs)


def order_get(db: sqlite3.Connection, account: Account, order_id: str) -> sqlite3.Row | None:
    return db.execute("SELECT * FROM channel_order WHERE account_id = ? AND order_id = ?",
                      (account.id, order_id)).fetchone()


def order_of_item(db: sqlite3.Connection, account: Account, item_id: int) -> tuple[sqlite3.Row, sqlite3.Row] | None:
    item = db.execute("SELECT i.* FROM order_item i JOIN channel_order o ON o.id = i.order_pk "
                      "WHERE i.id = ? AND o.account_id = ?", (item_id, account.id)).fetchone()
    if item is None:
        return None
    return db.execute("SELECT * FROM channel_order WHERE id = ?", (item["order_pk"],)).fetchone(), item


def order_items(db: sqlite3.Connection, order_pks: list[int]) -> dict[int, list[sqlite3.Row]]:
    grouped: dict[int, list[sqlite3.Row]] = {pk: [] for pk in order_pks}
    if order_pks:
        marks = ",".join("?" * len(order_pks))
        for row in db.execute(f"SELECT * FROM order_item WHERE order_pk IN ({marks}) ORDER BY id", order_pks):
            grouped[row["order_pk"]].append(row)
    return grouped


def order_status_set(db: sqlite3.Connection, order: sqlite3.Row, status: str, *, items_too: bool = True) -> None:
    """The channel changes an order: its last-updated time moves to now."""
    db.execute("UPDATE channel_order SET status = ?, updated_at = ?, revision = revision + 1 WHERE id = ?",
               (status, now_iso(), order["id"]))
    if items_too:
        db.execute("UPDATE order_item SET status = ? WHERE order_pk = ?", (status, order["id"]))


def order_touch(db: sqlite3.Connection, order: sqlite3.Row) -> None:
    db.execute("UPDATE channel_order SET updated_at = ?, revision = revision + 1 WHERE id = ?",
               (now_iso(), order["id"]))


def order_totals(order: sqlite3.Row, items: list[sqlite3.Row]) -> dict[str, Decimal]:
    subtotal = sum((Decimal(item["price"]) * item["quantity"] for item in items), Decimal("0"))
    shipping = Decimal(order["shipping_cost"])
    total = subtotal + shipping
    return {"subtotal": subtotal, "shipping": shipping, "tax": included_tax(total), "total": total}


def orders_all(db: sqlite3.Connection, account: Account) -> list[dict[str, Any]]:
    orders = db.execute("SELECT * FROM channel_order WHERE account_id = ? ORDER BY updated_at, id",
                        (account.id,)).fetchall()
    items = order_items(db, [order["id"] for order in orders])
    return [{
        "order_id": order["order_id"], "order_number": order["order_number"] or None, "status": order["status"],
        "paid": bool(order["paid"]), "created_at": order["created_at"], "updated_at": order["updated_at"],
        "shipping_tag": order["shipping_tag"], "buyer_email": order["buyer_email"],
        "country": json.loads(order["address"])["country"], "fulfilled_by_channel": bool(order["fulfilled_by_channel"]),
        "currency": order["currency"], "shipping_cost": order["shipping_cost"],
        "tracking": json.loads(order["tracking"]) if order["tracking"] else None,
        "items": [{"line_id": str(item["id"]), "sku": item["sku"], "quantity": item["quantity"],
                   "price": item["price"], "status": item["status"]} for item in items[order["id"]]],
    } for order in orders]
