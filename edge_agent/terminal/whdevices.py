"""The warehouse terminal's two devices, each reconnecting on its own and showing its state.

=========  ==================================================================  ==========
device     reconnection                                                        states
=========  ==================================================================  ==========
reader     a UHF reader (Chafon / R2000) asked for an inventory every          ready,
           ``period_s`` (:func:`drivers.transports.readers.inventory`); a      silent,
           vanished port is reopened with a ``ReconnectPolicy`` (backoff       gone,
           capped at ``reconnect_cap_s``), one absent at start is tried again  absent
           every period
scanner    lines as the scanner sends them (``SerialDevice.frames``, which     ready,
           survives an unplug with the policy); absent at start: tried again   gone,
           every ``reconnect_cap_s``                                           absent
=========  ==================================================================  ==========

A tag counts when it *enters* the field: a tag that stays in front of the reader is read
in every round but handed out once (``on_tag``), again only after a round without it.
Scans go out through ``on_scan``; the lines of one multi-line QR (seed labels, 4 lines
ended by CR) are joined into one scan by ``drivers.codecs.barcode.ScanJoiner`` when they
follow each other within ``scan_join_ms`` and carry no AIM identifier of their own (the
handheld's rule; whole lines are what the transport hands out, so the gap runs from one
line's end to the next's); the scan goes out when the next one begins or ``scan_join_ms``
passes in silence.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from drivers.codecs import barcode
from drivers.codecs.stream import BadFrame
from drivers.transports.errors import (
    BadReply,
    DeviceGone,
    DeviceTimeout,
    DriverError,
    NotOpen,
    PortUnavailable,
)
from drivers.transports.readers import SETTINGS, inventory
from drivers.transports.serial_port import LinkState, ReconnectPolicy, SerialDevice
from edge_agent.terminal.whsettings import ReaderSettings, ScannerSettings

log = logging.getLogger(__name__)
StateHook = Callable[[str, str, str], None]  # (device, state, detail)


class _Source:
    name = ""

    def __init__(self, on_state: StateHook) -> None:
        self.on_state = on_state
        self.state = "absent"
        self.detail = "not opened yet"
        self.bad = 0  # reads not understood (frames, codes)

    def _set(self, state: str, detail: str) -> None:
        if (state, detail) != (self.state, self.detail):
            self.state, self.detail = state, detail
            self.on_state(self.name, state, detail)


class TagReader(_Source):
    """Inventory rounds on a UHF reader; new tags in the field go to ``on_tag(epc_hex)``."""

    name = "reader"

    def __init__(
        self, s: ReaderSettings, on_state: StateHook, on_tag: Callable[[str], None]
    ) -> None:
        super().__init__(on_state)
        self.s = s
        self.on_tag = on_tag
        self.in_field: set[str] = set()
        self.rounds = 0
        self.dev = SerialDevice(
            s.port,
            SETTINGS[s.protocol],
            reconnect=ReconnectPolicy(0.05, s.reconnect_cap_s),
        )

    async def round(self) -> None:
        """One inventory round (state updated; never raises a driver error)."""
        try:
            if self.dev.state is LinkState.CLOSED:
                await self.dev.open()
            tags = await inventory(
                self.dev, self.s.protocol, timeout=self.s.timeout_s, address=self.s.address
            )
        except BadReply as exc:  # a round that may have lost a tag: the next one retries
            self.bad += 1
            self._set("ready", f"bad round: {exc.message}")
            return
        except DeviceTimeout as exc:
            self._set("silent", exc.message)
            return
        except (NotOpen, PortUnavailable) as exc:
            gone = self.dev.state is LinkState.GONE or isinstance(exc, DeviceGone)
            self._set("gone" if gone else "absent", exc.message)
            return
        except DriverError as exc:
            self._set("silent", exc.message)
            return
        self.rounds += 1
        now = {t.epc.hex().upper() for t in tags}
        for t in tags:
            epc = t.epc.hex().upper()
            if epc not in self.in_field:
                self.on_tag(epc)
        self.in_field = now
        self._set("ready", f"{self.s.protocol} {self.s.port}")

    async def run(self) -> None:
        while True:
            try:
                await self.round()
            except Exception:  # one bad round never stops the reader
                log.exception("reader: inventory round failed")
            await asyncio.sleep(self.s.period_s)

    async def close(self) -> None:
        await self.dev.close()


class MonoClock:
    """Milliseconds for ``barcode.ScanJoiner`` (the board's ``ticks_ms`` / ``ticks_diff``)."""

    @staticmethod
    def ticks_ms() -> int:
        return int(time.monotonic() * 1000)

    @staticmethod
    def diff(a: int, b: int) -> int:
        return a - b


class Scanner(_Source):
    """Scans as the scanner sends them, to ``on_scan``; unreadable lines are counted."""

    name = "scanner"

    def __init__(
        self, s: ScannerSettings, on_state: StateHook, on_scan: Callable[[barcode.Scan], None]
    ) -> None:
        super().__init__(on_state)
        self.s = s
        self.on_scan = on_scan
        self.scans = 0
        self.dev = SerialDevice(
            s.port,
            SETTINGS["scanner"].with_baudrate(s.baudrate),
            reconnect=ReconnectPolicy(0.05, s.reconnect_cap_s),
            on_state=self._link,
        )
        self.join = barcode.ScanJoiner(MonoClock(), s.scan_join_ms)

    def _link(self, state: LinkState, error: DriverError | None) -> None:
        if state is LinkState.OPEN:
            self._set("ready", self.s.port)
        elif state is LinkState.GONE:
            self._set("gone", error.message if error is not None else "")

    def _deliver(self, scans: list[barcode.Scan]) -> None:
        for scan in scans:
            self.scans += 1
            self.on_scan(scan)

    async def _due(self) -> None:
        """Hand out a multi-line scan once ``scan_join_ms`` passed without another line."""
        tick = max(0.01, self.s.scan_join_ms / 2000)
        while True:
            await asyncio.sleep(tick)
            if self.join.pending():
                self._deliver(self.join.due(MonoClock.ticks_ms()))

    async def run(self) -> None:
        due = asyncio.create_task(self._due(), name="scan-join")
        try:
            await self._run()
        finally:
            due.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await due

    async def _run(self) -> None:
        while True:
            if self.dev.state is LinkState.CLOSED:
                try:
                    await self.dev.open()
                except PortUnavailable as exc:
                    self._set("absent", exc.message)
                    await asyncio.sleep(self.s.reconnect_cap_s)
                    continue
            try:
                async for item in self.dev.frames(barcode.Decoder()):
                    if isinstance(item, BadFrame) or not isinstance(item, barcode.Scan):
                        self.bad += 1
                        continue
                    self._deliver(self.join.feed(item, MonoClock.ticks_ms()))
            except DriverError as exc:  # not open any more: start over
                self._set("gone", exc.message)
                with contextlib.suppress(DriverError):
                    await self.dev.close()
                await asyncio.sleep(self.s.reconnect_cap_s)

    async def close(self) -> None:
        await self.dev.close()
