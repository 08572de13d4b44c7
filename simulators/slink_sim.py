"""Terminals on a serial link to the gateway, behind a real pty: the agent's ``serial_link``
source opens the other end with pyserial and cannot tell it from a USB adapter.

One :class:`SerialLinkSim` is one cable: a single terminal on a point-to-point link
(``devices=[device]``), or an RS-485 bus segment with several addressed terminals
(``devices=[device, ...], addrs=[1, ...]``) that speak only when the gateway polls them.
The link layer is the firmware's own (``drivers.codecs.slink``).

Each terminal makes signed records (the fleet's bodies, :mod:`simulators.records`) when
told to (:meth:`SerialLinkSim.produce`) and keeps every one until the agent's sealed ack
for it arrives (``wire.auth.open_terminal_ack``); an ack that does not verify is counted and
ignored. Unacknowledged records are sent again after ``resend_after_s`` and whenever the
link comes back (the gateway's ``HELLO`` after its restart, the link up again after an
unplug, the terminal's own :meth:`~SerialLinkSim.reboot`), so unplugging the pty
(:meth:`~simulators.serial_devices.PtyDevice.unplug`) or killing the agent loses nothing.
Faults on the terminal's output: the pty's ``corrupt_next`` / ``noise_next``, and
:meth:`SerialLinkSim.drop_next` (frames lost on the line).

A terminal also asks as a warehouse handheld does (:meth:`SerialLinkSim.ask_dispatch`: a
``DISPATCH`` frame with a request sealed by ``wire.auth.dispatch_request``); what comes
back in ``CMD`` frames (gate answers, commands) is kept in its ``cmds``.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field

from drivers.codecs import slink
from hostlib.registry import FAMILY_OF_TYPE, Device
from simulators.records import KIND_MIX_BY_FAMILY, make_body, pick_kind
from simulators.serial_devices import PtyDevice
from wire import auth
from wire.canonical import canonical
from wire.envelope import WireError, make_record


@dataclass
class TermStats:
    generated: int = 0
    acked: int = 0
    rejected: int = 0
    resent: int = 0
    forged_acks: int = 0
    commands: int = 0


class _Uart:
    """One terminal's UART on the shared line: its own receive buffer, writes to the pty."""

    def __init__(self, sim: SerialLinkSim) -> None:
        self.sim = sim
        self.buf = b""

    def read(self) -> bytes | None:
        out, self.buf = self.buf, b""
        return out or None

    def write(self, data: bytes) -> int:
        self.sim._transmit(data)
        return len(data)


@dataclass
class SimTerminal:
    device: Device
    addr: int
    family: str
    seq: int = 0
    boot: int = 1
    to_make: int = 0
    pending: dict[int, bytes] = field(default_factory=dict)
    sent_at: dict[int, float] = field(default_factory=dict)
    cmds: list[bytes] = field(default_factory=list)
    requests: list[tuple[int, bytes]] = field(default_factory=list)  # GATE/DISPATCH to send
    stats: TermStats = field(default_factory=TermStats)
    uart: _Uart | None = None
    ep: slink.SerialEndpoint | slink.BusTerminal | None = None
    was_up: bool = False
    hellos: int = 0


class SerialLinkSim(PtyDevice):
    kind = "serial link terminal"

    def __init__(
        self,
        devices: list[Device],
        *,
        addrs: list[int] | None = None,
        window: int = 8,
        resend_after_s: float = 5.0,
        rto_ms: int = 150,
        link: str | None = None,
        seed: int = 1,
    ) -> None:
        super().__init__(link=link, tick=0.005, seed=seed)
        if addrs is not None and len(addrs) != len(devices):
            raise ValueError("one bus address per device")
        if addrs is None and len(devices) != 1:
            raise ValueError("a point-to-point link has one terminal; give addrs for a bus")
        self.window = window
        self.resend_after_s = resend_after_s
        self.rto_ms = rto_ms
        self.lock = threading.RLock()
        self.rng_records = random.Random(seed)
        self.clock = slink.HostClock()
        self._drop = 0
        self.dropped_frames = 0
        self.terminals = [
            SimTerminal(d, (addrs or [0])[i], FAMILY_OF_TYPE.get(d.type, "elevator"))
            for i, d in enumerate(devices)
        ]
        for t in self.terminals:
            t.uart = _Uart(self)
            t.ep = self._endpoint(t)

    def _endpoint(self, t: SimTerminal) -> slink.SerialEndpoint | slink.BusTerminal:
        assert t.uart is not None

        def deliver(ftype: int, payload: bytes) -> None:
            self._deliver(t, ftype, payload)

        if t.addr:
            return slink.BusTerminal(t.uart, self.clock, deliver, t.addr, silence_ms=3000)
        return slink.SerialEndpoint(t.uart, self.clock, deliver, self.rto_ms)

    # -- for tests ------------------------------------------------------------------------

    def produce(self, n: int, dev: str | None = None) -> None:
        """Make ``n`` more records (on every terminal, or on ``dev``'s)."""
        with self.lock:
            for t in self.terminals:
                if dev is None or t.device.dev == dev:
                    t.to_make += n

    def ask_dispatch(self, dev: str, fields: dict[str, object]) -> bytes:
        """Send ``dev``'s dispatch request (``fields``: id, n, items, …; see
        ``edge_agent.dispatchgate``) sealed with its key as a ``DISPATCH`` frame, once, as
        soon as the link has room; the answer lands in ``terminal(dev).cmds``. Returns the
        request as sent."""
        t = self.terminal(dev)
        payload = auth.dispatch_request(dev, fields, t.device.key_for(max(t.seq, 1)))
        self.request(dev, slink.DISPATCH, payload)
        return payload

    def request(self, dev: str, ftype: int, payload: bytes) -> None:
        """Send one data frame of ``ftype`` (``GATE``, ``DISPATCH``) from ``dev``'s terminal."""
        with self.lock:
            self.terminal(dev).requests.append((ftype, payload))

    def drop_next(self, n: int = 1) -> None:
        """Lose the terminals' next ``n`` frames on the line."""
        with self.lock:
            self._drop += n

    def reboot(self, dev: str | None = None) -> None:
        """Restart terminals (all, or ``dev``'s): a new link layer that says ``HELLO``, the
        next boot number; what the flash log holds (unacknowledged records) survives."""
        with self.lock:
            for t in self.terminals:
                if dev is None or t.device.dev == dev:
                    t.boot += 1
                    t.ep = self._endpoint(t)
                    t.sent_at.clear()
                    t.was_up = False
                    t.hellos = 0

    def pending(self) -> int:
        with self.lock:
            return sum(len(t.pending) + t.to_make for t in self.terminals)

    def generated(self) -> int:
        with self.lock:
            return sum(t.stats.generated for t in self.terminals)

    def terminal(self, dev: str) -> SimTerminal:
        return next(t for t in self.terminals if t.device.dev == dev)

    # -- the pty device ---------------------------------------------------------------------

    def reset(self) -> None:
        # a new cable: partial frames are gone; the terminals keep what they hold
        with self.lock:
            for t in self.terminals:
                if t.uart is not None:
                    t.uart.buf = b""
                if t.ep is not None:
                    t.ep.dec.reset()

    def on_bytes(self, data: bytes) -> None:
        with self.lock:
            for t in self.terminals:
                assert t.uart is not None
                t.uart.buf += data
            self._poll()

    def on_tick(self, now: float) -> None:
        with self.lock:
            self._poll()

    def _transmit(self, data: bytes) -> None:
        if self._drop > 0:
            self._drop -= 1
            self.dropped_frames += 1
            return
        self.send(data)

    def _poll(self) -> None:
        now = self.clock.ticks_ms()
        mono = time.monotonic()
        for t in self.terminals:
            ep = t.ep
            assert ep is not None
            ep.poll(now)
            # up again, or the gateway restarted (its HELLO): everything unacked again
            if ep.is_up and (not t.was_up or ep.hellos != t.hellos):
                t.sent_at.clear()
            t.was_up, t.hellos = ep.is_up, ep.hellos
            if not ep.is_up:
                continue
            while t.requests and ep.room() > 0:
                ep.send(*t.requests.pop(0))
            while t.to_make and len(t.pending) < 10_000:
                t.to_make -= 1
                self._make(t)
            inflight = sum(1 for s in t.pending if s in t.sent_at)
            for seq in sorted(t.pending):
                if ep.room() <= 1:
                    break
                at = t.sent_at.get(seq)
                if at is None:
                    if inflight >= self.window:
                        continue
                    inflight += 1
                elif mono - at < self.resend_after_s:
                    continue
                else:
                    t.stats.resent += 1
                ep.send(slink.REC, t.pending[seq])
                t.sent_at[seq] = mono

    def _make(self, t: SimTerminal) -> None:
        t.seq += 1
        kind = pick_kind(
            t.family if t.family in KIND_MIX_BY_FAMILY else "elevator", self.rng_records
        )
        now_ms = int(time.time() * 1000)
        body = make_body(kind, self.rng_records, t.device.dev, t.seq, t.device.site, now_ms=now_ms)
        rec = make_record(
            t.device.dev, t.seq, t.boot, kind, now_ms, "ntp", body, t.device.key_for(t.seq)
        )
        t.pending[t.seq] = canonical(rec)
        t.stats.generated += 1

    def _deliver(self, t: SimTerminal, ftype: int, payload: bytes) -> None:
        if ftype == slink.CMD:
            t.cmds.append(payload)
            t.stats.commands += 1
            return
        if ftype != slink.ACK:
            return
        try:
            wm, ranges, bad = auth.open_terminal_ack(payload, t.device.dev, t.device.recent_keys())
        except WireError:
            t.stats.forged_acks += 1
            return
        if wm > 0:
            ranges.append((1, wm))
        for lo, hi in ranges:
            for s in [s for s in t.pending if lo <= s <= hi]:
                del t.pending[s]
                t.sent_at.pop(s, None)
                t.stats.acked += 1
        for s in bad:
            if t.pending.pop(s, None) is not None:
                t.sent_at.pop(s, None)
                t.stats.rejected += 1
