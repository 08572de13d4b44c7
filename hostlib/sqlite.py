"""The one place SQLite connections are opened and written: the project's pragmas, one
write-transaction helper, one read-only opener, one meta upsert.

Every durable file (the agent's outbox, the collector's store) is WAL with
``synchronous=FULL``: a commit that returned survives power loss, and readers never block
the writer. Connections are opened in autocommit mode (``isolation_level=None``) so the
transaction boundaries are ours, written with :func:`write_tx`.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from hostlib.db import Db, PgDb
from hostlib.errors import TraceedgeError

DbT = TypeVar("DbT", bound=Db)


def connect(path: Path | str, busy_timeout_ms: int = 10000) -> sqlite3.Connection:
    """A writer connection with the project's pragmas; the folder is created if missing.

    A new database file is created readable by its owner only (0600): stores and outboxes
    hold personal data (card UIDs, buyer ids). SQLite gives its WAL and shared-memory files
    the database file's permissions."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    if not p.exists():
        os.close(os.open(p, os.O_WRONLY | os.O_CREAT, 0o600))
    db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
    return db


@contextmanager
def write_tx(db: DbT, error: type[TraceedgeError] | None = None) -> Iterator[DbT]:
    """``BEGIN IMMEDIATE`` … ``COMMIT`` (rolled back on any error), unless the caller already
    holds a transaction, whose part this then is.

    ``error``: the caller's error type that a failed ``BEGIN`` or ``COMMIT`` becomes (a
    locked or full database), so callers see their own error root, not ``sqlite3.Error``.
    """
    if db.in_transaction:
        yield db
        return
    if isinstance(db, PgDb):  # the same code on the PostgreSQL store
        with _pg_tx(db, error):
            yield db
        return
    try:
        db.execute("BEGIN IMMEDIATE")
    except sqlite3.Error as exc:
        if error is None:
            raise
        raise error(f"cannot begin a transaction: {exc}") from exc
    try:
        yield db
    except BaseException:
        db.execute("ROLLBACK")
        raise
    try:
        db.execute("COMMIT")
    except sqlite3.Error as exc:
        if db.in_transaction:
            db.execute("ROLLBACK")
        if error is None:
            raise
        raise error(f"commit failed: {exc}") from exc


@contextmanager
def _pg_tx(db: PgDb, error: type[TraceedgeError] | None) -> Iterator[None]:
    from psycopg import Error

    try:
        with db.conn.transaction():
            yield
    except Error as exc:
        if error is None:
            raise
        raise error(f"transaction failed: {str(exc).strip().splitlines()[0]}") from exc


@contextmanager
def open_ro(path: Path | str, busy_timeout_ms: int = 5000) -> Iterator[sqlite3.Connection]:
    """A read-only connection (safe beside running writers, WAL), closed on exit."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        db.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        yield db
    finally:
        db.close()


META_SCHEMA = "CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);"


def set_meta(db: Db, values: Mapping[str, str]) -> None:
    """Upsert ``name → value`` pairs into the ``meta`` table (inside the caller's
    transaction, if any)."""
    db.executemany(
        "INSERT INTO meta(name, value) VALUES (?, ?) "
        "ON CONFLICT(name) DO UPDATE SET value = excluded.value",
        list(values.items()),
    )


def get_meta(db: Db, name: str) -> str | None:
    row = db.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
    return None if row is None else str(row[0])


def storable(text: str) -> str:
    """``text`` as SQLite can bind it: a lone surrogate (JSON allows ``\\ud800``, UTF-8
    does not) becomes its escape instead of failing the whole transaction."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")
