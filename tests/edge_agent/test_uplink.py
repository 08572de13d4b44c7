"""The uplink's ack handling against a real SQLite outbox: only the ack of a batch in flight
deletes, and only that batch's records; unreadable and unknown acks are counted, not obeyed.

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
from wire import topics
from wire.batch import decode_batch, encode_ack

SITE = "S01"


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

    def batch_ids(self, n: int, timeout: float = 10.0) -> list[str]:
        with self.cond:
            assert self.cond.wait_for(lambda: len(self.payloads) >= n, timeout), self.payloads
            return [str(decode_batch(p)["b"]) for p in self.payloads]


@pytest.fixture
def outbox(tmp_path: Path) -> Iterator[Outbox]:
    ob = Outbox(tmp_path / "outbox.sqlite", 10**9)
    yield ob
    ob.close()


@pytest.fixture
def uplink(outbox: Outbox) -> Iterator[tuple[Uplink, Sent]]:
    settings = UplinkSettings(BrokerSettings(), batch_records=10, linger_s=0.01)
    up = Uplink(outbox, SITE, settings)
    sent = Sent()
    up.attach(sent.publish, lambda: True)
    up.start()
    yield up, sent
    up.stop()


def fill(outbox: Outbox, n: int) -> None:
    outbox.add_many(
        [Incoming("D1", seq, "cylinder.fill", b'{"seq":%d}' % seq) for seq in range(1, n + 1)]
    )


def test_only_the_ack_of_a_batch_in_flight_deletes_it(
    outbox: Outbox, uplink: tuple[Uplink, Sent]
) -> None:
    up, sent = uplink
    fill(outbox, 20)
    up.poke()
    first, second = sent.batch_ids(2)
    assert outbox.depth()[0] == 20  # published is not acknowledged

    up.on_ack(topics.site_ack(SITE), b"\x00not json")
    up.on_ack(topics.site_ack(SITE), encode_ack("not-in-flight", 10, 0, 0))
    assert outbox.depth()[0] == 20
    assert (up.stats.bad_acks, up.stats.unknown_acks) == (1, 1)

    up.on_ack(topics.site_ack(SITE), encode_ack(second, 10, 0, 0))
    assert outbox.depth()[0] == 10
    assert [r.rec for r in outbox.read_after(0, 100, 10**9)] == [
        b'{"seq":%d}' % seq for seq in range(1, 11)
    ]
    assert up.stats.last_ack_at is not None and up.stats.last_ack_at <= time.time()

    up.on_ack(topics.site_ack(SITE), encode_ack(second, 10, 0, 0))  # again: no longer in flight
    assert up.stats.unknown_acks == 2
    up.on_ack(topics.site_ack(SITE), encode_ack(first, 10, 0, 0))
    assert outbox.depth()[0] == 0
    assert outbox.counters()["acked_records"] == 20
