"""``traceedge sim elevator`` and ``traceedge diag elevator`` as a technician runs them:
child processes, the simulator's first stdout line, JSON with integer fields."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import IO

import pytest

INT_FIELDS = ("floor", "fault_code", "speed_mm_s", "runs", "door_cycles", "run_hours")


class Child:
    """A ``python -m traceedge`` child with line-by-line stdout and a stdin to command it."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "traceedge", *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.errors: queue.Queue[str] = queue.Queue()
        self._readers = [
            threading.Thread(target=self._read, args=(self.proc.stdout, self.lines), daemon=True),
            threading.Thread(target=self._read, args=(self.proc.stderr, self.errors), daemon=True),
        ]
        for t in self._readers:
            t.start()

    @staticmethod
    def _read(stream: IO[str] | None, into: queue.Queue[str]) -> None:
        assert stream is not None
        for line in stream:
            into.put(line.rstrip("\n"))

    def readline(self, timeout: float = 15.0, err: bool = False) -> str:
        try:
            return (self.errors if err else self.lines).get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no output line within {timeout} s") from None

    def drain(self, err: bool = False) -> list[str]:
        """Every line read so far (after the process ended: all of them)."""
        if self.proc.poll() is not None:
            for t in self._readers:
                t.join(timeout=5)
        q = self.errors if err else self.lines
        out = []
        while not q.empty():
            out.append(q.get())
        return out

    def send(self, line: str) -> str:
        """Send a stdin command; its acknowledgement line."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        return self.readline()

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait(timeout=5)
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        for t in self._readers:
            t.join(timeout=5)
        for f in (self.proc.stdout, self.proc.stderr):
            if f is not None:
                f.close()
        return rc


def traceedge(*args: str, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "traceedge", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture
def tcp_sim() -> Iterator[tuple[Child, str]]:
    child = Child("sim", "elevator", "--tcp", "--no-auto", "--floor-time", "0.2")
    url = child.readline()
    yield child, url
    assert child.stop() == 0


def diag_once(target: str, *extra: str) -> dict[str, object]:
    res = traceedge("diag", "elevator", "--port", target, "--once", "--json", *extra)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert len(lines) == 1, res.stdout
    status = json.loads(lines[0])
    assert isinstance(status, dict)
    return status


def test_sim_over_tcp_and_diag_once_json(tcp_sim: tuple[Child, str]) -> None:
    child, url = tcp_sim
    assert url.startswith("tcp://127.0.0.1:") and int(url.rsplit(":", 1)[1]) > 0
    status = diag_once(url, "--unit", "1")
    for key in INT_FIELDS:
        assert type(status[key]) is int, (key, status)
    assert status["floor"] == 0 and status["fault"] == "no fault"
    assert child.send("fault 7") == "ok fault 7"
    status = diag_once(url)
    assert (status["fault_code"], status["fault"]) == (7, "motor overheat")


def test_sim_over_a_pty_power_loss_and_back() -> None:
    child = Child("sim", "elevator", "--pty", "--no-auto")
    try:
        path = child.readline()
        assert path.startswith("/dev/") and os.path.exists(path)
        assert diag_once(path)["direction"] == "idle"
        assert child.send("power off") == "ok power off"
        res = traceedge("diag", "elevator", "--port", path, "--once", "--timeout", "0.3")
        assert res.returncode == 1
        assert "no answer" in res.stderr and "retrying may help" in res.stderr
        assert child.send("power on") == "ok power on"
        assert child.send("call 3") == "ok call 3"
        text = traceedge("diag", "elevator", "--port", path, "--once")
        assert text.returncode == 0 and text.stdout.startswith("floor ")
    finally:
        assert child.stop() == 0


def test_diag_polls_until_stopped_and_reports_errors(tcp_sim: tuple[Child, str]) -> None:
    child, url = tcp_sim
    diag = Child("diag", "elevator", "--port", url, "--json", "--interval", "0.1")
    try:
        first = json.loads(diag.readline())
        assert first["floor"] == 0
        child.send("call 2")
        floors = set()
        while 2 not in floors:
            floors.add(json.loads(diag.readline())["floor"])
        assert 1 in floors
        assert child.send("power off") == "ok power off"
        assert "error:" in diag.readline(err=True)  # reported, and polling goes on
        assert child.send("power on") == "ok power on"
        while not diag.lines.empty():
            diag.lines.get()
        assert json.loads(diag.readline())["floor"] == 2
    finally:
        assert diag.stop() == 0


@pytest.mark.parametrize("bad", ["ftp://x", "tcp://:1"])
def test_diag_rejects_a_bad_port(bad: str) -> None:
    res = traceedge("diag", "elevator", "--port", bad, "--once")
    assert res.returncode == 2 and "--port" in res.stderr
