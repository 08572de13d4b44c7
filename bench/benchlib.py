"""Shared by the benchmarks: realistic signed records, a chain in a temp folder, timing."""

from __future__ import annotations

import json
import random
import sqlite3
import time
from pathlib import Path
from typing import Any

from hostlib.registry import FAMILY_OF_TYPE, Device, add_devices
from simulators.records import make_body, pick_kind
from traceedge.provision import new_device
from wire import auth
from wire.batch import encode_batch
from wire.canonical import canonical
from wire.envelope import make_record

SITE = "BENCH1"


def make_devices(registry: Path, per_type: int = 4) -> list[Device]:
    devs = [
        new_device(t, SITE)
        for t in ("cylinder-reader", "elevator-box", "market-scale")
        for _ in range(per_type)
    ]
    add_devices(registry, devs, int(time.time()))
    return devs


def make_records(
    devices: list[Device], n: int, seed: int = 1
) -> list[tuple[Device, int, str, bytes]]:
    """``n`` signed records spread over ``devices``: (device, seq, kind, canonical bytes)."""
    rng = random.Random(seed)
    seqs = dict.fromkeys((d.dev for d in devices), 0)
    out = []
    now = int(time.time() * 1000)
    for i in range(n):
        d = devices[i % len(devices)]
        seqs[d.dev] += 1
        seq = seqs[d.dev]
        kind = pick_kind(FAMILY_OF_TYPE[d.type], rng)
        body = make_body(kind, rng, d.dev, seq, d.site, now_ms=now + i)
        rec = make_record(d.dev, seq, 1, kind, now + i, "ntp", body, d.key)
        out.append((d, seq, kind, canonical(rec)))
    return out


def raw_sqlite_insert_rate(records: list[bytes], path: Path, batch: int = 1000) -> float:
    """Baseline: plain batched inserts, WAL, synchronous=FULL, one commit per batch."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE r (id INTEGER PRIMARY KEY, rec BLOB)")
    t0 = time.perf_counter()
    for i in range(0, len(records), batch):
        db.execute("BEGIN")
        db.executemany("INSERT INTO r(rec) VALUES (?)", [(r,) for r in records[i : i + batch]])
        db.execute("COMMIT")
    dt = time.perf_counter() - t0
    db.close()
    return len(records) / dt


def collector_stored(store: Path) -> int:
    if not store.exists():
        return 0
    try:
        db = sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=5)
        try:
            return int(db.execute("SELECT value FROM counters WHERE name='stored'").fetchone()[0])
        finally:
            db.close()
    except (sqlite3.Error, TypeError):
        return 0


def emit(result: dict[str, Any]) -> None:
    """Human lines first, then one JSON object as the last line."""
    for k, v in result.items():
        print(f"  {k:28} {v}")
    print(json.dumps(result))


def batch_auth_seconds(records: list[bytes], batch_records: int, repeat: int = 3) -> float:
    """Seconds per record that the batch-ack checks cost (wire version 2), measured on
    ``records`` cut into batches as the uplink cuts them: the collector's digest of the
    batch and its sealed ack, the agent's verification of that ack. Best of ``repeat``."""
    gw_key = bytes(range(32))
    batches = [
        encode_batch(SITE, "GW-BENCH", f"b{i}", records[i : i + batch_records])
        for i in range(0, len(records), batch_records)
    ]
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        for i, payload in enumerate(batches):
            digest = auth.batch_digest(payload)
            ack = auth.batch_ack(SITE, "GW-BENCH", f"b{i}", digest, batch_records, 0, 0, gw_key)
            got = auth.open_batch_ack(ack, SITE, "GW-BENCH", [gw_key])
            assert got["digest"] == auth.batch_digest(payload)  # the agent's side: digest kept
        best = min(best, time.perf_counter() - t0)
    return best / max(len(records), 1)


def terminal_ack_seconds(group: int, devices: int, repeat: int = 3) -> float:
    """Seconds per record that sealing terminal acks costs: one sealed ack per device per
    group commit of ``group`` records spread over ``devices`` terminals."""
    key = bytes(range(32))
    per_dev = max(group // devices, 1)
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _round in range(100):
            for d in range(devices):
                auth.terminal_ack(f"D{d}", 1000, [(1001, 1000 + per_dev)], [], key)
        best = min(best, time.perf_counter() - t0)
    return best / (100 * devices * per_dev)
