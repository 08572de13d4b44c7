"""Connections to the store for the regulator's side (API, console, public pages, orders):
the SQLite file or the PostgreSQL database, as :class:`hostlib.db.Db`.

``read()`` never blocks ingest: on SQLite a read-only connection (WAL), on PostgreSQL a
pooled connection in a read-only transaction. ``write()`` is one transaction, committed when
the block returns, rolled back when it raises. Database errors of either kind surface as
:class:`hostlib.errors.StoreError` from ``write()``; from ``read()`` as they are (the
API answers 503 for them, :func:`is_db_error`).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hostlib import sqlite as sqlitedb
from hostlib.db import Db, PgDb, is_db_error
from hostlib.errors import StoreError

__all__ = ["StoreDb", "is_db_error"]


class StoreDb:
    def __init__(
        self,
        path: Path | str,
        url: str | None = None,
        pool_size: int = 4,
        query_timeout_s: float = 30.0,
    ) -> None:
        self.query_timeout_s = query_timeout_s
        self.path = Path(path)
        self.url = url
        self.pool_size = pool_size
        self._pool: Any = None
        self._lock = threading.Lock()

    @property
    def postgres(self) -> bool:
        return bool(self.url)

    def exists(self) -> bool:
        """Whether there is a store to read (a SQLite file no collector made yet is not)."""
        return self.postgres or self.path.exists()

    def _get_pool(self) -> Any:
        with self._lock:
            if self._pool is None:
                from psycopg_pool import ConnectionPool

                from collector.pgstore import server_timeouts

                self._pool = ConnectionPool(
                    self.url or "",
                    min_size=0,
                    max_size=self.pool_size,
                    timeout=5.0,
                    kwargs={
                        "connect_timeout": 5,
                        "autocommit": True,
                        "options": server_timeouts(self.query_timeout_s),
                    },
                    name="api",
                    open=True,
                )
            return self._pool

    @contextmanager
    def read(self) -> Iterator[Db]:
        if not self.url:
            with sqlitedb.open_ro(self.path) as db:
                yield db
            return
        with self._get_pool().connection() as conn:
            conn.read_only = True
            try:
                with conn.transaction():
                    yield PgDb(conn)
            finally:
                conn.read_only = False

    def connect(self) -> Db:
        """A connection for writing, autocommit: each change goes in
        :func:`hostlib.sqlite.write_tx` (which works on both); ``close()`` it after."""
        if not self.url:
            return sqlitedb.connect(self.path, busy_timeout_ms=30000)
        pool = self._get_pool()
        return PgDb(pool.getconn(), release=pool.putconn)

    @contextmanager
    def write(self) -> Iterator[Db]:
        if not self.url:
            db = sqlitedb.connect(self.path, busy_timeout_ms=30000)
            try:
                with sqlitedb.write_tx(db, error=StoreError):
                    yield db
            finally:
                db.close()
            return
        try:
            with self._get_pool().connection() as conn, conn.transaction():
                yield PgDb(conn)
        except Exception as exc:
            if is_db_error(exc) or type(exc).__name__ == "PoolTimeout":
                raise StoreError(str(exc).splitlines()[0] if str(exc) else repr(exc)) from exc
            raise

    def close(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.close()
                self._pool = None


def of_settings(settings: Any, pool_size: int = 1) -> StoreDb:
    """The store a collector config names (``CollectorSettings``), for the command line."""
    return StoreDb(settings.store_path, settings.store.url, pool_size=pool_size)
