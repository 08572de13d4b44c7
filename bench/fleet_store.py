"""A city-sized store for the console's queries: N records (default 1,000,000) from 500 sites
of five devices each (elevator boxes, cylinder readers, market scales), 50 provisioned
devices never heard from, agent reports, alarms, quarantine, a hot market batch of a few
thousand sales; then the fleet, alarm, recall and fleet-list queries timed on it (median of
``--repeat`` runs, ms), directly and through the JSON routes. Last line: one JSON object.

    python bench/fleet_store.py --records 1000000 [--keep /tmp/city.sqlite]

Bodies are the simulators' (``make_body``), 40 per device cycled with their sequence
numbers; records are written straight into the store's tables (MACs are not checked by the
readers), then the store is opened with :class:`collector.store.SqliteStore`, which builds
its indexes and applies the market records as a collector does. ``--keep`` keeps the store
(and its ``devices.json``) for other benchmarks, e.g. the console's pages.
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from collector import alarms, audit, cylinders, elevators, fleet, sites
from collector import store as store_mod
from collector.markets import recall as recalls
from collector.store import SqliteStore
from simulators.records import make_body

N_SITES = 500
PER_SITE = 5
TEMPLATES = 40
HOT_BATCH = "HOTBATCH000000000001"
HOT_SALES = 3000
MAC = "0" * 64
KINDS = {
    "elevator-box": [
        ("elevator.status", 0.97),
        ("elevator.fault", 0.025),
        ("elevator.maintenance", 0.005),
    ],
    "cylinder-reader": [("cylinder.check", 0.5), ("cylinder.fill", 0.5)],
    "market-scale": [("market.settlement", 0.95), ("market.entry", 0.05)],
}


def site_type(i: int) -> str:
    return "market-scale" if i % 10 == 0 else "cylinder-reader" if i % 4 == 1 else "elevator-box"


def pick(rng: random.Random, kinds: list[tuple[str, float]]) -> str:
    x = rng.random()
    for k, p in kinds:
        x -= p
        if x < 0:
            return k
    return kinds[-1][0]


def generate(path: Path, n_records: int, seed: int = 11) -> dict[str, Any]:
    rng = random.Random(seed)
    t0 = time.perf_counter()
    db = sqlite3.connect(str(path), isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=OFF")
    db.executescript(store_mod.SCHEMA)
    devs = [
        (f"S{s:03d}", f"{site_type(s)[:3].upper()}-S{s:03d}-{d}", site_type(s))
        for s in range(N_SITES)
        for d in range(PER_SITE)
    ]
    per_dev = n_records // len(devs)
    now_ms = int(time.time() * 1000)
    now = time.time()
    hot_left = HOT_SALES
    state = []

    def rows() -> Iterator[tuple[Any, ...]]:
        nonlocal hot_left
        for site, dev, typ in devs:
            templates: dict[str, list[dict[str, Any]]] = {}
            texts: dict[int, str] = {}
            seq = 0
            for i in range(per_dev):
                seq += 2 if rng.random() < 0.001 else 1  # a gap now and then
                kind = pick(rng, KINDS[typ])
                pool = templates.setdefault(kind, [])
                ts = now_ms - (per_dev - i) * 60_000
                if len(pool) < TEMPLATES:
                    pool.append(make_body(kind, rng, dev, seq, site, now_ms=ts))
                body = pool[i % len(pool)]
                if kind == "market.settlement" and hot_left > 0 and rng.random() < 0.2:
                    body = json.loads(json.dumps(body))
                    body["lines"][0]["batch_id"] = HOT_BATCH
                    body["buyer"] = f"B{hot_left:05d}"
                    hot_left -= 1
                    text = json.dumps(body, separators=(",", ":"))
                else:
                    text = texts.setdefault(id(body), json.dumps(body, separators=(",", ":")))
                rec = (
                    f'{{"v":2,"dev":"{dev}","seq":{seq},"boot":1,"kind":"{kind}","ts":{ts},'
                    f'"tq":"ntp","body":{text},"mac":"{MAC}"}}'
                )
                yield (dev, seq, kind, ts, site, MAC, now, rec)
            age = rng.choice([60.0] * 18 + [1800.0, 3 * 3600.0])
            state.append((dev, site, per_dev, seq, now - age))

    db.execute("BEGIN")
    db.executemany(
        "INSERT INTO records(dev, seq, kind, ts, site, mac, received, rec) "
        "VALUES (?,?,?,?,?,?,?,?)",
        rows(),
    )
    db.executemany(
        "INSERT INTO device_state(dev, site, count, max_seq, last_seen) VALUES (?,?,?,?,?)", state
    )
    db.executemany(
        "INSERT INTO alarms(raised, kind, dev, seq, detail) VALUES (?,?,?,?,?)",
        [
            (
                now - rng.random() * 86400 * 30,
                rng.choice(["conflict", "forward_held", "sold_after_stop"]),
                d[1],
                rng.randrange(1, per_dev),
                "generated",
            )
            for d in (rng.choice(devs) for _ in range(20_000))
        ],
    )
    db.executemany(
        "INSERT INTO quarantine(received, site, batch, reason, detail, payload, counts) "
        "VALUES (?,?,?,?,?,?,?)",
        [
            (
                now - rng.random() * 86400 * 30,
                f"S{rng.randrange(N_SITES):03d}",
                "b",
                "mixed",
                "generated",
                b"x" * 200,
                json.dumps({"schema": 3, "mac": 1}),
            )
            for _ in range(2_000)
        ],
    )
    db.executemany(
        "INSERT INTO site_status(site, received, status) VALUES (?,?,?)",
        [
            (
                f"S{s:03d}",
                now - rng.choice([5.0, 5.0, 5.0, 4000.0]),
                json.dumps({"depth": rng.randrange(0, 500), "oldest_age_s": rng.random() * 600}),
            )
            for s in range(N_SITES - 20)
        ],
    )
    db.execute("COMMIT")
    db.close()
    gen_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    st = SqliteStore(path)  # indexes, triggers, market projection of the stored records
    try:
        sites.import_sites(
            st.db,
            [
                {"site": f"S{s:03d}", "name": f"站点{s}", "district": f"3301{s % 10:02d}"}
                for s in range(N_SITES)
            ],
        )
    finally:
        st.close()
    registry = {
        "devices": {
            dev: {"key": "00" * 32, "type": typ, "site": site, "provisioned": 0}
            for site, dev, typ in devs
            + [(f"S{N_SITES + i:03d}", f"NEW-{i}", "gateway") for i in range(50)]
        },
        "version": 1,
    }
    (path.parent / "devices.json").write_text(json.dumps(registry))
    return {
        "records": per_dev * len(devs),
        "devices": len(devs),
        "generate_s": round(gen_s, 1),
        "open_store_s": round(time.perf_counter() - t1, 1),
    }


def timed(fn: Callable[[], Any], repeat: int) -> str:
    """Median wall and CPU ms of ``repeat`` runs (the machine may be shared: CPU time is
    what the query costs, wall what a user waited)."""
    fn()  # warm the page cache
    wall, cpu = [], []
    for _ in range(repeat):
        t, c = time.perf_counter(), time.process_time()
        fn()
        wall.append((time.perf_counter() - t) * 1000)
        cpu.append((time.process_time() - c) * 1000)
    return f"{statistics.median(wall):.1f} wall / {statistics.median(cpu):.1f} cpu"


def measure(path: Path, repeat: int) -> dict[str, Any]:
    from hostlib.registry import Registry

    reg = Registry(path.parent / "devices.json")
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    district = sites.in_district(db, "330101")
    out: dict[str, Any] = {
        "fleet": timed(lambda: fleet.fleet(db, reg), repeat),
        "fleet_district": timed(lambda: fleet.fleet(db, reg, sites=district), repeat),
        "device_detail": timed(lambda: fleet.device_detail(db, reg, "ELE-S002-0"), repeat),
        "alarms": timed(lambda: alarms.list_alarms(db, registry=reg.devices()), repeat),
        "alarms_district_unacked": timed(
            lambda: alarms.list_alarms(db, sites=district, acknowledged=False), repeat
        ),
        "alarms_kind_page_50": timed(
            lambda: alarms.list_alarms(db, kind="conflict", offset=5000), repeat
        ),
        "quarantine": timed(lambda: alarms.list_quarantine(db, reason="mac"), repeat),
        "recall_hot_batch": timed(lambda: recalls.recall(db, HOT_BATCH), repeat),
        "recall_csv": timed(lambda: recalls.recall_csv(recalls.recall(db, HOT_BATCH)), repeat),  # type: ignore[arg-type]
        "cylinder_refusals": timed(lambda: cylinders.refusals(db), repeat),
        "cylinders_held": timed(lambda: cylinders.held(db), repeat),
        "elevator_faults": timed(lambda: elevators.fleet_faults(db), repeat),
        "elevator_faults_100": timed(lambda: elevators.fleet_faults(db, limit=100), repeat),
    }
    hot = recalls.recall(db, HOT_BATCH)
    db.close()
    out["hot_batch_lines"] = hot.totals.lines if hot else 0
    out.update(measure_api(path, repeat))
    return out


def measure_api(path: Path, repeat: int) -> dict[str, Any]:
    from fastapi.testclient import TestClient

    from collector.api import ApiContext, make_app
    from collector.tokens import TokenStore

    st = SqliteStore(path)
    try:
        _, token = TokenStore(st.db).create(
            "admin", "all", "bench", audit.Actor("bench", "admin", "local")
        )
    finally:
        st.close()
    client = TestClient(make_app(ApiContext(path, registry_path=path.parent / "devices.json")))
    h = {"Authorization": f"Bearer {token}"}

    def get(url: str) -> Callable[[], Any]:
        def run() -> Any:
            r = client.get(url, headers=h)
            assert r.status_code == 200, (url, r.status_code, r.text[:200])
            return r

        return run

    return {
        "api_fleet": timed(get("/fleet"), repeat),
        "api_fleet_sites_only": timed(get("/fleet?devices=false"), repeat),
        "api_device": timed(get("/fleet/devices/ELE-S002-0"), repeat),
        "api_alarms": timed(get("/alarms"), repeat),
        "api_quarantine": timed(get("/quarantine"), repeat),
        "api_recall": timed(get(f"/markets/batches/{HOT_BATCH}/recall"), repeat),
        "api_recall_csv": timed(get(f"/markets/batches/{HOT_BATCH}/recall.csv"), repeat),
        "api_cylinders_refused": timed(get("/cylinders/refused"), repeat),
        "api_elevator_faults": timed(get("/elevators/faults"), repeat),
        "api_devices": timed(get("/devices"), repeat),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--keep", type=Path, help="build the store here and keep it")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = args.keep or Path(tmp) / "collector.sqlite"
        if args.keep and path.exists():
            t = time.perf_counter()
            SqliteStore(path).close()  # a store of an older version: its new tables, indexes
            info: dict[str, Any] = {"reused": str(path), "open_store_s": time.perf_counter() - t}
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            info = generate(path, args.records)
        info.update(measure(path, args.repeat))
    for k, v in info.items():
        print(f"{k:28} {v}")
    print(json.dumps(info))


if __name__ == "__main__":
    main()
