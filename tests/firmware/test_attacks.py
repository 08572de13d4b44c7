"""The attacks that worked against the terminal ↔ gateway hop, each refused now, with the
broker wide open (anonymous, no ACLs: anyone publishes anything, retained or not).

Real firmware under the real MicroPython interpreter (its own MQTT client over a Node
socket), a real Mosquitto, a real edge agent and collector; the attacker is its own paho
client. Each test asserts that nothing is lost (every record the terminal made is stored
once, byte for byte), that nothing is filled that the gate refuses, and that every
refusal is counted where an operator sees it: the terminal's counters and ``traceedge
agent status --json``.

* A1: one retained ack covering every seq made a terminal free its whole flash log.
* A2: records with a bad MAC for seqs the terminal had not sent yet made the agent
  answer "bad" for those seqs, and the terminal dropped its real records.
* A4: whoever answered "allow" on the fill-gate topic first got every unregistered
  cylinder filled.
"""

from __future__ import annotations

import json
import random
import secrets
import threading
import time
from pathlib import Path
from typing import Any

from simulators.records import make_body
from tests.conftest import SITE, Chain, wait_until
from tests.firmware.e2e_host import (
    Attacker,
    agent_status_cli,
    counters,
    device_of,
    push_registry,
    run_app,
    stored,
)
from wire import auth, topics
from wire.canonical import canonical
from wire.envelope import make_record

EVERY_SEQ = 2**40


def _flood(stop: threading.Event, every_s: float, send: Any) -> threading.Thread:
    def go() -> None:
        while not stop.wait(every_s):
            send()

    t = threading.Thread(target=go, daemon=True)
    t.start()
    return t


def _nothing_lost(ch: Chain, dev: str, made: list[dict[str, Any]], own: int = 0) -> None:
    ch.wait_forwarded(len(made) + own, timeout=60)
    assert stored(ch, dev) == made, "every record made, stored once, byte for byte"
    ch.assert_exactly_once(len(made) + own)


def test_a1_forged_retained_and_replayed_acks_free_nothing_unsent(chain: Any) -> None:
    ch = chain()
    dev = device_of(ch, "elevator-box").dev
    ack_topic = topics.terminal_ack(dev)
    att = Attacker(ch.broker.port)
    att.listen(ack_topic)
    # The attack that worked against main: one retained ack naming every seq, waiting for
    # the terminal's subscription (it comes back online with records it never sent).
    old_format = json.dumps({"wm": EVERY_SEQ, "r": [[1, EVERY_SEQ]], "bad": []}).encode()
    att.send(ack_topic, old_format, retain=True)
    unsealed = {"t": "ack", "dev": dev, "wm": EVERY_SEQ, "r": [[1, EVERY_SEQ]], "bad": []}
    forged = [
        json.dumps({**unsealed, "mac": "0" * 64}).encode(),
        auth.terminal_ack(dev, EVERY_SEQ, [(1, EVERY_SEQ)], [], secrets.token_bytes(32)),
        auth.terminal_ack("ELV-OTHER", EVERY_SEQ, [(1, EVERY_SEQ)], [], secrets.token_bytes(32)),
    ]
    sent = [0]

    def attack() -> None:
        # a forged ack, and the last genuine acks heard replayed (retained, too)
        genuine = [p for p in att.heard_on(ack_topic) if p not in forged and p != old_format]
        for payload in [forged[sent[0] % len(forged)], *genuine[-2:]]:
            att.send(ack_topic, payload, retain=payload in genuine, wait=False)
        sent[0] += 1

    stop = threading.Event()
    flood = _flood(stop, 0.05, attack)
    try:
        made, out = run_app(
            ch, "elevator", "elevator-box", offline_ms=2500, restart_broker=False
        )
    finally:
        stop.set()
        flood.join(5)
        att.send(ack_topic, b"", retain=True)  # clear the retained message
        att.close()
    assert old_format in att.heard_on(ack_topic), "the broker took the attacker's ack"
    _nothing_lost(ch, dev, made)
    n = counters(out)
    assert n["forged_acks"] >= 2 and sent[0] > 20, (n, sent[0])  # the retained one and more
    assert n["unsent_acks"] == 0 and n["acks"] > 0, n


def test_a2_records_with_a_bad_mac_change_nothing_at_the_terminal(chain: Any) -> None:
    ch = chain()
    dev = device_of(ch, "elevator-box").dev
    ack_topic, rec_topic = topics.terminal_ack(dev), topics.terminal_rec(dev)
    att = Attacker(ch.broker.port)
    att.listen(ack_topic)
    wrong_key = secrets.token_bytes(32)

    def forged(seq: int) -> bytes:
        body = make_body("elevator.fault", random.Random(seq), dev, seq, SITE)
        now = int(time.time() * 1000)
        return canonical(make_record(dev, seq, 1, "elevator.fault", now, "ntp", body, wrong_key))

    # seqs the terminal has not used yet: before it comes online, and again while it runs
    for seq in range(1, 41):
        att.send(rec_topic, forged(seq))
    next_seq = [41]

    def attack() -> None:
        att.send(rec_topic, forged(next_seq[0] % 60 + 1))
        next_seq[0] += 1

    stop = threading.Event()
    flood = _flood(stop, 0.1, attack)
    try:
        made, out = run_app(
            ch, "elevator", "elevator-box", offline_ms=1500, restart_broker=False
        )
    finally:
        stop.set()
        flood.join(5)
    forged_n = next_seq[0] - 1
    att.close()
    _nothing_lost(ch, dev, made)
    wait_until(
        lambda: agent_status_cli(ch)["counters"]["quarantined"] == forged_n,
        20,
        f"{forged_n} forged records quarantined",
    )
    st = agent_status_cli(ch)
    assert st["quarantine_by_reason"] == {"mac": forged_n}, st["quarantine_by_reason"]
    key = device_of(ch, "elevator-box").key
    acks = [auth.open_terminal_ack(p, dev, [key]) for p in att.heard_on(ack_topic)]
    assert acks and all(bad == [] for _, _, bad in acks), "no seq was ever answered bad"
    n = counters(out)
    assert n["unsent_acks"] == 0 and n["forged_acks"] == 0, n


def test_a4_a_forged_allow_fills_no_unregistered_cylinder(chain: Any, tmp_path: Path) -> None:
    ch = chain()
    # the registry knows one cylinder; the reader will be shown others
    push_registry(
        ch,
        tmp_path,
        [
            {
                "cyl": "3301061512319999",
                "owner": SITE,
                "entrusted": [],
                "medium": "lpg",
                "manufactured": "2020-05-01",
                "design_life_years": 15,
                "next_inspection": "2099-05-01",
                "status": "in_service",
                "tare_g": 15200,
                "max_fill_g": 15000,
            }
        ],
    )
    reader = device_of(ch, "cylinder-reader")
    att = Attacker(ch.broker.port)
    requests: list[dict[str, Any]] = []

    def answer_first(topic: str, payload: bytes) -> None:
        """Whoever hears a request answers "allow" at once, every way it can."""
        if not topic.endswith("/gate") or not topic.startswith(f"t/{reader.dev}/"):
            return
        req = json.loads(payload)
        requests.append(req)
        allow = {"id": req["id"], "decision": "allow", "reasons": [], "reg_ver": 1}
        cmd = topics.terminal_cmd(reader.dev)
        att.send(cmd, json.dumps({**allow, "type": "gate"}).encode(), wait=False)
        sealed = {**allow, "t": "gate", "dev": reader.dev, "n": req.get("n", "")}
        att.send(cmd, json.dumps({**sealed, "mac": "0" * 64}).encode(), wait=False)
        att.send(
            cmd,
            auth.gate_answer(reader.dev, req["id"], req.get("n", ""), "allow", [], 1,
                             secrets.token_bytes(32)),
            wait=False,
        )

    att.on_message.append(answer_first)
    att.listen(topics.terminal_gate("+"))
    att.listen(topics.terminal_cmd("CYL-EVIL-0001"))
    # requests the agent must refuse: an unregistered device, the reader without a nonce
    evil = {"id": 1, "n": "ab" * 16, "cyl": "3301061512310042", "operator": "X"}
    att.send(topics.terminal_gate("CYL-EVIL-0001"), json.dumps(evil).encode())
    no_nonce = {k: v for k, v in evil.items() if k != "n"}
    att.send(topics.terminal_gate(reader.dev), json.dumps(no_nonce).encode())
    cycles = 5
    try:
        made, out = run_app(ch, "cylinder_unregistered", "cylinder-reader", 90.0, cycles=cycles)
    finally:
        att.close()
    valve = counters(out, "E2E valve")
    assert valve == {"cycles": cycles, "opened": 0}, "no cylinder was filled"
    n = counters(out)
    gate_requests = [r for r in requests if "pre" in r]
    assert len(gate_requests) == cycles and all(len(r["n"]) == 32 for r in gate_requests)
    # the two sealed-looking answers to each request: refused by the MAC while it was
    # pending, ignored as late after the agent's answer (whichever came first)
    assert n["gate_forged"] >= 1 and n["gate_forged"] + n["gate_late"] >= 2 * cycles, n
    assert n["cmd_errors"] >= cycles, n  # the old unsealed format is no command at all
    checks = [r["body"] for r in made]
    assert [r["kind"] for r in made] == ["cylinder.check"] * len(made)
    assert len(checks) == cycles - n["gate_timeouts"] and checks, n
    assert all((b["decision"], b["reasons"]) == ("deny", ["unregistered"]) for b in checks)
    assert att.heard_on(topics.terminal_cmd("CYL-EVIL-0001")) == []
    st = agent_status_cli(ch)
    assert st["gate"] == {"allow": 0, "deny": cycles, "errors": 0, "refused": 2}, st["gate"]
    assert st["quarantine_by_reason"] == {"gate_unknown_device": 1, "gate_nonce": 1}
    # the reader's checks and the agent's own record of each decision, stored once each
    _nothing_lost(ch, reader.dev, made, own=cycles)
