"""The barcode scanner through a real pty: GS1-128 with AIM prefix, GS1 Digital Link QR,
presentation mode, serial trigger, corrupt and split lines."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Awaitable, Callable, Iterator
from typing import TypeVar

import pytest

from drivers.codecs.barcode import Scan, gs1_scan
from drivers.codecs.quantities import Weight
from drivers.transports import readers
from drivers.transports.errors import DeviceTimeout
from drivers.transports.serial_port import SerialDevice
from simulators.scanner_sim import GTIN, ScannerSim

T = TypeVar("T")


@pytest.fixture(autouse=True)
def no_leaks() -> Iterator[None]:
    fds = set(os.listdir("/proc/self/fd"))
    yield
    names = [t.name for t in threading.enumerate() if t.name.startswith(("sim ", "serial-"))]
    assert not names, f"threads left running: {names}"
    assert set(os.listdir("/proc/self/fd")) <= fds, "file descriptors left open"


def with_scanner(
    body: Callable[[ScannerSim, SerialDevice], Awaitable[T]], every: float | None = None
) -> T:
    async def main() -> T:
        async with SerialDevice(sim.path, readers.SETTINGS["scanner"]) as dev:
            return await body(sim, dev)

    with ScannerSim(every=every) as sim:
        return asyncio.run(main())


async def take(dev: SerialDevice, n: int) -> list[Scan]:
    got: list[Scan] = []
    async for scan in readers.scans(dev, idle_timeout=2.0):
        got.append(scan)
        if len(got) == n:
            break
    return got


def test_presentation_mode_sends_gs1_128_and_digital_link_qr() -> None:
    async def body(sim: ScannerSim, dev: SerialDevice) -> list[Scan]:
        return await take(dev, 3)

    label, qr, again = with_scanner(body, every=0.05)
    assert label.symbology == "]C1" and label.name == "GS1-128"
    assert label.ais == {"01": GTIN, "10": "LOT2024A", "3103": "001250"}
    assert label.net_weight == Weight(1250, 3, "kg")
    assert qr.symbology == "]Q1" and qr.data.startswith("https://id.gs1.org/01/" + GTIN)
    assert qr.ais == {"01": GTIN, "10": "LOT2024A", "21": "SN0042", "17": "261231"}
    assert again == label
    json = readers.scan_json(label)
    assert json["gtin"] == GTIN and json["net_weight"] == {
        "value": 1250,
        "decimals": 3,
        "unit": "kg",
    }


def test_trigger_mode_scans_only_when_asked() -> None:
    async def body(sim: ScannerSim, dev: SerialDevice) -> None:
        with pytest.raises(DeviceTimeout):
            await readers.read_scan(dev, timeout=0.2)
        first = await readers.read_scan(dev, timeout=1.0, trigger=True)
        second = await readers.read_scan(dev, timeout=1.0, trigger=True)
        assert (first.symbology, second.symbology) == ("]C1", "]Q1")
        assert sim.stats.commands == 2

    with_scanner(body)


def test_a_corrupt_line_is_skipped_and_counted_and_split_lines_join() -> None:
    custom = gs1_scan({"01": GTIN, "21": "X1", "10": "B7"}, "]d2")

    async def body(sim: ScannerSim, dev: SerialDevice) -> list[Scan]:
        sim.corrupt_next()
        sim.scan()  # lost to corruption
        sim.split(4, 0.005)
        sim.scan(custom)
        got = await take(dev, 1)
        assert dev.stats.bad_frames == 1
        return got

    [scan] = with_scanner(body)
    assert scan == custom and scan.name == "GS1 DataMatrix"
