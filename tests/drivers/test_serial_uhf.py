"""UHF inventory through real ptys: Chafon (multi-frame status 0x03) and R2000 (one frame
per tag, then the summary)."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Awaitable, Callable, Iterator
from typing import TypeVar

import pytest

from drivers.codecs import chafon
from drivers.transports import readers
from drivers.transports.errors import DeviceTimeout
from drivers.transports.serial_port import SerialDevice
from simulators.uhf_sim import READERS, ChafonReader, Tag, UhfReader, make_tags

T = TypeVar("T")


@pytest.fixture(autouse=True)
def no_leaks() -> Iterator[None]:
    fds = set(os.listdir("/proc/self/fd"))
    yield
    names = [t.name for t in threading.enumerate() if t.name.startswith(("sim ", "serial-"))]
    assert not names, f"threads left running: {names}"
    assert set(os.listdir("/proc/self/fd")) <= fds, "file descriptors left open"


def with_reader(
    protocol: str, tags: int, body: Callable[[UhfReader, SerialDevice], Awaitable[T]]
) -> T:
    async def main() -> T:
        async with SerialDevice(sim.path, readers.SETTINGS[protocol]) as dev:
            return await body(sim, dev)

    with READERS[protocol](tags=tags) as sim:
        return asyncio.run(main())


@pytest.mark.parametrize("protocol", readers.UHF_PROTOCOLS)
@pytest.mark.parametrize("count", [1, 3, 30])
def test_inventory_returns_every_tag_in_the_field_once(protocol: str, count: int) -> None:
    async def body(sim: UhfReader, dev: SerialDevice) -> None:
        tags = await readers.inventory(dev, protocol)
        assert [t.epc for t in tags] == [t.epc for t in sim.tags]
        assert all(t.reads == 1 for t in tags)
        if protocol == "r2000":
            assert [t.rssi for t in tags] == [t.rssi for t in sim.tags]
            assert all(t.antenna == 0 for t in tags)
        else:
            assert all(t.rssi is None for t in tags)
            # 30 tags need four frames of at most 8 EPCs: three "more follow" (0x03). The
            # simulator counts a frame after its write returns, which may be after the
            # driver has read it: wait for the count, then it must be exact.
            frames = -(-count // ChafonReader.per_frame)
            for _ in range(200):
                if sim.stats.sent >= frames:
                    break
                await asyncio.sleep(0.01)
            assert sim.stats.sent == frames

    with_reader(protocol, count, body)


@pytest.mark.parametrize("protocol", readers.UHF_PROTOCOLS)
def test_an_empty_field_is_an_empty_list_and_tags_can_come_and_go(protocol: str) -> None:
    async def body(sim: UhfReader, dev: SerialDevice) -> None:
        assert await readers.inventory(dev, protocol) == []
        sim.tags = make_tags(2, seed=3)
        first = await readers.inventory(dev, protocol)
        assert len(first) == 2
        sim.tags = [*sim.tags[1:], Tag(bytes.fromhex("300833B2DDD9014000000001"), 0x61)]
        second = await readers.inventory(dev, protocol)
        assert [t.epc.hex().upper() for t in second][-1] == "300833B2DDD9014000000001"
        assert second[0].epc == first[1].epc
        assert second[-1].to_json()["epc"] == "300833B2DDD9014000000001"

    with_reader(protocol, 0, body)


def test_chafon_reader_answers_its_own_address_and_broadcast_only() -> None:
    async def body(sim: UhfReader, dev: SerialDevice) -> None:
        assert len(await readers.inventory(dev, "chafon", address=0x00)) == 2
        with pytest.raises(DeviceTimeout):
            await readers.inventory(dev, "chafon", address=0x07, timeout=0.2)
        info = await dev.request(chafon.encode_reader_info(0xFF), chafon.Decoder(), 1.0)
        assert isinstance(info, chafon.ReaderInfo) and info.version == (3, 1)

    with_reader("chafon", 2, body)


def test_unknown_uhf_protocol_is_refused() -> None:
    async def body(sim: UhfReader, dev: SerialDevice) -> None:
        with pytest.raises(ValueError, match="unknown UHF protocol"):
            await readers.inventory(dev, "impinj")

    with_reader("r2000", 1, body)
