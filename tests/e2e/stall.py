"""The stall terminal as a child process (``traceedge terminal run``), driven through its
stdin like an operator, its stdout read line by line; its config written from a device."""

from __future__ import annotations

import contextlib
import json
import os
import re
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from edge_agent.terminal.log import read_status
from hostlib.registry import Device
from traceedge.lifeline import die_with_parent
from traceedge.provision import device_config
from wire.checkdigit import with_check_digit
from wire.envelope import decode_record

SELLER = "9C3A11F0"
TRADER = "T3301060007"
BUYER = "04A1B2C3D4E5F6"
BUYER_ID = "B33010600042"
WEIGHED = {
    "key": 1,
    "batch_id": with_check_digit("3301422511230000007"),
    "goods_code": "10010004",
    "goods_name": "五花肉",
    "mode": "weighed",
    "seller": TRADER,
    "price_fen_per_kg": 2980,
}
COUNTED = {
    "key": 2,
    "batch_id": with_check_digit("3301422511230000047"),
    "goods_code": "20040001",
    "goods_name": "豆腐",
    "mode": "counted",
    "price_fen_per_piece": 250,
    "seller": TRADER,
}


def _toml(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {_toml(x)}" for k, x in v.items()) + "}"
    return json.dumps(v, ensure_ascii=False)


def write_toml(
    path: Path, tables: dict[str, dict[str, Any]], arrays: dict[str, list[dict[str, Any]]]
) -> Path:
    """A terminal's config: ``tables``, then each array of tables (``[[name]]``)."""
    lines: list[str] = []
    for name, values in tables.items():
        lines.append(f"[{name}]")
        lines += [f"{k} = {_toml(v)}" for k, v in values.items()]
        lines.append("")
    for name, items in arrays.items():
        for it in items:
            lines.append(f"[[{name}]]")
            lines += [f"{k} = {_toml(v)}" for k, v in it.items()]
            lines.append("")
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def identity_file(root: Path, device: Device, broker_port: int) -> str:
    """The device's provisioned identity, written for a terminal's ``[terminal] identity``."""
    ident = root / f"{device.dev}.json"
    ident.write_text(json.dumps(device_config(device, "127.0.0.1", broker_port)))
    return str(ident)


def only_record(log_path: Path) -> dict[str, Any]:
    """The one record a terminal's log holds, decoded."""
    db = sqlite3.connect(log_path)
    try:
        (payload,) = db.execute("SELECT payload FROM records").fetchone()
    finally:
        db.close()
    return decode_record(payload)


def write_config(
    root: Path,
    device: Device,
    broker_port: int,
    scale_port: str,
    protocol: str,
    reader: str,
    printer: Path,
    ack_timeout_s: float = 3.0,
) -> Path:
    tables: dict[str, dict[str, Any]] = {
        "terminal": {"identity": identity_file(root, device, broker_port),
                     "data_dir": str(root / "data"),
                     "ack_timeout_s": ack_timeout_s},
        "scale": {"port": scale_port, "protocol": protocol, "timeout_s": 3.0, "probe_s": 0.5,
                  "reconnect_cap_s": 0.5},
        "cards": {"reader": reader},
        "printer": {"kind": "device", "path": str(printer)},
        "settlement": {
            "market": "M330106042", "market_no": "330142", "region": "330106",
            "terminal": "M330106042-017", "terminal_no": 17, "scale_sw": "ACS-15RT V3.0.7",
            "title": "西湖农贸市场", "trace_url": "https://trace.example.cn/t/",
            "traders": {SELLER: TRADER}, "buyers": {BUYER: BUYER_ID},
        },
    }  # fmt: skip
    goods = {"settlement.goods": [WEIGHED, COUNTED]}
    return write_toml(root / "terminal.toml", tables, goods)


class StallTerminal:
    def __init__(
        self, config: Path, env: dict[str, str], log_path: Path, app: str = "settlement"
    ) -> None:
        self.app = app
        self.config = config
        self.env = env
        self.log_path = log_path
        self.proc: subprocess.Popen[str] | None = None
        self.lines: list[str] = []
        self._cond = threading.Condition()
        self.starts = 0

    @property
    def db(self) -> Path:
        return self.config.parent / "data" / "terminal.sqlite"

    def start(self) -> StallTerminal:
        env = dict(self.env, PYTHONUNBUFFERED="1")
        with open(self.log_path, "ab") as err:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "traceedge",
                    "terminal",
                    "run",
                    "--config",
                    str(self.config),
                    "--app",
                    self.app,
                ],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
                encoding="utf-8",
                env=env,
                preexec_fn=die_with_parent(),
            )
        self.starts += 1
        proc = self.proc
        self._reader = threading.Thread(target=self._pump, args=(proc,), daemon=True)
        self._reader.start()
        return self

    def _reap(self) -> None:
        """After the process ended: its output read to the end, its pipes closed."""
        assert self.proc is not None
        self._reader.join(10)
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()

    def _pump(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            with self._cond:
                self.lines.append(line.rstrip("\n"))
                self._cond.notify_all()

    def mark(self) -> int:
        with self._cond:
            return len(self.lines)

    def send(self, line: str) -> None:
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def expect(self, pattern: str, since: int = 0, timeout: float = 20.0) -> re.Match[str]:
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for line in self.lines[since:]:
                    m = rx.search(line)
                    if m:
                        return m
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            tail = "\n".join(self.lines[-40:])
        raise AssertionError(
            f"terminal never said /{pattern}/ within {timeout:.0f} s; its output:\n{tail}\n"
            f"its log:\n{self.log_tail()}"
        )

    def ask(self, line: str, pattern: str, timeout: float = 20.0) -> re.Match[str]:
        at = self.mark()
        self.send(line)
        return self.expect(pattern, at, timeout)

    def status(self) -> dict[str, Any]:
        return read_status(self.db)

    def kill9(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(10)
            self._reap()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:
                self.send("quit")
                self.proc.wait(20)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait(10)
            self._reap()

    def log_tail(self, n: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except FileNotFoundError:
            return ""


def python_env(extra: dict[str, str]) -> dict[str, str]:
    root = str(Path(__file__).resolve().parents[2])
    pp = os.environ.get("PYTHONPATH", "")
    return dict(extra, PYTHONPATH=f"{root}:{pp}" if pp else root)
