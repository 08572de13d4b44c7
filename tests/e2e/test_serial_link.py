"""Terminals wired to the gateway: the agent's ``serial_link`` source against terminal
simulators behind real ptys (simulators/slink_sim.py), with the real agent, Mosquitto,
collector and platform. Each test proves "once in effect": every record a terminal made
is stored once, across unplugging the cable, ``kill -9`` of the agent mid-exchange, and
several terminals sharing one RS-485 bus."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from hostlib.registry import Device
from simulators.slink_sim import SerialLinkSim
from tests.conftest import SITE, Chain, wait_until
from tests.firmware.e2e_host import agent_status_cli
from traceedge.brokers import free_port
from traceedge.provision import new_device


def _source(ch: Chain, name: str) -> dict[str, Any]:
    st = agent_status_cli(ch)
    return next(s for s in st["sources"] if s["name"] == name)


def _settled(ch: Chain, n: int) -> dict[str, Any]:
    """The source as ``agent status`` shows it once its counters (written to the status
    file every few seconds) include all ``n`` records."""
    wait_until(
        lambda: _source(ch, "wired-1")["counters"]["records"] >= n, 20, "the status to catch up"
    )
    return _source(ch, "wired-1")


def _drain(ch: Chain, sim: SerialLinkSim, timeout: float = 90) -> None:
    try:
        wait_until(lambda: sim.pending() == 0, timeout, "every record acknowledged")
    except AssertionError as exc:
        raise AssertionError(f"{exc}\nagent log:\n{ch.agent.log_tail()}") from None


def _chain(
    chain_factory: Callable[..., Chain],
    tmp_path: Path,
    devices: list[Device],
    addrs: list[int] | None = None,
    agent: dict[str, Any] | None = None,
    **src: Any,
) -> tuple[Chain, str]:
    port = str(tmp_path / "ttyGW0")
    table: dict[str, Any] = {
        "kind": "serial_link",
        "name": "wired-1",
        "port": port,
        "devices": {d.dev: a for d, a in zip(devices, addrs, strict=True)}
        if addrs
        else [devices[0].dev],
        "rto_ms": 150,
        "silent_s": 3.0,
        "backoff_max_s": 1.0,
        **src,
    }
    ch = chain_factory(
        devices_per_type=1, sources=[table], extra_devices=devices, agent_overrides=agent
    )
    return ch, port


def test_records_stored_once_across_unplug_replug_and_a_terminal_restart(
    chain_factory: Callable[..., Chain], tmp_path: Path
) -> None:
    dev = new_device("elevator-box", SITE)
    metrics_port = free_port()
    ch, port = _chain(chain_factory, tmp_path, [dev], agent={"metrics_port": metrics_port})
    # the port is missing at first: the source says so and keeps trying
    wait_until(
        lambda: "no such port" in _source(ch, "wired-1")["error"], 20, "the source to say why"
    )
    with SerialLinkSim([dev], link=port, resend_after_s=3.0) as sim:
        sim.produce(150)
        wait_until(lambda: sim.terminal(dev.dev).stats.acked >= 40, 60, "records flowing")
        sim.unplug()  # mid-stream: frames in flight are cut
        wait_until(
            lambda: _source(ch, "wired-1")["state"] == "down", 20, "the source to see the unplug"
        )
        sim.produce(100)  # made while the cable is out: kept in the terminal
        time.sleep(1.0)
        sim.replug()
        wait_until(lambda: sim.terminal(dev.dev).stats.acked >= 160, 60, "draining again")
        sim.reboot()  # the terminal's controller restarts mid-drain: it says HELLO again
        _drain(ch, sim)
        # a terminal that stops answering is shown down, and up again when it answers
        sim.silent = True
        wait_until(
            lambda: "silent" in _source(ch, "wired-1")["error"], 20, "the silent terminal shown"
        )
        sim.silent = False
        wait_until(lambda: _source(ch, "wired-1")["state"] == "up", 20, "the terminal back")
        n = sim.generated()
        metrics = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).text
    assert n == 250
    ch.wait_forwarded(n)
    ch.assert_exactly_once(n)
    src = _settled(ch, n)
    assert src["kind"] == "serial_link"
    c = src["counters"]
    assert c["records"] >= n and c["reconnects"] >= 1 and c["port_errors"] >= 1, c
    assert c["acks_out"] >= 1 and c["foreign_records"] == 0 and c["hellos"] >= 2, c
    labels = f'kind="serial_link",site="{SITE}",source="wired-1"'
    assert f"traceedge_agent_source_up{{{labels}}} 1.0" in metrics, metrics
    assert f'traceedge_agent_source_events_total{{counter="reconnects",{labels}}} ' in metrics


def test_agent_kill9_mid_exchange_loses_nothing_and_doubles_nothing(
    chain_factory: Callable[..., Chain], tmp_path: Path
) -> None:
    dev = new_device("market-scale", SITE)
    ch, port = _chain(chain_factory, tmp_path, [dev])
    with SerialLinkSim([dev], link=port, resend_after_s=3.0, window=16) as sim:
        for _ in range(3):
            acked = sim.terminal(dev.dev).stats.acked
            sim.produce(500)
            wait_until(
                lambda a=acked: sim.terminal(dev.dev).stats.acked > a,  # type: ignore[misc]
                60,
                "the agent taking records",
            )
            time.sleep(0.2)
            assert sim.pending() > 0, "the kill must land mid-exchange"
            ch.agent.kill9()
            time.sleep(0.3)
            ch.agent.start()
        _drain(ch, sim, 180)
        n = sim.generated()
    assert n == 1500
    ch.wait_forwarded(n)
    ch.assert_exactly_once(n)


def test_rs485_bus_with_three_terminals(
    chain_factory: Callable[..., Chain], tmp_path: Path
) -> None:
    devs = [new_device(t, SITE) for t in ("elevator-box", "elevator-box", "cylinder-reader")]
    ch, port = _chain(chain_factory, tmp_path, devs, addrs=[1, 2, 17])
    with SerialLinkSim(devs, addrs=[1, 2, 17], link=port, resend_after_s=3.0) as sim:
        wait_until(lambda: _source(ch, "wired-1")["state"] == "up", 30, "all three polled")
        sim.produce(120)
        sim.corrupt_next(4)  # whatever the terminals answer next: records, or IDLEs
        sim.drop_next(2)
        _drain(ch, sim)
        n = sim.generated()
        src = _settled(ch, n)
    assert n == 360
    ch.wait_forwarded(n)
    ch.assert_exactly_once(n)
    c = src["counters"]
    assert src["state"] == "up", src
    assert c["hellos"] >= 3 and c["polls"] > 0 and c["records"] >= n, c
    # a corrupted frame is a bad frame (CRC), or noise when the flip hit its length
    assert c["bad_frames"] + c["noise_bytes"] >= 1 and c["timeouts"] >= 1, c
