"""Drain: an agent outbox holding N records → uplink → real Mosquitto → collector store.

Prints records/s drained end to end, and the same run's baseline: plain batched SQLite
inserts of the same records (WAL, synchronous=FULL). Also the cost of the batch-ack checks
of wire version 2 (digest, sealed ack, its verification) timed on the same records, and
their share of the run's time per record; and ``collector_cpu_us_per_record``: the CPU time
(user + system) the collector processes spent from the start of the drain to its end,
over the records drained. Last line: one JSON object.

    python bench/drain.py --records 200000 [--collectors 2]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psutil
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
from traceedge.brokers import start_broker
from traceedge.launch import Role, agent_config, collector_config
from traceedge.provision import site_trust


def _cpu(p: psutil.Process) -> float:
    """CPU seconds (user + system) of one collector process so far."""
    t = p.cpu_times()
    return float(t.user + t.system)


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
    args = ap.parse_args()
    n = args.records
    with tempfile.TemporaryDirectory(prefix="bench-drain-") as tmp:
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
        store = root / "collector" / "collector.sqlite"
        while not store.exists():
            time.sleep(0.05)
        time.sleep(1.0)
        procs = [psutil.Process(c.proc.pid) for c in collectors if c.proc is not None]
        cpu0 = sum(_cpu(p) for p in procs)
        print(f"draining {n} records ...", file=sys.stderr)
        t0 = time.perf_counter()
        agent = Role("agent", acfg, root / "agent.log").start()
        last = 0.0
        try:
            while (stored := collector_stored(store)) < n:
                if time.perf_counter() - t0 > args.timeout:
                    raise SystemExit(f"timeout: {stored} of {n} stored")
                if time.perf_counter() - last > 2:
                    last = time.perf_counter()
                    print(f"  stored {stored}/{n}", file=sys.stderr)
                time.sleep(0.05)
            dt = time.perf_counter() - t0
            cpu = sum(_cpu(p) for p in procs) - cpu0
        finally:
            agent.stop()
            for c in collectors:
                c.stop()
            broker.stop()
        rate = n / dt
        emit(
            {
                "records": n,
                "collectors": args.collectors,
                "seconds": round(dt, 2),
                "records_per_s": round(rate),
                "baseline_records_per_s": round(baseline),
                "ratio": round(rate / baseline, 3),
                "batch_ack_checks_us_per_record": round(auth_s * 1e6, 3),
                "batch_ack_checks_share": round(auth_s * rate, 4),
                "collector_cpu_us_per_record": round(cpu / n * 1e6, 2),
                "loadavg_1m": round(os.getloadavg()[0], 2),
            }
        )


if __name__ == "__main__":
    main()
