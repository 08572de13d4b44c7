"""Both stores for the tests: the SQLite file and PostgreSQL (a fresh database on the
machine's server). A test written against :class:`StoreUnderTest` runs on either, the
``any_store`` fixture (tests/conftest.py) runs it on both.

``store`` is the collector's store (commits, projection); ``write()``/``read()`` give the
shared connection (:class:`hostlib.db.Db`) the regulator's code uses, ``ctx()`` an
:class:`collector.api.ApiContext` over it, ``token()``/``admin_headers()`` API tokens made
the way ``traceedge collector token create`` makes them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from collector.api import ApiContext
from collector.audit import Actor
from collector.pgstore import PostgresStore
from collector.store import SqliteStore
from collector.storedb import StoreDb
from collector.tokens import TokenStore
from hostlib.db import Db
from tests.pg import PgUnavailable, create_database, drop_database, server_url

KINDS = ("sqlite", "postgres")
TEST_ACTOR = Actor("test-setup", "admin", "local")


@dataclass
class StoreUnderTest:
    kind: str
    path: Path  # the SQLite file (on PostgreSQL: where nothing is, but ApiContext wants one)
    url: str | None
    store: Any  # SqliteStore | PostgresStore
    _dbs: list[StoreDb] = field(default_factory=list)

    @property
    def postgres(self) -> bool:
        return self.url is not None

    def _storedb(self) -> StoreDb:
        if not self._dbs:
            self._dbs.append(StoreDb(self.path, self.url))
        return self._dbs[0]

    @contextmanager
    def write(self) -> Iterator[Db]:
        """One transaction, committed when the block returns."""
        with self._storedb().write() as db:
            yield db

    @contextmanager
    def read(self) -> Iterator[Db]:
        with self._storedb().read() as db:
            yield db

    def ctx(self, **kw: Any) -> ApiContext:
        return ApiContext(self.path, store_url=self.url, **kw)

    def token(self, role: str = "admin", scope: str = "all") -> str:
        with self.write() as db:
            _, text = TokenStore(db).create(role, scope, f"test {role} {scope}", TEST_ACTOR)
        return text

    def admin_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token()}"}

    def close(self) -> None:
        for d in self._dbs:
            d.close()
        self.store.close()
        if self.url:
            drop_database(self.url)


def store_of(kind: str, folder: Path, **kw: Any) -> StoreUnderTest:
    """:func:`open_store`, and a PostgreSQL server that does not answer fails the test
    with what to install (never a skip)."""
    try:
        return open_store(kind, folder, **kw)
    except PgUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)


def open_store(kind: str, folder: Path, **kw: Any) -> StoreUnderTest:
    """A new, empty store of ``kind`` (``project_inline`` etc. pass through to it)."""
    path = folder / "collector.sqlite"
    if kind == "sqlite":
        return StoreUnderTest(kind, path, None, SqliteStore(path, **kw))
    url = create_database(server_url())
    try:
        return StoreUnderTest(kind, path, url, PostgresStore(url, **kw))
    except BaseException:
        drop_database(url)
        raise
