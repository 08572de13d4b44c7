"""The agent and the collector as systemd runs them: ``Type=notify`` over a real unix
datagram socket in ``NOTIFY_SOCKET`` (READY once started, WATCHDOG every second, STOPPING
on SIGTERM), logging with ``--log-format json`` one object per line; and the lines an
operator reads in a day of normal work: no line per platform POST, no WARNING for a clean
stop.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from hostlib.registry import add_devices
from tests.conftest import SITE, Chain, require_mosquitto
from traceedge.brokers import Broker, free_port
from traceedge.launch import agent_config, collector_config
from traceedge.provision import new_device, site_trust

ISO_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    """One per test: the agent's retained status must not reach the collector's test."""
    require_mosquitto()
    b = Broker("mosquitto", free_port(), tmp_path / "broker").start()
    yield b
    b.stop()


def role_config(role: str, tmp_path: Path, broker: Broker) -> Path:
    registry = tmp_path / "devices.json"
    add_devices(registry, [new_device("market-scale", SITE)], int(time.time()))
    trust = site_trust(tmp_path, registry, SITE)
    if role == "agent":
        return agent_config(
            tmp_path / "agent.toml",
            SITE,
            tmp_path / "agent",
            broker.port,
            broker.port,
            devices=trust.agent_devices,
            identity=trust.identity,
            command_key=trust.command_pub,
        )
    return collector_config(
        tmp_path / "collector.toml",
        tmp_path / "collector",
        registry,
        broker.port,
        None,
        trust.command_key,
        api_port=free_port(),
    )


def receive(sock: socket.socket, want: str, timeout: float) -> list[str]:
    """Datagrams until one holds the line ``want``; all of them, in order."""
    got: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sock.settimeout(max(deadline - time.monotonic(), 0.01))
        try:
            got.append(sock.recv(4096).decode())
        except TimeoutError:
            break
        if want in got[-1].splitlines():
            return got
    raise AssertionError(f"no {want} within {timeout:.0f} s; got {got}")


@pytest.mark.parametrize("role", ["agent", "collector"])
def test_role_tells_systemd_ready_watchdog_stopping_and_logs_json(
    role: str, tmp_path: Path, broker: Broker
) -> None:
    config = role_config(role, tmp_path, broker)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    # the agent gets a path, the collector an abstract name: systemd uses either
    if role == "agent":
        address: str | bytes = str(tmp_path / "notify")
        env_value = str(address)
    else:
        env_value = f"@traceedge-test-{os.getpid()}-{role}"
        address = b"\0" + env_value[1:].encode()
    sock.bind(address)
    env = {**os.environ, "NOTIFY_SOCKET": env_value, "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "traceedge", role, "run", "--config", str(config)]
    err_path = tmp_path / "stderr.log"
    with open(err_path, "wb") as err:
        proc = subprocess.Popen(
            [*cmd, "--log-format", "json"], stdout=subprocess.PIPE, stderr=err, env=env
        )
    try:
        got = receive(sock, "READY=1", 60)
        assert got == [
            f"READY=1\nSTATUS={role} {'T01' if role == 'agent' else 'collector-1'}: running"
        ], got
        assert proc.poll() is None
        pings = receive(sock, "WATCHDOG=1", 10) + receive(sock, "WATCHDOG=1", 10)
        assert pings == ["WATCHDOG=1", "WATCHDOG=1"], pings
        proc.send_signal(signal.SIGTERM)
        last = receive(sock, "STOPPING=1", 20)
        assert last[-1].startswith("STOPPING=1\n"), last
        out, _ = proc.communicate(timeout=30)
        assert proc.returncode == 0
        assert out == b""  # stdout stays free for what a command answers
    finally:
        sock.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    lines = err_path.read_text().splitlines()
    logs = [json.loads(line) for line in lines]  # every line is one JSON object
    for entry in logs:
        assert {"ts", "level", "logger", "msg"} <= entry.keys(), entry
        assert ISO_UTC.fullmatch(entry["ts"]), entry
    said = [(e["level"], e["logger"], e["msg"]) for e in logs]
    startup = [s for s in said if s[1] == f"traceedge.cli.{role}"]
    assert startup and startup[0][0] == "INFO", said  # what it does, at INFO
    assert any("connected to 127.0.0.1" in s[2] for s in said), said
    assert any(
        s[2].endswith("disconnected (Normal disconnection)") and s[0] == "INFO" for s in said
    ), said
    assert not [s for s in said if s[0] in ("WARNING", "ERROR", "CRITICAL")], said


def test_forwarding_is_not_a_line_per_post_and_a_clean_stop_no_warning(
    chain_factory: Callable[..., Chain],
) -> None:
    ch = chain_factory()
    out = ch.fleet().run(600, drain_timeout_s=60)
    assert out["pending"] == 0
    ch.wait_forwarded(600)
    assert ch.platform_stats()["requests"] >= 2, ch.platform_stats()
    collector = ch.collectors[0]
    collector.stop()
    log = collector.log_path.read_text()
    assert "INFO traceedge.cli.collector: collector collector-0" in log, log
    assert "HTTP Request" not in log, log
    assert "WARNING" not in log and "ERROR" not in log, log
