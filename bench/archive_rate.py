"""Retention: how fast ``collector archive`` moves records, and what a lookup in the archive
costs (absolute figures on this machine; no baseline: nothing did this before).

200,000 elevator status records of 40 devices on 5 sites over 47 days are stored, forwarded
(the store's own calls), then archived; then one record and one trace code are looked up.

    python bench/archive_rate.py
"""

from __future__ import annotations

import resource
import tempfile
import time
from pathlib import Path

from collector.archive import run
from collector.archive.lookup import ArchiveReader
from collector.archive.source import SqliteArchiveSource
from collector.store import SqliteStore
from collector.verify import Good

DAY0 = 1_763_856_000_000 + 16 * 3_600_000  # 2025-11-24 00:00 China time
BODY = '{"door":"closed","floor":3,"load_kg":120,"running":false,"speed_mm_s":0}'


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        st = SqliteStore(Path(tmp) / "s.sqlite", project_inline=False)
        n = 0
        for b in range(200):
            gs = []
            for _ in range(1000):
                n += 1
                dev, seq, ts, mac = f"EL-{n % 40}", n // 40 + 1, DAY0 + n * 20_000, f"{n:064x}"
                text = (
                    f'{{"body":{BODY},"boot":1,"dev":"{dev}","kind":"elevator.status",'
                    f'"mac":"{mac}","seq":{seq},"tq":"ntp","ts":{ts},"v":2}}'
                )
                gs.append(Good(dev, seq, "elevator.status", ts, mac, text))
            st.commit(f"S00{b % 5}", f"b{b}", gs, [])
        while (fb := st.claim_forward(5000, 60)) is not None:
            st.forwarded(fb, fb.ids)
        root = Path(tmp) / "archive"
        t0 = time.monotonic()
        s = run.run(SqliteArchiveSource(st), root, run.cutoff_ms(int(time.time() * 1000), 30))
        wall = time.monotonic() - t0
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(
            f"archive: {s.rows} records -> {len(s.files)} files, {s.bytes / 1e6:.1f} MB, "
            f"freed {s.freed}: {wall:.1f} s, {s.rows / wall:.0f} records/s; max RSS {rss:.0f} MB"
        )
        reader = ArchiveReader(root)
        t0 = time.monotonic()
        reader.record("EL-7", 1000)
        t1 = time.monotonic()
        reader.record("EL-7", 2000)
        t2 = time.monotonic()
        reader.find("market.settlement", "trace_id", "12345678901234567890")
        t3 = time.monotonic()
        print(
            f"lookup: a record {t1 - t0:.2f} s the first time (sha256 of every file), "
            f"{t2 - t1:.2f} s after; a trace code {t3 - t2:.2f} s"
        )
        st.close()


if __name__ == "__main__":
    main()
