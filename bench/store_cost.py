"""What one record costs each store, for sizing a city (docs/deploy.md "Sizing").

The same realistic signed records (bench/benchlib.py: cylinder readers, elevator boxes,
market scales, their bodies as the simulators make them) are committed in batches of
``--batch-records``, as verified batches reach the store, to:

- ``PostgresStore`` on a fresh database of ``--server`` (default: the machine's, or
  ``TRACEEDGE_TEST_PG``), then the market projection run to the end;
- ``SqliteStore`` in a temporary folder, the same;
- baselines in the same run: PostgreSQL ``COPY`` of the same (dev, seq, rec) rows into a
  bare table with one unique index, and SQLite batched inserts (``raw_sqlite_insert_rate``).

Per record it prints: bytes on disk (PostgreSQL: table, indexes and TOAST of every table the
store wrote; SQLite: the file and its WAL after a checkpoint), WAL bytes written
(PostgreSQL ``pg_current_wal_lsn`` difference), CPU of this process (the collector's side)
and CPU of the PostgreSQL backends that served it (from /proc through psutil), and records
a second; each with its ratio to the baseline.

    python bench/store_cost.py [--records 100000] [--batch-records 500]

Prints human lines, then one JSON object on the last line.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import psutil
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import SITE, emit, make_devices, make_records, raw_sqlite_insert_rate

from collector.pgstore import PostgresStore
from collector.store import SqliteStore
from collector.verify import Good


def _goods(raw: list[bytes]) -> list[Good]:
    out = []
    for r in raw:
        rec = json.loads(r)
        out.append(Good(rec["dev"], rec["seq"], rec["kind"], rec["ts"], rec["mac"], r.decode()))
    return out


def _with_db(server: str, name: str) -> str:
    base = server.rsplit("/", 1)[0]
    return f"{base}/{name}"


def _backend_cpu(admin: psycopg.Connection[Any], dbname: str) -> float:
    total = 0.0
    for (pid,) in admin.execute(
        "SELECT pid FROM pg_stat_activity WHERE datname = %s", (dbname,)
    ).fetchall():
        try:
            t = psutil.Process(int(pid)).cpu_times()
            total += t.user + t.system
        except psutil.Error:
            pass
    return total


def _pg_sizes(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute(
        "SELECT COALESCE(SUM(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'm')"
    ).fetchone()
    return int(row[0]) if row else 0


def _wal(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn").fetchone()
    return int(row[0]) if row else 0


def bench_pg(server: str, goods: list[Good], batch: int) -> dict[str, float]:
    name = f"te_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            url = _with_db(server, name)
            store = PostgresStore(url, project_inline=False, pool_size=2)
            with psycopg.connect(url, autocommit=True) as probe:
                size0, wal0 = _pg_sizes(probe), _wal(probe)
                cpu0, back0, t0 = time.process_time(), _backend_cpu(admin, name), time.time()
                for i in range(0, len(goods), batch):
                    store.commit(SITE, f"b{i}", goods[i : i + batch], [])
                while store.project(5000):
                    pass
                wall = time.time() - t0
                cpu, back = time.process_time() - cpu0, _backend_cpu(admin, name) - back0
                probe.execute("CHECKPOINT")
                size, wal = _pg_sizes(probe) - size0, _wal(probe) - wal0
            store.close()
            # baseline: COPY of the same rows into a bare table with one unique index
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute(
                    "CREATE TABLE bare (dev TEXT, seq BIGINT, rec TEXT, UNIQUE (dev, seq))"
                )
                wal0, t0, back0 = _wal(conn), time.time(), _backend_cpu(admin, name)
                for i in range(0, len(goods), batch):
                    with (
                        conn.transaction(),
                        conn.cursor() as cur,
                        cur.copy("COPY bare (dev, seq, rec) FROM STDIN") as cp,
                    ):
                        for g in goods[i : i + batch]:
                            cp.write_row((g.dev, g.seq, g.text))
                bare_wall = time.time() - t0
                bare_back = _backend_cpu(admin, name) - back0
                bare_wal = _wal(conn) - wal0
                row = conn.execute("SELECT pg_total_relation_size('bare')").fetchone()
                bare_size = int(row[0]) if row else 0
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    n = len(goods)
    return {
        "pg_records_per_s": round(n / wall),
        "pg_bytes_per_record": round(size / n),
        "pg_wal_bytes_per_record": round(wal / n),
        "pg_collector_cpu_us_per_record": round(cpu / n * 1e6, 1),
        "pg_server_cpu_us_per_record": round(back / n * 1e6, 1),
        "pg_copy_baseline_records_per_s": round(n / bare_wall),
        "pg_copy_baseline_bytes_per_record": round(bare_size / n),
        "pg_copy_baseline_wal_bytes_per_record": round(bare_wal / n),
        "pg_copy_baseline_server_cpu_us_per_record": round(bare_back / n * 1e6, 1),
    }


def bench_sqlite(goods: list[Good], raw: list[bytes], batch: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "store.sqlite"
        store = SqliteStore(path, project_inline=False)
        cpu0, t0 = time.process_time(), time.time()
        for i in range(0, len(goods), batch):
            store.commit(SITE, f"b{i}", goods[i : i + batch], [])
        while store.project(5000):
            pass
        wall, cpu = time.time() - t0, time.process_time() - cpu0
        store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        store.close()
        size = sum(p.stat().st_size for p in Path(tmp).iterdir() if p.is_file())
        raw_rate = raw_sqlite_insert_rate(raw, Path(tmp) / "raw.sqlite", batch)
    n = len(goods)
    return {
        "sqlite_records_per_s": round(n / wall),
        "sqlite_bytes_per_record": round(size / n),
        "sqlite_cpu_us_per_record": round(cpu / n * 1e6, 1),
        "sqlite_raw_insert_baseline_records_per_s": round(raw_rate),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--records", type=int, default=100_000)
    ap.add_argument("--batch-records", type=int, default=500)
    ap.add_argument(
        "--server",
        default=os.environ.get("TRACEEDGE_TEST_PG")
        or "postgresql://postgres@127.0.0.1:5432/postgres",
        help="PostgreSQL server (a database is made there and dropped)",
    )
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        devices = make_devices(Path(tmp) / "devices.json")
        print(f"making {args.records} signed records …", file=sys.stderr)
        raw = [r for *_, r in make_records(devices, args.records)]
    goods = _goods(raw)
    print("PostgreSQL store …", file=sys.stderr)
    out: dict[str, Any] = {"records": len(goods), "batch_records": args.batch_records}
    out["record_bytes_mean"] = round(sum(len(r) for r in raw) / len(raw))
    out |= bench_pg(args.server, goods, args.batch_records)
    print("SQLite store …", file=sys.stderr)
    out |= bench_sqlite(goods, raw, args.batch_records)
    out["pg_vs_copy_baseline_rate"] = round(
        out["pg_records_per_s"] / out["pg_copy_baseline_records_per_s"], 3
    )
    out["sqlite_vs_raw_baseline_rate"] = round(
        out["sqlite_records_per_s"] / out["sqlite_raw_insert_baseline_records_per_s"], 3
    )
    out["load_average"] = round(os.getloadavg()[0], 2)
    emit(out)


if __name__ == "__main__":
    main()
