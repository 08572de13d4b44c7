"""A worker thread of the agent that dies silences the systemd watchdog and stops the
process (non-zero, for its supervisor to start it again), as the collector does. A real
agent on the main thread (it sets signal handlers), telling a real datagram socket."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import pytest

from edge_agent.agent import Agent
from edge_agent.settings import load_agent
from hostlib.errors import WorkerDied
from hostlib.registry import add_devices
from hostlib.sdnotify import Notifier
from traceedge.brokers import free_port
from traceedge.launch import agent_config
from traceedge.provision import new_device, site_trust

SITE = "W01"


def make_agent(tmp_path: Path) -> Agent:
    registry = tmp_path / "registry" / "devices.json"
    add_devices(registry, [new_device("cylinder-reader", SITE)], 0)
    trust = site_trust(tmp_path, registry, SITE)
    unused = free_port()  # no broker: the links keep trying, which is all they need to do
    cfg = agent_config(
        tmp_path / "agent.toml",
        SITE,
        tmp_path / "agent",
        unused,
        unused,
        devices=trust.agent_devices,
        identity=trust.identity,
        command_key=trust.command_pub,
    )
    return Agent(load_agent(cfg))


def test_a_dead_intake_stops_the_watchdog_and_the_agent(tmp_path: Path) -> None:
    agent = make_agent(tmp_path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(tmp_path / "notify"))
    sock.settimeout(30)
    heard: list[str] = []
    killed_after: list[int] = []

    def listen() -> None:  # READY, two pings, then the intake thread ends under the agent
        try:
            while True:
                heard.append(sock.recv(4096).decode())
                if heard.count("WATCHDOG=1") == 2 and not killed_after:
                    killed_after.append(len(heard))
                    agent.intake.stop()
                if heard[-1].startswith("STOPPING=1"):
                    return
        except TimeoutError:
            return

    t = threading.Thread(target=listen)
    t.start()
    started = time.monotonic()
    try:
        with pytest.raises(WorkerDied, match="intake"):
            agent.run_forever(Notifier({"NOTIFY_SOCKET": str(tmp_path / "notify")}))
    finally:
        t.join()
        sock.close()
    assert time.monotonic() - started < 30
    assert heard[0] == f"READY=1\nSTATUS=agent {SITE}: running"
    assert heard[1:3] == ["WATCHDOG=1", "WATCHDOG=1"]
    # once the intake died: no ping (at most one already on its way), then STOPPING
    after = heard[killed_after[0] :]
    assert after[-1] == f"STOPPING=1\nSTATUS=agent {SITE}: stopping", heard
    assert after.count("WATCHDOG=1") <= 1, heard
