"""Sneakernet: a site offline for a month hands its outbox over by hand.

An agent outbox is filled with ``--records`` signed records (default 1,000,000) captured
over 30 days by ``--devices`` terminals; then, timed: ``export`` to a bundle, ``check`` +
``import`` into a collector SQLite store with the receipt signed, ``import-receipt``
freeing the outbox. The baseline, in the same run on the same disk: a raw copy (read,
write, fsync) of the bundle's bytes, as ``cp`` to a medium would do. Figures are records/s
and the ratio to that copy; peak RSS shows memory stays bounded.

    python bench/bundle.py                 # 1,000,000 records (several minutes)
    python bench/bundle.py --records 50000
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import tempfile
import time
from pathlib import Path

from collector.bundle_import import check_bundle, import_bundle, write_receipt
from collector.store import SqliteStore, read_summary
from collector.verify import verify_batch
from edge_agent.bundle import apply_receipt, export
from edge_agent.outbox import Incoming, Outbox
from hostlib.registry import FAMILY_OF_TYPE, Device, Registry, add_devices
from simulators.records import make_body, pick_kind
from traceedge.provision import new_device
from wire.batch import encode_batch
from wire.canonical import canonical
from wire.command import new_private_key, public_pem
from wire.envelope import make_record
from wire.schemas import default_validator

SITE = "BENCH1"
MONTH_MS = 30 * 24 * 3600 * 1000


def fill(outbox: Outbox, devices: list[Device], n: int) -> None:
    """``n`` signed records over a month, committed in groups (never all in memory)."""
    rng = random.Random(1)
    seqs = dict.fromkeys((d.dev for d in devices), 0)
    start = int(time.time() * 1000) - MONTH_MS
    group: list[Incoming] = []
    for i in range(n):
        d = devices[i % len(devices)]
        seqs[d.dev] += 1
        seq = seqs[d.dev]
        ts = start + i * MONTH_MS // n
        kind = pick_kind(FAMILY_OF_TYPE[d.type], rng)
        body = make_body(kind, rng, d.dev, seq, d.site, now_ms=ts)
        rec = canonical(make_record(d.dev, seq, 1, kind, ts, "ntp", body, d.key))
        group.append(Incoming(d.dev, seq, kind, rec))
        if len(group) == 5000:
            outbox.add_many(group)
            group = []
    if group:
        outbox.add_many(group)


def raw_copy(src: Path, dst: Path) -> float:
    """Seconds to copy ``src`` to ``dst`` in 1 MiB blocks and fsync it."""
    t0 = time.perf_counter()
    with open(src, "rb") as f, open(dst, "wb") as g:
        while block := f.read(1 << 20):
            g.write(block)
        g.flush()
        os.fsync(g.fileno())
    return time.perf_counter() - t0


def uplink_path(bundle: Path, n: int, gw: str, registry: Registry, store_path: Path) -> float:
    """Seconds to take the same records as uplink batches of 1,000 (what the link would
    have carried): encode, then the collector's ``verify_batch`` and ``commit``."""
    validator = default_validator()
    store = SqliteStore(store_path)
    batches = []
    with open(bundle, "rb") as f:
        f.readline()
        group: list[bytes] = []
        for _ in range(n):
            group.append(f.readline()[:-1])
            if len(group) == 1000:
                batches.append(encode_batch(SITE, gw, f"b{len(batches)}", group))
                group = []
        if group:
            batches.append(encode_batch(SITE, gw, f"b{len(batches)}", group))
    t0 = time.perf_counter()
    for payload in batches:
        vb = verify_batch(SITE, payload, registry, validator, 1 << 26)
        store.commit(vb.site, vb.batch_id, vb.good, vb.bad)
    took = time.perf_counter() - t0
    store.close()
    return took


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--devices", type=int, default=40)
    args = ap.parse_args()
    n = args.records
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        per = max(1, args.devices // 3)
        devices = [
            new_device(t, SITE)
            for t in ("cylinder-reader", "elevator-box", "market-scale")
            for _ in range(per)
        ]
        gateway = new_device("gateway", SITE)
        add_devices(root / "devices.json", [*devices, gateway], int(time.time()))
        registry = Registry(root / "devices.json")
        key = new_private_key()
        (root / "command.pub").write_bytes(public_pem(key))
        outbox = Outbox(root / "outbox.sqlite", 1024**4)
        t0 = time.perf_counter()
        fill(outbox, devices, n)
        print(
            f"outbox: {n} records of {len(devices)} terminals over 30 days, "
            f"{outbox.bytes / 1e6:.0f} MB, filled in {time.perf_counter() - t0:.0f} s"
        )

        t0 = time.perf_counter()
        ex = export(outbox, SITE, gateway, root / "usb")
        t_export = time.perf_counter() - t0
        t_copy = raw_copy(ex.path, root / "copy.bundle")
        (root / "copy.bundle").unlink()

        store = SqliteStore(root / "collector.sqlite")
        t0 = time.perf_counter()
        checked = check_bundle(ex.path, registry)
        t_check = time.perf_counter() - t0
        t0 = time.perf_counter()
        res = import_bundle(checked, store, registry, default_validator(), key)
        t_import = time.perf_counter() - t0
        write_receipt(root / "r.receipt", res.receipt)
        store.close()
        stored = read_summary(root / "collector.sqlite")["records"]

        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        # the baseline holds its batches in memory: measured after the peak RSS above
        t_uplink = uplink_path(ex.path, n, gateway.dev, registry, root / "uplink.sqlite")
        (root / "uplink.sqlite").unlink()

        t0 = time.perf_counter()
        freed = apply_receipt(outbox, root / "r.receipt", SITE, gateway, root / "command.pub")
        t_free = time.perf_counter() - t0
        left = outbox.depth()[0]
        outbox.close()

        def rate(t: float) -> str:
            return f"{n / t:>10,.0f} records/s ({t:6.1f} s)"

        print(f"bundle: {ex.bytes / 1e6:.0f} MB, {ex.devices} devices")
        print(f"raw copy of the bundle  {rate(t_copy)}  baseline")
        print(f"export                  {rate(t_export)}  {t_copy / t_export:.2f} x raw copy")
        print(f"import: check           {rate(t_check)}  {t_copy / t_check:.2f} x raw copy")
        print(f"import: verify + store  {rate(t_import)}  {t_copy / t_import:.2f} x raw copy")
        print(
            f"same records as uplink batches (verify_batch + commit, the MQTT path) "
            f"{rate(t_uplink)}: import is {t_uplink / t_import:.2f} x that"
        )
        print(f"import-receipt (free)   {rate(t_free)}")
        print(
            f"stored {stored}, duplicates {res.duplicates}, quarantined {res.bad}, "
            f"confirmed {res.confirmed}, freed {freed.freed}, left in outbox {left} "
            "(nothing for the uplink to send again)"
        )
        print(f"peak RSS through export, import and receipt {rss:.0f} MB")
        assert stored == n and res.confirmed == n and freed.freed == n and left == 0


if __name__ == "__main__":
    main()
