"""Faults armed through the control API: errors, slowness, malformed pages, expired tokens, timeouts."""

from __future__ import annotations

import json
import re
import sqlite3
from typing import Any

from sandbox.state.common import Account, ControlError

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
