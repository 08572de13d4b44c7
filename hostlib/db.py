"""One connection type for the queries that run on both stores: SQLite and PostgreSQL.

The collector's read side (API, console, reports) and its small writes (orders, tokens,
registries, acknowledgements) are written once, as SQL both databases take, against
:class:`Db`: a ``sqlite3.Connection`` is one as it is, and :class:`PgDb` makes a psycopg
connection one. What differs is kept small and explicit:

* placeholders are SQLite's ``?`` (or ``:name`` with a mapping); :class:`PgDb` turns them
  into psycopg's ``%s`` / ``%(name)s`` (and a literal ``%`` into ``%%``), outside quoted
  text, once per statement text (cached);
* JSON is read with ``json_extract(doc, '$.a.b')`` and ``json_each(doc[, '$.a'])``, which
  the PostgreSQL store defines (migration 1, :mod:`collector.pgschema`) with SQLite's
  meaning for the paths we use (object members, no array subscripts); numbers from them
  are compared after ``CAST(… AS INTEGER)``, which both databases read the same;
* the few statements no common SQL covers branch on :func:`dialect`.
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Protocol

SQLITE = "sqlite"
POSTGRES = "postgres"


class Cursor(Protocol):
    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


class Db(Protocol):
    def execute(self, sql: str, parameters: Any = ..., /) -> Any: ...

    def executemany(self, sql: str, seq_of_parameters: Any, /) -> Any: ...

    def close(self) -> None: ...

    @property
    def in_transaction(self) -> bool: ...


def dialect(db: object) -> str:
    """``"postgres"`` for a :class:`PgDb`, else ``"sqlite"``."""
    return POSTGRES if isinstance(db, PgDb) else SQLITE


@functools.lru_cache(maxsize=1024)
def to_pyformat(sql: str) -> str:
    """``sql`` with ``?`` placeholders as ``%s``, named ones (``:name``, SQLite's) as
    ``%(name)s`` and ``%`` as ``%%``, leaving quoted text (``'…'``, ``"…"``) and casts
    (``::int``) as they are apart from the ``%``."""
    out: list[str] = []
    quote = ""
    i, n = 0, len(sql)
    while i < n:
        ch = sql[i]
        if ch == "%":
            out.append("%%")
        elif quote:
            out.append(ch)
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
            out.append(ch)
        elif ch == "?":
            out.append("%s")
        elif (
            ch == ":"
            and i + 1 < n
            and (sql[i + 1].isalpha() or sql[i + 1] == "_")
            and (i == 0 or sql[i - 1] != ":")
        ):
            j = i + 1
            while j < n and (sql[j].isalnum() or sql[j] == "_"):
                j += 1
            out.append(f"%({sql[i + 1 : j]})s")
            i = j
            continue
        else:
            out.append(ch)
        i += 1
    return "".join(out)


class PgDb:
    """A psycopg connection with ``sqlite3.Connection``'s ``execute``/``executemany``.

    Transactions are the caller's (the psycopg connection's own ``transaction()``); rows
    come back as tuples, as from SQLite."""

    def __init__(self, conn: Any, release: Callable[[Any], None] | None = None) -> None:
        """``release``: what :meth:`close` does with the connection (a pool's ``putconn``);
        without it the connection is closed."""
        self.conn = conn
        self._release = release

    def close(self) -> None:
        if self._release is not None:
            release, self._release = self._release, None
            release(self.conn)
        else:
            self.conn.close()

    def execute(self, sql: str, parameters: Sequence[Any] | Mapping[str, Any] = (), /) -> Any:
        return self.conn.execute(to_pyformat(sql), _params(parameters))

    def executemany(self, sql: str, seq_of_parameters: Any, /) -> Any:
        cur = self.conn.cursor()
        cur.executemany(to_pyformat(sql), [_params(p) for p in seq_of_parameters])
        return cur

    @property
    def in_transaction(self) -> bool:
        import psycopg

        return bool(self.conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE)


def _params(p: Sequence[Any] | Mapping[str, Any]) -> tuple[Any, ...] | dict[str, Any]:
    """Named parameters (a mapping, for ``:name``) as a dict, positional ones as a tuple."""
    return dict(p) if isinstance(p, Mapping) else tuple(p)


def is_db_error(exc: BaseException) -> bool:
    """Whether ``exc`` is an error of either database (not a bug of ours)."""
    if isinstance(exc, sqlite3.Error):
        return True
    try:
        import psycopg
    except ImportError:  # pragma: no cover - psycopg is a dependency
        return False
    return isinstance(exc, psycopg.Error)


def has_table(db: Db, name: str) -> bool:
    """Whether the store has table ``name`` (a SQLite store made by an older version may
    lack one; the PostgreSQL store has every table its migrations made)."""
    if dialect(db) == POSTGRES:
        row = db.execute("SELECT to_regclass(?) IS NOT NULL", (name,)).fetchone()
        return bool(row and row[0])
    row = db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,))
    return row.fetchone() is not None
