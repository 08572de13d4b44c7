"""The uplink's ack handling against a real SQLite outbox: only a sealed ack of a batch in
flight, bound to that batch's digest, deletes, and only that batch's records; unreadable,
forged and unknown acks are counted, not obeyed.

The broker is not under test here (tests/e2e runs the uplink through Mosquitto, silent
links and restarts included): ``publish`` is the seam the agent wires to its MQTT link.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge_agent.outbox import Incoming, Outbox
from edge_agent.settings import UplinkSettings
from edge_agent.uplink import Uplink
from hostlib.mqttlink import BrokerSettings
from hostlib.registry import Device
from wire import auth, topics
from wire.batch import decode_batch

SITE = "S01"
GW = Device("GW-S01-1", b"\x07" * 32, "gateway", SITE)


class Sent:
    """What the uplink published, in order."""

    def __init__(self) -> None:
        self.payloads: list[bytes] = []
        self.cond = threading.Condition()

    def publish(self, topic: str, payload: bytes) -> bool:
        assert topic == topics.site_up(SITE)
        with self.cond:
            self.payloads.append(payload)
            self.cond.notify_all()
        return True

    def batches(self, n: int, timeout: float = 10.0) -> list[tuple[str, bytes]]:
        with self.cond:
            assert self.cond.wait_for(lambda: len(self.payloads) >= n, timeout), self.payloads
            return [(str(decode_batch(p)["b"]), p) for p in self.payloads]


def ack(batch: tuple[str, bytes], key: bytes = GW.key, digest: str | None = None) -> bytes:
    """What a collector holding the gateway's key sends after committing ``batch``."""
    b, payload = batch
    return auth.batch_ack(SITE, GW.dev, b, digest or auth.batch_digest(payload), 10, 0, 0, key)


@pytest.fixture
def outbox(tmp_path: Path) -> Iterator[Outbox]:
    ob = Outbox(tmp_path / "outbox.sqlite", 10**9)
    yield ob
    ob.close()


@pytest.fixture
def uplink(outbox: Outbox) -> Iterator[tuple[Uplink, Sent]]:
    settings = UplinkSettings(BrokerSettings(), batch_records=10, linger_s=0.01)
    up = Uplink(outbox, SITE, settings, GW)
    sent = Sent()
    up.attach(sent.publish, lambda: True)
    up.start()
    yield up, sent
    up.stop()


def fill(outbox: Outbox, n: int) -> None:
    outbox.add_many(
        [Incoming("D1", seq, "cylinder.fill", b'{"seq":%d}' % seq) for seq in range(1, n + 1)]
    )


def test_only_the_sealed_ack_of_a_batch_in_flight_deletes_it(
    outbox: Outbox, uplink: tuple[Uplink, Sent]
) -> None:
    up, sent = uplink
    fill(outbox, 20)
    up.poke()
    first, second = sent.batches(2)
    assert outbox.depth()[0] == 20  # published is not acknowledged

    up.on_ack(topics.site_ack(SITE), b"\x00not json")
    up.on_ack(topics.site_ack(SITE), ack(("not-in-flight", b"x")))
    assert outbox.depth()[0] == 20
    assert (up.stats.bad_acks, up.stats.unknown_acks) == (1, 1)

    up.on_ack(topics.site_ack(SITE), ack(second))
    assert outbox.depth()[0] == 10
    assert [r.rec for r in outbox.read_after(0, 100, 10**9)] == [
        b'{"seq":%d}' % seq for seq in range(1, 11)
    ]
    assert up.stats.last_ack_at is not None and up.stats.last_ack_at <= time.time()

    up.on_ack(topics.site_ack(SITE), ack(second))  # again: no longer in flight
    assert up.stats.unknown_acks == 2
    up.on_ack(topics.site_ack(SITE), ack(first))
    assert outbox.depth()[0] == 0
    assert outbox.counters()["acked_records"] == 20


def test_forged_acks_delete_nothing(outbox: Outbox, uplink: tuple[Uplink, Sent]) -> None:
    """An impostor on the collectors' subscription sees every batch id; it still cannot make
    the agent delete anything."""
    up, sent = uplink
    fill(outbox, 20)
    up.poke()
    first, second = sent.batches(2)
    t = topics.site_ack(SITE)
    up.on_ack(t, b'{"b": "%s"}' % first[0].encode())  # the old, unsealed ack
    up.on_ack(t, ack(first, key=b"\x08" * 32))  # sealed with a key that is not ours
    up.on_ack(t, ack(first, digest=auth.batch_digest(second[1])))  # bound to other content
    forged = auth.batch_ack(
        SITE, "GW-OTHER", first[0], auth.batch_digest(first[1]), 10, 0, 0, GW.key
    )
    up.on_ack(t, forged)  # for another gateway
    assert outbox.depth()[0] == 20
    assert up.stats.forged_acks == 2 and up.stats.bad_acks == 2
    assert set(up.in_flight) == {first[0], second[0]}
