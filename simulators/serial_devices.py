"""Serial devices on a pseudo-terminal: the simulator holds the master end, the real
pyserial driver opens the slave end by its path and cannot tell it from a USB adapter.

The devices themselves are in :mod:`simulators.scale_sim` (four scale protocols),
:mod:`simulators.uhf_sim` (Chafon and R2000 readers) and :mod:`simulators.scanner_sim`
(barcode scanner); :func:`make_simulator` builds any of them by name. Each speaks its
protocol through the shared codecs in :mod:`drivers.codecs` (``CommandDecoder`` for what
the host sends, ``encode_*`` for the answers).

Life cycle: ``start()`` opens a pty pair (``os.openpty``), puts it in raw mode
(``tty.setraw``, so nothing is echoed or translated before the driver configures the
line) and serves it from one thread (``sim <kind> <tty>``); ``stop()`` stops and joins
the thread and closes both fds. Use ``with Simulator(...) as sim:``. The simulator keeps
its own slave fd open for its whole life, so the pty survives the driver closing and
reopening the port.

Faults, injected where bytes enter the line (thread-safe, from tests or the CLI):

* ``corrupt_next(n, after=k)``: the ``n`` transmissions after the next ``k`` get bit 7
  of their middle byte flipped: a checksum/CRC/BCC mismatch for the binary protocols,
  a non-ASCII byte (an invalid line) for the text ones;
* ``noise_next(data)``: garbage bytes sent just before the next transmission;
* ``split(piece, delay)``: every transmission is written ``piece`` bytes at a time with
  ``delay`` seconds between pieces (``split(0)`` turns it off);
* ``silent = True``: the device hears everything and answers nothing.
* ``deaf = True``: the device hears nothing (the wire into it cut) and still transmits.

Unplug and replug
-----------------
``unplug()`` stops the thread and closes the master (and the simulator's slave fd): the
kernel hangs the pty up, so the driver's next read sees EOF or ``EIO`` (pyserial raises
``SerialException``), its writes fail with ``EIO``, and the ``/dev/pts/N`` path
disappears, exactly like a USB serial adapter pulled out. ``replug()`` opens a *new* pty.
Since a new pty gets whatever number the kernel hands out, a driver that must reopen
"the same port" needs a stable name: give the simulator ``link=PATH`` (in a temp dir)
and it maintains a symlink ``PATH -> /dev/pts/N``, removed on unplug (so opening it
fails with ``ENOENT`` while the device is away) and atomically re-pointed on replug.
:attr:`PtyDevice.path` is the link when there is one, else the tty.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import select
import threading
import time
import tty
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

log = logging.getLogger(__name__)

WRITE_STALL = 0.5
"""Longest wait for room in the pty's buffer before output is dropped (nobody reads)."""


@dataclass
class SimStats:
    commands: int = 0
    bad_commands: int = 0
    sent: int = 0
    dropped: int = 0
    plugs: int = 0


class PtyDevice:
    """Base of the pty simulators; subclasses supply ``on_bytes``, ``on_tick``, ``reset``."""

    kind = "serial device"

    def __init__(
        self, *, link: str | os.PathLike[str] | None = None, tick: float = 0.02, seed: int = 1
    ) -> None:
        self.link = Path(link) if link is not None else None
        self.tick = tick
        self.rng = random.Random(seed)
        self.stats = SimStats()
        self.silent = False
        self.deaf = False
        self._corrupt = 0
        self._corrupt_after = 0
        self._noise = b""
        self._split: tuple[int, float] = (0, 0.0)
        self._master = -1
        self._slave = -1
        self._tty = ""
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._wake = (-1, -1)
        self._io = threading.Lock()

    # -- for subclasses ----------------------------------------------------------------------

    def reset(self) -> None:
        """Forget partial commands (called on every plug)."""

    def on_bytes(self, data: bytes) -> None:
        """Bytes the host sent."""

    def on_tick(self, now: float) -> None:
        """Called at least every ``tick`` seconds (periodic output)."""

    # -- life cycle --------------------------------------------------------------------------

    @property
    def tty(self) -> str:
        """The current ``/dev/pts/N`` ("" while unplugged)."""
        return self._tty

    @property
    def path(self) -> str:
        """What a driver opens: the stable link if there is one, else the tty."""
        return str(self.link) if self.link is not None else self._tty

    @property
    def plugged(self) -> bool:
        return self._thread is not None

    def start(self) -> PtyDevice:
        self._plug()
        return self

    def stop(self) -> None:
        self._unplug()

    def __enter__(self) -> PtyDevice:
        return self.start()

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def unplug(self) -> None:
        """Pull the cable: the driver's reads fail and the path disappears."""
        self._unplug()

    def replug(self) -> None:
        """Plug in again on a new pty (the ``link``, if any, points to it)."""
        if not self.plugged:
            self._plug()

    def _plug(self) -> None:
        if self.plugged:
            return
        master, slave = os.openpty()
        tty.setraw(slave)
        os.set_blocking(master, False)
        self._master, self._slave = master, slave
        self._tty = os.ttyname(slave)
        if self.link is not None:
            tmp = self.link.with_name(self.link.name + ".new")
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            os.symlink(self._tty, tmp)
            os.replace(tmp, self.link)
        self._wake = os.pipe()
        self._stop = threading.Event()
        self.reset()
        self.stats.plugs += 1
        self._thread = threading.Thread(
            target=self._serve, daemon=True, name=f"sim {self.kind} {self._tty}"
        )
        self._thread.start()
        log.info("%s plugged in on %s", self.kind, self.path)

    def _unplug(self) -> None:
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._stop.set()
        os.write(self._wake[1], b"x")
        thread.join(timeout=5)
        if self.link is not None:
            with contextlib.suppress(FileNotFoundError):
                self.link.unlink()
        with self._io:
            for fd in (self._master, self._slave, *self._wake):
                with contextlib.suppress(OSError):
                    os.close(fd)
            self._master = self._slave = -1
            self._wake = (-1, -1)
            self._tty = ""
        log.info("%s unplugged", self.kind)

    def _serve(self) -> None:
        master, wake = self._master, self._wake[0]
        while not self._stop.is_set():
            ready, _, _ = select.select([master, wake], [], [], self.tick)
            if wake in ready:
                break
            if master in ready:
                try:
                    data = os.read(master, 4096)
                except BlockingIOError:
                    data = b""
                except OSError as exc:  # cannot happen while we hold the slave open
                    log.warning("%s: read failed: %s", self.kind, exc)
                    break
                if data and not self.deaf:
                    self._guarded(self.on_bytes, data)
            self._guarded(self.on_tick, time.monotonic())

    def _guarded(self, handler: Any, arg: object) -> None:
        try:
            handler(arg)
        except Exception:  # a bad model value must not kill the device thread
            log.exception("%s: %s(%r) failed", self.kind, handler.__name__, arg)

    # -- faults ------------------------------------------------------------------------------

    def corrupt_next(self, n: int = 1, after: int = 0) -> None:
        self._corrupt, self._corrupt_after = n, after

    def noise_next(self, data: bytes = b"\x00\xff\x13\xa5") -> None:
        self._noise += data

    def split(self, piece: int, delay: float = 0.02) -> None:
        self._split = (piece, delay)

    # -- output --------------------------------------------------------------------------------

    def send(self, data: bytes) -> None:
        """Transmit ``data`` as the device, through the injected faults."""
        with self._io:
            if self._master < 0 or self.silent:
                self.stats.dropped += 1
                return
            if self._corrupt and self._corrupt_after:
                self._corrupt_after -= 1
            elif self._corrupt:
                self._corrupt -= 1
                mid = len(data) // 2
                data = data[:mid] + bytes([data[mid] ^ 0x80]) + data[mid + 1 :]
            if self._noise:
                data, self._noise = self._noise + data, b""
            piece, delay = self._split
            if piece <= 0:
                self._write_all(data)
            else:
                for i in range(0, len(data), piece):
                    if i and self._stop.wait(delay):
                        return
                    self._write_all(data[i : i + piece])
            self.stats.sent += 1

    def _write_all(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                n = os.write(self._master, view)
            except BlockingIOError:
                _, ready, _ = select.select([], [self._master], [], WRITE_STALL)
                if not ready:  # nobody reads the port: drop like a real line would
                    self.stats.dropped += 1
                    return
                continue
            except OSError:
                self.stats.dropped += 1
                return
            view = view[n:]


def make_simulator(device: str, protocol: str, **options: Any) -> PtyDevice:
    """``make_simulator("scale", "sics", weight=1234)``; ``device`` is scale, rfid or
    scanner. Options are the constructor's keyword arguments."""
    if device == "scale":
        from simulators.scale_sim import SCALES

        return SCALES[protocol](**options)
    if device == "rfid":
        from simulators.uhf_sim import READERS

        return READERS[protocol](**options)
    if device == "scanner":
        from simulators.scanner_sim import ScannerSim

        return ScannerSim(**options)
    raise ValueError(f"unknown device {device!r}: scale, rfid or scanner")
