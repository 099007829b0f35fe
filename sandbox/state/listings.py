"""Listings, and the stock, latency and price updates the hub sends to them."""

from __future__ import annotations

import sqlite3
from decimal import Decimal
from typing import Any

from sandbox.state.common import Account, ControlError, money
from sandbox.store import now_iso


def listing_external_id(account: Account, row: sqlite3.Row) -> str:
    """EKM and WooCommerce "{id}" or "{parentId}/{id}", Rakuten's advertid, Amazon's listing-id (as its report
    gives it)."""
    if account.kind in ("ekm", "woocommerce"):
        return f"{row['parent_id']}/{row['id']}" if row["parent_id"] else str(row["id"])
    if account.kind == "rakuten":
        return str(row["id"])
    if account.kind == "ebay":
        return f"{ebay_listing_id(row['id'])}/{ebay_offer_id(row['id'])}"
    if account.kind == "shopify":
        # product/variant/inventory item, the Shopify connector's form
        return f"{row['parent_id'] or row['id']}/{row['id']}/{row['id']}"
    return amazon_listing_id(row["id"])


def ebay_listing_id(listing_id: int) -> str:
    return str(110_000_000_000 + listing_id)


def ebay_offer_id(listing_id: int) -> str:
    return str(5_000_000_000 + listing_id)


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
