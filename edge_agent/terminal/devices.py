"""The stall terminal's three devices, each reconnecting on its own and showing its state.

=========  ==================================================================  ==========
device     reconnection                                                        states
=========  ==================================================================  ==========
scale      :class:`~drivers.transports.serial_port.SerialDevice` with a        ready,
           ``ReconnectPolicy``: a vanished port is reopened (backoff capped    silent,
           at ``reconnect_cap_s``); a port absent at start is tried again at   gone,
           every ask; an idle scale is asked every ``probe_s`` so silence and  absent
           unplugging show before a sale needs it
cards      :class:`~drivers.transports.pcsc_reader.CardMonitor`: pcscd or the  online,
           reader gone -> ``offline``, back within ~2 s of it                  offline
printer    opened for each receipt, so an absent printer costs only that       ok, absent
           print: the record is made anyway and the receipt kept for
           ``reprint``
=========  ==================================================================  ==========
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections.abc import Callable

import serial

from drivers.transports.errors import DeviceTimeout, DriverError, NotOpen
from drivers.transports.pcsc_reader import CardEvent, CardMonitor
from drivers.transports.scales import SETTINGS, ScaleReading, read_weight
from drivers.transports.serial_port import LinkState, ReconnectPolicy, SerialDevice
from edge_agent.terminal.settings import PrinterSettings, ScaleSettings

StateHook = Callable[[str, str, str], None]  # (device, state, detail)
CARD_QUEUE = 64


class ScaleSource:
    def __init__(self, s: ScaleSettings, on_state: StateHook) -> None:
        self.s = s
        self.on_state = on_state
        self.state = "absent"
        self.detail = "not opened yet"
        self.last: ScaleReading | None = None
        self.dev = SerialDevice(
            s.port,
            SETTINGS[s.protocol],
            reconnect=ReconnectPolicy(0.05, s.reconnect_cap_s),
        )

    def _set(self, state: str, detail: str) -> None:
        if (state, detail) != (self.state, self.detail):
            self.state, self.detail = state, detail
            self.on_state("scale", state, detail)

    async def read(self, stable: bool, timeout: float) -> ScaleReading:
        """One reading; :class:`DriverError` (state updated) when the scale cannot give one."""
        try:
            if self.dev.state is LinkState.CLOSED:
                await self.dev.open()
            r = await read_weight(
                self.dev,
                self.s.protocol,
                timeout=timeout,
                stable=stable,
                prices=self.s.protocol == "cas_ecr",
                unit=self.s.unit,
            )
        except DeviceTimeout as exc:
            self._set("silent", exc.message)
            raise
        except NotOpen as exc:
            self._set("absent", exc.message)
            raise
        except DriverError as exc:
            gone = self.dev.state is LinkState.GONE
            self._set("gone" if gone else "absent", exc.message)
            raise
        self.last = r
        self._set("ready", str(r))
        return r

    async def probe_forever(self, busy: asyncio.Lock) -> None:
        """Ask the idle scale every ``probe_s`` (skipped while a sale weighs)."""
        while True:
            if not busy.locked():
                async with busy:
                    with contextlib.suppress(DriverError):
                        await self.read(False, min(2.0, self.s.timeout_s))
            await asyncio.sleep(self.s.probe_s)

    async def close(self) -> None:
        await self.dev.close()


class CardSource:
    """Card events delivered to the event loop through a bounded queue (overflow counted)."""

    def __init__(self, reader: str | None, on_state: StateHook) -> None:
        self.on_state = on_state
        self.state = "offline"
        self.detail = "starting"
        self.dropped = 0
        self.queue: asyncio.Queue[CardEvent] = asyncio.Queue(CARD_QUEUE)
        self._loop = asyncio.get_running_loop()
        self.monitor = CardMonitor(reader, on_event=self._deliver, poll_interval=0.2)

    def _deliver(self, ev: CardEvent) -> None:
        self._loop.call_soon_threadsafe(self._put, ev)

    def _put(self, ev: CardEvent) -> None:
        if ev.kind in ("online", "offline"):
            self.state = ev.kind
            self.detail = ev.reader if ev.kind == "online" else str(ev.error or "")
            self.on_state("cards", self.state, self.detail)
            return
        try:
            self.queue.put_nowait(ev)
        except asyncio.QueueFull:
            self.dropped += 1

    def start(self) -> CardSource:
        self.monitor.start()
        return self

    def stop(self) -> None:
        self.monitor.stop()


class Printer:
    """ESC/POS bytes to a file (appended: what would be sent), a device node, or a tty."""

    def __init__(self, s: PrinterSettings | None, on_state: StateHook) -> None:
        self.s = s
        self.on_state = on_state
        self.state = "none" if s is None else "ok"
        self.detail = "no printer configured" if s is None else s.path
        self._lock = threading.Lock()

    def _write(self, data: bytes) -> None:
        s = self.s
        assert s is not None
        if s.kind == "serial":
            with serial.Serial(s.path, s.baudrate, write_timeout=5) as port:
                port.write(data)
                port.flush()
            return
        flags = os.O_WRONLY | os.O_NOCTTY | os.O_APPEND
        if s.kind == "file":
            flags |= os.O_CREAT
        fd = os.open(s.path, flags, 0o600)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)

    def print_bytes(self, data: bytes) -> bool:
        """True when the printer took the bytes; the state says why not otherwise."""
        if self.s is None:
            return False
        with self._lock:
            try:
                self._write(data)
            except (OSError, serial.SerialException) as exc:
                self._set("absent", str(exc))
                return False
            self._set("ok", self.s.path)
            return True

    def _set(self, state: str, detail: str) -> None:
        if (state, detail) != (self.state, self.detail):
            self.state, self.detail = state, detail
            self.on_state("printer", state, detail)
