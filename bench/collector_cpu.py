"""Collector CPU per record, by stage, for this tree and a baseline tree, in one run.

The same signed records, cut into the same batches, are verified and committed by the
collector code of two trees, each imported in a subprocess with ``PYTHONPATH`` set to it
(the baseline: a git worktree of an older commit, e.g.
``git worktree add /tmp/cpu-base <commit>``). Rounds alternate between the trees and the
least CPU time of each stage is kept: on a shared machine other work only ever adds to it.

Stages (process CPU time over records, µs):

- ``decode``: bytes to values: inflate and parse the batch (baseline: ``json``; this tree:
  the UTF-8 and limit checks, msgspec cutting the batch into each record's bytes);
- ``schema``: envelope and body checked (baseline: ``check_envelope`` and the compiled
  JSON Schema; this tree: the typed msgspec decode of each record, parse included);
- ``verify``: the bytes the MAC covers and the MAC (baseline: the canonical re-encoding;
  this tree: the received bytes, once found canonical) and its comparison;
- ``store``: ``SqliteStore.commit`` of each verified batch;
- ``total``: ``verify_batch`` then ``commit``, as the collector runs them (the stages above
  plus the registry lookups and the records the store is handed).

    python bench/collector_cpu.py --baseline-tree /tmp/cpu-base [--records 20000] [--profile 25]

Prints human lines, then one JSON object on the last line.
"""

from __future__ import annotations

import argparse
import json
import os
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
STAGES = ("decode", "schema", "verify", "store", "total")


# ---- the worker: runs in the tree under test -------------------------------------------------


def _read_batches(path: Path) -> list[bytes]:
    data = path.read_bytes()
    out, i = [], 0
    while i < len(data):
        (n,) = struct.unpack_from(">I", data, i)
        out.append(data[i + 4 : i + 4 + n])
        i += 4 + n
    return out


def worker(args: argparse.Namespace) -> None:
    import cProfile
    import gc
    import hmac
    import pstats

    import collector.verify as cv
    from collector.store import SqliteStore
    from hostlib.registry import Registry
    from wire.envelope import check_envelope, unsigned
    from wire.mac import hmac_sha256
    from wire.schemas import default_validator

    site = args.site
    batches = _read_batches(Path(args.batches))
    registry = Registry(args.registry)
    validator = default_validator()
    fast = hasattr(cv, "_cut_batch")
    max_bytes = 1 << 24
    clock = time.process_time

    # decode
    t0 = clock()
    if fast:
        heads = [cv._cut_batch(p, 16 * max_bytes) for p in batches]
        assert all(h is not None for h in heads)
        raws = [bytes(r) for h in heads if h is not None for r in h.recs]
    else:
        from wire.batch import decode_batch

        objs = [decode_batch(p, 16 * max_bytes, parse_float=cv._Float) for p in batches]
        recs: list[Any] = [r for o in objs for r in o["recs"]]  # type: ignore[attr-defined]
    t_decode = clock() - t0
    n = len(raws) if fast else len(recs)

    # schema
    t0 = clock()
    if fast:
        typed = cv.typed_records(validator)
        decoded = [typed.decode(r) for r in raws]
    else:
        for r in recs:
            check_envelope(r)
            validator.validate(r["kind"], r["body"], floats_possible=False)
    t_schema = clock() - t0

    # verify: the signed bytes and the MAC
    keys = {d: dev.key_for(1) for d, dev in registry.devices().items()}
    ok = 0
    t0 = clock()
    if fast:
        for raw, rec in zip(raws, decoded, strict=True):
            data = typed.signed_bytes(raw, rec)
            assert data is not None
            ok += hmac.compare_digest(cv.HMAC.hexdigest(keys[rec.dev], data), rec.mac)
    else:
        from wire.canonical import canonical_trusted

        for r in recs:
            data = canonical_trusted(unsigned(r))
            ok += hmac.compare_digest(hmac_sha256(keys[r["dev"]], data).hex(), str(r["mac"]))
    t_verify = clock() - t0
    assert ok == n, f"{n - ok} MACs failed"

    # total, as the collector runs it; the store's share timed within. What the stages kept
    # goes first: a collector holds one batch at a time, and the garbage collector's passes
    # cost in proportion to what is alive.
    if fast:
        del heads, raws, decoded
    else:
        del objs, recs
    gc.collect()
    store = SqliteStore(Path(args.store), project_inline=False)
    prof = cProfile.Profile() if args.profile else None
    t_store = 0.0
    stored = 0
    t0 = clock()
    if prof:
        prof.enable()
    for p in batches:
        vb = cv.verify_batch(site, p, registry, validator, max_bytes)
        s0 = clock()
        res = store.commit(vb.site, vb.batch_id, vb.good, vb.bad)
        t_store += clock() - s0
        stored += res.stored
    if prof:
        prof.disable()
    t_total = clock() - t0
    store.close()
    assert stored == n, f"stored {stored} of {n}"
    if prof:
        st = pstats.Stats(prof, stream=sys.stderr)
        st.sort_stats("tottime").print_stats(args.profile)
    us = {
        "decode": t_decode,
        "schema": t_schema,
        "verify": t_verify,
        "store": t_store,
        "total": t_total,
    }
    print(json.dumps({"records": n, "fast": fast, **{k: v / n * 1e6 for k, v in us.items()}}))


# ---- the driver -------------------------------------------------------------------------------


def _prepare(root: Path, records: int, batch_records: int) -> tuple[Path, Path, str]:
    sys.path.insert(0, str(HERE.parent))
    from benchlib import SITE, make_devices, make_records

    from hostlib.registry import load_identity
    from traceedge.provision import site_trust
    from wire.batch import encode_batch

    registry = root / "devices.json"
    devices = make_devices(registry)
    gw = load_identity(site_trust(root, registry, SITE).identity).dev
    raw = [r for *_, r in make_records(devices, records)]
    path = root / "batches.bin"
    with path.open("wb") as f:
        for i in range(0, len(raw), batch_records):
            payload = encode_batch(SITE, gw, f"b{i}", raw[i : i + batch_records])
            f.write(struct.pack(">I", len(payload)) + payload)
    return registry, path, SITE


def _run(
    tree: Path, root: Path, registry: Path, batches: Path, site: str, tag: str, profile: int
) -> dict[str, Any]:
    store = root / f"store-{tag}-{time.monotonic_ns()}.sqlite"
    env = dict(os.environ, PYTHONPATH=str(tree))
    cmd = [
        sys.executable,
        str(HERE),
        "--worker",
        "--registry",
        str(registry),
        "--batches",
        str(batches),
        "--store",
        str(store),
        "--site",
        site,
    ]
    if profile:
        cmd += ["--profile", str(profile)]
    out = subprocess.run(cmd, env=env, cwd=tree, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"worker in {tree} failed:\n{out.stderr[-4000:]}")
    if profile:
        print(f"--- profile of {tag} ({tree}), by own time ---\n{out.stderr}", file=sys.stderr)
    for suffix in ("", "-wal", "-shm"):
        Path(str(store) + suffix).unlink(missing_ok=True)
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        epilog="example: git worktree add /tmp/cpu-base 5ac9d6e && "
        "python bench/collector_cpu.py --baseline-tree /tmp/cpu-base",
    )
    ap.add_argument("--baseline-tree", type=Path, help="source tree of the baseline commit")
    ap.add_argument("--tree", type=Path, default=HERE.parent.parent, help="tree under test")
    ap.add_argument("--records", type=int, default=20_000)
    ap.add_argument("--batch-records", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds; least CPU kept")
    ap.add_argument("--profile", type=int, default=0, help="print the top N of a cProfile")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--registry", help=argparse.SUPPRESS)
    ap.add_argument("--batches", help=argparse.SUPPRESS)
    ap.add_argument("--store", help=argparse.SUPPRESS)
    ap.add_argument("--site", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args)
        return
    if args.baseline_tree is None:
        ap.error("--baseline-tree is required (a git worktree of the baseline commit)")
    base_tree, tree = args.baseline_tree.resolve(), args.tree.resolve()
    for t in (base_tree, tree):
        if not (t / "collector" / "verify.py").is_file():
            ap.error(f"{t} is not a traceedge source tree")
    with tempfile.TemporaryDirectory(prefix="bench-cpu-") as tmp:
        root = Path(tmp)
        print(f"generating {args.records} signed records ...", file=sys.stderr)
        registry, batches, site = _prepare(root, args.records, args.batch_records)
        best: dict[str, dict[str, float]] = {"baseline": {}, "this": {}}
        for rnd in range(args.rounds):
            for tag, t in (("baseline", base_tree), ("this", tree)):
                prof = args.profile if rnd == 0 else 0
                r = _run(t, root, registry, batches, site, tag, prof)
                print(
                    f"round {rnd + 1} {tag}: " + ", ".join(f"{k} {r[k]:.2f}" for k in STAGES),
                    file=sys.stderr,
                )
                for k in STAGES:
                    best[tag][k] = min(best[tag].get(k, float("inf")), r[k])
    load = os.getloadavg()[0]
    print(f"{'stage':8} {'baseline µs':>12} {'this µs':>10} {'ratio':>7}")
    for k in STAGES:
        b, t = best["baseline"][k], best["this"][k]
        print(f"{k:8} {b:12.2f} {t:10.2f} {t / b:7.3f}")
    print(f"load average (1 min) at the end: {load:.2f} on {os.cpu_count()} CPUs")
    result: dict[str, Any] = {
        "records": args.records,
        "rounds": args.rounds,
        **{f"baseline_{k}_us": round(best["baseline"][k], 3) for k in STAGES},
        **{f"{k}_us": round(best["this"][k], 3) for k in STAGES},
        **{f"{k}_ratio": round(best["this"][k] / best["baseline"][k], 3) for k in STAGES},
        "collector_cpu_us_per_record": round(best["this"]["total"], 3),
        "loadavg_1m": round(load, 2),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
