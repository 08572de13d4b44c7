"""Scales over serial: one :func:`read_weight` for the four protocols we meet.

======================  =========  ===================================================
protocol                line       how a reading is taken
======================  =========  ===================================================
``sics``                9600 8N1   ``SI`` (immediate) or ``S`` (stable) -> ``S S/D``
``toledo8217``          9600 7E1   ``W`` -> weight frame, or status frame when the
                                   scale cannot weigh (motion, over capacity, < 0)
``cas_ecr``             9600 8N1   ``ENQ`` -> ``ACK``, then ``DC1`` (weight) or ``DC2``
                                   (weight, unit price, total)
``toledo_continuous``   9600 7E1   nothing sent: the next frame of the stream
======================  =========  ===================================================

A reading is a :class:`ScaleReading`: the weight as an exact integer in the scale's
resolution (never a float), whether it is stable, and overload / underload (then there
is no weight). ``read_weight(..., stable=True)`` keeps asking until the scale settles
and raises :class:`~drivers.transports.errors.DeviceTimeout` if it does not within the
timeout. A scale reporting an error (SICS ``ES``, ``EL``, a CAS ``NAK``) raises
:class:`~drivers.transports.errors.DeviceFault`.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from drivers.codecs import cas_ecr, sics, toledo8217, toledo_continuous
from drivers.codecs.errors import DeviceError
from drivers.codecs.quantities import Money, Weight
from drivers.transports.errors import DeviceFault, DeviceTimeout
from drivers.transports.serial_port import SerialDevice, SerialSettings

SETTINGS = {
    "sics": SerialSettings(9600, 8, "N", 1),
    "toledo8217": SerialSettings(9600, 7, "E", 1),
    "cas_ecr": SerialSettings(9600, 8, "N", 1),
    "toledo_continuous": SerialSettings(9600, 7, "E", 1),
}
PROTOCOLS = tuple(SETTINGS)
SETTLE_POLL = 0.05
"""Seconds between asks while waiting for a stable weight."""


@dataclass(frozen=True)
class ScaleReading:
    protocol: str
    weight: Weight | None
    stable: bool
    overload: bool = False
    underload: bool = False
    tare: Weight | None = None
    unit_price: Money | None = None
    total: Money | None = None
    flags: tuple[str, ...] = ()

    def __str__(self) -> str:
        if self.overload:
            return "OVERLOAD"
        if self.underload:
            return "UNDERLOAD"
        if self.weight is None:
            return "no weight (" + (", ".join(self.flags) or "busy") + ")"
        text = f"{self.weight} {'stable' if self.stable else 'moving'}"
        if self.unit_price is not None and self.total is not None:
            text += f"  unit price {self.unit_price}  total {self.total}"
        return text

    def to_json(self) -> dict[str, Any]:
        """Integers only: ``{"weight": 1250, "decimals": 3, "unit": "kg", ...}``."""
        w = self.weight
        out: dict[str, Any] = {
            "protocol": self.protocol,
            "weight": w.value if w else None,
            "decimals": w.decimals if w else None,
            "unit": w.unit if w else None,
            "stable": self.stable,
            "overload": self.overload,
            "underload": self.underload,
            "flags": list(self.flags),
        }
        if self.tare is not None:
            out["tare"] = self.tare.value
        for name, money in (("unit_price", self.unit_price), ("total", self.total)):
            if money is not None:
                out[name] = {"value": money.value, "decimals": money.decimals}
        return out


@dataclass(frozen=True)
class _Ask:
    stable: bool
    prices: bool
    unit: str


def _fault(exc: DeviceError, what: str) -> DeviceFault:
    return DeviceFault(f"{what}: {exc.message}", exc.code, exc.retry)


async def _sics(dev: SerialDevice, timeout: float, ask: _Ask) -> ScaleReading:
    command = sics.encode_command("S" if ask.stable else "SI")
    reply = await dev.request(
        command,
        sics.Decoder(),
        timeout,
        accept=lambda r: isinstance(r, sics.Reply) and r.command in ("S", "SI", "ES", "ET", "EL"),
    )
    assert isinstance(reply, sics.Reply)
    if reply.status == "+":
        return ScaleReading("sics", None, False, overload=True)
    if reply.status == "-":
        return ScaleReading("sics", None, False, underload=True)
    if reply.status == "I":
        return ScaleReading("sics", None, False, flags=("busy",))
    try:
        reply.raise_for_status()
    except DeviceError as exc:
        raise _fault(exc, f"{dev.url}: balance") from exc
    return ScaleReading("sics", reply.weight, reply.stable)


async def _toledo8217(dev: SerialDevice, timeout: float, ask: _Ask) -> ScaleReading:
    reply = await dev.request(
        toledo8217.encode_command("W"), toledo8217.Decoder(unit=ask.unit), timeout
    )
    assert isinstance(reply, toledo8217.Reply)
    if reply.weight is not None:
        return ScaleReading("toledo8217", reply.weight, True)
    flags = tuple(reply.flags)
    return ScaleReading(
        "toledo8217",
        None,
        False,
        overload="over_capacity" in flags,
        underload="negative" in flags,
        flags=flags,
    )


async def _cas_ecr(dev: SerialDevice, timeout: float, ask: _Ask) -> ScaleReading:
    deadline = time.monotonic() + timeout
    decoder = cas_ecr.Decoder()
    answer = await dev.request(
        cas_ecr.encode_command("ENQ"),
        decoder,
        timeout,
        accept=lambda f: isinstance(f, cas_ecr.Control),
    )
    if answer != cas_ecr.Control("ACK"):
        raise DeviceFault(f"{dev.url}: scale refused the enquiry ({answer})", "NAK", retry=True)
    reading = await dev.request(
        cas_ecr.encode_command("DC2" if ask.prices else "DC1"),
        decoder,
        max(0.0, deadline - time.monotonic()),
        accept=lambda f: isinstance(f, cas_ecr.Reading),
    )
    assert isinstance(reading, cas_ecr.Reading)
    return ScaleReading(
        "cas_ecr",
        reading.weight,
        reading.stable,
        overload=reading.overload,
        unit_price=reading.unit_price,
        total=reading.total,
        flags=(cas_ecr.STATUSES[reading.status],),
    )


async def _continuous(dev: SerialDevice, timeout: float, ask: _Ask) -> ScaleReading:
    frame = await dev.request(b"", toledo_continuous.Decoder(), timeout)
    assert isinstance(frame, toledo_continuous.Frame)
    overload = frame.has("out_of_range")
    return ScaleReading(
        "toledo_continuous",
        None if overload else frame.weight,
        frame.stable and not overload,
        overload=overload,
        tare=frame.tare if frame.net else None,
        flags=tuple(frame.flags),
    )


_READ = {
    "sics": _sics,
    "toledo8217": _toledo8217,
    "cas_ecr": _cas_ecr,
    "toledo_continuous": _continuous,
}


async def read_weight(
    device: SerialDevice,
    protocol: str,
    *,
    timeout: float = 1.0,
    stable: bool = False,
    prices: bool = False,
    unit: str = "kg",
) -> ScaleReading:
    """One reading from a scale speaking ``protocol`` (see the module table).

    ``stable``: wait (up to ``timeout``) for a stable weight, overload or underload.
    ``prices``: CAS ECR only, ask for the price frame (unit price and total).
    ``unit``: Toledo 8217 only, which sends no unit (it is the scale's configuration).
    """
    read = _READ.get(protocol)
    if read is None:
        raise ValueError(f"unknown scale protocol {protocol!r}; known: {', '.join(PROTOCOLS)}")
    ask = _Ask(stable, prices, unit)
    deadline = time.monotonic() + timeout
    while True:
        reading = await read(device, max(0.0, deadline - time.monotonic()), ask)
        if not stable or reading.stable or reading.overload or reading.underload:
            return reading
        if time.monotonic() + SETTLE_POLL >= deadline:
            raise DeviceTimeout(f"{device.url}: scale still not stable after {timeout:g} s")
        if protocol != "toledo_continuous":
            await asyncio.sleep(SETTLE_POLL)
