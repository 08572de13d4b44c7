"""The fill gate's answers against a real outbox and registry: sealed with the requesting
device's key and bound to its nonce; a request that cannot be answered that way is
refused, counted and quarantined, and never allowed."""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.gate import FillGate
from edge_agent.outbox import Incoming, Outbox
from edge_agent.registry_cache import RegistryCache
from hostlib.registry import Device, Registry, add_devices, revoke, rotate_key
from wire import auth, topics

SITE = "S1"
K1, K_GW = b"\x01" * 32, b"\x09" * 32
DEV, REVOKED = "CYL-S1-0001", "CYL-S1-0002"
NONCE = "9f2c41d07be85a13c4e6f0b2a7d95e31"
GOOD = {
    "cyl": "CYL-OK-0001",
    "owner": SITE,
    "entrusted": [],
    "medium": "lpg",
    "manufactured": "2020-01-01",
    "design_life_years": 15,
    "next_inspection": "2099-01-01",
    "status": "in_service",
    "tare_g": 15000,
    "max_fill_g": 14500,
}
PRE = {"appearance_ok": True, "residual_kpa": 100, "tare_g": 15000}


class Gate:
    """A fill gate with a registry of two readers (one revoked) and one good cylinder."""

    def __init__(self, root: Path) -> None:
        path = root / "devices.json"
        readers = [Device(d, K1, "cylinder-reader", SITE) for d in (DEV, REVOKED)]
        add_devices(path, readers, provisioned=1)
        revoke(path, REVOKED, from_seq=1, at=2, reason="stolen")
        self.outbox = Outbox(root / "outbox.sqlite", 10**9)
        cache = RegistryCache(self.outbox)
        cache.apply(1, [GOOD])
        self.sent: list[tuple[str, bytes]] = []
        ident = Device("GW-S1-0001", K_GW, "gateway", SITE)
        self.gate = FillGate(self.outbox, cache, Registry(path), ident, SITE, self._answer, "", 480)

    def _answer(self, topic: str, payload: bytes) -> bool:
        self.sent.append((topic, payload))
        return True

    def ask(self, dev: str, payload: bytes) -> list[dict[str, Any]]:
        """Every answer published for this request, parsed."""
        before = len(self.sent)
        self.gate.handle(topics.terminal_gate(dev), payload)
        out = []
        for topic, p in self.sent[before:]:
            assert topic == topics.terminal_cmd(dev)
            out.append(json.loads(p))
        return out

    def quarantined(self) -> list[str]:
        return [r for (r,) in self.outbox.db.execute("SELECT reason FROM quarantine ORDER BY id")]


@pytest.fixture
def gate(tmp_path: Path) -> Iterator[Gate]:
    g = Gate(tmp_path)
    yield g
    g.outbox.close()


def req(**over: Any) -> bytes:
    r: dict[str, Any] = {"id": 7, "n": NONCE, "cyl": "CYL-OK-0001", "operator": "OP-1", "pre": PRE}
    r.update(over)
    return json.dumps({k: v for k, v in r.items() if v is not None}).encode()


def test_an_answer_is_sealed_for_the_device_and_bound_to_the_nonce(gate: Gate) -> None:
    (ans,) = gate.ask(DEV, req())
    assert ans["t"] == "gate" and ans["decision"] == "allow" and ans["n"] == NONCE
    assert auth.check_gate_answer(ans, DEV, NONCE, [K1])
    assert not auth.check_gate_answer(ans, DEV, "0" * 32, [K1])  # another request's nonce
    assert not auth.check_gate_answer(ans, DEV, NONCE, [K_GW])  # not the device's key
    assert not auth.check_gate_answer(ans, "CYL-S1-0009", NONCE, [K1])
    (deny,) = gate.ask(DEV, req(cyl="CYL-NEVER-SEEN", n="ab" * 8))
    assert (deny["decision"], deny["reasons"]) == ("deny", ["unregistered"])
    assert auth.check_gate_answer(deny, DEV, "ab" * 8, [K1])
    assert gate.gate.decisions == {"allow": 1, "deny": 1, "error": 0, "refused": 0}


@pytest.mark.parametrize("nonce", [None, "", "0" * 15, "xyz" * 8, 12345])
def test_a_request_without_a_valid_nonce_is_never_allowed(gate: Gate, nonce: object) -> None:
    (ans,) = gate.ask(DEV, req(n=nonce))  # a good cylinder: it would be allowed
    assert ans["decision"] == "deny" and ans["error"].startswith("refused: n must be")
    assert "seq" not in ans  # nothing was decided, nothing recorded
    assert auth.verify(ans, [K1])
    assert gate.gate.decisions["refused"] == 1 and gate.quarantined() == ["gate_nonce"]
    assert gate.outbox.depth()[0] == 0


def test_an_unknown_device_gets_no_answer_at_all(gate: Gate) -> None:
    assert gate.ask("CYL-S1-9999", req()) == []
    assert gate.ask("CYL-S1-9999", b"garbage") == []
    assert gate.gate.decisions["refused"] == 2
    assert gate.quarantined() == ["gate_unknown_device", "gate_unknown_device"]


def test_a_revoked_device_gets_a_sealed_deny(gate: Gate) -> None:
    (ans,) = gate.ask(REVOKED, req())
    assert (ans["decision"], ans["error"]) == ("deny", "device revoked")
    assert auth.check_gate_answer(ans, REVOKED, NONCE, [K1])
    assert gate.gate.decisions["refused"] == 1 and gate.quarantined() == ["gate_revoked"]


def test_a_malformed_request_with_a_nonce_gets_a_sealed_error(gate: Gate) -> None:
    (ans,) = gate.ask(DEV, req(cyl="x"))
    assert ans["decision"] == "deny" and ans["error"].startswith("bad request")
    assert auth.check_gate_answer(ans, DEV, NONCE, [K1])
    assert gate.gate.decisions["error"] == 1 and gate.quarantined() == []


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=12,
)


def payloads() -> st.SearchStrategy[bytes]:
    fields = st.sampled_from(["id", "n", "cyl", "operator", "pre", "stage", "post", "t"])
    near = st.dictionaries(fields, JSONISH).map(
        lambda d: json.dumps({**json.loads(req()), **d}).encode()
    )
    deep = st.integers(1, 50_000).map(lambda n: b'{"id":1,"n":' + b"[" * n + b"]" * n + b"}")
    return st.binary(max_size=200) | near | deep


def test_any_bytes_get_at_most_one_sealed_answer_and_never_a_false_allow() -> None:
    """Total: the gate takes any bytes from a registered reader without raising, answers
    once, sealed and bound to the request's nonce, and allows only a well-formed request
    with a valid nonce for a cylinder it would allow."""
    with tempfile.TemporaryDirectory() as tmp:
        g = Gate(Path(tmp))
        try:

            @settings(deadline=None)
            @given(payloads())
            def check(payload: bytes) -> None:
                (ans,) = g.ask(DEV, payload)
                assert auth.verify(ans, [K1]) and ans["dev"] == DEV
                if ans["decision"] == "allow":
                    sent = json.loads(payload)
                    assert ans["n"] == sent["n"] and 16 <= len(sent["n"]) <= 64
                    assert sent["cyl"] == "CYL-OK-0001" and ans["id"] == sent["id"]

            check()
        finally:
            g.outbox.close()


def test_the_seal_follows_the_key_of_the_readers_newest_record(tmp_path: Path) -> None:
    """Mid-rotation the reader holds the old key until it is flashed: answers use the key
    of its newest committed record, so the gate keeps working on both sides of the flash."""
    g = Gate(tmp_path)
    try:
        k2 = b"\x02" * 32
        path = tmp_path / "devices.json"
        rotate_key(path, DEV, k2, from_seq=100, at=3)
        time.sleep(0.01)  # a file system with coarse timestamps: let the mtime move
        g.gate.registry.reload()
        (ans,) = g.ask(DEV, req())  # nothing seen from the reader: its newest key
        assert auth.verify(ans, [k2])
        g.outbox.add_many([Incoming(DEV, s, "cylinder.check", b"{}") for s in (1, 2)])
        (ans,) = g.ask(DEV, req())
        assert auth.verify(ans, [K1]) and not auth.verify(ans, [k2])
        g.outbox.add_many([Incoming(DEV, s, "cylinder.check", b"{}") for s in range(3, 101)])
        (ans,) = g.ask(DEV, req())
        assert auth.verify(ans, [k2])
    finally:
        g.outbox.close()
