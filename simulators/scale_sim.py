"""Scales on a pty, one per protocol, sharing one :class:`ScaleModel`.

The model holds what is on the platter: a gross ``weight`` in the scale's resolution
(``weight=1250, decimals=3, unit="kg"`` is 1.250 kg), the zero offset and tare set by
commands, a unit price, and two switches: ``moving`` (the reading wanders by up to
``jitter`` steps and is never stable) and ``overload``. Change them at any time from a
test (``sim.model.moving = True``, :meth:`ScaleSim.set_weight`).

==================  ================================================================
protocol            behaviour
==================  ================================================================
sics                answers ``S`` (``S S`` stable, ``S I`` while moving), ``SI``
                    (``S S``/``S D``), ``Z``, ``T``, ``TA``, ``TAC``, ``@``, ``I4``;
                    ``S +`` in overload; a line it cannot parse gets ``ES``
toledo8217          ``W``: weight frame when stable, else the status frame (motion,
                    over capacity, negative); ``S``: status; ``Z``: zero then status
cas_ecr             ``ENQ`` -> ``ACK``; after it ``DC1`` -> weight frame, ``DC2`` ->
                    price frame (unit price, total rounded half up); ``DC1``/``DC2``
                    without ``ENQ`` -> ``NAK``; status ``S``/``U``/``O``
toledo_continuous   streams a frame every ``period`` seconds unasked (motion and
                    out-of-range bits); ignores what the host sends
==================  ================================================================
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from drivers.codecs import cas_ecr, sics, toledo8217, toledo_continuous
from drivers.codecs.errors import EncodeError
from drivers.codecs.quantities import Money, Weight
from drivers.codecs.stream import BadFrame, StreamDecoder
from simulators.serial_devices import PtyDevice


@dataclass
class ScaleModel:
    weight: int = 1250
    decimals: int = 3
    unit: str = "kg"
    moving: bool = False
    overload: bool = False
    unit_price: int = 1290
    price_decimals: int = 2
    jitter: int = 7
    zero: int = 0
    tare: int = 0
    serial_number: str = "B021002593"

    def reading(self, wander: int = 0) -> int:
        """The net value shown now (``wander``: the motion's offset, if moving)."""
        value = self.weight - self.zero - self.tare
        return value + wander if self.moving else value


class ScaleSim(PtyDevice):
    """A scale on a pty; ``protocol`` names the codec it speaks."""

    kind = "scale"
    protocol = ""
    commands: StreamDecoder

    def __init__(
        self,
        *,
        weight: int = 1250,
        decimals: int = 3,
        unit: str = "kg",
        moving: bool = False,
        overload: bool = False,
        unit_price: int = 1290,
        price_decimals: int = 2,
        link: str | os.PathLike[str] | None = None,
        seed: int = 1,
    ) -> None:
        super().__init__(link=link, seed=seed)
        self.model = ScaleModel(
            weight, decimals, unit, moving, overload, unit_price, price_decimals
        )
        self.reset()

    def set_weight(self, weight: int, decimals: int | None = None) -> None:
        if decimals is not None:
            self.model.decimals = decimals
        self.model.weight = weight

    def net(self) -> Weight:
        """The weight shown now; while moving it wanders (never the exact value)."""
        m = self.model
        wander = self.rng.choice([-1, 1]) * self.rng.randint(1, max(1, m.jitter))
        return Weight(m.reading(wander), m.decimals, m.unit)

    def check(self) -> None:
        """Raise ``EncodeError`` when the model cannot be sent in this protocol (a unit
        or weight the protocol cannot carry), so bad settings fail at start-up."""
        self.sample()

    def sample(self) -> bytes:
        """The answer to a weight request for the current model."""
        raise NotImplementedError

    def on_bytes(self, data: bytes) -> None:
        for item in self.commands.feed(data):
            if isinstance(item, BadFrame):
                self.stats.bad_commands += 1
                self.bad_command(item)
            else:
                self.stats.commands += 1
                self.command(item)

    def command(self, item: object) -> None:
        """One decoded command."""

    def bad_command(self, item: BadFrame) -> None:
        """A command that did not decode (ignored unless the protocol answers it)."""


class SicsScale(ScaleSim):
    protocol = "sics"

    def reset(self) -> None:
        self.commands = sics.CommandDecoder()

    def reply(self, command: str, status: str = "", weight: Weight | None = None) -> None:
        self.send(sics.encode_reply(sics.Reply(command, status, weight)))

    def bad_command(self, item: BadFrame) -> None:
        self.reply("ES")

    def sample(self) -> bytes:
        return sics.encode_reply(sics.Reply("S", "S", self.net()))

    def command(self, item: object) -> None:
        assert isinstance(item, sics.Command)
        m = self.model
        name = item.name
        if name in ("S", "SI"):
            if m.overload:
                self.reply("S", "+")
            elif m.moving and name == "S":
                self.reply("S", "I")
            else:
                self.reply("S", "D" if m.moving else "S", self.net())
        elif name in ("Z", "T"):
            if m.overload:
                self.reply(name, "+")
            elif m.moving:
                self.reply(name, "I")
            elif name == "Z":
                m.zero, m.tare = m.weight, 0
                self.reply("Z", "A")
            else:
                m.tare = m.weight - m.zero
                self.reply("T", "S", Weight(m.tare, m.decimals, m.unit))
        elif name == "TA":
            if item.weight is not None:
                try:
                    if item.weight.unit != m.unit:
                        raise EncodeError(f"unit {item.weight.unit} is not {m.unit}")
                    m.tare = item.weight.at(m.decimals)
                except EncodeError:
                    self.reply("TA", "L")
                    return
            self.reply("TA", "A", Weight(m.tare, m.decimals, m.unit))
        elif name == "TAC":
            m.tare = 0
            self.reply("TAC", "A")
        else:  # "@" resets (tare cleared) and answers like I4; "I4"
            if name == "@":
                m.tare = 0
            self.send(sics.encode_reply(sics.Reply("I4", "A", text=m.serial_number)))


class Toledo8217Scale(ScaleSim):
    protocol = "toledo8217"

    def reset(self) -> None:
        self.commands = toledo8217.CommandDecoder()

    def status(self, value: int) -> int:
        m = self.model
        flags = []
        if m.moving:
            flags.append("motion")
        if m.overload:
            flags.append("over_capacity")
        if value < 0:
            flags.append("negative")
        if value == 0 and not m.moving:
            flags.append("center_of_zero")
        if m.tare:
            flags.append("net")
        return toledo8217.status_byte(flags)

    def sample(self) -> bytes:
        return toledo8217.encode_weight(self.net())

    def command(self, item: object) -> None:
        m = self.model
        if item == "Z" and not m.moving and not m.overload:
            m.zero, m.tare = m.weight, 0
        weight = self.net()
        if item == "W" and not m.moving and not m.overload and weight.value >= 0:
            self.send(toledo8217.encode_weight(weight))
        else:
            self.send(toledo8217.encode_status(self.status(weight.value)))


class CasEcrScale(ScaleSim):
    protocol = "cas_ecr"

    def reset(self) -> None:
        self.commands = cas_ecr.CommandDecoder()
        self.enquired = False

    def reading(self, prices: bool) -> cas_ecr.Reading:
        m = self.model
        if m.overload:
            return cas_ecr.Reading("O", None)
        weight = self.net()
        status = "U" if m.moving else "S"
        if not prices:
            return cas_ecr.Reading(status, weight)
        amount = max(0, weight.value) * m.unit_price
        scale: int = 10**m.decimals
        total = (amount + scale // 2) // scale
        return cas_ecr.Reading(
            status,
            weight,
            Money(m.unit_price, m.price_decimals),
            Money(total, m.price_decimals),
        )

    def sample(self) -> bytes:
        return cas_ecr.encode_reading(self.reading(prices=True))

    def command(self, item: object) -> None:
        if item == "ENQ":
            self.enquired = True
            self.send(cas_ecr.encode_control("ACK"))
            return
        if not self.enquired:
            self.send(cas_ecr.encode_control("NAK"))
            return
        self.enquired = False
        self.send(cas_ecr.encode_reading(self.reading(prices=item == "DC2")))


class ToledoContinuousScale(ScaleSim):
    protocol = "toledo_continuous"

    period = 0.05
    """Seconds between frames (a real indicator sends 10-20 a second)."""

    def reset(self) -> None:
        self._due = 0.0

    def on_bytes(self, data: bytes) -> None:
        self.stats.bad_commands += 1  # nothing to command: the output is continuous

    def frame(self) -> toledo_continuous.Frame:
        m = self.model
        weight = self.net()
        tare = Weight(m.tare, m.decimals, m.unit)
        flags = []
        if m.moving:
            flags.append("motion")
        if m.overload:
            flags.append("out_of_range")
        if m.tare:
            flags.append("net")
        return toledo_continuous.Frame(weight, tare, flags)

    def sample(self) -> bytes:
        return toledo_continuous.encode_frame(self.frame())

    def on_tick(self, now: float) -> None:
        if now >= self._due:
            self._due = now + self.period
            self.send(self.sample())


SCALES: dict[str, type[ScaleSim]] = {
    cls.protocol: cls for cls in (SicsScale, Toledo8217Scale, CasEcrScale, ToledoContinuousScale)
}
