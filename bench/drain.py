"""Drain: an agent outbox holding N records → uplink → real Mosquitto → collector store.

Prints records/s drained end to end, and the same run's baseline: plain batched SQLite
inserts of the same records (WAL, synchronous=FULL). Also the cost of the batch-ack checks
of wire version 2 (digest, sealed ack, its verification) timed on the same records, and
their share of the run's time per record; and ``collector_cpu_us_per_record``: the CPU time
(user + system) the collector processes spent from the start of the drain to its end,
over the records drained. Last line: one JSON object.

``--store postgres`` points every collector at one fresh database on the PostgreSQL server
(``--pg-url``, default the tests' server: 127.0.0.1:5432 or ``TRACEEDGE_TEST_PG``), made and
migrated before the run and dropped after. The same fields are printed for both stores;
``store_server_cpu_us_per_record`` adds the CPU time the PostgreSQL backends serving that
database spent (0 for SQLite, which runs inside the collector).

    python bench/drain.py --records 200000 [--collectors 1|2|4] [--store sqlite|postgres]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psutil
import psycopg
from benchlib import (
    SITE,
    batch_auth_seconds,
    collector_stored,
    emit,
    make_devices,
    make_records,
    raw_sqlite_insert_rate,
)

from edge_agent.outbox import Incoming, Outbox
from tests.pg import create_database, drop_database, server_url
from traceedge.brokers import start_broker
from traceedge.launch import Role, agent_config, collector_config
from traceedge.provision import site_trust


def _cpu(p: psutil.Process) -> float:
    """CPU seconds (user + system) of one process so far."""
    try:
        t = p.cpu_times()
    except psutil.NoSuchProcess:
        return 0.0
    return float(t.user + t.system)


def pg_backends(dbname: str) -> list[psutil.Process]:
    """The PostgreSQL backend processes serving ``dbname`` now (their titles name it)."""
    out = []
    for p in psutil.process_iter(["name", "cmdline"]):
        title = " ".join(p.info["cmdline"] or [])
        if title.startswith("postgres:") and f" {dbname} " in f"{title} ":
            out.append(p)
    return out


class BackendCpu:
    """CPU the backends of one database spent since :meth:`start`, including backends
    that connected later (a pool growing, a reconnect), leaving out ``skip`` (the bench's
    own probe); a backend that exited is lost."""

    def __init__(self, dbname: str | None, skip: int | None) -> None:
        self.dbname, self.skip = dbname, skip
        self.base: dict[int, float] = {}

    def _backends(self) -> list[psutil.Process]:
        if not self.dbname:
            return []
        return [p for p in pg_backends(self.dbname) if p.pid != self.skip]

    def start(self) -> None:
        self.base = {p.pid: _cpu(p) for p in self._backends()}

    def spent(self) -> float:
        return sum(_cpu(p) - self.base.get(p.pid, 0.0) for p in self._backends())


class Probe:
    """How many records the collectors' store holds: the SQLite file's counter, or the
    sum of the collectors' ``stored`` counters in the database (one small query on a
    connection of its own, whose backend :class:`BackendCpu` leaves out)."""

    def __init__(self, store: Path, url: str | None) -> None:
        self.path, self.url = store, url
        self.conn = psycopg.connect(url, autocommit=True) if url else None
        self.backend_pid = self.conn.info.backend_pid if self.conn else None

    def ready(self) -> bool:
        return self.url is not None or self.path.exists()

    def stored(self) -> int:
        if self.conn is None:
            return collector_stored(self.path)
        row = self.conn.execute(
            "SELECT COALESCE(SUM(value), 0) FROM counters WHERE name = 'stored'"
        ).fetchone()
        return int(row[0]) if row else 0

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()


@contextlib.contextmanager
def store_database(kind: str, pg_url: str) -> Iterator[str | None]:
    """For ``postgres``: a fresh database on ``pg_url``, migrated, dropped after."""
    if kind == "sqlite":
        yield None
        return
    from collector.pgstore import migrate

    url = create_database(pg_url, prefix="te_bench")
    try:
        migrate(url)
        yield url
    finally:
        drop_database(url)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=200_000)
    ap.add_argument("--batch-records", type=int, default=1000)
    ap.add_argument("--timeout", type=float, default=600)
    ap.add_argument(
        "--collectors",
        type=int,
        default=2,
        help="collector processes sharing the subscription (and the store)",
    )
    ap.add_argument("--store", choices=("sqlite", "postgres"), default="sqlite")
    ap.add_argument(
        "--pg-url",
        default=server_url(),
        help="PostgreSQL server the bench makes its database on (--store postgres)",
    )
    args = ap.parse_args()
    # a SIGTERM (timeout, Ctrl-C's cousin) unwinds: the bench's database is dropped
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    n = args.records
    with (
        tempfile.TemporaryDirectory(prefix="bench-drain-") as tmp,
        store_database(args.store, args.pg_url) as store_url,
    ):
        root = Path(tmp)
        registry = root / "devices.json"
        devices = make_devices(registry)
        trust = site_trust(root, registry, SITE)
        print(f"generating {n} signed records ...", file=sys.stderr)
        recs = make_records(devices, n)
        print("baseline: raw batched SQLite inserts ...", file=sys.stderr)
        baseline = raw_sqlite_insert_rate([r for *_, r in recs], root / "baseline.sqlite")
        print("filling the agent outbox ...", file=sys.stderr)
        ob = Outbox(root / "agent" / "outbox.sqlite", 10**12)
        for i in range(0, n, 5000):
            ob.add_many([Incoming(d.dev, s, k, r) for d, s, k, r in recs[i : i + 5000]])
        ob.close()
        # the checks wire version 2 added, timed on this run's own records and batch size
        auth_s = batch_auth_seconds([r for *_, r in recs], args.batch_records)
        del recs
        broker = start_broker("mosquitto", root / "broker")
        collectors = [
            Role(
                "collector",
                collector_config(
                    root / f"c{i}.toml",
                    root / "collector",
                    registry,
                    broker.port,
                    None,
                    trust.command_key,
                    client_id=f"collector-{i}",
                    store_url=store_url,
                ),
                root / f"collector-{i}.log",
            ).start()
            for i in range(args.collectors)
        ]
        acfg = agent_config(
            root / "a.toml",
            SITE,
            root / "agent",
            broker.port,
            broker.port,
            devices=trust.agent_devices,
            identity=trust.identity,
            command_key=trust.command_pub,
            uplink={"batch_records": args.batch_records, "max_in_flight": 8},
        )
        probe = Probe(root / "collector" / "collector.sqlite", store_url)
        while not probe.ready():
            time.sleep(0.05)
        time.sleep(1.0)
        procs = [psutil.Process(c.proc.pid) for c in collectors if c.proc is not None]
        backends = BackendCpu(store_url and store_url.rsplit("/", 1)[1], probe.backend_pid)
        cpu0 = sum(_cpu(p) for p in procs)
        backends.start()
        print(f"draining {n} records into {args.store} ...", file=sys.stderr)
        t0 = time.perf_counter()
        agent = Role("agent", acfg, root / "agent.log").start()
        last = 0.0
        try:
            while (stored := probe.stored()) < n:
                if time.perf_counter() - t0 > args.timeout:
                    raise SystemExit(f"timeout: {stored} of {n} stored")
                if time.perf_counter() - last > 2:
                    last = time.perf_counter()
                    print(f"  stored {stored}/{n}", file=sys.stderr)
                time.sleep(0.05)
            dt = time.perf_counter() - t0
            cpu = sum(_cpu(p) for p in procs) - cpu0
            server_cpu = backends.spent()
        finally:
            probe.close()
            agent.stop()
            for c in collectors:
                c.stop()
            broker.stop()
        rate = n / dt
        emit(
            {
                "records": n,
                "store": args.store,
                "collectors": args.collectors,
                "seconds": round(dt, 2),
                "records_per_s": round(rate),
                "baseline_records_per_s": round(baseline),
                "ratio": round(rate / baseline, 3),
                "batch_ack_checks_us_per_record": round(auth_s * 1e6, 3),
                "batch_ack_checks_share": round(auth_s * rate, 4),
                "collector_cpu_us_per_record": round(cpu / n * 1e6, 2),
                "store_server_cpu_us_per_record": round(server_cpu / n * 1e6, 2),
                "loadavg_1m": round(os.getloadavg()[0], 2),
            }
        )


if __name__ == "__main__":
    main()
