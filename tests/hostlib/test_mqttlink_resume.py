"""MqttLink against a real Mosquitto: back within ``initial`` of a broker that restarts,
however long it was down; one log line per cause, not per attempt; presence (``will``,
``on_subscribed``) and retained messages kept apart (``on_retained``)."""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hostlib.backoff import Backoff
from hostlib.mqttlink import BrokerSettings, MqttLink
from tests.conftest import require_mosquitto, wait_until
from tests.traceedge.wall import Peer
from traceedge.brokers import Broker, free_port


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    require_mosquitto()
    b = Broker("mosquitto", free_port(), tmp_path / "broker").start()
    yield b
    b.stop()


def test_probe_delay_is_short_and_counts_no_failure() -> None:
    b = Backoff(initial=0.2, cap=5.0, rng=random.Random(2))
    for _ in range(8):
        b.next_delay()
    assert b.ceiling() == 5.0
    delays = [b.probe_delay() for _ in range(100)]
    assert all(0.1 <= d <= 0.2 for d in delays)
    assert b.ceiling() == 5.0 and b.failures == 8
    assert Backoff(initial=2.0, cap=0.5).probe_delay() <= 0.5  # the cap still caps


def test_back_within_initial_of_a_broker_down_far_longer_than_the_cap(
    broker: Broker, caplog: pytest.LogCaptureFixture
) -> None:
    link = MqttLink(
        BrokerSettings(port=broker.port, keepalive=5),
        "resume-test",
        lambda t, p: None,
        backoff=Backoff(initial=0.2, cap=1.0),
    ).start()
    try:
        assert link.wait_connected(10)
        broker.stop()
        wait_until(lambda: not link.connected, 10, "the link to see the broker gone", 0.02)
        with caplog.at_level(logging.DEBUG, logger="hostlib.mqttlink"):
            time.sleep(3.0)  # three caps: the old policy would now sleep 0.5..1 s per try
            t0 = time.monotonic()
            broker.start()
            assert link.wait_connected(5)
            back = time.monotonic() - t0
        assert back < 0.6, back  # 0.1..0.2 s probes, plus the broker's start and CONNECT
        refused = [r for r in caplog.records if "cannot connect" in r.getMessage()]
        assert len(refused) > 10  # probed all along ...
        warned = [r for r in refused if r.levelno >= logging.WARNING]
        assert len(warned) == 1, [r.getMessage() for r in warned]  # ... said once
        assert any("after" in r.getMessage() and "failed attempt" in r.getMessage()
                   for r in caplog.records)  # fmt: skip
    finally:
        link.stop()


def test_presence_up_after_subscribing_down_as_will_and_on_stop(broker: Broker) -> None:
    watcher = Peer(broker.port, "watcher")
    watcher.subscribe("presence/+")
    subscribed = threading.Event()

    def announce() -> None:
        subscribed.set()
        link.publish("presence/c1", b"up", retain=True)

    link = MqttLink(
        BrokerSettings(port=broker.port, keepalive=5),
        "c1",
        lambda t, p: None,
        subscriptions=("$share/g/x/+", "y/+"),
        clean_session=True,
        on_subscribed=announce,
        will=("presence/c1", b"down"),
    ).start()
    try:
        assert subscribed.wait(10)
        watcher.wait_for(b"up")
        # a dead process: the broker publishes the will (here: its socket shut, no goodbye)
        sock = link.client.socket()
        assert sock is not None
        sock.close()
        watcher.wait_for(b"down")
        assert watcher.got[-1] == ("presence/c1", b"down")
        wait_until(lambda: watcher.payloads().count(b"up") == 2, 10, "up again on reconnect")
    finally:
        link.stop()  # says "down" itself
    wait_until(lambda: watcher.payloads()[-1] == b"down", 10, "down on stop")
    late = Peer(broker.port, "late")
    late.subscribe("presence/+")
    late.wait_for(b"down")  # retained: what a newcomer reads
    watcher.stop()
    late.stop()


def test_retained_messages_go_to_on_retained(broker: Broker) -> None:
    pub = Peer(broker.port, "pub")
    pub.client.publish("r/old", b"retained", qos=1, retain=True).wait_for_publish(5)
    live: list[bytes] = []
    kept: list[bytes] = []
    link = MqttLink(
        BrokerSettings(port=broker.port),
        "r-test",
        lambda t, p: live.append(p),
        subscriptions=("r/+",),
        on_retained=lambda t, p: kept.append(p),
    ).start()
    try:
        wait_until(lambda: kept == [b"retained"], 10, "the retained message")
        pub.publish("r/new", b"live")
        wait_until(lambda: live == [b"live"], 10, "the live message")
        assert kept == [b"retained"]
    finally:
        link.stop()
        pub.stop()
