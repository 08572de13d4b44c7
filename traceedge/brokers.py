"""Start an MQTT broker of our own on a free port: Mosquitto when installed, else amqtt.

Used by ``traceedge demo``, the tests and the benchmarks. The config is ours (listener on
127.0.0.1, persistence off unless asked, unlimited queues for persistent sessions), so a
broker can be killed and restarted on the same port for fault tests, unless a Mosquitto
config file is given (one ``traceedge broker config`` wrote, listening on ``port``).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from hostlib.errors import TraceedgeError
from traceedge.lifeline import die_with_parent

MOSQUITTO_HINT = "install it with `apt-get install mosquitto` (make test does this)"


def _ephemeral_low() -> int:
    """The lowest port the kernel hands out to outgoing connections (Linux: 32768)."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as fh:
            return int(fh.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port() -> int:
    """A port nothing listens on now, below the kernel's ephemeral range when there is room:
    a broker stopped for minutes (an outage in a test, a site offline) must find its port
    free again, and an outgoing connection's port taken from the ephemeral range would
    otherwise hold it (bind then fails with "address in use")."""
    low = _ephemeral_low()
    rng = random.SystemRandom()
    for _ in range(100 if low > 12000 else 0):
        port = rng.randrange(10000, low)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 10.0, host: str = "127.0.0.1") -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def connected(pid: int, port: int) -> bool:
    """Whether process ``pid`` holds an established TCP connection to local ``port`` (read
    from /proc, Linux): tests and benchmarks see a role reach a broker without a client of
    their own on it."""
    try:
        inodes = set()
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):  # closed meanwhile
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
        rows: list[str] = []
        for table in ("tcp", "tcp6"):
            with contextlib.suppress(FileNotFoundError), open(f"/proc/{pid}/net/{table}") as f:
                rows += f.read().splitlines()[1:]
    except OSError:
        return False
    for row in rows:
        cols = row.split()  # sl local remote state ... inode (10th)
        if cols[3] == "01" and int(cols[2].rsplit(":", 1)[1], 16) == port and cols[9] in inodes:
            return True
    return False


def find_mosquitto() -> str | None:
    found = shutil.which("mosquitto")
    if found:
        return found
    for cand in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto"):
        if os.access(cand, os.X_OK):
            return cand
    return None


class Broker:
    """A broker child process; ``restart()`` keeps the port (and reads ``conf`` again)."""

    def __init__(
        self,
        kind: str,
        port: int,
        workdir: Path,
        persistence: bool = False,
        conf: Path | None = None,
    ) -> None:
        if conf is not None and kind != "mosquitto":
            raise TraceedgeError(f"a config file is for mosquitto, not {kind}")
        self.kind = kind
        self.port = port
        self.workdir = workdir
        self.persistence = persistence
        self.conf = conf
        self.proc: subprocess.Popen[bytes] | None = None
        workdir.mkdir(parents=True, exist_ok=True)

    def _command(self) -> list[str]:
        if self.kind == "amqtt":
            return [sys.executable, "-m", "traceedge.amqtt_broker", "--port", str(self.port)]
        exe = find_mosquitto()
        if exe is None:
            raise TraceedgeError(f"mosquitto not found: {MOSQUITTO_HINT}")
        if self.conf is not None:
            return [exe, "-c", str(self.conf)]
        conf = self.workdir / "mosquitto.conf"
        lines = [
            f"listener {self.port} 127.0.0.1",
            "allow_anonymous true",
            f"persistence {'true' if self.persistence else 'false'}",
            f"persistence_location {self.workdir}/",
            "max_queued_messages 0",
            "max_inflight_messages 100",
            "message_size_limit 16777216",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
            # Stay the user who started it: a switch to the `mosquitto` user (what it does
            # when started as root) would undo its tie to this process (lifeline).
            f"user {pwd.getpwuid(os.geteuid()).pw_name}",
        ]
        conf.write_text("\n".join(lines) + "\n")
        return [exe, "-c", str(conf)]

    def start(self) -> Broker:
        with open(self.workdir / f"{self.kind}.log", "ab") as log:
            self.proc = subprocess.Popen(
                self._command(),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=die_with_parent(),  # killed with this process, SIGKILL too (lifeline)
            )
        if not wait_port(self.port, 15):
            self.stop()
            raise TraceedgeError(
                f"{self.kind} did not listen on port {self.port}; see {self.workdir}"
            )
        return self

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def restart(self) -> None:
        self.stop()
        self.start()

    def __enter__(self) -> Broker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_broker(kind: str, workdir: Path, port: int | None = None) -> Broker:
    """``kind``: ``mosquitto``, ``amqtt`` or ``auto`` (Mosquitto when on this machine)."""
    if kind == "auto":
        kind = "mosquitto" if find_mosquitto() else "amqtt"
    return Broker(kind, port or free_port(), workdir).start()
