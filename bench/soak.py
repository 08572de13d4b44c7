"""Soak: one site fed for a long time with normal load and 1 % hostile messages.

A real Mosquitto, agent and collector (child processes); the fleet simulator makes records
at ``--rate`` per second and verifies every ack; a second client sends hostile messages at
``--hostile`` of that rate, cycling through what an attacker on an open broker can send:
garbage and deeply nested JSON as records, a record with a bad MAC, a lone surrogate,
forged terminal acks, forged batch acks, forged commands and forged status. Every
``--sample-s`` seconds the RSS of the agent and the collector is sampled.

At the end it checks and prints: every good record stored exactly once (nothing lost,
nothing doubled), every hostile message counted somewhere (agent quarantine and refusals,
collector refusals, the fleet's forged acks), and RSS start/peak/end for both processes.
Last line: one JSON object.

    python bench/soak.py --minutes 30 [--rate 200] [--hostile 0.01]
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import paho.mqtt.client as mqtt
import psutil
from benchlib import SITE, collector_stored, emit, make_devices
from paho.mqtt.enums import CallbackAPIVersion

from collector.store import read_summary
from edge_agent.status import read_status
from hostlib.mqttlink import BrokerSettings
from hostlib.registry import Device
from simulators.fleet import Fleet
from traceedge.brokers import start_broker
from traceedge.launch import Role, agent_config, collector_config
from traceedge.provision import site_trust
from wire import auth, topics
from wire.canonical import canonical
from wire.envelope import make_record

HOSTILE_KINDS = (
    "garbage_record",
    "nested_record",
    "bad_mac_record",
    "surrogate_record",
    "forged_terminal_ack",
    "forged_batch_ack",
    "forged_command",
    "forged_status",
)


def hostile(kind: str, n: int, victim: Device) -> tuple[str, bytes]:
    """The ``n``-th hostile message of ``kind``: its topic and payload."""
    if kind == "garbage_record":
        return topics.terminal_rec(victim.dev), bytes((n * 7 + i) % 256 for i in range(64))
    if kind == "nested_record":
        return topics.terminal_rec(victim.dev), b"[" * 5000 + b"]" * 5000
    if kind == "bad_mac_record":
        rec = make_record(victim.dev, 10**9 + n, 1, "elevator.fault", 1, "ntp", {}, b"x" * 32)
        return topics.terminal_rec(victim.dev), canonical(rec)
    if kind == "surrogate_record":
        return topics.terminal_rec(victim.dev), b'{"v":2,"dev":"' + victim.dev.encode() + (
            b'","seq":1,"body":{"k":"\\ud800"}}'
        )
    if kind == "forged_terminal_ack":
        return topics.terminal_ack(victim.dev), auth.terminal_ack(
            victim.dev, 10**9, [(1, 10**9)], [], b"k" * 32
        )
    if kind == "forged_batch_ack":
        return topics.site_ack(SITE), json.dumps({"b": f"forged-{n}", "stored": 1}).encode()
    if kind == "forged_command":
        cmd = {"type": "cylinder_registry", "site": SITE, "version": 10**12, "cylinders": []}
        return topics.site_cmd(SITE), json.dumps(cmd).encode()
    return topics.site_status(SITE), json.dumps({"site": SITE, "depth": 0}).encode()


class Attacker:
    def __init__(self, port: int, victims: list[Device], rate: float) -> None:
        self.sent = dict.fromkeys(HOSTILE_KINDS, 0)
        self.rate = rate
        self.victims = victims
        self._stop = threading.Event()
        self.c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="soak-attacker")
        self.c.connect("127.0.0.1", port)
        self.c.loop_start()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        kinds = itertools.cycle(HOSTILE_KINDS)
        n = 0
        while not self._stop.wait(1.0 / self.rate):
            kind = next(kinds)
            topic, payload = hostile(kind, n, self.victims[n % len(self.victims)])
            self.c.publish(topic, payload, qos=1).wait_for_publish(10)
            self.sent[kind] += 1
            n += 1

    def start(self) -> Attacker:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self.c.loop_stop()
        self.c.disconnect()


def rss_mb(pid: int) -> float:
    return round(psutil.Process(pid).memory_info().rss / 1e6, 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--rate", type=float, default=200.0, help="good records per second")
    ap.add_argument("--hostile", type=float, default=0.01, help="hostile share of the rate")
    ap.add_argument("--sample-s", type=float, default=10.0)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-soak-") as tmp:
        root = Path(tmp)
        registry = root / "devices.json"
        devices = make_devices(registry)
        trust = site_trust(root, registry, SITE)
        broker = start_broker("mosquitto", root / "broker")
        collector = Role(
            "collector",
            collector_config(
                root / "c.toml", root / "collector", registry, broker.port, None, trust.command_key
            ),
            root / "collector.log",
        ).start()
        agent = Role(
            "agent",
            agent_config(
                root / "a.toml",
                SITE,
                root / "agent",
                broker.port,
                broker.port,
                devices=trust.agent_devices,
                identity=trust.identity,
                command_key=trust.command_pub,
            ),
            root / "agent.log",
        ).start()
        store = root / "collector" / "collector.sqlite"
        time.sleep(3.0)
        assert agent.proc is not None and collector.proc is not None
        pids = {"agent": agent.proc.pid, "collector": collector.proc.pid}
        samples: dict[str, list[float]] = {k: [rss_mb(p)] for k, p in pids.items()}
        fleet = Fleet(BrokerSettings(port=broker.port), devices, resend_after_s=5.0)
        attacker = Attacker(broker.port, devices, args.rate * args.hostile).start()
        deadline = time.monotonic() + args.minutes * 60
        chunk = max(int(args.rate * args.sample_s), 1)
        try:
            while time.monotonic() < deadline:
                fleet.run(chunk, rate=args.rate, drain_timeout_s=0.0)
                for k, p in pids.items():
                    samples[k].append(rss_mb(p))
                left = int(deadline - time.monotonic())
                print(
                    f"  {fleet.stats.generated} records, hostile {sum(attacker.sent.values())}, "
                    f"RSS agent {samples['agent'][-1]} MB collector "
                    f"{samples['collector'][-1]} MB, {left} s left",
                    file=sys.stderr,
                )
        finally:
            attacker.stop()
        out = fleet.run(0, drain_timeout_s=120.0)
        generated = fleet.stats.generated
        t0 = time.monotonic()
        while collector_stored(store) < generated and time.monotonic() - t0 < 120:
            time.sleep(0.5)
        stored = collector_stored(store)
        time.sleep(12.0)  # the agent's status report and counters catch up
        st = read_status(root / "agent" / "outbox.sqlite")
        fleet.stop()
        agent.stop()
        collector.stop()
        broker.stop()
        counted = counted_hostile(st, out, read_summary(store))
        sent = dict(attacker.sent)
        emit(
            {
                "minutes": args.minutes,
                "records_generated": generated,
                "records_stored": stored,
                "records_pending_at_terminals": out["pending"],
                "hostile_sent": sum(sent.values()),
                "hostile_sent_by_kind": sent,
                "hostile_counted": counted,
                "hostile_uncounted": sum(sent.values()) - sum(counted.values()),
                "good_records_lost": generated - stored,
                "agent_rss_mb_start_peak_end": _spe(samples["agent"]),
                "collector_rss_mb_start_peak_end": _spe(samples["collector"]),
            }
        )


def _spe(xs: list[float]) -> list[float]:
    return [xs[0], max(xs), xs[-1]]


def counted_hostile(
    st: dict[str, Any], fleet_out: dict[str, int], summary: dict[str, Any]
) -> dict[str, int]:
    """Where the hostile messages were counted: the agent's quarantine (records), its
    refusals (acks, commands), the fleet's forged acks, the collector's refused statuses."""
    refused = st.get("refused", {})
    procs = summary.get("processes", {}).values()
    status_refused = sum(sum(p.get("status_refused", {}).values()) for p in procs)
    return {
        "agent_quarantine": int(sum(st.get("quarantine_by_reason", {}).values())),
        "agent_bad_or_forged_batch_acks": int(refused.get("bad_acks", 0))
        + int(refused.get("forged_acks", 0)),
        "agent_commands_rejected": int(refused.get("commands_rejected", 0)),
        "fleet_forged_terminal_acks": int(fleet_out.get("forged_acks", 0)),
        "collector_status_refused": status_refused,
    }


if __name__ == "__main__":
    main()
