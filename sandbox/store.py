"""The sandbox's own SQLite file: schema, connections and the clock.

One write transaction at a time (a process lock in front of `BEGIN IMMEDIATE`, so threads queue
in Python instead of spinning in SQLite's busy handler); reads run concurrently on WAL snapshots.
Connections are pooled because the threaded server starts a thread per connection.
"""

from __future__ import annotations

import queue
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS account (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    seller_id TEXT NOT NULL,
    marketplace_id TEXT NOT NULL,
    credentials TEXT NOT NULL,
    settings TEXT NOT NULL,
    refresh_tokens_used INTEGER NOT NULL DEFAULT 0,
    UNIQUE (kind, name)
);
CREATE TABLE IF NOT EXISTS oauth_grant (
    id INTEGER PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES account (id) ON DELETE CASCADE,
    revoked INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS refresh_token (
    token TEXT PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES account (id) ON DELETE CASCADE,
    grant_id INTEGER REFERENCES oauth_grant (id) ON DELETE CASCADE,
    used INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS access_token (
    token TEXT PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES account (id) ON DELETE CASCADE,
    grant_id INTEGER REFERENCES oauth_grant (id) ON DELETE CASCADE,
    expires_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS authorization_code (
    code TEXT NOT NULL,
    account_id INTEGER NOT NULL REFERENCES account (id) ON DELETE CASCADE,
    PRIMARY KEY (account_id, code)
);
CREATE TABLE IF NOT EXISTS listing (
    id INTEGER PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES account (id) ON DELETE CASCADE,
    sku TEXT NOT NULL,
    title TEXT NOT NULL,
    quantity INTEGER NOT NULL,
    price TEXT NOT NULL,
    latency INTEGER,
    parent_id INTEGER REFERENCES listing (id) ON DELETE CASCADE,
    fulfilled_by_channel INTEGER NOT NULL DEFAULT 0,
    live INTEGER NOT NULL DEFAULT 1,
    created_at TEXT NOT NULL,
    UNIQUE (account_id, sku)
);
CREATE TABLE IF NOT EXISTS channel_order (
    id INTEGER PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES account (id) ON DELETE CASCADE,
    order_id TEXT NOT NULL,
    order_number TEXT NOT NULL,
    status TEXT NOT NULL,
    paid INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    shipping_tag TEXT NOT NULL,
    buyer_email TEXT,
    address TEXT NOT NULL,
    fulfilled_by_channel INTEGER NOT NULL,
    currency TEXT,
    shipping_cost TEXT NOT NULL,
    tracking TEXT,
    -- Bumped by every change, so a rendered order cached under (id, revision) is never stale.
    revision INTEGER NOT NULL DEFAULT 0,
    UNIQUE (account_id, order_id)
);
CREATE INDEX IF NOT EXISTS channel_order_updated ON channel_order (account_id, updated_at, id);
CREATE INDEX IF NOT EXISTS channel_order_created ON channel_order (account_id, created_at, id);
CREATE TABLE IF NOT EXISTS order_item (
    id INTEGER PRIMARY KEY,
    order_pk INTEGER NOT NULL REFERENCES channel_order (id) ON DELETE CASCADE,
    sku TEXT NOT NULL,
    title TEXT NOT NULL,
    quantity INTEGER NOT NULL,
    price TEXT NOT NULL,
    listing_id INTEGER,
    variant_id INTEGER,
    status TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS order_item_order ON order_item (order_pk);
CREATE TABLE IF NOT EXISTS stock_received (
    account_id INTEGER NOT NULL REFERENCES account (id) ON DELETE CASCADE,
    sku TEXT NOT NULL,
    quantity INTEGER,
    latency INTEGER,
    price TEXT,
    updated_at TEXT NOT NULL,
    updates INTEGER NOT NULL,
    PRIMARY KEY (account_id, sku)
);
CREATE TABLE IF NOT EXISTS listing_revision (
    account_id INTEGER NOT NULL REFERENCES account (id) ON DELETE CASCADE,
    sku TEXT NOT NULL,
    day TEXT NOT NULL,
    revisions INTEGER NOT NULL,
    PRIMARY KEY (account_id, sku, day)
);
CREATE TABLE IF NOT EXISTS event (
    id INTEGER PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES account (id) ON DELETE CASCADE,
    type TEXT NOT NULL,
    data TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS call_count (
    account_id INTEGER NOT NULL REFERENCES account (id) ON DELETE CASCADE,
    operation TEXT NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (account_id, operation)
);
CREATE TABLE IF NOT EXISTS fault (
    id INTEGER PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES account (id) ON DELETE CASCADE,
    path TEXT NOT NULL,
    method TEXT,
    type TEXT NOT NULL,
    remaining INTEGER NOT NULL,
    skip INTEGER NOT NULL,
    retry_after REAL NOT NULL,
    delay REAL NOT NULL,
    options TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS document (
    id TEXT PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES account (id) ON DELETE CASCADE,
    content_type TEXT NOT NULL,
    content BLOB
);
CREATE TABLE IF NOT EXISTS webhook_subscription (
    id TEXT PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES account (id) ON DELETE CASCADE,
    topic TEXT NOT NULL,
    endpoint TEXT NOT NULL,
    is_enabled INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS woo_webhook (
    id INTEGER PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES account (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    topic TEXT NOT NULL,
    delivery_url TEXT NOT NULL,
    secret TEXT NOT NULL,
    status TEXT NOT NULL,
    failures INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    modified_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS shopify_idempotency (
    account_id INTEGER NOT NULL REFERENCES account (id) ON DELETE CASCADE,
    key TEXT NOT NULL,
    request TEXT NOT NULL,
    response TEXT NOT NULL,
    PRIMARY KEY (account_id, key)
);
CREATE TABLE IF NOT EXISTS job (
    id TEXT PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES account (id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    type TEXT NOT NULL,
    input_document TEXT,
    status TEXT NOT NULL,
    polls INTEGER NOT NULL DEFAULT 0,
    result_document TEXT
);
"""


def utc_now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def iso(moment: datetime) -> str:
    # Not strftime: its %Y drops the zero padding of years before 1000, and stored times must sort as text.
    moment = moment.astimezone(UTC)
    return (f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}T"
            f"{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}Z")


def now_iso() -> str:
    return iso(utc_now())


def parse_time(text: str) -> str:
    """Normalise an ISO 8601 time to the stored form (UTC, whole seconds), or raise ValueError.

    Stored times sort as text, so every comparison in SQL is a string comparison.
    """
    moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return iso(moment)


class StoreClosed(RuntimeError):
    """The store was closed: the server is stopping and takes no more requests."""


class Store:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._pool: queue.SimpleQueue[sqlite3.Connection] = queue.SimpleQueue()
        self._write_lock = threading.Lock()
        # Guards `closed` against a handler thread releasing its connection while the store closes.
        self._state_lock = threading.Lock()
        self.closed = False
        connection = self._acquire()
        try:
            connection.executescript(SCHEMA)
        finally:
            self._release(connection)

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
        connection.row_factory = sqlite3.Row
        connection.execute("PRAGMA journal_mode=WAL")
        # NORMAL is durable across application crashes in WAL mode, and commits without an fsync.
        connection.execute("PRAGMA synchronous=NORMAL")
        connection.execute("PRAGMA foreign_keys=ON")
        connection.execute("PRAGMA busy_timeout=30000")
        return connection

    def _acquire(self) -> sqlite3.Connection:
        if self.closed:
            raise StoreClosed("the sandbox is shutting down")
        try:
            return self._pool.get_nowait()
        except queue.Empty:
            return self._connect()

    def _release(self, connection: sqlite3.Connection) -> None:
        with self._state_lock:
            if not self.closed:
                self._pool.put(connection)
                return
        connection.close()

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        connection = self._acquire()
        try:
            connection.execute("BEGIN")
            try:
                yield connection
            finally:
                connection.execute("COMMIT")
        finally:
            self._release(connection)

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        with self._write_lock:
            connection = self._acquire()
            try:
                connection.execute("BEGIN IMMEDIATE")
                try:
                    yield connection
                except BaseException:
                    connection.execute("ROLLBACK")
                    raise
                connection.execute("COMMIT")
            finally:
                self._release(connection)

    def close(self) -> None:
        """Close the idle connections now and each busy one when its thread is done with it.

        Handler threads of kept-alive connections outlive the server's shutdown; closing a
        connection under a thread that is using it crashes the interpreter, not just the thread.
        """
        with self._state_lock:
            self.closed = True
        while True:
            try:
                self._pool.get_nowait().close()
            except queue.Empty:
                return
