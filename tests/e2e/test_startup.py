"""Start-up refuses what it cannot run, in one line and at once: bad values, ports that
cannot be bound, a missing registry, a second process on the same outbox or client_id.

Each role runs as ``traceedge <role> run`` in a child process against a real Mosquitto, as
an operator would start it; a refused start must end quickly, non-zero, with the file, key
or port named and no traceback, and leave the processes already running untouched.
"""

from __future__ import annotations

import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from collector.store import read_summary
from edge_agent.status import read_status
from hostlib.errors import ConfigError
from hostlib.registry import add_devices
from tests.conftest import SITE, require_mosquitto, wait_until
from traceedge.brokers import Broker, free_port
from traceedge.launch import Role, agent_config, collector_config
from traceedge.provision import command_keypair, new_device, site_trust

REFUSED_WITHIN_S = 30.0  # a refused start ends long before this, even on a loaded machine


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    require_mosquitto()
    b = Broker("mosquitto", free_port(), tmp_path_factory.mktemp("broker")).start()
    yield b
    b.stop()


@pytest.fixture
def registry(tmp_path: Path) -> Path:
    path = tmp_path / "devices.json"
    add_devices(path, [new_device("market-scale", SITE)], int(time.time()))
    return path


def run_refused(role: str, config: Path) -> str:
    """``traceedge <role> run`` with ``config``: it must exit non-zero within
    REFUSED_WITHIN_S, without a traceback; returns what it wrote."""
    cmd = [sys.executable, "-m", "traceedge", role, "run", "--config", str(config)]
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=REFUSED_WITHIN_S)
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"{role} with {config} still running after {exc.timeout} s") from None
    out = res.stdout + res.stderr
    assert res.returncode != 0, out
    assert "Traceback" not in out, out
    return out


def agent_cfg(
    tmp_path: Path,
    broker: Broker,
    registry: Path,
    local: dict[str, Any] | None = None,
    **agent: Any,
) -> Path:
    """An agent config on the shared broker; ``agent`` and ``local`` add to its tables."""
    trust = site_trust(tmp_path, registry, SITE)
    return agent_config(
        tmp_path / "agent.toml",
        SITE,
        tmp_path / "agent",
        broker.port,
        broker.port,
        devices=registry,
        identity=trust.identity,
        command_key=trust.command_pub,
        agent=agent,
        local=local,
    )


def collector_cfg(
    tmp_path: Path, broker: Broker, registry: Path, name: str = "c", **kw: Any
) -> Path:
    key, _ = command_keypair(tmp_path / "trust")  # only the key: the registry stays as given
    return collector_config(
        tmp_path / f"{name}.toml",
        tmp_path / "collector",
        registry,
        broker.port,
        None,
        key,
        **kw,
    )


def test_local_port_99999_is_refused(tmp_path: Path, broker: Broker, registry: Path) -> None:
    out = run_refused("agent", agent_cfg(tmp_path, broker, registry, local={"port": 99999}))
    assert "local.port: must be a port 1..65535, not 99999" in out
    assert str(tmp_path / "agent.toml") in out


def test_metrics_port_70000_is_refused(tmp_path: Path, broker: Broker, registry: Path) -> None:
    out = run_refused("agent", agent_cfg(tmp_path, broker, registry, metrics_port=70000))
    assert "agent.metrics_port: must be a port 1..65535 (0: off), not 70000" in out


def test_keepalive_beyond_an_hour_is_refused(
    tmp_path: Path, broker: Broker, registry: Path
) -> None:
    cfg = agent_cfg(tmp_path, broker, registry, local={"keepalive": 10**12})
    out = run_refused("agent", cfg)
    assert "local.keepalive: must be 1..3600 seconds, not 1000000000000" in out


def test_wildcard_in_the_topic_prefix_is_refused(
    tmp_path: Path, broker: Broker, registry: Path
) -> None:
    out = run_refused("agent", agent_cfg(tmp_path, broker, registry, local={"prefix": "a/#"}))
    assert "local.prefix: must hold none of + # $" in out and "'a/#'" in out


def test_a_metrics_port_in_use_stops_the_agent(
    tmp_path: Path, broker: Broker, registry: Path
) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        out = run_refused("agent", agent_cfg(tmp_path, broker, registry, metrics_port=port))
    assert f"agent.metrics_port: cannot listen on 127.0.0.1:{port}: in use" in out
    assert len(out.strip().splitlines()) <= 2, out  # the banner and the one-line error


def test_api_port_minus_one_is_refused(tmp_path: Path, broker: Broker, registry: Path) -> None:
    out = run_refused("collector", collector_cfg(tmp_path, broker, registry, api_port=-1))
    assert "api.port: must be a port 1..65535 (0: off), not -1" in out


def test_an_api_port_in_use_stops_the_collector(
    tmp_path: Path, broker: Broker, registry: Path
) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        out = run_refused("collector", collector_cfg(tmp_path, broker, registry, api_port=port))
    assert f"api.port: cannot listen on 127.0.0.1:{port}: in use" in out


def test_a_missing_registry_is_refused_not_taken_as_empty(tmp_path: Path, broker: Broker) -> None:
    missing = tmp_path / "nowhere" / "devices.json"
    out = run_refused("collector", collector_cfg(tmp_path, broker, missing))
    assert f"collector.registry: file not found: {missing}" in out


def test_a_second_agent_on_the_same_outbox_is_refused(
    tmp_path: Path, broker: Broker, registry: Path
) -> None:
    cfg = agent_cfg(tmp_path, broker, registry)
    first = Role("agent", cfg, tmp_path / "agent.log").start()
    try:
        outbox = tmp_path / "agent" / "outbox.sqlite"
        wait_until(lambda: _agent_connected(outbox), 30, "the first agent to connect")
        out = run_refused("agent", cfg)
        assert first.proc is not None
        assert f"held by process {first.proc.pid}" in out, out
        assert "another agent runs on this outbox" in out
        time.sleep(2)  # the first agent noticed nothing: still up, still connected
        assert first.alive() and _agent_connected(outbox), first.log_tail()
    finally:
        first.stop()
    # the lock goes with its holder: a later agent on this outbox starts
    again = Role("agent", cfg, tmp_path / "agent-again.log").start()
    try:
        wait_until(lambda: _agent_connected(outbox), 30, "the agent after the first stopped")
    finally:
        again.stop()


def test_a_second_collector_with_the_same_client_id_is_refused(
    tmp_path: Path, broker: Broker, registry: Path
) -> None:
    """Collectors share one store, each under its own client_id; one client_id is one
    process, since two would knock each other off the broker."""
    store = tmp_path / "collector" / "collector.sqlite"
    one = collector_cfg(tmp_path, broker, registry, "one", client_id="collector-a")
    first = Role("collector", one, tmp_path / "one.log").start()
    other = Role(
        "collector",
        collector_cfg(tmp_path, broker, registry, "other", client_id="collector-b"),
        tmp_path / "other.log",
    )
    try:
        wait_until(lambda: _live(store) == {"collector-a"}, 30, "the first collector")
        again = collector_cfg(tmp_path, broker, registry, "again", client_id="collector-a")
        out = run_refused("collector", again)
        assert first.proc is not None
        assert f"held by process {first.proc.pid}" in out, out
        assert "another collector runs with this client_id" in out
        other.start()  # the same store under another client_id is welcome
        wait_until(lambda: _live(store) == {"collector-a", "collector-b"}, 30, "both collectors")
        assert first.alive() and other.alive(), first.log_tail()
    finally:
        other.stop()
        first.stop()


def _agent_connected(outbox: Path) -> bool:
    try:
        return bool(read_status(outbox)["local_connected"])
    except (ConfigError, sqlite3.Error):  # not created yet
        return False


def _live(store: Path) -> set[str]:
    procs = read_summary(store).get("processes", {})
    return {name for name, p in procs.items() if p["running"] and p["connected"]}
