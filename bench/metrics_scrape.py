"""One ``/metrics`` scrape of a collector store of N records (default 1,000,000).

The store is made by the collector's own schema (every index and trigger) and filled with
SQL in one statement per table (records of 500 sites x 6 devices, each with a status
report, a quarantine of bounded size, a forward backlog of 100,000 records pending), so
making it takes seconds. Prints the median of 7 scrapes; last line: one JSON object.

    python bench/metrics_scrape.py --records 1000000
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchlib import emit

from collector.api_metrics import render
from collector.store import SqliteStore

SITES = 500
DEVICES_PER_SITE = 6


class Ctx:
    def __init__(self, path: Path) -> None:
        self.store_path = path
        self.dead_workers = None
        self.live = None


def make_store(path: Path, n: int) -> float:
    t0 = time.perf_counter()
    store = SqliteStore(path)
    devs = SITES * DEVICES_PER_SITE
    now = time.time()
    with store.atomic() as db:
        db.execute(
            "WITH RECURSIVE c(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM c WHERE i + 1 < ?) "
            "INSERT INTO records(dev, seq, kind, ts, site, mac, received, rec) "
            "SELECT printf('D%05d', i % ?), i / ? + 1, 'elevator.status', 1700000000000 + i, "
            "printf('S%03d', (i % ?) / ?), printf('%064x', i), ? - (? - i) * 0.01, "
            "json_object('v', 1, 'dev', printf('D%05d', i % ?), 'seq', i / ? + 1, "
            "'kind', 'elevator.status', 'body', json_object('state', 'idle', 'floor', i % 20)) "
            "FROM c",
            (n, devs, devs, devs, DEVICES_PER_SITE, now, n, devs, devs),
        )
        db.execute(
            "INSERT INTO device_state(dev, site, count, max_seq, last_seen) "
            "SELECT dev, site, COUNT(*), MAX(seq), MAX(received) FROM records GROUP BY dev"
        )
        for s in range(SITES):
            status = {"depth": s % 7, "oldest_age_s": s % 90, "alarm_outbox_full": 0}
            db.execute(
                "INSERT INTO site_status(site, received, status) VALUES (?, ?, ?)",
                (f"S{s:03d}", now - s % 30, json.dumps(status)),
            )
        db.execute("UPDATE counters SET value = ? WHERE name = 'stored'", (n,))
        db.execute("UPDATE counters SET value = ? WHERE name = 'forwarded'", (max(0, n - 100_000),))
        db.execute(
            "UPDATE meta SET value = ? WHERE name = 'forward_cursor'", (str(max(0, n - 50_000)),)
        )
        db.execute(
            "INSERT INTO forward_batches(key, lo, hi, n, created, claimed_until) "
            "VALUES ('k', ?, ?, 50000, ?, ?)",
            (max(1, n - 99_999), max(1, n - 50_000), now, now + 30),
        )
    for i in range(2000):  # a quarantine of 2,000 rows of 16 KiB
        store.quarantine_payload(f"S{i % SITES:03d}", "mac", "bad", b"x" * 16384)
    store.close()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=1_000_000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "collector.sqlite"
        made = make_store(path, args.records)
        ctx = Ctx(path)
        times = []
        body = b""
        for _ in range(7):
            t0 = time.perf_counter()
            body = render(ctx)
            times.append(time.perf_counter() - t0)
        emit(
            {
                "records": args.records,
                "sites": SITES,
                "store_made_s": round(made, 1),
                "store_mib": round(path.stat().st_size / 2**20),
                "scrape_ms_median": round(statistics.median(times) * 1000, 1),
                "scrape_ms_max": round(max(times) * 1000, 1),
                "scrape_bytes": len(body),
            }
        )


if __name__ == "__main__":
    main()
