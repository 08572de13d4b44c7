"""The PostgreSQL test harness itself: a fresh database per test that is gone after, and a
private cluster that survives stop, restart and ``kill -9`` with its committed rows."""

from __future__ import annotations

from urllib.parse import urlsplit

import psycopg
import pytest

from tests.pg import (
    PgCluster,
    PgUnavailable,
    connect_admin,
    create_database,
    fresh_database,
    server_url,
    with_dbname,
)


def _databases(url: str) -> set[str]:
    with connect_admin(with_dbname(url, "postgres")) as db:
        return {str(r[0]) for r in db.execute("SELECT datname FROM pg_database").fetchall()}


def test_pg_url_is_a_fresh_empty_database(pg_url: str) -> None:
    with psycopg.connect(pg_url) as db:
        tables = db.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchone()
        assert tables == (0,)
        assert db.execute("SHOW fsync").fetchone() == ("on",)


def test_fresh_database_is_dropped_even_with_a_session_left_open() -> None:
    with fresh_database() as url:
        name = urlsplit(url).path.lstrip("/")
        left_open = psycopg.connect(url)  # a collector killed mid-transaction, say
        left_open.execute("CREATE TABLE t (x int)")
        assert name in _databases(url)
    assert name not in _databases(server_url())
    left_open.close()


def test_an_unreachable_server_says_what_to_install() -> None:
    with pytest.raises(PgUnavailable, match="apt-get install postgresql"):
        create_database("postgresql://postgres@127.0.0.1:1/postgres")


def _count(url: str) -> int:
    with psycopg.connect(url, connect_timeout=5) as db:
        row = db.execute("SELECT count(*) FROM t").fetchone()
        assert row is not None
        return int(row[0])


def test_private_cluster_keeps_committed_rows_across_stop_restart_and_kill9(
    pg_cluster: PgCluster,
) -> None:
    assert pg_cluster.url().endswith(f":{pg_cluster.port}/postgres")
    assert pg_cluster.port != 5432
    url = pg_cluster.create_database()
    with psycopg.connect(url) as db:
        assert db.execute("SHOW fsync").fetchone() == ("on",)
        db.execute("CREATE TABLE t (x int)")
        db.execute("INSERT INTO t SELECT generate_series(1, 100)")
    pg_cluster.stop("immediate")
    assert not pg_cluster.running()
    with pytest.raises(psycopg.OperationalError):
        _count(url)
    pg_cluster.start()
    assert _count(url) == 100
    pg_cluster.restart("fast")
    assert _count(url) == 100
    with psycopg.connect(url) as db:
        db.execute("INSERT INTO t VALUES (101)")
    pg_cluster.kill9()
    assert pg_cluster.pid() is None and not pg_cluster.running()
    pg_cluster.start()  # crash recovery replays the WAL: the committed row is there
    assert _count(url) == 101


def test_closed_cluster_leaves_no_process_or_folder() -> None:
    cluster = PgCluster().start()
    pid, root = cluster.pid(), cluster.root
    assert pid is not None and root.exists()
    cluster.close()
    assert cluster.pid() is None and not root.exists()
