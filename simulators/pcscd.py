"""A private pcscd with vsmartcard's ``Virtual PCD`` reader, for tests and ``traceedge sim card``.

How it runs without disturbing a system pcscd (checked with pcsc-lite 1.9.9, Debian 12):

* **Its own socket.** pcscd 1.9 has no option for its socket path, but it accepts a listening
  socket passed the systemd way (``LISTEN_FDS=1``, ``LISTEN_PID`` = its pid, the socket on
  fd 3). We bind a Unix socket in a private directory and hand it over through a tiny
  ``exec`` wrapper; pcscd then skips its "another pcscd is running" check and never touches
  ``/run/pcscd/pcscd.comm``. Clients find it through ``PCSCLITE_CSOCK_NAME``, which
  libpcsclite reads **once per process**: :func:`use_socket` sets it for this process (and
  refuses a second, different path), :attr:`Pcscd.env` gives it to child processes.
* **Its own reader config.** ``pcscd -c DIR`` reads only our ``reader.conf.d``: one vpcd
  entry on a free TCP port pair (vpcd opens slot 0 on ``CHANNELID`` and slot 1 on the next
  port; the readers are ``Virtual PCD 00 00`` and ``Virtual PCD 00 01``).
* **Foreground, as a child.** ``-f`` keeps it in the foreground with logs on stdout (kept in
  ``pcscd.log`` in the work directory); it is asked to stop with SIGTERM, killed if it
  lingers, and dies with its parent (``PR_SET_PDEATHSIG``) if the test process is killed
  (with the *thread* that started it, in fact: start it from a long-lived thread).
* **No polkit.** pcsc-lite 2.x built with polkit gets ``--disable-polkit`` (seen in its
  ``--help``): the private daemon serves only the tests and the simulator.
* **The one shared file.** pcscd still writes (and on exit deletes) ``/run/pcscd/pcscd.pid``
  and needs ``/run/pcscd`` to be writable (run as root, or ``install -d -m 1777 /run/pcscd``).
  When a system pcscd is running (:func:`system_pcscd_pid`) its pid file is put back after
  ours stops.

If pcscd or the vpcd driver is missing, :class:`PcscdUnavailable` says what to install.
"""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from drivers.transports.pcsc_errors import PcscError
from drivers.transports.pcsc_reader import find_reader

INSTALL_HINT = "apt-get install pcscd vsmartcard-vpcd"
READER = "Virtual PCD"
SYSTEM_SOCKET = Path("/run/pcscd/pcscd.comm")
SYSTEM_PID_FILE = Path("/run/pcscd/pcscd.pid")
_DRIVER_DIRS = ("/usr/lib/pcsc/drivers", "/usr/lib64/pcsc/drivers", "/usr/local/lib/pcsc/drivers")
_ENV = "PCSCLITE_CSOCK_NAME"

# Runs between fork and pcscd: put the socket on fd 3, set LISTEN_PID to our own pid (which
# pcscd keeps across exec), die with the parent, exec pcscd.
_WRAPPER = """
import ctypes, os, signal, sys
fd = int(sys.argv[1])
if fd != 3:
    os.dup2(fd, 3)
    os.close(fd)
os.set_inheritable(3, True)
os.environ["LISTEN_FDS"] = "1"
os.environ["LISTEN_PID"] = str(os.getpid())
try:
    ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGTERM))  # PR_SET_PDEATHSIG
except (OSError, AttributeError):
    pass
os.execv(sys.argv[2], sys.argv[2:])
"""


class PcscdUnavailable(RuntimeError):
    """pcscd or the vpcd driver is missing, or pcscd did not come up."""


def find_pcscd() -> str | None:
    found = shutil.which("pcscd")
    if found:
        return found
    for cand in ("/usr/sbin/pcscd", "/usr/local/sbin/pcscd"):
        if os.access(cand, os.X_OK):
            return cand
    return None


def find_vpcd_driver() -> str | None:
    """Path of ``libifdvpcd.so`` (from ``/etc/reader.conf.d/vpcd`` or the driver folders)."""
    conf = Path("/etc/reader.conf.d/vpcd")
    if conf.is_file():
        for line in conf.read_text(errors="replace").splitlines():
            parts = line.split(None, 1)
            if len(parts) == 2 and parts[0] == "LIBPATH" and os.path.isfile(parts[1].strip()):
                return parts[1].strip()
    for base in _DRIVER_DIRS:
        for sub in ("serial", ""):
            cand = Path(base, sub, "libifdvpcd.so")
            if cand.is_file():
                return str(cand)
    return None


def require_pcscd() -> tuple[str, str]:
    """``(pcscd, vpcd driver)`` paths, or PcscdUnavailable with the install command."""
    pcscd, driver = find_pcscd(), find_vpcd_driver()
    missing = [n for n, p in (("pcscd", pcscd), ("the vpcd reader driver", driver)) if not p]
    if pcscd is None or driver is None:
        raise PcscdUnavailable(
            f"{' and '.join(missing)} not found: install with `{INSTALL_HINT}` "
            "(make test does this)"
        )
    return pcscd, driver


@functools.cache
def _usage(pcscd: str) -> str:
    try:
        res = subprocess.run([pcscd, "--help"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return ""
    return res.stdout + res.stderr


_our_pids: set[int] = set()


def system_pcscd_pid() -> int | None:
    """Pid of a pcscd serving ``/run/pcscd/pcscd.comm`` (not one of ours), if one runs."""
    try:
        pid = int(SYSTEM_PID_FILE.read_text().split()[0])
        comm = Path(f"/proc/{pid}/comm").read_text().strip()
    except (OSError, ValueError, IndexError):
        return None
    if comm != "pcscd" or pid in _our_pids or not SYSTEM_SOCKET.is_socket():
        return None
    return pid


_bound_socket: str | None = None


def use_socket(path: str | os.PathLike[str]) -> None:
    """Make this process's PC/SC calls go to the pcscd listening on ``path``."""
    global _bound_socket
    path = os.fspath(path)
    if _bound_socket is not None and _bound_socket != path:
        raise PcscdUnavailable(
            f"this process already talks to pcscd at {_bound_socket}; libpcsclite reads "
            f"{_ENV} once, so {path} cannot be used here (keep one socket path per process)"
        )
    _bound_socket = path
    os.environ[_ENV] = path


_process_dir: Path | None = None


def default_socket_path() -> Path:
    """One short socket path per process (Unix socket paths are limited to 107 bytes)."""
    global _process_dir
    if _process_dir is None or not _process_dir.is_dir():
        _process_dir = Path(tempfile.mkdtemp(prefix="traceedge-pcscd-"))
        atexit.register(shutil.rmtree, _process_dir, True)
    return _process_dir / "pcscd.comm"


def free_port_pair(host: str = "") -> int:
    """A TCP port ``p`` with ``p`` and ``p + 1`` both free (vpcd listens on both)."""
    for _ in range(50):
        with socket.socket() as a:
            a.bind((host, 0))
            port = int(a.getsockname()[1])
            if port >= 65535:
                continue
            with socket.socket() as b:
                try:
                    b.bind((host, port + 1))
                except OSError:
                    continue
            return port
    raise PcscdUnavailable("no two consecutive free TCP ports for vpcd")


class Pcscd:
    """A pcscd child process of our own with one vpcd reader on ``vpcd_port``.

    ``start()`` returns once the reader shows up through pyscard; ``restart()`` keeps the
    socket path and the vpcd port, so a card simulator and a reader monitor reconnect.
    """

    def __init__(
        self,
        workdir: str | os.PathLike[str],
        vpcd_port: int | None = None,
        socket_path: str | os.PathLike[str] | None = None,
        debug: bool = False,
    ) -> None:
        self.workdir = Path(workdir)
        self.vpcd_port = vpcd_port or free_port_pair()
        self.socket_path = Path(socket_path) if socket_path else default_socket_path()
        self.debug = debug
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = self.workdir / "pcscd.log"
        self.system_pid = system_pcscd_pid()
        self._system_pid_text: str | None = None

    @property
    def reader(self) -> str:
        """Name of the vpcd slot a card simulator on ``vpcd_port`` appears in."""
        return f"{READER} 00 00"

    @property
    def env(self) -> dict[str, str]:
        """Environment for a child process that should talk to this pcscd."""
        return {**os.environ, _ENV: str(self.socket_path)}

    def _write_config(self, driver: str) -> Path:
        confdir = self.workdir / "reader.conf.d"
        confdir.mkdir(parents=True, exist_ok=True)
        (confdir / "vpcd").write_text(
            f'FRIENDLYNAME "{READER}"\n'
            f"DEVICENAME   /dev/null:{self.vpcd_port}\n"
            f"LIBPATH      {driver}\n"
            f"CHANNELID    {self.vpcd_port}\n"
        )
        return confdir

    def _listen(self) -> socket.socket:
        self.socket_path.parent.mkdir(parents=True, exist_ok=True)
        if self.socket_path.exists() or self.socket_path.is_symlink():
            self.socket_path.unlink()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(str(self.socket_path))
        os.chmod(self.socket_path, 0o666)
        sock.listen(64)
        return sock

    def start(self, timeout: float = 15.0, bind_process: bool = True) -> Pcscd:
        """Start pcscd; with ``bind_process`` this process's PC/SC calls go to it."""
        if self.proc is not None and self.proc.poll() is None:
            return self
        pcscd, driver = require_pcscd()
        self.workdir.mkdir(parents=True, exist_ok=True)
        confdir = self._write_config(driver)
        if self.system_pid is not None and SYSTEM_PID_FILE.exists():
            self._system_pid_text = SYSTEM_PID_FILE.read_text()
        args = [pcscd, "--foreground", "--config", str(confdir)]
        if "--disable-polkit" in _usage(pcscd):  # pcsc-lite 2.x built with polkit
            args.append("--disable-polkit")
        if self.debug:
            args += ["--debug", "--apdu"]
        listener = self._listen()
        try:
            with open(self.log_path, "ab") as log:
                self.proc = subprocess.Popen(
                    [sys.executable, "-c", _WRAPPER, str(listener.fileno()), *args],
                    pass_fds=(listener.fileno(),),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            _our_pids.add(self.proc.pid)
        finally:
            # pcscd owns it now; with our copy closed, a dead pcscd refuses connections
            # instead of leaving clients waiting in the backlog.
            listener.close()
        if bind_process:
            use_socket(self.socket_path)
            self.wait_reader(timeout)
        return self

    def wait_reader(self, timeout: float = 15.0) -> str:
        """Wait until the vpcd reader is listed (needs this process bound to the socket)."""
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise PcscdUnavailable(
                    f"pcscd exited with status {self.proc.returncode} (it needs a writable"
                    " /run/pcscd: run as root or `install -d -m 1777 /run/pcscd`):\n"
                    f"{self.log_tail()}"
                )
            try:
                return find_reader(READER)
            except PcscError as exc:
                last = exc
            time.sleep(0.05)
        raise PcscdUnavailable(
            f"reader {READER!r} did not appear within {timeout:.0f} s ({last}):\n{self.log_tail()}"
        )

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        if self.socket_path.exists():
            self.socket_path.unlink()
        self._restore_system_pid_file()

    def kill(self) -> None:
        """SIGKILL, as a crash: nothing cleaned up by pcscd itself."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=5)
        self.proc = None
        self._restore_system_pid_file()

    def restart(self, timeout: float = 15.0) -> Pcscd:
        self.stop()
        return self.start(timeout)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _restore_system_pid_file(self) -> None:
        text = self._system_pid_text
        if text is not None and system_pcscd_pid() is None:
            try:
                pid = int(text.split()[0])
                os.kill(pid, 0)
                SYSTEM_PID_FILE.write_text(text)
            except (OSError, ValueError, IndexError):
                pass

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no pcscd log)"

    def __enter__(self) -> Pcscd:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
