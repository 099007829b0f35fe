"""EKM's webhook subscriptions, one row each, kept with the account (and forgotten with it)."""

from __future__ import annotations

import sqlite3
import uuid
from typing import Any

from sandbox.state.common import Account


def subscription_add(db: sqlite3.Connection, account: Account, *, topic: str, endpoint: str, is_enabled: bool) -> str:
    subscription_id = str(uuid.uuid4())
    db.execute("INSERT INTO webhook_subscription (id, account_id, topic, endpoint, is_enabled) VALUES (?, ?, ?, ?, ?)",
               (subscription_id, account.id, topic, endpoint, int(is_enabled)))
    return subscription_id


def subscriptions_all(db: sqlite3.Connection, account: Account) -> list[dict[str, Any]]:
    rows = db.execute("SELECT * FROM webhook_subscription WHERE account_id = ? ORDER BY rowid", (account.id,))
    return [{"id": row["id"], "topic": row["topic"], "endpoint": row["endpoint"], "is_enabled": bool(row["is_enabled"])}
            for row in rows]


def subscription_update(db: sqlite3.Connection, account: Account, subscription_id: str,
                        changes: dict[str, Any]) -> bool:
    """Set the topic, endpoint and is_enabled given (None leaves one as it is); False: no such subscription."""
    row = db.execute("SELECT * FROM webhook_subscription WHERE id = ? AND account_id = ?",
                     (subscription_id, account.id)).fetchone()
    if row is None:
        return False
    topic, endpoint, enabled = (changes.get(key) for key in ("topic", "endpoint", "is_enabled"))
    db.execute("UPDATE webhook_subscription SET topic = ?, endpoint = ?, is_enabled = ? WHERE id = ?",
               (topic or row["topic"], endpoint or row["endpoint"],
                row["is_enabled"] if enabled is None else int(enabled), subscription_id))
    return True


def subscription_delete(db: sqlite3.Connection, account: Account, subscription_id: str) -> bool:
    return db.execute("DELETE FROM webhook_subscription WHERE id = ? AND account_id = ?",
                      (subscription_id, account.id)).rowcount > 0


def subscription_endpoints(db: sqlite3.Connection, account: Account, topic: str) -> list[str]:
    """Where an event of `topic` goes: every enabled subscription's endpoint, one delivery each."""
    rows = db.execute("SELECT endpoint FROM webhook_subscription WHERE account_id = ? AND topic = ? AND is_enabled = 1 "
                      "ORDER BY rowid", (account.id, topic))
    return [row["endpoint"] for row in rows]
