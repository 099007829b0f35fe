"""What the emulated channels know: accounts, tokens, listings, orders and what they received.

Plain functions over a `sqlite3` connection opened by `Store.read()`/`Store.write()`. Orders are
kept in one channel-neutral form; each channel module renders them in its own wire shape.
"""

from __future__ import annotations

import json
import random
import re
import secrets
import sqlite3
import time
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from sandbox.store import now_iso, parse_time

KINDS = ("amazon", "ekm", "rakuten")
UK_MARKETPLACE = "A1F83G8C2ARO7P"
TAX_RATE = Decimal("20")
CENT = Decimal("0.01")

ORDER_DEFAULTS = {
    "amazon": {"status": "UNSHIPPED", "currency": "GBP", "shipping_tag": "STANDARD", "country": "GB",
               "shipping_cost": "0.00"},
    "ekm": {"status": "PENDING", "currency": None, "shipping_tag": "Royal Mail 1st Class", "country": "GB",
            "shipping_cost": "2.95"},
    "rakuten": {"status": "ACCEPTED", "currency": "EUR", "shipping_tag": "Normal", "country": "FR",
                "shipping_cost": "3.90"},
}
# EKM's default statuses plus the shop-defined CANCELLED the hub's default mapping uses.
EKM_ORDER_STATUSES = ["PENDING", "PROCESSING", "DISPATCHED", "COMPLETE", "FAILED", "DECLINED", "REFUNDED",
                      "CANCELLED"]
DEFAULT_TOKEN_LIFETIME = 3600

FIRST_NAMES = ["Jo", "Sam", "Alex", "Chris", "Pat", "Morgan", "Robin", "Charlie", "Jamie", "Taylor"]
LAST_NAMES = ["Bloggs", "Smith", "Jones", "Martin", "Dubois", "Taylor", "Brown", "Wilson", "Moreau", "Evans"]
TOWNS = {
    "GB": [("London", "Greater London", "SW1A 1AA"), ("Leeds", "West Yorkshire", "LS1 4AP"),
           ("Bristol", "Avon", "BS1 5TR"), ("York", "North Yorkshire", "YO1 7HH")],
    "FR": [("Paris", "Ile-de-France", "75001"), ("Lyon", "Rhone", "69002"), ("Lille", "Nord", "59000")],
}


class ControlError(ValueError):
    """A control API request that cannot be honoured; answered with 400 (or `status`)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Account:
    id: int
    kind: str
    name: str
    seller_id: str
    marketplace_id: str
    credentials: dict[str, str]
    settings: dict[str, Any]

    @property
    def token_lifetime(self) -> int:
        return int(self.settings.get("token_lifetime", DEFAULT_TOKEN_LIFETIME))


def money(value: Any) -> Decimal:
    try:
        amount = Decimal(str(value))
    except InvalidOperation as error:
        raise ControlError(f"not an amount: {value!r}") from error
    return amount.quantize(CENT, ROUND_HALF_UP)


def included_tax(gross: Decimal) -> Decimal:
    """UK/FR prices include VAT at 20%: the tax part of a gross amount."""
    return (gross * TAX_RATE / (100 + TAX_RATE)).quantize(CENT, ROUND_HALF_UP)


# Accounts and tokens


def _account_from_row(row: sqlite3.Row) -> Account:
    return Account(row["id"], row["kind"], row["name"], row["seller_id"], row["marketplace_id"],
                   json.loads(row["credentials"]), json.loads(row["settings"]))


def account_get(db: sqlite3.Connection, kind: str, name: str) -> Account | None:
    row = db.execute("SELECT * FROM account WHERE kind = ? AND name = ?", (kind, name)).fetchone()
    return _account_from_row(row) if row else None


def account_put(db: sqlite3.Connection, kind: str, name: str, body: dict[str, Any]) -> Account:
    """Create or replace an account: everything the previous one knew is forgotten."""
    credentials = body.get("credentials") or {}
    required = ("login", "token") if kind == "rakuten" else ("client_id", "client_secret", "refresh_token")
    missing = [key for key in required if not credentials.get(key)]
    if missing:
        raise ControlError(f"credentials need {', '.join(missing)}")
    settings = {key: body[key] for key in ("rate_limits", "token_lifetime", "order_statuses", "despatch_statuses",
                                           "cancelled_statuses", "shop_name", "import_profiles") if key in body}
    seller_id = body.get("seller_id") or f"A{name.upper()}SELLER"
    marketplace_id = body.get("marketplace_id") or (UK_MARKETPLACE if kind == "amazon" else "")
    db.execute("DELETE FROM account WHERE kind = ? AND name = ?", (kind, name))
    account_id = db.execute(
        "INSERT INTO account (kind, name, seller_id, marketplace_id, credentials, settings) VALUES (?, ?, ?, ?, ?, ?)",
        (kind, name, seller_id, marketplace_id, json.dumps(credentials), json.dumps(settings)),
    ).lastrowid
    account = Account(account_id, kind, name, seller_id, marketplace_id, credentials, settings)
    if kind != "rakuten":
        grant_id = grant_create(db, account)
        db.execute("INSERT INTO refresh_token (token, account_id, grant_id) VALUES (?, ?, ?)",
                   (credentials["refresh_token"], account_id, grant_id))
    return account


def account_settings_update(db: sqlite3.Connection, account: Account, changes: dict[str, Any]) -> Account:
    settings = {**account.settings, **changes}
    db.execute("UPDATE account SET settings = ? WHERE id = ?", (json.dumps(settings), account.id))
    return Account(account.id, account.kind, account.name, account.seller_id, account.marketplace_id,
                   account.credentials, settings)


def grant_create(db: sqlite3.Connection, account: Account) -> int:
    return db.execute("INSERT INTO oauth_grant (account_id) VALUES (?)", (account.id,)).lastrowid


def access_token_issue(db: sqlite3.Connection, account: Account, grant_id: int | None, prefix: str) -> str:
    token = prefix + secrets.token_urlsafe(24)
    db.execute("INSERT INTO access_token (token, account_id, grant_id, expires_at) VALUES (?, ?, ?, ?)",
               (token, account.id, grant_id, time.time() + account.token_lifetime))
    return token


def refresh_token_issue(db: sqlite3.Connection, account: Account, grant_id: int | None, prefix: str) -> str:
    token = prefix + secrets.token_urlsafe(32)
    db.execute("INSERT INTO refresh_token (token, account_id, grant_id) VALUES (?, ?, ?)",
               (token, account.id, grant_id))
    return token


def access_token_state(db: sqlite3.Connection, account: Account, token: str) -> str:
    """'valid', 'revoked' (its grant was revoked), 'expired' or 'unknown'."""
    if not token:
        return "unknown"
    row = db.execute(
        "SELECT a.expires_at, g.revoked FROM access_token a LEFT JOIN oauth_grant g ON g.id = a.grant_id "
        "WHERE a.token = ? AND a.account_id = ?",
        (token, account.id),
    ).fetchone()
    if row is None:
        return "unknown"
    if row["revoked"]:
        return "revoked"
    return "valid" if row["expires_at"] > time.time() else "expired"


def access_tokens_expire(db: sqlite3.Connection, account: Account) -> None:
    db.execute("UPDATE access_token SET expires_at = 0 WHERE account_id = ?", (account.id,))


def authorization_code_use(db: sqlite3.Connection, account: Account, code: str) -> bool:
    """Any non-empty code is accepted once (the sandbox has no consent screen issuing them)."""
    if not code:
        return False
    try:
        db.execute("INSERT INTO authorization_code (code, account_id) VALUES (?, ?)", (code, account.id))
    except sqlite3.IntegrityError:
        return False
    return True


def refresh_tokens_used_bump(db: sqlite3.Connection, account: Account) -> None:
    db.execute("UPDATE account SET refresh_tokens_used = refresh_tokens_used + 1 WHERE id = ?", (account.id,))


# Listings


def listing_external_id(account: Account, row: sqlite3.Row) -> str:
    """EKM "{id}" or "{id}/{variantId}", Rakuten's advertid, Amazon's listing-id (as its report gives it)."""
    if account.kind == "ekm":
        return f"{row['parent_id']}/{row['id']}" if row["parent_id"] else str(row["id"])
    if account.kind == "rakuten":
        return str(row["id"])
    return amazon_listing_id(row["id"])


def asin_for(listing_id: int) -> str:
    return f"B0{listing_id:08d}"


def amazon_listing_id(listing_id: int) -> str:
    return f"1129{listing_id:08d}"


def listing_render(account: Account, row: sqlite3.Row, parent_skus: dict[int, str]) -> dict[str, Any]:
    rendered = {
        "sku": row["sku"],
        "external_id": listing_external_id(account, row),
        "title": row["title"],
        "quantity": row["quantity"],
        "price": row["price"],
        "latency": row["latency"],
        "variant_of": parent_skus.get(row["parent_id"]) if row["parent_id"] else None,
        "fulfilled_by_channel": bool(row["fulfilled_by_channel"]),
    }
    if account.kind == "amazon":
        rendered.update(asin=asin_for(row["id"]), listing_id=amazon_listing_id(row["id"]))
    return rendered


def listings_all(db: sqlite3.Connection, account: Account) -> list[dict[str, Any]]:
    rows = db.execute("SELECT * FROM listing WHERE account_id = ? ORDER BY id", (account.id,)).fetchall()
    skus = {row["id"]: row["sku"] for row in rows}
    return [listing_render(account, row, skus) for row in rows]


def listing_by_sku(db: sqlite3.Connection, account: Account, sku: str) -> sqlite3.Row | None:
    return db.execute("SELECT * FROM listing WHERE account_id = ? AND sku = ?", (account.id, sku)).fetchone()


def listing_by_id(db: sqlite3.Connection, account: Account, listing_id: int) -> sqlite3.Row | None:
    return db.execute("SELECT * FROM listing WHERE account_id = ? AND id = ?", (account.id, listing_id)).fetchone()


def listings_upsert(db: sqlite3.Connection, account: Account, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if not isinstance(items, list) or not all(isinstance(item, dict) and item.get("sku") for item in items):
        raise ControlError("listings: a list of objects, each with a sku")
    # Products before their variants, so a variant may name a parent created in the same request.
    ordered = sorted(items, key=lambda item: bool(item.get("variant_of")))
    now = now_iso()
    for item in ordered:
        parent_id = None
        if item.get("variant_of"):
            parent = listing_by_sku(db, account, item["variant_of"])
            if parent is None:
                raise ControlError(f"variant_of {item['variant_of']!r}: no such listing")
            parent_id = parent["id"]
        quantity = int(item.get("quantity", 0))
        values = (item.get("title") or item["sku"], quantity, str(money(item.get("price", "9.99"))),
                  item.get("latency"), parent_id, int(bool(item.get("fulfilled_by_channel"))),
                  int(item.get("live", True)))
        existing = listing_by_sku(db, account, item["sku"])
        if existing:
            db.execute("UPDATE listing SET title = ?, quantity = ?, price = ?, latency = ?, parent_id = ?, "
                       "fulfilled_by_channel = ?, live = ? WHERE id = ?", (*values, existing["id"]))
        else:
            db.execute("INSERT INTO listing (title, quantity, price, latency, parent_id, fulfilled_by_channel, live, "
                       "account_id, sku, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       (*values, account.id, item["sku"], now))
    by_sku = {listing["sku"]: listing for listing in listings_all(db, account)}
    return [by_sku[item["sku"]] for item in items]


# What the channel received


def stock_record(db: sqlite3.Connection, account: Account, listing: sqlite3.Row, *, quantity: int | None = None,
                 latency: int | None = None, price: Decimal | None = None) -> None:
    """Apply an update the hub sent to a listing and remember it for `received`.

    Attributes not sent keep their last received value, as a merge patch does on Amazon.
    """
    now = now_iso()
    price_text = str(money(price)) if price is not None else None
    db.execute(
        "UPDATE listing SET quantity = COALESCE(?, quantity), latency = COALESCE(?, latency), "
        "price = COALESCE(?, price) WHERE id = ?",
        (quantity, latency, price_text, listing["id"]),
    )
    db.execute(
        "INSERT INTO stock_received (account_id, sku, quantity, latency, price, updated_at, updates) "
        "VALUES (?, ?, ?, ?, ?, ?, 1) ON CONFLICT (account_id, sku) DO UPDATE SET "
        "quantity = COALESCE(excluded.quantity, quantity), latency = COALESCE(excluded.latency, latency), "
        "price = COALESCE(excluded.price, price), updated_at = excluded.updated_at, updates = updates + 1",
        (account.id, listing["sku"], quantity, latency, price_text, now),
    )


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


# Orders


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
            if account.kind != "amazon" and not order_id.isdigit():
                raise ControlError(f"{account.kind} order ids are numeric: {order_id!r}")
            order_number = str(10000 + int(order_id)) if account.kind == "ekm" else ""
        if db.execute("SELECT 1 FROM channel_order WHERE account_id = ? AND order_id = ?",
                      (account.id, order_id)).fetchone():
            raise ControlError(f"order {order_id} already exists", status=409)
        paid = bool(spec.get("paid", True))
        status = spec.get("status") or ("PENDING" if account.kind == "amazon" and not paid else defaults["status"])
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


# Amazon FBA: stock in Amazon's fulfilment network and multi-channel fulfilment orders

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


# Faults


FAULT_TYPES = ("429", "500", "503", "slow", "malformed", "expire_token", "timeout")


def faults_add(db: sqlite3.Connection, account: Account, faults: list[dict[str, Any]]) -> int:
    if not isinstance(faults, list):
        raise ControlError("faults: a list of objects")
    for fault in faults:
        fault_type = str(fault.get("type", ""))
        if fault_type not in FAULT_TYPES:
            raise ControlError(f"fault type must be one of {', '.join(FAULT_TYPES)}")
        path = fault.get("path") or ".*"
        try:
            re.compile(path)
        except re.error as error:
            raise ControlError(f"bad path regex: {error}") from error
        default_delay = 30.0 if fault_type == "timeout" else 1.0
        db.execute(
            "INSERT INTO fault (account_id, path, method, type, remaining, skip, retry_after, delay, options) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (account.id, path, (fault.get("method") or "").upper() or None, fault_type, int(fault.get("times", 1)),
             int(fault.get("after", 0)), float(fault.get("retry_after", 1)), float(fault.get("delay", default_delay)),
             json.dumps({key: fault[key] for key in ("corrupt", "index") if key in fault})),
        )
    return len(faults)


def fault_take(db: sqlite3.Connection, account: Account, method: str, target: str, *,
               malformed: bool) -> dict[str, Any] | None:
    """The first armed fault matching this request, consumed; None when none fires.

    `after` lets that many matching requests through first. Malformed faults are taken by the
    list handlers (they only fire on a list response), the others at the start of a request.
    """
    rows = db.execute("SELECT * FROM fault WHERE account_id = ? AND remaining > 0 AND "
                      + ("type = 'malformed'" if malformed else "type != 'malformed'") + " ORDER BY id",
                      (account.id,)).fetchall()
    for row in rows:
        if (row["method"] and row["method"] != method) or not re.search(row["path"], target):
            continue
        if row["skip"] > 0:
            db.execute("UPDATE fault SET skip = skip - 1 WHERE id = ?", (row["id"],))
            return None
        db.execute("UPDATE fault SET remaining = remaining - 1 WHERE id = ?", (row["id"],))
        return {**dict(row), "options": json.loads(row["options"])}
    return None


def malformed_armed(db: sqlite3.Connection, account: Account) -> bool:
    return db.execute("SELECT 1 FROM fault WHERE account_id = ? AND remaining > 0 AND type = 'malformed' LIMIT 1",
                      (account.id,)).fetchone() is not None


def faults_list(db: sqlite3.Connection, account: Account) -> list[dict[str, Any]]:
    rows = db.execute("SELECT * FROM fault WHERE account_id = ? AND remaining > 0 ORDER BY id", (account.id,))
    return [{"path": row["path"], "method": row["method"], "type": row["type"], "times": row["remaining"],
             "after": row["skip"], "retry_after": row["retry_after"], "delay": row["delay"],
             **json.loads(row["options"])} for row in rows]
