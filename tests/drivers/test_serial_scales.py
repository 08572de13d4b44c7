"""The real pyserial driver reading the four scale simulators through real ptys."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Awaitable, Callable, Iterator
from typing import TypeVar

import pytest

from drivers.codecs import Money, Weight, cas_ecr, sics
from drivers.transports import scales
from drivers.transports.errors import DeviceTimeout
from drivers.transports.serial_port import SerialDevice
from simulators.scale_sim import SCALES, ScaleSim

T = TypeVar("T")
PROTOCOLS = scales.PROTOCOLS


@pytest.fixture(autouse=True)
def no_leaks() -> Iterator[None]:
    """Every simulator and reader thread joined, every fd closed."""
    fds = set(os.listdir("/proc/self/fd"))
    yield
    names = [t.name for t in threading.enumerate() if t.name.startswith(("sim ", "serial-"))]
    assert not names, f"threads left running: {names}"
    assert set(os.listdir("/proc/self/fd")) <= fds, "file descriptors left open"


def with_scale(
    protocol: str, body: Callable[[ScaleSim, SerialDevice], Awaitable[T]], **model: int
) -> T:
    """Run ``body(sim, device)`` with a simulator and the driver open on its pty."""

    async def main() -> T:
        async with SerialDevice(sim.path, scales.SETTINGS[protocol]) as dev:
            return await body(sim, dev)

    with SCALES[protocol](weight=12345, decimals=2, **model) as sim:
        return asyncio.run(main())


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_stable_weight_arrives_exactly(protocol: str) -> None:
    async def body(sim: ScaleSim, dev: SerialDevice) -> None:
        first = await scales.read_weight(dev, protocol)
        sim.set_weight(990, decimals=3)
        second = await scales.read_weight(dev, protocol)
        assert first.weight == Weight(12345, 2, "kg")
        assert (first.stable, first.overload, first.underload) == (True, False, False)
        assert first.to_json()["weight"] == 12345
        assert second.weight == Weight(990, 3, "kg")

    with_scale(protocol, body)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_moving_load_is_never_reported_stable(protocol: str) -> None:
    async def body(sim: ScaleSim, dev: SerialDevice) -> None:
        readings = [await scales.read_weight(dev, protocol) for _ in range(5)]
        for r in readings:
            assert not r.stable
            if protocol == "toledo8217":  # no weight while in motion, only the status
                assert r.weight is None and "motion" in r.flags
            else:
                assert r.weight is not None and r.weight != Weight(12345, 2, "kg")
                assert abs(r.weight.value - 12345) <= sim.model.jitter

    with_scale(protocol, body, moving=True)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_waiting_for_stable_ends_when_the_load_settles(protocol: str) -> None:
    async def body(sim: ScaleSim, dev: SerialDevice) -> None:
        with pytest.raises(DeviceTimeout) as info:
            await scales.read_weight(dev, protocol, stable=True, timeout=0.3)
        assert info.value.retry
        asyncio.get_running_loop().call_later(0.2, setattr, sim.model, "moving", False)
        reading = await scales.read_weight(dev, protocol, stable=True, timeout=3)
        assert reading.stable and reading.weight == Weight(12345, 2, "kg")

    with_scale(protocol, body, moving=True)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_overload_is_a_reading_without_weight(protocol: str) -> None:
    async def body(sim: ScaleSim, dev: SerialDevice) -> None:
        reading = await scales.read_weight(dev, protocol, stable=True)
        assert reading.overload and reading.weight is None and not reading.stable
        assert reading.to_json()["overload"] is True
        sim.model.overload = False
        assert (await scales.read_weight(dev, protocol)).weight == Weight(12345, 2, "kg")

    with_scale(protocol, body, overload=True)


def test_cas_price_frame_carries_unit_price_and_total() -> None:
    async def body(sim: ScaleSim, dev: SerialDevice) -> None:
        reading = await scales.read_weight(dev, "cas_ecr", prices=True)
        assert reading.unit_price == Money(1290, 2)
        # 123.45 kg x 12.90 = 1592.505, rounded half up
        assert reading.total == Money(159251, 2)
        assert reading.to_json()["total"] == {"value": 159251, "decimals": 2}

    with_scale("cas_ecr", body)


def test_cas_scale_wants_the_enquiry_first() -> None:
    async def body(sim: ScaleSim, dev: SerialDevice) -> None:
        answer = await dev.request(cas_ecr.encode_command("DC1"), cas_ecr.Decoder(), 1.0)
        assert answer == cas_ecr.Control("NAK")

    with_scale("cas_ecr", body)


def test_toledo_8217_unit_comes_from_configuration() -> None:
    async def body(sim: ScaleSim, dev: SerialDevice) -> None:
        reading = await scales.read_weight(dev, "toledo8217", unit="lb")
        assert reading.weight == Weight(12345, 2, "lb")

    with_scale("toledo8217", body)


def test_sics_tare_then_net_weight_and_errors() -> None:
    async def body(sim: ScaleSim, dev: SerialDevice) -> None:
        tare = await dev.request(sics.encode_command("T"), sics.Decoder(), 1.0)
        assert tare == sics.Reply("T", "S", Weight(12345, 2, "kg"))
        sim.set_weight(20000)
        assert (await scales.read_weight(dev, "sics")).weight == Weight(7655, 2, "kg")
        garbage = await dev.request(b"XYQ\r\n", sics.Decoder(), 1.0)  # no command letter
        assert garbage == sics.Reply("ES")
        serial = await dev.request(
            sics.encode_command("I4"),
            sics.Decoder(),
            1.0,
            accept=lambda r: isinstance(r, sics.Reply) and r.command == "I4",
        )
        assert serial == sics.Reply("I4", "A", text="B021002593")

    with_scale("sics", body)


def test_continuous_scale_streams_frames_unasked() -> None:
    from drivers.codecs import toledo_continuous

    async def body(sim: ScaleSim, dev: SerialDevice) -> list[object]:
        got: list[object] = []
        async for frame in dev.frames(toledo_continuous.Decoder(), idle_timeout=1.0):
            got.append(frame)
            if len(got) == 4:
                break
        return got

    frames = with_scale("toledo_continuous", body)
    for frame in frames:
        assert isinstance(frame, toledo_continuous.Frame)
        assert frame.weight == Weight(12345, 2, "kg") and frame.stable


def test_unknown_protocol_is_refused() -> None:
    async def body(sim: ScaleSim, dev: SerialDevice) -> None:
        with pytest.raises(ValueError, match="unknown scale protocol"):
            await scales.read_weight(dev, "nonsense")

    with_scale("sics", body)
