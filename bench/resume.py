"""Resume: after a central-broker outage with a backlog in the agent's outbox, seconds from
the broker's start to the first record stored, for each order in which the agent and the
collectors reconnect; the same on a baseline tree (the code of main at the branch point,
a git worktree) in the same run, side by side, so both see the same machine load.

Each tree gets its own chain of real processes: a site broker and a central Mosquitto on
free ports, the agent and ``--collectors`` collectors (``traceedge ... run``, that tree's
code), a simulated fleet publishing the backlog while the central broker is down. Per run:
stop the central broker, let the fleet fill the outbox, start the broker after
``--outage-s``, and time the first record the collectors' store holds. The order:

* ``agent-first``: the collectors are held (SIGSTOP) until the agent's TCP connection to the
  broker is up and 0.2 s more (its batches went out, to nobody), then let go (SIGCONT).
* ``collectors-first``: the agent is held until every collector is connected + 0.2 s.
* ``together``: nobody is held.

Also: the load split between the collectors (batches each took, from their heartbeats) in
each run, and that every record generated is stored exactly once. Last line: one JSON
object.

    python bench/resume.py --baseline-tree /work/wt/resume-base            # 30 s, 5 runs
    python bench/resume.py --outage-s 10 --runs 3 --orders agent-first     # a quick look
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchlib import SITE, emit, make_devices

from hostlib.mqttlink import BrokerSettings
from hostlib.registry import Device
from simulators.fleet import Fleet
from traceedge.brokers import Broker, connected, free_port
from traceedge.launch import agent_config, collector_config
from traceedge.lifeline import die_with_parent
from traceedge.provision import site_trust

ORDERS = ("agent-first", "collectors-first", "together")
HOLD_AFTER_S = 0.2  # the held side is let go this long after the other one connected
HERE = Path(__file__).resolve().parent.parent


class Proc:
    """``traceedge <role> run`` from one source tree, logging to a file."""

    def __init__(self, tree: Path, role: str, config: Path, log: Path) -> None:
        self.tree, self.role, self.config, self.log = tree, role, config, log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Proc:
        env = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONPATH=str(self.tree))
        cmd = [sys.executable, "-m", "traceedge", self.role, "run", "--config", str(self.config)]
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                cmd,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=self.tree,
                start_new_session=True,
                preexec_fn=die_with_parent(),
            )
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def signal(self, sig: int) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)  # a held process cannot act on SIGTERM
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def stored(db: sqlite3.Connection) -> int:
    try:
        # fetchall: a statement left unfinished keeps its read snapshot, forever
        rows = db.execute("SELECT value FROM counters WHERE name = 'stored'").fetchall()
    except sqlite3.Error as exc:
        if os.environ.get("DEBUG"):
            print("stored:", exc, file=sys.stderr)
        return 0
    return int(rows[0][0]) if rows else 0


def batches_by_collector(store: Path) -> dict[str, int]:
    """Batches each collector process handled (its heartbeat, written every second)."""
    import json

    db = sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=5)
    try:
        rows = db.execute("SELECT name, value FROM meta WHERE name LIKE 'process:%'").fetchall()
    finally:
        db.close()
    return {name.split(":", 1)[1]: int(json.loads(v)["batches"]) for name, v in rows}


@dataclass
class Rig:
    """One tree's chain."""

    name: str
    tree: Path
    root: Path
    collectors: int
    batch_records: int
    devices: list[Device] = field(default_factory=list)
    procs: list[Proc] = field(default_factory=list)
    results: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def setup(self) -> None:
        r = self.root
        registry = r / "registry" / "devices.json"
        registry.parent.mkdir(parents=True)
        self.devices = make_devices(registry)
        trust = site_trust(r, registry, SITE)
        self.local = Broker("mosquitto", free_port(), r / "local").start()
        self.central = Broker("mosquitto", free_port(), r / "central").start()
        self.collector_procs = [
            Proc(
                self.tree,
                "collector",
                collector_config(
                    r / f"collector-{i}.toml",
                    r / "collector",
                    registry,
                    self.central.port,
                    None,
                    trust.command_key,
                    client_id=f"collector-{i}",
                ),
                r / f"collector-{i}.log",
            ).start()
            for i in range(self.collectors)
        ]
        acfg = agent_config(
            r / "agent.toml",
            SITE,
            r / "agent",
            self.local.port,
            self.central.port,
            devices=trust.agent_devices,
            identity=trust.identity,
            command_key=trust.command_pub,
            # the production defaults (launch's test config shortens them)
            uplink={
                "ack_timeout_s": 10.0,
                "backoff_initial_s": 0.2,
                "backoff_max_s": 5.0,
                "batch_records": self.batch_records,
            },
        )
        self.agent = Proc(self.tree, "agent", acfg, r / "agent.log").start()
        self.procs = [self.agent, *self.collector_procs]
        self.store = r / "collector" / "collector.sqlite"
        self.fleet = Fleet(BrokerSettings(port=self.local.port), self.devices, resend_after_s=10.0)
        deadline = time.monotonic() + 60
        while not (
            self.store.exists()
            and connected(self.agent.pid, self.central.port)
            and all(connected(c.pid, self.central.port) for c in self.collector_procs)
        ):
            if time.monotonic() > deadline:
                raise SystemExit(f"{self.name}: the chain did not come up; see {r}")
            time.sleep(0.1)
        time.sleep(1.0)
        self.db = sqlite3.connect(
            f"file:{self.store}?mode=ro", uri=True, timeout=5, check_same_thread=False
        )

    def run_once(self, order: str, outage_s: float, backlog: int) -> dict[str, Any]:
        before = stored(self.db)
        split0 = batches_by_collector(self.store)
        self.central.stop()
        down_at = time.monotonic()
        rate = backlog / max(outage_s * 0.5, 0.5)
        out = self.fleet.run(backlog, rate, drain_timeout_s=max(outage_s, 10.0))
        if out["pending"]:
            raise SystemExit(f"{self.name}: the agent did not take the backlog: {out}")
        if stored(self.db) != before:
            raise SystemExit(f"{self.name}: records were stored while the broker was down")
        rest = outage_s - (time.monotonic() - down_at)
        time.sleep(max(rest, 0.0))
        held = {"agent-first": self.collector_procs, "collectors-first": [self.agent]}.get(
            order, []
        )
        waiting_for = [p for p in self.procs if p not in held]
        for p in held:
            p.signal(signal.SIGSTOP)
        t0 = time.monotonic()
        self.central.start()
        first = None
        released = not held
        while True:
            now = time.monotonic()
            if not released and all(connected(p.pid, self.central.port) for p in waiting_for):
                time.sleep(HOLD_AFTER_S)
                for p in held:
                    p.signal(signal.SIGCONT)
                released = True
            n = stored(self.db)
            if first is None and n > before:
                first = now - t0
            if n >= before + backlog:
                drained = now - t0
                break
            if now - t0 > 120:
                raise SystemExit(f"{self.name}: {n - before} of {backlog} stored after 120 s")
            time.sleep(0.005)
        time.sleep(2.2)  # two heartbeats: every collector's count is written
        split1 = batches_by_collector(self.store)
        split = {k: split1.get(k, 0) - split0.get(k, 0) for k in sorted(split1)}
        total = stored(self.db)
        generated = self.fleet.stats.generated
        return {
            "first_s": round(first or 0.0, 3),
            "drained_s": round(drained, 3),
            "split": split,
            "exactly_once": total == generated,
            "outage_s": round(t0 - down_at, 1),
        }

    def close(self) -> None:
        self.fleet.stop()
        for p in self.procs:
            p.stop()
        self.local.stop()
        self.central.stop()


def run_side_by_side(
    rigs: list[Rig], order: str, outage_s: float, backlog: int
) -> dict[str, dict[str, Any]]:
    """One run on every rig at once (their outages overlap: the same machine load)."""
    got: dict[str, dict[str, Any]] = {}
    failed: list[BaseException] = []

    def go(rig: Rig) -> None:
        try:
            got[rig.name] = rig.run_once(order, outage_s, backlog)
        except BaseException as exc:  # SystemExit too: said in the main thread
            failed.append(exc)

    threads = [threading.Thread(target=go, args=(rig,)) for rig in rigs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if failed:
        raise SystemExit(f"{order}: {failed[0]}")
    return got


def median(xs: list[float]) -> float:
    return round(statistics.median(xs), 3) if xs else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        epilog="example: python bench/resume.py --outage-s 10 --runs 5 "
        "--baseline-tree /work/wt/resume-base",
    )
    ap.add_argument("--outage-s", type=float, default=30.0, help="central broker down (30)")
    ap.add_argument("--runs", type=int, default=5, help="runs per order; medians reported (5)")
    ap.add_argument("--orders", default=",".join(ORDERS), help=f"comma list of {ORDERS}")
    ap.add_argument("--backlog", type=int, default=5000, help="records per outage (5000)")
    ap.add_argument(
        "--batch-records", type=int, default=250, help="agent batch size (250: 20 batches)"
    )
    ap.add_argument("--collectors", type=int, default=2, help="collector processes (2)")
    ap.add_argument(
        "--baseline-tree",
        type=Path,
        help="a checkout of the code to compare with (e.g. a git worktree of main); "
        "measured in the same run, each run's outages side by side",
    )
    ap.add_argument("--keep", action="store_true", help="keep the logs and stores")
    args = ap.parse_args()
    orders = [o.strip() for o in args.orders.split(",") if o.strip()]
    bad = [o for o in orders if o not in ORDERS]
    if bad:
        ap.error(f"unknown order(s) {bad}; choose from {ORDERS}")
    trees = {"new": HERE}
    if args.baseline_tree:
        if not (args.baseline_tree / "traceedge").is_dir():
            ap.error(f"--baseline-tree {args.baseline_tree}: no traceedge package there")
        trees["baseline"] = args.baseline_tree.resolve()
    with contextlib.ExitStack() as stack:
        if args.keep:
            tmp = tempfile.mkdtemp(prefix="bench-resume-")
            print(f"logs and stores kept in {tmp}", file=sys.stderr)
        else:
            tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-resume-"))
        rigs = [
            Rig(name, tree, Path(tmp) / name, args.collectors, args.batch_records)
            for name, tree in trees.items()
        ]
        try:
            for rig in rigs:
                rig.setup()
            for order in orders:
                for i in range(args.runs):
                    got = run_side_by_side(rigs, order, args.outage_s, args.backlog)
                    for rig in rigs:
                        rig.results.setdefault(order, []).append(got[rig.name])
                    print(
                        f"{order} run {i + 1}: "
                        + "  ".join(
                            f"{k} {v['first_s']:.3f} s {v['split']}" for k, v in got.items()
                        ),
                        file=sys.stderr,
                    )
        finally:
            for rig in rigs:
                rig.close()
    result: dict[str, Any] = {
        "outage_s": args.outage_s,
        "runs": args.runs,
        "backlog": args.backlog,
        "collectors": args.collectors,
    }
    for order in orders:
        key = order.replace("-", "_")
        for rig in rigs:
            runs = rig.results[order]
            result[f"{key}_first_s_{rig.name}"] = median([r["first_s"] for r in runs])
            result[f"{key}_max_s_{rig.name}"] = max(r["first_s"] for r in runs)
            result[f"{key}_drained_s_{rig.name}"] = median([r["drained_s"] for r in runs])
            result[f"{key}_exactly_once_{rig.name}"] = all(r["exactly_once"] for r in runs)
        if len(rigs) > 1:
            new, base = result[f"{key}_first_s_new"], result[f"{key}_first_s_baseline"]
            result[f"{key}_ratio"] = round(new / base, 3) if base else None
    for rig in rigs:
        shares = [
            round(max(r["split"].values()) / max(sum(r["split"].values()), 1), 3)
            for runs in rig.results.values()
            for r in runs
        ]
        result[f"largest_share_{rig.name}"] = shares
        result[f"largest_share_worst_{rig.name}"] = max(shares)
    emit(result)


if __name__ == "__main__":
    main()
