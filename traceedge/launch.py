"""Write role configs and run roles as child processes (demo, tests, benchmarks)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from traceedge.lifeline import die_with_parent


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f'"{k}" = {_toml_value(x)}' for k, x in v.items()) + "}"
    return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_toml(
    path: Path,
    tables: dict[str, dict[str, Any]],
    arrays: dict[str, list[dict[str, Any]]] | None = None,
) -> Path:
    """``tables`` as ``[name]`` tables, then ``arrays`` as ``[[name]]`` arrays of tables."""
    lines: list[str] = []
    blocks = [(f"[{n}]", v) for n, v in tables.items()]
    blocks += [(f"[[{n}]]", v) for n, items in (arrays or {}).items() for v in items]
    for head, values in blocks:
        lines.append(head)
        lines += [f"{k} = {_toml_value(v)}" for k, v in values.items() if v is not None]
        lines.append("")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines))
    return path


def agent_config(
    path: Path,
    site: str,
    data_dir: Path,
    local_port: int,
    uplink_port: int,
    devices: Path,
    identity: Path,
    command_key: Path,
    agent: dict[str, Any] | None = None,
    uplink: dict[str, Any] | None = None,
    keepalive: int = 5,
    local: dict[str, Any] | None = None,
    sources: list[dict[str, Any]] | None = None,
) -> Path:
    """An agent's config; ``sources``: its ``[[sources]]`` tables (serial links, Modbus)."""
    return write_toml(
        path,
        {
            "agent": {
                "site": site,
                "data_dir": str(data_dir),
                "devices": str(devices),
                "identity": str(identity),
                "command_key": str(command_key),
                **(agent or {}),
            },
            "local": {
                "host": "127.0.0.1",
                "port": local_port,
                "keepalive": keepalive,
                **(local or {}),
            },
            "uplink": {"ack_timeout_s": 5.0, "backoff_max_s": 2.0, **(uplink or {})},
            "uplink.broker": {"host": "127.0.0.1", "port": uplink_port, "keepalive": keepalive},
        },
        {"sources": sources or []},
    )


def collector_config(
    path: Path,
    data_dir: Path,
    registry: Path,
    broker_port: int,
    platform_url: str | None,
    command_key: Path,
    shared: bool = True,
    client_id: str = "collector-1",
    api_port: int = 0,
    platform: dict[str, Any] | None = None,
    public: dict[str, Any] | None = None,
    store_url: str | None = None,
) -> Path:
    """A collector's config; with ``store_url`` its ``[store]`` is that PostgreSQL database,
    else SQLite in ``data_dir``."""
    tables: dict[str, dict[str, Any]] = {
        "collector": {
            "data_dir": str(data_dir),
            "registry": str(registry),
            "command_key": str(command_key),
            "shared_subscription": shared,
            "client_id": client_id,
        },
        "broker": {"host": "127.0.0.1", "port": broker_port, "keepalive": 5},
        "api": {"port": api_port},
    }
    if public:
        tables["public"] = dict(public)
    if store_url:
        tables["store"] = {"url": store_url}
    if platform_url:
        tables["platform"] = {
            "url": platform_url,
            "backoff_initial_s": 0.2,
            "backoff_max_s": 2.0,
            **(platform or {}),
        }
    return write_toml(path, tables)


class Role:
    """``traceedge <role> run --config FILE`` as a child process, logging to a file.

    The child runs in a session of its own (a Ctrl-C at the terminal reaches only the
    parent, which stops its children in order) and dies with the parent, SIGKILL included
    (:mod:`traceedge.lifeline`): start it from the main thread.
    """

    def __init__(self, role: str, config: Path, log_path: Path) -> None:
        self.role, self.config, self.log_path = role, config, log_path
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> Role:
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        cmd = [sys.executable, "-m", "traceedge", self.role, "run", "--config", str(self.config)]
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                cmd,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
                preexec_fn=die_with_parent(),
            )
        self.starts += 1
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill9(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def log_tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except FileNotFoundError:
            return ""
