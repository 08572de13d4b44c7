"""A cable between two real ptys with a fault on it: the terminal (MicroPython under Node)
opens one pty, the agent's serial source the other, and every byte crosses both.

On the way from the terminal to the gateway the relay cuts the stream into frames with the
link's own decoder (``drivers.codecs.slink``) and re-sends them byte for byte, except the
``REC`` frames (or the frames of type ``kind``) it is told to spoil: ``corrupt`` (1-based
numbers of those frames to flip a payload byte of: the CRC fails at the gateway) and
``drop`` (those frames lost). The other way bytes pass untouched.
"""

from __future__ import annotations

import contextlib
import os
import select
import threading
import tty
from collections import deque
from pathlib import Path

from drivers.codecs import slink


class _Pty:
    def __init__(self, link: Path | None = None) -> None:
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        os.set_blocking(self.master, False)
        self.tty = os.ttyname(self.slave)
        self.path = str(link) if link is not None else self.tty
        if link is not None:
            os.symlink(self.tty, link)

    def close(self) -> None:
        for fd in (self.master, self.slave):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self.master = self.slave = -1


class PtyRelay:
    def __init__(
        self, gateway_link: Path, corrupt: set[int], drop: set[int], kind: int = slink.REC
    ) -> None:
        self.kind = kind
        self.terminal = _Pty()
        self._link = gateway_link
        self.gateway = _Pty(gateway_link)
        self.plugged = True
        self._swap = threading.Lock()
        self._unplugged = threading.Event()
        self.corrupt = set(corrupt)
        self.drop = set(drop)
        self.records = 0
        self.corrupted = 0
        self.dropped = 0
        self.seen: deque[str] = deque(maxlen=40)  # the last items decoded, for a failure
        self._dec = slink.Decoder()
        self._stop = threading.Event()
        self._wake = os.pipe()
        self._thread = threading.Thread(target=self._run, name="pty relay", daemon=True)

    def start(self) -> PtyRelay:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        os.write(self._wake[1], b"x")
        self._thread.join(5)
        self.terminal.close()
        self.gateway.close()
        for fd in self._wake:
            os.close(fd)

    def unplug(self) -> None:
        """Pull the gateway's cable: its pty hangs up and its path disappears (done by the
        relay's thread, so it never selects on a closed fd)."""
        self._unplugged.clear()
        with self._swap:
            self.plugged = False
        os.write(self._wake[1], b"x")
        if not self._unplugged.wait(5):
            raise AssertionError("the relay did not unplug")

    def replug(self) -> None:
        """Plug it in again on a new pty behind the same path."""
        with self._swap:
            self.gateway = _Pty(self._link)
            self.plugged = True
        os.write(self._wake[1], b"x")

    def _spoil(self, data: bytes) -> bytes:
        out = b""
        for item in self._dec.feed(data):
            self.seen.append(repr(item)[:60])
            if not isinstance(item, slink.Frame):
                out += item.raw  # type: ignore[attr-defined]
                continue
            raw = slink.encode(item.type, item.num, item.payload, item.addr, item.up)
            if item.type == self.kind:
                self.records += 1
                if self.records in self.drop:
                    self.dropped += 1
                    continue
                if self.records in self.corrupt:
                    self.corrupted += 1
                    mid = 6 + len(item.payload) // 2
                    raw = raw[:mid] + bytes([raw[mid] ^ 0x20]) + raw[mid + 1 :]
            out += raw
        return out

    def _run(self) -> None:
        t = self.terminal.master
        while not self._stop.is_set():
            with self._swap:
                if not self.plugged and self.gateway.master >= 0:
                    with contextlib.suppress(FileNotFoundError):
                        Path(self.gateway.path).unlink()
                    self.gateway.close()
                    self._unplugged.set()
                g = self.gateway.master if self.plugged else -1
            watch = [t, self._wake[0]] + ([g] if g >= 0 else [])
            ready, _, _ = select.select(watch, [], [], 0.2)
            if self._wake[0] in ready:
                os.read(self._wake[0], 64)
            for fd, to in ((t, g), (g, t)):
                if fd < 0:
                    continue
                if fd not in ready:
                    continue
                try:
                    data = os.read(fd, 4096)
                except (BlockingIOError, OSError):
                    continue
                if fd == t:
                    data = self._spoil(data)
                if to >= 0:  # unplugged: what the terminal sends is lost
                    with contextlib.suppress(OSError):
                        os.write(to, data)
