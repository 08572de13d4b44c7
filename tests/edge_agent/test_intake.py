"""Intake against a real outbox and registry: the order of the checks, and which refusals a
terminal hears about. Only a record whose MAC verified may be answered "bad"; anything
unattributable is quarantined and changes nothing at the terminal (no ack at all)."""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge_agent.intake import Intake, Rejected, check_message
from edge_agent.outbox import Incoming, Outbox
from hostlib.registry import Device, Registry, add_devices, revoke, rotate_key
from simulators.records import make_body
from wire import auth, sign, topics
from wire.canonical import canonical
from wire.envelope import WireError, make_record
from wire.schemas import default_validator

K1, K2 = b"\x01" * 32, b"\x02" * 32
DEV, SITE = "CYL-S1-0001", "S1"
VALIDATOR = default_validator()


def record(seq: int, key: bytes = K1, dev: str = DEV, **over: object) -> dict[str, object]:
    body = make_body("cylinder.fill", random.Random(seq), dev, seq, SITE)
    rec = make_record(dev, seq, 1, "cylinder.fill", int(time.time() * 1000), "ntp", body, key)
    rec.update(over)
    return rec


def resealed(rec: dict[str, object], key: bytes = K1) -> bytes:
    """``rec`` (changed after signing) signed again: authentic, whatever it holds."""
    rec = dict(rec)
    rec["mac"] = sign(rec, key)
    return canonical(rec)


def forged(seq: int, **over: object) -> bytes:
    return canonical(dict(record(seq, **over), mac="0" * 64))


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    path = tmp_path / "devices.json"
    add_devices(path, [Device(DEV, K1, "cylinder-reader", SITE)], provisioned=1)
    return Registry(path)


class Acks:
    """The acks the intake published, opened as a terminal holding ``keys`` opens them."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes]] = []

    def __call__(self, topic: str, payload: bytes) -> bool:
        self.sent.append((topic, payload))
        return True

    def opened(self, keys: list[bytes]) -> list[tuple[int, list[tuple[int, int]], list[int]]]:
        return [auth.open_terminal_ack(p, DEV, keys) for _, p in self.sent]


@pytest.fixture
def intake(tmp_path: Path, registry: Registry) -> Iterator[tuple[Intake, Acks]]:
    ob = Outbox(tmp_path / "outbox.sqlite", 10**9)
    acks = Acks()
    yield Intake(ob, VALIDATOR, registry, ack=acks), acks
    ob.close()


def reasons(ob: Outbox) -> list[str]:
    return [r for (r,) in ob.db.execute("SELECT reason FROM quarantine ORDER BY id")]


def test_a_bad_mac_for_an_unsent_seq_is_quarantined_and_never_acked(
    intake: tuple[Intake, Acks],
) -> None:
    """A2: forged records for seqs the terminal has not sent yet used to be answered "bad",
    and the terminal then dropped its real records with those seqs."""
    it, acks = intake
    it.process([(topics.terminal_rec(DEV), forged(s)) for s in range(1, 51)])
    assert acks.sent == []
    assert reasons(it.outbox) == ["mac"] * 50
    assert it.outbox.counters()["quarantined"] == 50 and it.outbox.depth()[0] == 0


def test_only_an_authentic_record_is_answered_bad(intake: tuple[Intake, Acks]) -> None:
    it, acks = intake
    t = topics.terminal_rec(DEV)
    wrong_schema = resealed(dict(record(3), body={"cyl": "x"}))
    it.process([(t, canonical(record(1))), (t, forged(2)), (t, wrong_schema)])
    ((wm, ranges, bad),) = acks.opened([K1])
    assert (wm, ranges, bad) == (1, [(1, 1)], [3])
    assert reasons(it.outbox) == ["mac", "schema"]


@pytest.mark.parametrize(
    ("topic", "payload", "reason"),
    [
        # each message fails two checks or more: the earliest in the order is the reason
        (topics.terminal_rec("OTHER"), forged(1), "topic"),
        (topics.terminal_rec(DEV), b'{"v":2,"dev":"' + DEV.encode(), "json"),
        (
            topics.terminal_rec("CYL-S1-0002"),
            canonical(dict(record(1, dev="CYL-S1-0002"), body={}, mac="0" * 64)),
            "unknown_device",
        ),
        (topics.terminal_rec(DEV), forged(50, body={}), "revoked"),
        (topics.terminal_rec(DEV), forged(5, body={"cyl": 1}), "mac"),
    ],
)
def test_unattributable_input_changes_nothing_at_the_terminal(
    tmp_path: Path, topic: str, payload: bytes, reason: str
) -> None:
    path = tmp_path / "devices.json"
    add_devices(path, [Device(DEV, K1, "cylinder-reader", SITE)], provisioned=1)
    revoke(path, DEV, from_seq=40, at=2, reason="stolen")
    reg = Registry(path)
    res = check_message(topic, payload, "", VALIDATOR, reg)
    assert isinstance(res, Rejected) and res.reason == reason and res.bad is None, res
    ob = Outbox(tmp_path / "o.sqlite", 10**9)
    acks = Acks()
    try:
        Intake(ob, VALIDATOR, reg, ack=acks).process([(topic, payload)])
        assert acks.sent == [] and reasons(ob) == [reason]
    finally:
        ob.close()


def test_revocation_is_checked_before_the_mac(tmp_path: Path) -> None:
    """A revoked device's genuine records from its revocation point on are refused, and
    not answered "bad" either: the key may be in other hands."""
    path = tmp_path / "devices.json"
    add_devices(path, [Device(DEV, K1, "cylinder-reader", SITE)], provisioned=1)
    revoke(path, DEV, from_seq=10, at=2, reason="stolen")
    reg = Registry(path)
    t = topics.terminal_rec(DEV)
    assert isinstance(check_message(t, canonical(record(9)), "", VALIDATOR, reg), Incoming)
    res = check_message(t, resealed(dict(record(10), body={})), "", VALIDATOR, reg)
    assert isinstance(res, Rejected) and (res.reason, res.bad) == ("revoked", None)


def test_acks_are_sealed_with_the_key_of_the_highest_seq_they_cover(tmp_path: Path) -> None:
    path = tmp_path / "devices.json"
    add_devices(path, [Device(DEV, K1, "cylinder-reader", SITE)], provisioned=1)
    rotate_key(path, DEV, K2, from_seq=3, at=5)
    ob = Outbox(tmp_path / "o.sqlite", 10**9)
    acks = Acks()
    try:
        it = Intake(ob, VALIDATOR, Registry(path), ack=acks)
        t = topics.terminal_rec(DEV)
        it.process([(t, canonical(record(1, K1))), (t, canonical(record(2, K1)))])
        it.process([(t, canonical(record(3, K2)))])
        it.process([(t, canonical(record(1, K1)))])  # a resend: acked again, by the wm's key
    finally:
        ob.close()
    first, second, third = (p for _, p in acks.sent)
    assert auth.open_terminal_ack(first, DEV, [K1]) == (2, [(1, 2)], [])
    assert auth.open_terminal_ack(second, DEV, [K2]) == (3, [(3, 3)], [])
    assert auth.open_terminal_ack(third, DEV, [K2]) == (3, [(1, 1)], [])
    with pytest.raises(WireError):
        auth.open_terminal_ack(second, DEV, [K1])
    assert json.loads(second)["dev"] == DEV
