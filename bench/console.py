"""Every console page and every JSON route of the regulator's API, timed on a store of
1,000,000 records (target: under 200 ms each).

The store (cached in build/bench/, ``--rebuild`` to make it again) holds ``--sites`` sites
of 6 terminals and a gateway each, plus devices provisioned but never seen, a sites
registry, agent reports and an admin token. Its records are of two parts:

* **live**: ``--live`` records made and signed as the simulated terminals make them and
  committed through ``SqliteStore.commit`` with the market projection (stock, stop flags,
  alarms), so batches, sales, faults and refusals are real;
* **history**: the rest, copies of real records of the same devices with earlier sequence
  numbers and capture times spread over the previous 30 days, inserted in bulk with SQL
  (and not projected again: the market tables reflect the live part).

Each route is requested in-process through the whole app (ASGI, auth, template) ``--runs``
times after a warm-up; printed: median ms per route and its ratio to the baseline, a
``SELECT 1`` route behind the same token check measured in the same run. Last line: JSON.

    python bench/console.py                # 1,000,000 records
    python bench/console.py --records 200000 --runs 5
"""

from __future__ import annotations

import argparse
import json
import random
import re
import secrets
import sqlite3
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchlib import emit
from fastapi import Depends
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from collector import access, audit, markets, sites
from collector.api import ApiContext, make_app
from collector.store import SqliteStore
from collector.verify import Good
from hostlib.registry import FAMILY_OF_TYPE, Device, add_devices
from hostlib.sqlite import open_ro
from simulators.records import make_body, pick_kind
from traceedge.provision import new_device
from wire.canonical import canonical
from wire.envelope import make_record

ROOT = Path(__file__).resolve().parent.parent
TYPES = ("cylinder-reader", "elevator-box", "market-scale")
DAY_MS = 86_400_000
CLI = audit.Actor("cli:bench", "admin", "local")
TARGET_MS = 200.0


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _good(d: Device, seq: int, kind: str, ts: int, rng: random.Random) -> Good:
    body = make_body(kind, rng, d.dev, seq, d.site, now_ms=ts)
    rec = make_record(d.dev, seq, 1, kind, ts, "ntp", body, d.key)
    return Good(d.dev, seq, kind, ts, str(rec["mac"]), canonical(rec).decode())


def build(path: Path, registry: Path, n_sites: int, records: int, live: int) -> None:
    rng = random.Random(11)
    site_codes = [f"B{i:04d}" for i in range(n_sites)]
    devices = [new_device(t, s) for s in site_codes for t in TYPES for _ in range(2)]
    gateways = [new_device("gateway", s) for s in site_codes]
    never = [new_device(TYPES[i % 3], site_codes[i % n_sites]) for i in range(n_sites // 5)]
    add_devices(registry, devices + gateways + never, int(time.time()))
    history = max(0, records - live)
    per_dev_hist = history // len(devices)
    per_dev_live = max(1, live // len(devices))
    now = int(time.time() * 1000)
    store = SqliteStore(path)
    db = store.db
    for trigger in ("market_feed_entry", "market_feed_settlement"):
        db.execute(f"DROP TRIGGER IF EXISTS {trigger}")
    # bulk insert first, index after: the secondary indexes on records are made again below
    indexes = db.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'records' "
        "AND sql IS NOT NULL"
    ).fetchall()
    for name, _ in indexes:
        db.execute(f"DROP INDEX {name}")
    db.execute("PRAGMA cache_size = -262144")
    # --- history: real records of each device, copied with earlier seqs and times
    t0 = time.perf_counter()
    templates: dict[str, list[dict[str, Any]]] = {}
    for d in devices:
        fam = FAMILY_OF_TYPE[d.type]
        kinds = [pick_kind(fam, rng) for _ in range(8)]
        templates[d.dev] = [
            json.loads(_good(d, i + 1, k, now - 30 * DAY_MS, rng).text) for i, k in enumerate(kinds)
        ]
    received = time.time() - 30 * 86400
    rows: list[tuple[Any, ...]] = []
    done = 0
    db.execute("BEGIN")
    for seq in range(1, per_dev_hist + 1):
        ts = now - 30 * DAY_MS + int(seq / max(per_dev_hist, 1) * 29 * DAY_MS)
        for d in devices:
            rec = dict(templates[d.dev][seq % 8], seq=seq, ts=ts, mac=secrets.token_hex(16))
            text = json.dumps(rec, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
            rows.append((d.dev, seq, rec["kind"], ts, d.site, rec["mac"], received, text))
        if len(rows) >= 50_000:
            db.executemany(
                "INSERT INTO records(dev, seq, kind, ts, site, mac, received, rec) "
                "VALUES (?,?,?,?,?,?,?,?)",
                rows,
            )
            done += len(rows)
            rows = []
            log(f"  history {done} records ({time.perf_counter() - t0:.0f} s)")
    if rows:
        db.executemany(
            "INSERT INTO records(dev, seq, kind, ts, site, mac, received, rec) "
            "VALUES (?,?,?,?,?,?,?,?)",
            rows,
        )
    # history counts as applied to the market tables (no stock, no alarms from it): its ids
    # go into market_feed with the projection's triggers off, then the triggers come back
    db.execute(
        "INSERT INTO market_feed(id) SELECT id FROM records "
        "WHERE kind IN ('market.entry', 'market.settlement')"
    )
    db.execute(
        "INSERT INTO device_state(dev, site, count, max_seq, last_seen) "
        "SELECT dev, site, COUNT(*), MAX(seq), MAX(received) FROM records GROUP BY dev"
    )
    db.execute("UPDATE counters SET value = (SELECT COUNT(*) FROM records) WHERE name = 'stored'")
    db.execute("COMMIT")
    t1 = time.perf_counter()
    for _, sql in indexes:
        db.execute(sql)
    log(f"  indexes made again in {time.perf_counter() - t1:.0f} s")
    markets.ensure_schema(db)  # the triggers again
    log(f"history: {per_dev_hist * len(devices)} records in {time.perf_counter() - t0:.0f} s")
    # --- live: made and committed as the collector does, projected
    t0 = time.perf_counter()
    by_site: dict[str, list[Good]] = {}
    for i in range(per_dev_live):
        for d in devices:
            seq = per_dev_hist + 1 + i
            ts = now - 3_600_000 + i * 3_600_000 // per_dev_live
            kind = pick_kind(FAMILY_OF_TYPE[d.type], rng)
            by_site.setdefault(d.site, []).append(_good(d, seq, kind, ts, rng))
    n = 0
    for site, goods in by_site.items():
        for i in range(0, len(goods), 2000):
            store.commit(site, f"live-{n}", goods[i : i + 2000], [])
            n += 1
    log(f"live: {sum(map(len, by_site.values()))} records in {time.perf_counter() - t0:.0f} s")
    # --- registries, agent reports, a few stops and quarantined batches
    market_of = dict(
        db.execute(
            "SELECT site, json_extract(rec, '$.body.market') FROM records "
            "WHERE kind = 'market.entry' GROUP BY site"
        ).fetchall()
    )
    sites.import_sites(
        db,
        [
            {
                "site": s,
                "name": f"市场{i}",
                "district": f"3301{i % 10:02d}",
                "kind": "market",
                "market": market_of.get(s),
            }
            for i, s in enumerate(site_codes)
        ],
    )
    for i, s in enumerate(site_codes):
        store.site_status(s, {"depth": i % 7 * 10, "oldest_age_s": float(i % 7), "updated_at": 0})
    batches = [r[0] for r in db.execute("SELECT batch_id FROM market_batches LIMIT 20")]
    for b in batches[:10]:
        markets.stop_trading(db, b, "bench")
    for i in range(200):
        store.quarantine_payload(site_codes[i % n_sites], "mac", f"bad record {i}", b"x" * 200)
    store.close()


def busiest(db: sqlite3.Connection) -> str:
    return str(
        db.execute(
            "SELECT batch_id FROM market_lines GROUP BY batch_id ORDER BY COUNT(*) DESC LIMIT 1"
        ).fetchone()[0]
    )


def samples(db: sqlite3.Connection) -> dict[str, str]:
    """A value for each path parameter of the routes."""
    dev, seq = db.execute("SELECT dev, max_seq FROM device_state ORDER BY dev LIMIT 1").fetchone()
    trace = db.execute(
        "SELECT trace_id FROM market_lines WHERE trace_id IS NOT NULL LIMIT 1"
    ).fetchone()[0]
    reg = db.execute(
        "SELECT json_extract(rec, '$.body.reg') FROM records WHERE kind = 'elevator.fault' "
        "ORDER BY id DESC LIMIT 1"
    ).fetchone()[0]
    cyl = db.execute(
        "SELECT json_extract(rec, '$.body.cyl') FROM records WHERE kind = 'cylinder.check' "
        "ORDER BY id DESC LIMIT 1"
    ).fetchone()[0]
    alarm = db.execute("SELECT MAX(id) FROM alarms").fetchone()[0] or 1
    quarantine = db.execute("SELECT MAX(id) FROM quarantine").fetchone()[0] or 1
    return {
        "dev": str(dev),
        "seq": str(seq),
        "trace_code": str(trace),
        "batch_id": busiest(db),
        "reg": str(reg),
        "cyl": str(cyl),
        "alarm_id": str(alarm),
        "entry_id": str(quarantine),
        "gtin": "06901234567892",
        "lot": "LOT1",
    }


def api_routes(routes: list[Any]) -> list[APIRoute]:
    """The routes of an app, those of included routers too (FastAPI keeps them nested)."""
    out: list[APIRoute] = []
    for r in routes:
        if isinstance(r, APIRoute):
            out.append(r)
        elif hasattr(r, "original_router"):
            out += api_routes(r.original_router.routes)
    return out


def routes(app: Any, values: dict[str, str]) -> list[str]:
    """Every GET route with its path parameters filled (those that cannot be are left out)."""
    out = []
    for r in api_routes(app.routes):
        if not r.methods or "GET" not in r.methods:
            continue
        names = re.findall(r"{(\w+)(?::\w+)?}", r.path)
        if any(n not in values for n in names) or r.path.startswith(("/docs", "/static")):
            continue
        path = r.path
        for n in names:
            path = re.sub(r"{" + n + r"(?::\w+)?}", values[n], path)
        out.append(path)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--live", type=int, default=30_000, help="records made and projected")
    ap.add_argument("--sites", type=int, default=100)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--dir", type=Path, default=ROOT / "build" / "bench")
    ap.add_argument("--rebuild", action="store_true")
    args = ap.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    path = args.dir / f"console-{args.records}.sqlite"
    registry = args.dir / f"console-{args.records}-devices.json"
    if args.rebuild or not path.exists():
        for p in (path, registry, Path(f"{path}-wal"), Path(f"{path}-shm")):
            p.unlink(missing_ok=True)
        log(f"building a store of {args.records} records in {path} ...")
        build(path, registry, args.sites, args.records, args.live)
    st = SqliteStore(path)  # schema of this version (indexes added since the build)
    token = access.TokenStore(st.db).create("admin", "all", "bench", CLI)[1]
    st.close()
    with open_ro(path) as db:
        n_records = db.execute("SELECT COUNT(*) FROM records").fetchone()[0]
        values = samples(db)
    app = make_app(ApiContext(path, registry_path=registry))

    @app.get("/bench/select1")
    def select1(p: access.Principal = Depends(access.require("read:fleet"))) -> dict[str, int]:  # noqa: B008
        with open_ro(path) as db:
            return {"one": int(db.execute("SELECT 1").fetchone()[0])}

    client = TestClient(app)
    client.headers["Authorization"] = f"Bearer {token}"
    client.cookies.set("te_token", token)
    urls = ["/bench/select1", *routes(app, values), f"/console/recall/{values['batch_id']}.csv"]
    urls = [u for u in urls if u != "/bench/select1"]
    timings: dict[str, float] = {}
    status: dict[str, int] = {}

    def timed(url: str) -> float:
        r = client.get(url)  # warm-up, and the status check
        status[url] = r.status_code
        if r.status_code >= 400:
            log(f"  {url}: HTTP {r.status_code} {r.text[:200]}")
        ms = []
        for _ in range(args.runs):
            t0 = time.perf_counter()
            client.get(url)
            ms.append((time.perf_counter() - t0) * 1000)
        return statistics.median(ms)

    base = timed("/bench/select1")
    for url in urls:
        timings[url] = timed(url)
    print(f"store: {n_records} records; baseline (SELECT 1 through the app): {base:.1f} ms")
    print(f"{'route':64} {'HTTP':>4} {'median ms':>10} {'x base':>8}")
    for url, ms in sorted(timings.items(), key=lambda kv: -kv[1]):
        flag = "  OVER" if ms > TARGET_MS else ""
        print(f"{url[:64]:64} {status[url]:4} {ms:10.1f} {ms / base:8.1f}{flag}")
    slowest = max(timings, key=lambda u: timings[u])
    emit(
        {
            "records": n_records,
            "routes": len(timings),
            "baseline_ms": round(base, 2),
            "slowest_route": slowest,
            "slowest_ms": round(timings[slowest], 1),
            "over_200ms": sorted(u for u, ms in timings.items() if ms > TARGET_MS),
            "median_ms": {u: round(ms, 1) for u, ms in timings.items()},
        }
    )


if __name__ == "__main__":
    main()
