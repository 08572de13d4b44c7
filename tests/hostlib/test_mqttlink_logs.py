"""What a link says about a broker that is down, comes back and is left: the first failed
attempt at WARNING and the rest at DEBUG, its return at INFO, and our own clean stop at
INFO, not WARNING; a broker that goes away under a connected link is a WARNING. Against a
real Mosquitto on a free port."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from hostlib.backoff import Backoff
from hostlib.mqttlink import BrokerSettings, MqttLink
from tests.conftest import require_mosquitto, wait_until
from traceedge.brokers import Broker, free_port

LOGGER = "hostlib.mqttlink"


def lines(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER and r.levelno == level]


def test_a_broker_down_then_back_then_left_in_few_lines(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    require_mosquitto()
    port = free_port()
    link = MqttLink(
        BrokerSettings(port=port, keepalive=5),
        client_id="logs-test",
        on_message=lambda t, p: None,
        backoff=Backoff(0.01, 0.05),
        name="uplink",
    )
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    broker = None
    link.start()
    try:
        wait_until(lambda: link.outage.attempts >= 10, 30, "ten failed attempts", every=0.05)
        warned = lines(caplog, logging.WARNING)
        assert len(warned) == 1, warned
        assert warned[0].startswith(f"uplink: cannot connect to 127.0.0.1:{port}: "), warned
        assert len(lines(caplog, logging.DEBUG)) >= 18  # each attempt and each retry delay
        broker = Broker("mosquitto", port, tmp_path / "broker").start()
        assert link.wait_connected(30)
        info = lines(caplog, logging.INFO)
        assert any(m.startswith("uplink: recovered after ") for m in info), info
        assert f"uplink: connected to 127.0.0.1:{port}" in info
        assert len(lines(caplog, logging.WARNING)) == 1
    finally:
        link.stop()
        if broker is not None:
            broker.stop()
    assert len(lines(caplog, logging.WARNING)) == 1, lines(caplog, logging.WARNING)
    assert "uplink: disconnected (Normal disconnection)" in lines(caplog, logging.INFO)


def test_a_broker_that_goes_away_is_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    require_mosquitto()
    broker = Broker("mosquitto", free_port(), tmp_path / "broker").start()
    link = MqttLink(
        BrokerSettings(port=broker.port, keepalive=5),
        client_id="logs-test-2",
        on_message=lambda t, p: None,
        backoff=Backoff(0.05, 0.2),
        name="collector",
    )
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    link.start()
    try:
        assert link.wait_connected(30)
        broker.stop()
        wait_until(lambda: not link.connected, 30, "the link to notice")
        wait_until(lambda: link.outage.attempts >= 1, 30, "a failed attempt", every=0.05)
    finally:
        link.stop()
    warned = lines(caplog, logging.WARNING)
    assert warned[0].startswith("collector: disconnected ("), warned
    assert len(warned) == 2, warned  # the drop, then the first failed attempt
