"""A PostgreSQL server that stops answering while TCP still stands (a frozen proxy: bytes
accepted, nothing forwarded) fails the store's calls within its query timeout instead of
blocking the collector for ever; once the server answers again, the store works again."""

from __future__ import annotations

import time
from urllib.parse import urlsplit

import pytest

from collector.pgstore import PostgresStore
from collector.verify import Good
from hostlib.errors import StoreError
from tests.pg import with_dbname
from tests.proxy import SilentProxy


def _good(seq: int) -> Good:
    mac = f"{seq:064x}"
    return Good("H1", seq, "elevator.status", 1_763_900_000_000 + seq, mac, f'{{"seq":{seq}}}')


def test_a_hung_server_fails_the_batch_in_time_then_recovers(pg_url: str) -> None:
    PostgresStore(pg_url).close()  # migrated directly, not through the proxy
    parts = urlsplit(pg_url)
    proxy = SilentProxy(parts.port or 5432).start()
    try:
        url = with_dbname(f"postgresql://{parts.username}@127.0.0.1:{proxy.port}/x", parts.path[1:])
        store = PostgresStore(url, timeout_s=2.0, query_timeout_s=1.5, migrate_schema=False)
        try:
            assert store.commit("S1", "b1", [_good(1)], []).stored == 1
            proxy.freeze()
            t0 = time.monotonic()
            with pytest.raises(StoreError):
                store.commit("S1", "b2", [_good(2)], [])
            assert time.monotonic() - t0 < 8.0
            assert store.watchdog.cut >= 1
            proxy.reset()  # the server answers again (new connections go through)
            deadline = time.monotonic() + 15
            while True:
                try:
                    res = store.commit("S1", "b2", [_good(2)], [])
                    break
                except StoreError:
                    assert time.monotonic() < deadline, "the store did not recover"
                    time.sleep(0.2)
            assert res.stored == 1
            assert store.summary()["records"] == 2
        finally:
            store.close()
    finally:
        proxy.stop()
