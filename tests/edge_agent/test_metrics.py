"""The agent's ``/metrics``: a real agent (made, not connected) serves every number with
``# HELP``, counters typed ``counter`` and named ``_total``, a ``site`` label on every series,
on the address ``agent.metrics_host`` names; prometheus_client parses it and ``promtool
check metrics`` passes it."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from edge_agent.agent import Agent
from edge_agent.metrics import metric_families, render, unexported
from edge_agent.settings import load_agent
from hostlib.registry import add_devices
from tests.promtool import check_metrics, value
from traceedge.brokers import free_port
from traceedge.launch import agent_config
from traceedge.provision import new_device, site_trust

SITE = "M01"
A = "traceedge_agent_"


def make_agent(tmp_path: Path, **agent: object) -> Agent:
    registry = tmp_path / "registry" / "devices.json"
    add_devices(registry, [new_device("cylinder-reader", SITE)], 0)
    trust = site_trust(tmp_path, registry, SITE)
    unused = free_port()  # no broker: the agent is made, never started
    cfg = agent_config(
        tmp_path / "agent.toml",
        SITE,
        tmp_path / "agent",
        unused,
        unused,
        devices=trust.agent_devices,
        identity=trust.identity,
        command_key=trust.command_pub,
        agent=agent,
    )
    return Agent(load_agent(cfg))


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[Agent]:
    a = make_agent(tmp_path)
    yield a
    a.outbox.close()
    a.lock.release()


def test_every_number_of_the_agent_is_exported(agent: Agent) -> None:
    agent.commands.rejected["signature"] = 2  # as a forged command leaves it
    numbers = agent.numbers()
    assert unexported(numbers) == set()
    text = render(SITE, agent.numbers)
    assert value(text, A + "outbox_records", site=SITE) == 0
    assert value(text, A + "stored_records_total", site=SITE) == 0
    assert value(text, A + "outbox_max_bytes", site=SITE) == agent.settings.outbox_max_bytes
    assert value(text, A + "commands_rejected_total", site=SITE, reason="signature") == 2
    for decision in ("allow", "deny", "error", "refused"):
        assert value(text, A + "gate_decisions_total", site=SITE, decision=decision) == 0


def test_help_types_and_the_site_label(agent: Agent) -> None:
    agent.commands.rejected["expired"] = 1
    text = render(SITE, agent.numbers)
    check_metrics(text)
    fams = list(text_string_to_metric_families(text.decode()))
    assert len(fams) >= 30
    counters = {f.name for f in fams if f.type == "counter"}
    assert {A + "stored_records", A + "acked_records", A + "forged_acks"} <= counters
    for fam in fams:
        assert fam.documentation and fam.type in ("counter", "gauge"), fam.name
        assert fam.samples, fam.name
        for s in fam.samples:
            assert s.labels["site"] == SITE, s
            if fam.type == "counter":
                assert s.name.endswith("_total"), s


def test_numbers_a_snapshot_lacks_are_left_out() -> None:
    """A newer number unknown here is not exported (and the test above says so)."""
    fams = {f.name for f in metric_families(SITE, {"depth": 3, "brand_new": 1})}
    assert A + "outbox_records" in fams
    assert not any("brand_new" in f for f in fams)
    assert unexported({"depth": 3, "brand_new": 1}) == {"brand_new"}


def test_metrics_listen_on_the_configured_host(tmp_path: Path) -> None:
    port = free_port()
    agent = make_agent(tmp_path, metrics_port=port, metrics_host="127.0.0.2")
    assert agent.metrics is not None
    agent.metrics.start()
    try:
        reply = httpx.get(f"http://127.0.0.2:{port}/metrics", timeout=5)
        assert reply.status_code == 200
        assert reply.headers["content-type"].startswith("text/plain; version=0.0.4")
        assert value(reply.text, A + "outbox_records", site=SITE) == 0
        with (
            pytest.raises(ConnectionRefusedError),
            socket.create_connection(("127.0.0.1", port), timeout=5),
        ):
            pass
        assert httpx.get(f"http://127.0.0.2:{port}/other", timeout=5).status_code == 404
    finally:
        agent.metrics.stop()
        agent.outbox.close()
        agent.lock.release()


def test_the_metrics_host_defaults_to_loopback(tmp_path: Path) -> None:
    agent = make_agent(tmp_path)
    try:
        assert agent.settings.metrics_host == "127.0.0.1"
    finally:
        agent.outbox.close()
        agent.lock.release()
