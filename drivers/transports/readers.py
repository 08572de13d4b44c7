"""UHF RFID readers and barcode scanners over serial.

* :func:`inventory` runs one inventory round on a Chafon / CF-RU reader (collecting the
  ``0x03`` "more frames follow" responses) or an R2000 reader (real-time inventory: one
  frame per tag read until the summary frame) and returns each tag once, with its best
  RSSI (R2000 only; Chafon's inventory carries none) and how often it was read.
  "No tag in the field" is an empty list, not an error. A round that may have lost a
  tag raises :class:`~drivers.transports.errors.BadReply` (retry): for Chafon any
  corrupt frame during the round, for R2000 a tag count short of the summary's
  ``TotalRead``.
* :func:`scans` yields the scans a scanner sends unasked; :func:`read_scan` waits for one,
  optionally sending the serial trigger first (:data:`TRIGGER`, ``SYN T CR``, understood
  by Honeywell-style scanners in serial-trigger mode).

Lines: Chafon 57600 8N1, R2000 115200 8N1, scanners 9600 8N1 (:data:`SETTINGS`).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from drivers.codecs import barcode, chafon, r2000
from drivers.codecs.errors import DeviceError
from drivers.codecs.stream import BadFrame
from drivers.transports.errors import BadReply, DeviceFault
from drivers.transports.serial_port import SerialDevice, SerialSettings

log = logging.getLogger(__name__)

TRIGGER = b"\x16T\r"
"""Serial trigger: the scanner reads one code (Honeywell ``SYN T CR``)."""

SETTINGS = {
    "chafon": SerialSettings(57600),
    "r2000": SerialSettings(115200),
    "scanner": SerialSettings(9600),
}
UHF_PROTOCOLS = ("chafon", "r2000")
R2000_NO_TAG = 0x36


@dataclass(frozen=True)
class TagSeen:
    """One tag of an inventory round."""

    epc: bytes
    rssi: int | None = None
    antenna: int | None = None
    reads: int = 1

    def to_json(self) -> dict[str, Any]:
        return {
            "epc": self.epc.hex().upper(),
            "rssi": self.rssi,
            "antenna": self.antenna,
            "reads": self.reads,
        }


def _merge(seen: dict[bytes, TagSeen], tag: TagSeen) -> None:
    old = seen.get(tag.epc)
    if old is None:
        seen[tag.epc] = tag
        return
    rssi = old.rssi if tag.rssi is None or (old.rssi or 0) >= tag.rssi else tag.rssi
    seen[tag.epc] = TagSeen(tag.epc, rssi, old.antenna, old.reads + tag.reads)


def _fault(exc: DeviceError, url: str) -> DeviceFault:
    return DeviceFault(f"{url}: reader: {exc.message}", exc.code, exc.retry)


async def _chafon(dev: SerialDevice, timeout: float, address: int | None) -> list[TagSeen]:
    frames = await dev.exchange(
        chafon.encode_inventory(0xFF if address is None else address),
        chafon.Decoder(),
        timeout,
        accept=lambda f: isinstance(f, chafon.Response) and f.cmd == chafon.CMD_INVENTORY,
        until=lambda f: not (isinstance(f, chafon.Inventory) and f.more),
    )
    seen: dict[bytes, TagSeen] = {}
    for frame in frames:
        if not isinstance(frame, chafon.Inventory):
            assert isinstance(frame, chafon.Response)
            try:
                frame.raise_for_status()
            except DeviceError as exc:
                raise _fault(exc, dev.url) from exc
            continue
        for epc in frame.epcs:
            _merge(seen, TagSeen(epc))
    return list(seen.values())


def _r2000_answer(frame: object) -> bool:
    if isinstance(frame, (r2000.TagRead, r2000.InventoryEnd)):
        return True
    return isinstance(frame, (r2000.ErrorReply, r2000.Frame)) and (
        frame.cmd == r2000.CMD_REALTIME_INVENTORY
    )


async def _r2000(dev: SerialDevice, timeout: float, address: int | None) -> list[TagSeen]:
    frames = await dev.exchange(
        r2000.encode_realtime_inventory(1 if address is None else address, repeat=1),
        r2000.Decoder(),
        timeout,
        accept=_r2000_answer,
        until=lambda f: isinstance(f, (r2000.InventoryEnd, r2000.ErrorReply)),
        self_checked=True,
    )
    seen: dict[bytes, TagSeen] = {}
    reads = 0
    bad = [f for f in frames if isinstance(f, BadFrame)]
    for frame in frames:
        if isinstance(frame, r2000.TagRead):
            reads += 1
            _merge(seen, TagSeen(frame.epc, frame.rssi, frame.antenna))
        elif isinstance(frame, r2000.ErrorReply) and frame.code != R2000_NO_TAG:
            try:
                frame.raise_for_status()
            except DeviceError as exc:
                raise _fault(exc, dev.url) from exc
        elif isinstance(frame, r2000.InventoryEnd) and frame.total_reads != reads:
            raise BadReply(
                f"{dev.url}: inventory incomplete: {reads} of {frame.total_reads} tag reads"
                f" arrived, {len(bad)} corrupt frames",
                bad,
            ) from (bad[-1].error if bad else None)
    return list(seen.values())


_INVENTORY = {"chafon": _chafon, "r2000": _r2000}


async def inventory(
    device: SerialDevice, protocol: str, *, timeout: float = 1.0, address: int | None = None
) -> list[TagSeen]:
    """The tags in the field now, each once (in the order first read).

    ``address``: the reader's bus address (default: Chafon broadcast ``0xFF``, R2000 1).
    """
    run = _INVENTORY.get(protocol)
    if run is None:
        raise ValueError(f"unknown UHF protocol {protocol!r}; known: {', '.join(UHF_PROTOCOLS)}")
    return await run(device, timeout, address)


async def scans(
    device: SerialDevice, *, idle_timeout: float | None = None
) -> AsyncIterator[barcode.Scan]:
    """Scans as the scanner sends them; corrupt lines are logged and skipped (counted
    in ``device.stats.bad_frames``). Survives unplugs when the device reconnects."""
    async for item in device.frames(barcode.Decoder(), idle_timeout=idle_timeout):
        if isinstance(item, BadFrame):
            log.warning("%s: unreadable scan skipped: %s", device.url, item.reason)
            continue
        assert isinstance(item, barcode.Scan)
        yield item


async def read_scan(
    device: SerialDevice, *, timeout: float = 5.0, trigger: bool = False
) -> barcode.Scan:
    """The next scan within ``timeout``; with ``trigger`` send :data:`TRIGGER` first."""
    scan = await device.request(TRIGGER if trigger else b"", barcode.Decoder(), timeout)
    assert isinstance(scan, barcode.Scan)
    return scan


def scan_json(scan: barcode.Scan) -> dict[str, Any]:
    """A scan as JSON: symbology, data, GS1 AIs (``null`` for opaque codes)."""
    out: dict[str, Any] = {
        "symbology": scan.symbology,
        "name": scan.name,
        "data": scan.data,
        "ais": scan.ais,
        "gtin": scan.gtin,
    }
    weight = scan.net_weight
    if weight is not None:
        out["net_weight"] = {"value": weight.value, "decimals": weight.decimals, "unit": "kg"}
    return out
