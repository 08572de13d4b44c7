"""``traceedge agent status`` and ``collector status`` against a running chain, and after
its roles are stopped: exit 0 while the role runs, 3 once it does not (what a monitoring
check or a script tests), text a person reads (local times, "N s ago"), ``--json`` with
the raw numbers."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from tests.conftest import Chain, wait_until
from traceedge.cli import main

NOT_RUNNING = 3


def status(role: str, config: Path, *extra: str) -> Any:
    return CliRunner().invoke(main, [role, "status", "--config", str(config), *extra])


def local(epoch: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch))


def test_agent_status_exits_3_when_the_agent_is_not_running(
    chain_factory: Callable[..., Chain], tmp_path: Path
) -> None:
    ch = chain_factory()
    cfg = ch.root / "agent.toml"
    up = status("agent", cfg)
    assert up.exit_code == 0, up.output
    assert up.output.splitlines()[0].endswith(": running")

    ch.agent.stop()
    wait_until(lambda: status("agent", cfg).exit_code == NOT_RUNNING, 15, "status to say down")
    down = status("agent", cfg)
    updated = json.loads(status("agent", cfg, "--json").output)["updated_at"]
    assert f"NOT RUNNING (its last status: {local(updated)} " in down.output
    assert " s ago)" in down.output
    as_json = status("agent", cfg, "--json")
    assert as_json.exit_code == NOT_RUNNING
    assert json.loads(as_json.output)["running"] is False

    never = tmp_path / "never.toml"
    never.write_text(
        f'[agent]\nsite = "S1"\ndata_dir = "{tmp_path / "empty"}"\ndevices = "d.json"\n'
        'identity = "gw.json"\ncommand_key = "command.pub"\n'
    )
    res = status("agent", never)
    assert res.exit_code == NOT_RUNNING
    assert "no outbox here: the agent has never run with this config" in res.output


def test_collector_status_is_text_with_local_times_and_exits_3_when_stopped(
    chain_factory: Callable[..., Chain], tmp_path: Path
) -> None:
    ch = chain_factory()
    ch.fleet().run(12, drain_timeout_s=60)
    ch.wait_forwarded(12)
    cfg = ch.root / "collector-0.toml"

    up = status("collector", cfg, "--devices")
    assert up.exit_code == 0, up.output
    lines = up.output.splitlines()
    assert lines[0] == "collector: running (1 of 1 processes)"
    assert lines[1].split()[:4] == ["collector-0", "running,", "broker", "up,"]
    assert "{" not in up.output  # no Python dict, no raw epoch
    assert any(ln.split() == ["records", "12"] for ln in lines)
    device = next(ln for ln in lines if ch.devices[0].dev in ln)
    assert "last seen 20" in device and " s ago)" in device

    for c in ch.collectors:
        c.stop()
    wait_until(lambda: status("collector", cfg).exit_code == NOT_RUNNING, 15, "status to say down")
    as_json = status("collector", cfg, "--json")
    assert as_json.exit_code == NOT_RUNNING
    at = json.loads(as_json.output)["processes"]["collector-0"]["at"]
    assert isinstance(at, float)  # the raw epoch stays in --json
    down = status("collector", cfg)
    assert down.output.splitlines()[0] == (
        "collector: NOT RUNNING (no process has written a heartbeat in the last 5 s)"
    )
    assert f"collector-0          STOPPED, last heartbeat {local(at)} " in down.output

    never = tmp_path / "never.toml"
    never.write_text(
        f'[collector]\ndata_dir = "{tmp_path / "empty"}"\nregistry = "x.json"\n'
        'command_key = "command.key"\n'
    )
    res = status("collector", never)
    assert res.exit_code == NOT_RUNNING
    assert "no store here: no collector has run with this config" in res.output
