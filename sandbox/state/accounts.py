"""Accounts and their OAuth grants, access and refresh tokens, authorization codes."""

from __future__ import annotations

import json
import secrets
import sqlite3
import time
from typing import Any

from sandbox.state.common import UK_MARKETPLACE, Account, ControlError


def _account_from_row(row: sqlite3.Row) -> Account:
    return Account(row["id"], row["kind"], row["name"], row["seller_id"], row["marketplace_id"],
                   json.loads(row["credentials"]), json.loads(row["settings"]))


def account_get(db: sqlite3.Connection, kind: str, name: str) -> Account | None:
    row = db.execute("SELECT * FROM account WHERE kind = ? AND name = ?", (kind, name)).fetchone()
    return _account_from_row(row) if row else None


def account_put(db: sqlite3.Connection, kind: str, name: str, body: dict[str, Any]) -> Account:
    """Create or replace an account: everything the previous one knew is forgotten."""
    credentials = body.get("credentials") or {}
    required = {"rakuten": ("login", "token"), "shopify": ("client_id", "client_secret"),
                "woocommerce": ("consumer_key", "consumer_secret")}.get(
        kind, ("client_id", "client_secret", "refresh_token"))
    missing = [key for key in required if not credentials.get(key)]
    if missing:
        raise ControlError(f"credentials need {', '.join(missing)}")
    settings = {key: body[key] for key in ("rate_limits", "token_lifetime", "order_statuses", "despatch_statuses",
                                           "cancelled_statuses", "shop_name", "import_profiles", "stock_not_managed",
                                           "shipment_tracking", "currency", "revisions_per_day", "trading_listings",
                                           "locations")
                if key in body}
    seller_id = body.get("seller_id") or f"A{name.upper()}SELLER"
    marketplace_id = body.get("marketplace_id") or (UK_MARKETPLACE if kind == "amazon" else "")
    db.execute("DELETE FROM account WHERE kind = ? AND name = ?", (kind, name))
    account_id = db.execute(
        "INSERT INTO account (kind, name, seller_id, marketplace_id, credentials, settings) VALUES (?, ?, ?, ?, ?, ?)",
        (kind, name, seller_id, marketplace_id, json.dumps(credentials), json.dumps(settings)),
    ).lastrowid
    account = Account(account_id, kind, name, seller_id, marketplace_id, credentials, settings)
    if kind not in ("rakuten", "shopify", "woocommerce"):
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
