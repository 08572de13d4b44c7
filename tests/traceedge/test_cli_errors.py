"""Every command given bad input a user can give it (a missing or wrong file, a file that is
not JSON or not a store, a port out of range or in use, nothing listening) ends with one
line saying what is wrong and a non-zero exit status, never a traceback. Each command runs
as the user runs it: a process of its own."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from hostlib.registry import add_devices
from traceedge.brokers import free_port
from traceedge.provision import new_device


@pytest.fixture
def port_in_use() -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield int(s.getsockname()[1])


def bad_inputs(tmp: Path, in_use: int) -> dict[str, list[str]]:
    """What each command is run with, by what is wrong with it."""
    not_a_store = b"this is not an SQLite database " * 64
    a_file = tmp / "a-file"
    a_file.write_text("x")
    not_json = tmp / "not.json"
    not_json.write_text("{")
    registry = tmp / "devices.json"
    add_devices(registry, [new_device("market-scale", "S1")], 0)
    nothing = free_port()  # nothing listens there

    def config(name: str, text: str) -> str:
        path = tmp / name
        path.write_text(text)
        return str(path)

    garbage_dir = tmp / "garbage"
    garbage_dir.mkdir()
    (garbage_dir / "outbox.sqlite").write_bytes(not_a_store)
    (garbage_dir / "collector.sqlite").write_bytes(not_a_store)
    agent = (
        '[agent]\nsite = "S1"\ndata_dir = "{}"\n[local]\nport = {}\n[uplink.broker]\nport = {}\n'
    )
    agent_in_file = config("a1.toml", agent.format(a_file, nothing, nothing))
    agent_garbage = config("a2.toml", agent.format(garbage_dir, nothing, nothing))
    agent_metrics = config(
        "a3.toml",
        agent.format(tmp / "agent", nothing, nothing).replace(
            "[local]", f"metrics_port = {in_use}\n[local]"
        ),
    )
    collector = '[collector]\ndata_dir = "{}"\nregistry = "{}"\n[broker]\nport = {}\n'
    collector_in_file = config("c1.toml", collector.format(a_file, registry, nothing))
    collector_garbage = config("c2.toml", collector.format(garbage_dir, registry, nothing))
    provision = ["device", "provision", "--type", "gateway", "--site", "S1", "--out"]
    fleet = ["fleet", "run", "--records", "1", "--connect-timeout", "2"]
    return {
        "agent run: data_dir is a file": ["agent", "run", "--config", agent_in_file],
        "agent run: metrics port in use": ["agent", "run", "--config", agent_metrics],
        "agent run: no config file": ["agent", "run", "--config", str(tmp / "none.toml")],
        "agent status: the outbox is not SQLite": ["agent", "status", "--config", agent_garbage],
        "collector run: data_dir is a file": ["collector", "run", "--config", collector_in_file],
        "collector status: the store is not SQLite": [
            "collector",
            "status",
            "--config",
            collector_garbage,
        ],
        "collector forward-retry: the store is not SQLite": [
            "collector",
            "forward-retry",
            "--config",
            collector_garbage,
        ],
        "collector import-traders: not JSON": [
            "collector",
            "import-traders",
            "--config",
            collector_garbage,
            str(not_json),
        ],
        "device provision: registry under a file": [
            *provision,
            str(tmp / "out"),
            "--registry",
            str(a_file / "devices.json"),
        ],
        "device provision: --out is a file": [*provision, str(a_file), "--registry", "r.json"],
        "device list: registry not JSON": ["device", "list", "--registry", str(not_json)],
        "device list: no registry": ["device", "list", "--registry", str(tmp / "none.json")],
        "device flash: config not JSON": [
            "device",
            "flash",
            "--app",
            "cylinder",
            "--config",
            str(not_json),
            "--app-config",
            str(not_json),
            "--dry-run",
        ],
        "fleet run: registry not JSON": [*fleet, "--registry", str(not_json)],
        "fleet run: port out of range": [*fleet, "--registry", str(registry), "--port", "99999"],
        "fleet run: state file not JSON": [
            *fleet,
            "--registry",
            str(registry),
            "--state",
            str(not_json),
            "--port",
            str(nothing),
        ],
        "fleet run: nothing listening": [
            *fleet,
            "--registry",
            str(registry),
            "--port",
            str(nothing),
        ],
        "platform run: port out of range": ["platform", "run", "--port", "99999"],
        "platform run: port in use": ["platform", "run", "--port", str(in_use)],
        "demo: --workdir is a file": ["demo", "--workdir", str(a_file)],
        "sim scale: --link in a missing folder": ["sim", "scale", "--link", str(tmp / "no" / "s")],
        "sim elevator: port in use": ["sim", "elevator", "--port", str(in_use)],
        "sim card: not a UID": ["sim", "card", "--uid", "ZZ"],
        "diag scale: no such port": ["diag", "scale", "--port", str(tmp / "tty"), "--once"],
        "diag elevator: nothing listening": [
            "diag",
            "elevator",
            "--port",
            f"tcp://127.0.0.1:{nothing}",
            "--once",
            "--timeout",
            "0.5",
        ],
    }


def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "traceedge", *args],
        capture_output=True,
        text=True,
        timeout=90,
        stdin=subprocess.DEVNULL,
        cwd=cwd,
    )


def test_bad_input_to_any_command_is_one_line_never_a_traceback(
    tmp_path: Path, port_in_use: int
) -> None:
    cases = bad_inputs(tmp_path, port_in_use)
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = dict(
            zip(cases, pool.map(lambda a: run(a, tmp_path), cases.values()), strict=True)
        )
    wrong = []
    for what, res in results.items():
        err = res.stderr.strip().splitlines()
        if (
            res.returncode == 0
            or "Traceback" in res.stdout + res.stderr
            or not err
            or not err[-1].startswith("Error:")
        ):
            wrong.append(f"{what}: exit {res.returncode}\n{res.stderr[-1500:]}")
    assert not wrong, "\n\n".join(wrong)
