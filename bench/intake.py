"""Intake: terminals → edge agent, acknowledged only after the durable commit.

Publishes N realistic records (QoS 1) from terminal clients to a real Mosquitto and times
until the agent has acknowledged every one (each ack means "committed to the outbox").
Baseline, same run, same broker, same payloads: raw paho QoS 1 publishing to a plain
subscriber, timed until it received everything. Also what sealing the terminal acks costs
(wire version 2), timed in the same run, and its share of the time per record. Last line:
one JSON object.

    python bench/intake.py --records 20000
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import paho.mqtt.client as mqtt
from benchlib import SITE, emit, make_devices, make_records, terminal_ack_seconds
from paho.mqtt.enums import CallbackAPIVersion

from traceedge.brokers import start_broker
from traceedge.launch import Role, agent_config
from traceedge.provision import site_trust
from wire import auth, topics


def client(port: int, cid: str) -> mqtt.Client:
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=cid)
    c.max_inflight_messages_set(100)
    c.connect("127.0.0.1", port)
    c.loop_start()
    return c


def publish_all(c: mqtt.Client, msgs: list[tuple[str, bytes]]) -> None:
    for topic, payload in msgs:
        c.publish(topic, payload, qos=1)


def baseline(port: int, payloads: list[bytes]) -> float:
    n = len(payloads)
    got = threading.Event()
    count = [0]

    def on_message(c: mqtt.Client, u: object, m: mqtt.MQTTMessage) -> None:
        count[0] += 1
        if count[0] == n:
            got.set()

    sub = client(port, "bench-sub")
    sub.on_message = on_message
    sub.subscribe("raw/#", qos=1)
    time.sleep(0.5)
    pub = client(port, "bench-pub")
    t0 = time.perf_counter()
    publish_all(pub, [(f"raw/{i % 12}", p) for i, p in enumerate(payloads)])
    if not got.wait(300):
        raise SystemExit(f"baseline: only {count[0]} of {n} received")
    dt = time.perf_counter() - t0
    for c in (pub, sub):
        c.loop_stop()
        c.disconnect()
    return n / dt


def through_agent(port: int, msgs: list[tuple[str, int, bytes]], keys: dict[str, bytes]) -> float:
    """Records/s acknowledged; each ack checked as a terminal checks it (sealed with the
    device's key, wire version 2) before it counts."""
    n = len(msgs)
    pending = {(dev, seq) for dev, seq, _ in msgs}
    lock = threading.Lock()
    done = threading.Event()

    def on_ack(c: mqtt.Client, u: object, m: mqtt.MQTTMessage) -> None:
        dev = m.topic.split("/")[1]
        _wm, ranges, _bad = auth.open_terminal_ack(m.payload, dev, [keys[dev]])
        with lock:
            for lo, hi in ranges:
                for s in range(lo, hi + 1):
                    pending.discard((dev, s))
            if not pending:
                done.set()

    term = client(port, "bench-terminals")
    term.on_message = on_ack
    term.subscribe(topics.terminal_ack("+"), qos=1)
    time.sleep(0.5)
    t0 = time.perf_counter()
    publish_all(term, [(topics.terminal_rec(dev), p) for dev, _, p in msgs])
    if not done.wait(300):
        raise SystemExit(f"agent: {len(pending)} of {n} never acknowledged")
    dt = time.perf_counter() - t0
    term.loop_stop()
    term.disconnect()
    return n / dt


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=20_000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-intake-") as tmp:
        root = Path(tmp)
        registry = root / "devices.json"
        devices = make_devices(registry)
        trust = site_trust(root, registry, SITE)
        print(f"generating {args.records} signed records ...", file=sys.stderr)
        recs = make_records(devices, args.records)
        broker = start_broker("mosquitto", root / "broker")
        try:
            print("baseline: raw paho QoS 1 ...", file=sys.stderr)
            base = baseline(broker.port, [r for *_, r in recs])
            acfg = agent_config(
                root / "a.toml",
                SITE,
                root / "agent",
                broker.port,
                broker.port,
                devices=trust.agent_devices,
                identity=trust.identity,
                command_key=trust.command_pub,
            )
            agent = Role("agent", acfg, root / "agent.log").start()
            time.sleep(2.0)
            print("through the agent (acked after commit) ...", file=sys.stderr)
            try:
                keys = {d.dev: d.key for d in devices}
                rate = through_agent(broker.port, [(d.dev, s, r) for d, s, _, r in recs], keys)
            finally:
                agent.stop()
        finally:
            broker.stop()
        # what wire version 2 added at intake: one sealed ack per terminal per group commit
        seal_s = terminal_ack_seconds(group=200, devices=len(devices))
        emit(
            {
                "records": args.records,
                "records_per_s": round(rate),
                "baseline_records_per_s": round(base),
                "ratio": round(rate / base, 3),
                "ack_sealing_us_per_record": round(seal_s * 1e6, 3),
                "ack_sealing_share": round(seal_s * rate, 4),
            }
        )


if __name__ == "__main__":
    main()
