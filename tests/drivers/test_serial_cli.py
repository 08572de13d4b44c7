"""The CLI as technicians and other checks use it: ``traceedge sim ... --pty`` and
``traceedge diag ... --once --json`` as real subprocesses talking through real ptys."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import pytest

from simulators.scale_sim import SicsScale

ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "traceedge"]


class Proc:
    """A CLI subprocess whose stdout lines are read by a thread (no blocking reads)."""

    def __init__(self, args: list[str], stderr: IO[str]) -> None:
        self.proc = subprocess.Popen(
            [*CLI, *args], cwd=ROOT, stdout=subprocess.PIPE, stderr=stderr, text=True
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.thread = threading.Thread(target=self._pump, name="cli-lines", daemon=True)
        self.thread.start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def line(self, timeout: float = 10.0) -> str:
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no output from {self.proc.args} in {timeout} s") from None
        assert line is not None, f"{self.proc.args} ended with {self.proc.wait()}"
        return line

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise
        finally:
            self.thread.join(timeout=5)
            assert self.proc.stdout is not None
            self.proc.stdout.close()
        return code


@contextmanager
def spawn(args: list[str], log: Path) -> Iterator[Proc]:
    with log.open("w") as err:
        proc = Proc(args, err)
        try:
            yield proc
        finally:
            proc.stop()


def diag(args: list[str], timeout: float = 20.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, "diag", *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )


def once_json(args: list[str]) -> dict[str, Any]:
    res = diag([*args, "--once", "--json"])
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert len(lines) == 1, res.stdout
    doc = json.loads(lines[0])
    assert isinstance(doc, dict)
    return doc


@pytest.mark.parametrize("protocol", ["sics", "toledo8217", "cas_ecr", "toledo_continuous"])
def test_sim_scale_then_diag_once_json(protocol: str, tmp_path: Path) -> None:
    sim_args = ["sim", "scale", "--protocol", protocol, "--pty", "--weight", "12345"]
    with spawn([*sim_args, "--decimals", "2"], tmp_path / "sim.log") as sim:
        path = sim.line()
        assert path.startswith("/dev/pts/") and os.path.exists(path)
        doc = once_json(["scale", "--protocol", protocol, "--port", path])
    assert doc["weight"] == 12345 and isinstance(doc["weight"], int)
    assert (doc["decimals"], doc["unit"], doc["stable"]) == (2, "kg", True)
    assert doc["protocol"] == protocol and doc["overload"] is False
    assert sim.proc.returncode == 0


def test_sim_scale_moving_and_overloaded_as_diag_sees_them(tmp_path: Path) -> None:
    with spawn(["sim", "scale", "--pty", "--moving"], tmp_path / "moving.log") as moving:
        doc = once_json(["scale", "--port", moving.line()])
        assert doc["stable"] is False and isinstance(doc["weight"], int)
    with spawn(["sim", "scale", "--pty", "--overload"], tmp_path / "over.log") as over:
        doc = once_json(["scale", "--port", over.line()])
        assert doc["overload"] is True and doc["weight"] is None


def test_sim_rejects_a_weight_the_protocol_cannot_carry() -> None:
    args = ["sim", "scale", "--protocol", "cas_ecr", "--pty", "--weight", "1234567"]
    res = subprocess.run([*CLI, *args], cwd=ROOT, capture_output=True, text=True, timeout=20)
    assert res.returncode == 2 and "cas_ecr cannot send this weight" in res.stderr
    assert res.stdout == ""


@pytest.mark.parametrize("protocol", ["chafon", "r2000"])
def test_sim_rfid_then_diag_once_json(protocol: str, tmp_path: Path) -> None:
    args = ["sim", "rfid", "--protocol", protocol, "--pty", "--tags", "12"]
    with spawn(args, tmp_path / "sim.log") as sim:
        doc = once_json(["rfid", "--protocol", protocol, "--port", sim.line()])
    assert doc["protocol"] == protocol and doc["count"] == 12
    epcs = [t["epc"] for t in doc["tags"]]
    assert len(set(epcs)) == 12 and all(len(e) == 24 and e.startswith("E280") for e in epcs)
    rssi = [t["rssi"] for t in doc["tags"]]
    assert all(r is None for r in rssi) if protocol == "chafon" else all(64 <= r < 96 for r in rssi)


def test_sim_scanner_then_diag_once_json(tmp_path: Path) -> None:
    with spawn(["sim", "scanner", "--pty", "--every", "0.1"], tmp_path / "sim.log") as sim:
        doc = once_json(["scanner", "--port", sim.line()])
    assert doc["ais"]["01"] == "09506000134352" and doc["gtin"] == "09506000134352"
    assert doc["symbology"] in ("]C1", "]Q1")


def test_diag_without_a_device_fails_with_a_clear_message(tmp_path: Path) -> None:
    res = diag(["scale", "--port", str(tmp_path / "ttyUSB9"), "--once", "--json"])
    assert res.returncode == 1 and res.stdout == ""
    assert "cannot open" in res.stderr and "ttyUSB9" in res.stderr
    assert "Traceback" not in res.stderr


def test_diag_against_a_silent_device_times_out_quickly() -> None:
    with SicsScale() as sim:
        sim.silent = True
        started = time.monotonic()
        res = diag(["scale", "--port", sim.path, "--once", "--json", "--timeout", "0.3"])
        elapsed = time.monotonic() - started
    assert res.returncode == 1 and "no answer" in res.stderr and "Traceback" not in res.stderr
    assert elapsed < 5


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_sim_serves_until_signalled_then_releases_the_pty(sig: int, tmp_path: Path) -> None:
    link = tmp_path / "scale0"
    with spawn(["sim", "scale", "--pty", "--link", str(link)], tmp_path / "s.log") as sim:
        assert sim.line() == str(link)
        tty = os.readlink(link)
        assert tty.startswith("/dev/pts/")
        assert sim.stop(sig) == 0
    assert not link.exists()


def test_diag_keeps_reading_across_unplug_and_replug(tmp_path: Path) -> None:
    with SicsScale(weight=1000, link=tmp_path / "scale") as sim:
        args = ["diag", "scale", "--port", sim.path, "--json", "--interval", "0.05"]
        with spawn(args, tmp_path / "diag.log") as proc:
            assert json.loads(proc.line())["weight"] == 1000
            sim.unplug()
            time.sleep(0.3)
            sim.set_weight(2500)
            sim.replug()
            deadline = time.monotonic() + 10
            while json.loads(proc.line())["weight"] != 2500:
                assert time.monotonic() < deadline
            assert proc.stop(signal.SIGINT) == 0
    log = (tmp_path / "diag.log").read_text()
    assert "device gone" in log and "device connected" in log


def test_sim_serial_link_terminal_keeps_records_until_the_sealed_ack(tmp_path: Path) -> None:
    import serial

    from drivers.codecs import slink
    from traceedge.provision import device_config, new_device
    from wire import auth
    from wire.envelope import verify_mac

    d = new_device("elevator-box", "S1")
    cfg = tmp_path / f"{d.dev}.json"
    cfg.write_text(json.dumps(device_config(d, "127.0.0.1", 1883)))
    link = tmp_path / "ttyELV"
    args = ["sim", "serial-link", str(cfg), "--link", str(link), "--rate", "50", "--count", "6"]
    got: dict[int, dict[str, Any]] = {}
    with spawn(args, tmp_path / "sim.log") as sim:
        assert sim.line() == str(link)
        ser = serial.Serial(str(link), 115200, timeout=0.01)
        eps: list[slink.SerialEndpoint] = []

        def deliver(ftype: int, payload: bytes) -> None:
            rec = json.loads(payload)
            assert ftype == slink.REC and verify_mac(rec, d.key)
            got[rec["seq"]] = rec
            if rec["seq"] != 3:  # seq 3 is never acknowledged: the terminal keeps it
                ack = auth.terminal_ack(d.dev, 0, [(rec["seq"], rec["seq"])], [], d.key)
                eps[0].send(slink.ACK, ack)

        class Port:
            def read(self) -> bytes | None:
                return ser.read(ser.in_waiting or 1) or None

            def write(self, data: bytes) -> int:
                return ser.write(data) or 0

        clock = slink.HostClock()
        eps.append(slink.SerialEndpoint(Port(), clock, deliver, 150, keepalive_ms=500))
        deadline = time.monotonic() + 20
        while len(got) < 6 and time.monotonic() < deadline:
            eps[0].poll(clock.ticks_ms())
        for _ in range(20):
            eps[0].poll(clock.ticks_ms())
        ser.close()
        code = sim.stop()
    assert code == 0 and sorted(got) == [1, 2, 3, 4, 5, 6]
    summary = (tmp_path / "sim.log").read_text()
    assert "made 6, acknowledged 5, still held 1, forged acks 0" in summary, summary
