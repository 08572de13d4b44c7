"""Faults fed where bytes enter the line: corrupt bytes, split frames, silence, unplug and
replug, bad ports; the reconnect policy. Real pyserial, real ptys."""

from __future__ import annotations

import asyncio
import errno
import os
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from drivers.codecs import CodecError, Weight, toledo_continuous
from drivers.codecs.stream import BadFrame
from drivers.transports import readers, scales
from drivers.transports.errors import (
    BadReply,
    DeviceFault,
    DeviceGone,
    DeviceTimeout,
    NotOpen,
    PortUnavailable,
    SettingsError,
)
from drivers.transports.serial_port import (
    LinkState,
    ReconnectPolicy,
    SerialDevice,
    SerialSettings,
)
from simulators.scale_sim import SCALES
from simulators.serial_devices import PtyDevice, make_simulator
from simulators.uhf_sim import READERS

T = TypeVar("T")
WEIGHT = Weight(12345, 2, "kg")
FAST = ReconnectPolicy(initial=0.02, cap=0.1)


@pytest.fixture(autouse=True)
def no_leaks() -> Iterator[None]:
    fds = set(os.listdir("/proc/self/fd"))
    yield
    names = [t.name for t in threading.enumerate() if t.name.startswith(("sim ", "serial-"))]
    assert not names, f"threads left running: {names}"
    assert set(os.listdir("/proc/self/fd")) <= fds, "file descriptors left open"


def run(sim: PtyDevice, settings: SerialSettings, body: Callable[[SerialDevice], Awaitable[T]],
        **device: object) -> T:  # fmt: skip
    async def main() -> T:
        dev = SerialDevice(sim.path, settings, **device)  # type: ignore[arg-type]
        await dev.open()
        try:
            return await body(dev)
        finally:
            await dev.close()

    with sim:
        return asyncio.run(main())


def scale(protocol: str, **kw: object) -> PtyDevice:
    return SCALES[protocol](weight=12345, decimals=2, **kw)  # type: ignore[arg-type]


async def read(dev: SerialDevice, protocol: str, timeout: float = 1.0) -> object:
    if protocol in scales.PROTOCOLS:
        return (await scales.read_weight(dev, protocol, timeout=timeout)).weight
    if protocol in readers.UHF_PROTOCOLS:
        return len(await readers.inventory(dev, protocol, timeout=timeout))
    return (await readers.read_scan(dev, timeout=timeout, trigger=True)).gtin


DEVICES = [
    *[("scale", p) for p in scales.PROTOCOLS],
    *[("rfid", p) for p in readers.UHF_PROTOCOLS],
    ("scanner", "aim"),
]
EXPECTED = {"scale": WEIGHT, "rfid": 12, "scanner": "09506000134352"}


def device(kind: str, protocol: str) -> tuple[PtyDevice, SerialSettings]:
    if kind == "scale":
        return scale(protocol), scales.SETTINGS[protocol]
    if kind == "rfid":
        return make_simulator("rfid", protocol, tags=12), readers.SETTINGS[protocol]
    return make_simulator("scanner", protocol), readers.SETTINGS["scanner"]


# -- corruption and split frames ------------------------------------------------------------


@pytest.mark.parametrize(("kind", "protocol"), DEVICES)
def test_split_frames_and_noise_before_them_still_decode(kind: str, protocol: str) -> None:
    sim, settings = device(kind, protocol)

    async def body(dev: SerialDevice) -> None:
        sim.split(3, 0.005)
        assert await read(dev, protocol) == EXPECTED[kind]
        sim.split(0)
        sim.noise_next()
        assert await read(dev, protocol) == EXPECTED[kind]
        sim.noise_next(b"\x02\xa0\x05")  # garbage that looks like frame starts
        sim.split(1, 0.002)
        assert await read(dev, protocol) == EXPECTED[kind]

    run(sim, settings, body)


@pytest.mark.parametrize(("kind", "protocol"), [d for d in DEVICES if d[1] != "toledo_continuous"])
def test_a_corrupt_answer_is_a_retryable_bad_reply_and_the_next_one_is_good(
    kind: str, protocol: str
) -> None:
    sim, settings = device(kind, protocol)

    async def body(dev: SerialDevice) -> None:
        sim.corrupt_next(after=1 if protocol == "cas_ecr" else 0)  # CAS: ACK, then frame
        started = time.monotonic()
        with pytest.raises(BadReply) as info:
            await read(dev, protocol, timeout=0.4)
        assert time.monotonic() - started < 1.5
        assert info.value.retry
        assert isinstance(info.value.__cause__, CodecError)
        assert info.value.bad and all(isinstance(b, BadFrame) for b in info.value.bad)
        assert dev.stats.bad_frames >= 1
        assert await read(dev, protocol) == EXPECTED[kind]

    run(sim, settings, body)


def test_a_corrupt_one_byte_ack_is_noise_so_the_answer_times_out() -> None:
    sim = scale("cas_ecr")

    async def body(dev: SerialDevice) -> None:
        sim.corrupt_next()  # ACK 0x06 -> 0x86: not a frame start, skipped as noise
        with pytest.raises(DeviceTimeout) as info:
            await read(dev, "cas_ecr", timeout=0.3)
        assert "no answer to b'\\x05'" in str(info.value)  # the ENQ went unanswered
        assert await read(dev, "cas_ecr") == WEIGHT

    run(sim, scales.SETTINGS["cas_ecr"], body)


def test_a_corrupt_frame_in_a_multi_frame_inventory_is_not_trusted() -> None:
    # 20 tags -> three Chafon frames (status 0x03, 0x03, 0x01); losing one loses tags
    sim = make_simulator("rfid", "chafon", tags=20)

    async def body(dev: SerialDevice) -> None:
        sim.corrupt_next()
        with pytest.raises(BadReply, match="may be incomplete"):
            await readers.inventory(dev, "chafon")
        assert len(await readers.inventory(dev, "chafon")) == 20

    run(sim, readers.SETTINGS["chafon"], body)


def test_a_continuous_stream_reports_a_corrupt_frame_and_goes_on() -> None:
    sim = scale("toledo_continuous")

    async def body(dev: SerialDevice) -> list[object]:
        items: list[object] = []
        sim.corrupt_next()
        async for item in dev.frames(toledo_continuous.Decoder(), idle_timeout=1.0):
            items.append(item)
            if len(items) == 4:
                return items
        raise AssertionError("stream ended")

    items = run(sim, scales.SETTINGS["toledo_continuous"], body)
    assert isinstance(items[0], BadFrame)
    assert isinstance(items[0].error, CodecError)
    for item in items[1:]:
        assert isinstance(item, toledo_continuous.Frame) and item.weight == WEIGHT


# -- silence --------------------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "protocol"), DEVICES)
def test_silence_is_a_timeout_in_bounded_time(kind: str, protocol: str) -> None:
    sim, settings = device(kind, protocol)

    async def body(dev: SerialDevice) -> None:
        sim.silent = True
        started = time.monotonic()
        with pytest.raises(DeviceTimeout) as info:
            await read(dev, protocol, timeout=0.3)
        assert 0.25 < time.monotonic() - started < 1.0
        assert info.value.retry
        assert "no answer" in str(info.value) or "no frame" in str(info.value)
        sim.silent = False
        assert await read(dev, protocol) == EXPECTED[kind]

    run(sim, settings, body)


def test_an_idle_stream_times_out() -> None:
    sim = scale("toledo_continuous")

    async def body(dev: SerialDevice) -> None:
        sim.silent = True
        with pytest.raises(DeviceTimeout, match=r"no frame within 0\.3 s"):
            async for _ in dev.frames(toledo_continuous.Decoder(), idle_timeout=0.3):
                pass

    run(sim, scales.SETTINGS["toledo_continuous"], body)


# -- unplug and replug ----------------------------------------------------------------------


def test_unplug_without_reconnect_is_device_gone_until_reopened(tmp_path: Path) -> None:
    sim = scale("sics", link=tmp_path / "scale")

    async def body(dev: SerialDevice) -> None:
        assert await read(dev, "sics") == WEIGHT
        sim.unplug()
        assert not os.path.exists(sim.path)
        with pytest.raises(DeviceGone) as info:
            await read(dev, "sics")
        assert info.value.retry
        assert dev.state is LinkState.GONE
        with pytest.raises(DeviceGone, match="reconnecting is off"):
            await read(dev, "sics")
        with pytest.raises(PortUnavailable) as opening:
            await dev.open()
        assert opening.value.errno == errno.ENOENT and opening.value.retry
        sim.replug()
        await dev.open()
        assert await read(dev, "sics") == WEIGHT

    run(sim, scales.SETTINGS["sics"], body)


def test_reads_resume_after_replug_with_a_reconnect_policy(tmp_path: Path) -> None:
    sim = scale("cas_ecr", link=tmp_path / "scale")
    states: list[LinkState] = []

    async def body(dev: SerialDevice) -> None:
        assert await read(dev, "cas_ecr") == WEIGHT
        sim.unplug()
        with pytest.raises(DeviceGone):
            await read(dev, "cas_ecr", timeout=0.3)
        sim.set_weight(500)
        sim.replug()
        assert await read(dev, "cas_ecr") == Weight(500, 2, "kg")
        assert dev.stats.disconnects == 1 and dev.stats.reconnects == 1

    run(sim, scales.SETTINGS["cas_ecr"], body, reconnect=FAST,
        on_state=lambda s, e: states.append(s))  # fmt: skip
    assert states == [LinkState.OPEN, LinkState.GONE, LinkState.OPEN, LinkState.CLOSED]


def test_a_request_waits_for_a_replug_within_its_deadline(tmp_path: Path) -> None:
    sim = scale("sics", link=tmp_path / "scale")

    async def body(dev: SerialDevice) -> None:
        sim.unplug()
        with pytest.raises(DeviceGone):
            await read(dev, "sics", timeout=0.2)
        threading.Timer(0.2, sim.replug).start()
        assert await read(dev, "sics", timeout=2.0) == WEIGHT

    run(sim, scales.SETTINGS["sics"], body, reconnect=FAST)


def test_a_stream_survives_unplug_and_replug(tmp_path: Path) -> None:
    sim = scale("toledo_continuous", link=tmp_path / "scale")
    states: list[LinkState] = []

    async def body(dev: SerialDevice) -> list[Weight]:
        seen: list[Weight] = []
        loop = asyncio.get_running_loop()
        async for item in dev.frames(toledo_continuous.Decoder(), idle_timeout=2.0):
            if not isinstance(item, toledo_continuous.Frame):
                continue
            seen.append(item.weight)
            if len(seen) == 2:
                sim.unplug()
                sim.set_weight(777)
                loop.call_later(0.2, sim.replug)
            if item.weight.value == 777:
                return seen
        raise AssertionError("stream ended")

    seen = run(sim, scales.SETTINGS["toledo_continuous"], body, reconnect=FAST,
               on_state=lambda s, e: states.append(s))  # fmt: skip
    assert seen[0] == WEIGHT and seen[-1] == Weight(777, 2, "kg")
    assert states[:3] == [LinkState.OPEN, LinkState.GONE, LinkState.OPEN]


def test_the_scanner_stream_survives_unplug_and_replug(tmp_path: Path) -> None:
    sim = make_simulator("scanner", "aim", every=0.05, link=tmp_path / "scanner")

    async def body(dev: SerialDevice) -> int:
        got = 0
        async for scan in readers.scans(dev, idle_timeout=2.0):
            assert scan.gtin == "09506000134352"
            got += 1
            if got == 1:
                sim.unplug()
                asyncio.get_running_loop().call_later(0.2, sim.replug)
            if got == 3:
                return dev.stats.reconnects
        raise AssertionError("stream ended")

    assert run(sim, readers.SETTINGS["scanner"], body, reconnect=FAST) == 1


# -- policy and bad ports -------------------------------------------------------------------


def test_reconnect_backoff_doubles_up_to_its_cap() -> None:
    delays = ReconnectPolicy(initial=0.05, cap=0.5).delays()
    assert [round(next(delays), 3) for _ in range(7)] == [0.05, 0.1, 0.2, 0.4, 0.5, 0.5, 0.5]
    with pytest.raises(SettingsError):
        ReconnectPolicy(initial=1, cap=0.5)


def test_bad_settings_are_refused_before_any_io() -> None:
    for kwargs in ({"baudrate": 1234}, {"bytesize": 6}, {"parity": "M"}, {"stopbits": 3}):
        with pytest.raises(SettingsError) as info:
            SerialSettings(**kwargs)  # type: ignore[arg-type]
        assert not info.value.retry


def test_opening_ports_that_cannot_work(tmp_path: Path) -> None:
    plain = tmp_path / "not-a-tty"
    plain.write_bytes(b"")

    async def main() -> None:
        with pytest.raises(PortUnavailable) as missing:
            await SerialDevice(str(tmp_path / "nothing")).open()
        assert missing.value.retry and missing.value.errno == errno.ENOENT
        with pytest.raises(PortUnavailable) as not_tty:
            await SerialDevice(str(plain)).open()
        assert not not_tty.value.retry and not_tty.value.errno == errno.ENOTTY
        with pytest.raises(NotOpen):
            await SerialDevice(str(plain)).request(b"S\r\n", toledo_continuous.Decoder(), 0.1)

    asyncio.run(main())


def test_closing_wakes_a_waiting_stream() -> None:
    sim = scale("toledo_continuous")

    async def body(dev: SerialDevice) -> None:
        sim.silent = True

        async def consume() -> None:
            async for _ in dev.frames(toledo_continuous.Decoder()):
                pass

        task = asyncio.create_task(consume())
        await asyncio.sleep(0.1)
        await dev.close()
        with pytest.raises(NotOpen):
            await asyncio.wait_for(task, 1.0)

    run(sim, scales.SETTINGS["toledo_continuous"], body)


@pytest.mark.parametrize(
    ("protocol", "code", "retry"),
    [("chafon", 0xFA, True), ("r2000", 0x22, False)],
    ids=["chafon-poor-communication", "r2000-antenna-missing"],
)
def test_reader_faults_are_device_faults_with_the_readers_retry_hint(
    protocol: str, code: int, retry: bool
) -> None:
    sim = READERS[protocol](tags=2)
    sim.fault = code

    async def body(dev: SerialDevice) -> None:
        with pytest.raises(DeviceFault) as info:
            await readers.inventory(dev, protocol)
        assert info.value.code == code and info.value.retry is retry
        assert isinstance(info.value.__cause__, CodecError)
        sim.fault = None
        assert len(await readers.inventory(dev, protocol)) == 2

    run(sim, readers.SETTINGS[protocol], body)
