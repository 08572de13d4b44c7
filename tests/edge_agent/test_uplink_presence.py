"""The uplink's answer to a collector announcing itself (``collectors/{id}`` "up"): what was
in flight before goes again at once (not after the ack timeout), once per ordinary send, so
a flood of announcements costs at most one extra copy of the window.

``publish`` is the seam the agent wires to its MQTT link (as in test_uplink.py); the broker
side is tested end to end in tests/e2e/test_resume.py.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from edge_agent.outbox import Incoming, Outbox
from edge_agent.settings import UplinkSettings
from edge_agent.uplink import Uplink
from hostlib.mqttlink import BrokerSettings
from tests.edge_agent.test_uplink import GW, SITE, Sent, fill
from tests.edge_agent.test_uplink import outbox as outbox
from wire.batch import decode_batch


@pytest.fixture
def uplink(outbox: Outbox) -> Iterator[tuple[Uplink, Sent]]:
    # an ack timeout far beyond the test: every resend seen here answers an announcement
    settings = UplinkSettings(BrokerSettings(), batch_records=10, linger_s=0.01, ack_timeout_s=600)
    up = Uplink(outbox, SITE, settings, GW)
    sent = Sent()
    up.attach(sent.publish, lambda: True)
    up.start()
    yield up, sent
    up.stop()


def ids(sent: Sent) -> list[str]:
    with sent.cond:
        return [str(decode_batch(p)["b"]) for p in sent.payloads]


def settle(sent: Sent, s: float = 0.4) -> int:
    time.sleep(s)
    with sent.cond:
        return len(sent.payloads)


def test_a_live_announcement_resends_what_was_in_flight_at_once(
    outbox: Outbox,
    uplink: tuple[Uplink, Sent],
) -> None:
    up, sent = uplink
    fill(outbox, 30)
    first = sent.batches(3)
    assert settle(sent) == 3
    t0 = time.monotonic()
    up.on_collector(b"up")
    again = sent.batches(6)
    assert time.monotonic() - t0 < 1.0
    assert again[3:] == first  # the same batches, byte for byte (same ids, same digests)
    assert up.stats.collector_resends == 3 and up.stats.resends == 3


def test_a_flood_of_announcements_costs_one_extra_copy_per_send(
    outbox: Outbox,
    uplink: tuple[Uplink, Sent],
) -> None:
    up, sent = uplink
    fill(outbox, 20)
    sent.batches(2)
    for _ in range(200):
        up.on_collector(b"up")
    sent.batches(4)
    assert settle(sent) == 4
    # an ordinary send (here: after a reconnect) allows one more, and only one
    up.on_connect()
    sent.batches(6)
    for _ in range(50):
        up.on_collector(b"up")
    sent.batches(8)
    assert settle(sent) == 8
    assert up.stats.collector_resends == 4


def test_only_up_counts_and_later_batches_are_not_resent(
    outbox: Outbox,
    uplink: tuple[Uplink, Sent],
) -> None:
    up, sent = uplink
    for payload in (b"down", b"", b"UP", b"up\n", b"\xff" * 100):
        up.on_collector(payload)
    fill(outbox, 10)
    sent.batches(1)
    up.on_collector(b"down")
    assert settle(sent) == 1
    up.on_collector(b"up")
    sent.batches(2)
    # published after the announcement arrived: reached the broker after that collector's
    # subscription, so it is not sent twice
    outbox.add_many(
        [Incoming("D2", seq, "cylinder.fill", b'{"seq":%d}' % seq) for seq in range(1, 11)]
    )
    sent.batches(3)
    assert settle(sent) == 3
    b = ids(sent)
    assert b[0] == b[1] != b[2]
