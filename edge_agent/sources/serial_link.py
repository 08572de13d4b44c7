"""Serial-link source: the gateway side of the terminals' framed link (``drivers.codecs.slink``)
over a serial port (pyserial): one terminal on a point-to-point UART, or several on an
RS-485 bus that the agent polls.

Config (one ``[[sources]]`` table)::

    [[sources]]
    kind = "serial_link"
    name = "elevator-uart"            # unique per agent
    port = "/dev/ttyUSB0"             # need not exist at start: the source waits for it
    baudrate = 115200
    devices = ["ELV-S1-0001"]         # point-to-point: the one terminal on the port
    # devices = {"ELV-S1-0001" = 1, "ELV-S1-0002" = 2}   # RS-485 bus: device = address
    rto_ms = 250                      # resend / poll answer timeout
    silent_s = 10.0                   # no frame from a terminal for this long: "down"

What a terminal sends becomes what an MQTT terminal would publish: a ``REC`` frame is
offered to the intake as ``t/{dev}/rec`` (blocking while the intake is full, so the
terminal is not acknowledged at link level and keeps it), a ``GATE`` frame goes to the
fill gate as ``t/{dev}/gate``, a ``DISPATCH`` frame (a warehouse handheld's sealed dispatch
request) to the dispatch gate as ``t/{dev}/dispatch``. The agent's acks (sent only after
the group commit), gate answers and commands come back through
:meth:`SerialLinkSource.deliver` as ``ACK`` / ``CMD`` frames (a bounded queue; a full one
drops the oldest message of the device with the most waiting, counted ``out_dropped``: a
lost ack costs a resend, a lost gate answer means no filling, or no dispatch, until the
terminal asks again). Retained messages (commands) are kept
and sent again on every new connection and after the terminal says ``HELLO``. A record
or a dispatch request naming a device that is not on this port (not the one at that bus
address) is counted (``foreign_records``, ``foreign_dispatches``) and not handed on.

Reconnection: a port that cannot be opened, or fails (unplugged adapter, hung-up pty,
write timeout), makes the state "down" with the reason; the port is opened again with
exponential backoff (hostlib/backoff.py) until it is back. A terminal that answers nothing
for ``silent_s`` (the agent polls an idle one) makes the state "down" ("silent"), the link
keeps probing, and the state goes "up" at its next frame. Nothing a terminal sends can
stop the thread: every bad frame is counted.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import serial

from drivers.codecs import slink
from edge_agent.sources.base import Source, SourceHost
from hostlib.backoff import Backoff
from hostlib.config import Section
from wire import topics

log = logging.getLogger(__name__)

KIND = "serial_link"
HELP = "terminals wired to the gateway: framed serial link over a UART or an RS-485 bus"
READ_TIMEOUT_S = 0.005
WRITE_TIMEOUT_S = 2.0


@dataclass(frozen=True)
class Settings:
    port: str
    baudrate: int
    devices: tuple[tuple[str, int], ...]  # (dev, bus address); address 0: point-to-point
    rto_ms: int
    silent_s: float
    keepalive_s: float
    queue_max: int
    backoff_max_s: float

    @property
    def bus(self) -> bool:
        return self.devices[0][1] != 0


def parse(s: Section) -> Settings:
    port = s.get("port", str)
    if not port or "\0" in port:
        s.fail("port", "must be the serial port's path, e.g. /dev/ttyUSB0")
    baudrate = s.bounded("baudrate", int, 115200, 4_000_000, "baud")
    raw = s.opt("devices", object)
    devices: list[tuple[str, int]] = []
    if isinstance(raw, list):
        if len(raw) != 1 or not isinstance(raw[0], str) or not raw[0]:
            s.fail(
                "devices",
                'a point-to-point port has exactly one terminal: devices = ["DEV"] '
                '(several on an RS-485 bus: devices = {"DEV1" = 1, "DEV2" = 2})',
            )
        else:
            devices.append((raw[0], 0))
    elif isinstance(raw, dict):
        addrs: set[int] = set()
        for dev, addr in raw.items():
            ok = isinstance(addr, int) and not isinstance(addr, bool)
            if not dev or not ok or not 1 <= addr <= slink.MAX_ADDR or addr in addrs:
                s.fail("devices", f"bus addresses must be distinct integers 1..254, not {addr!r}")
                break
            addrs.add(addr)
            devices.append((dev, addr))
        if not raw:
            s.fail("devices", "an RS-485 bus needs at least one terminal")
    else:
        s.fail("devices", 'is required: ["DEV"] (point-to-point) or {"DEV" = 1, ...} (bus)')
    rto_ms = s.bounded("rto_ms", int, 250, 10_000, "ms")
    silent_s = s.bounded("silent_s", float, 10.0, 3600.0, "s")
    keepalive_s = s.bounded("keepalive_s", float, min(2.0, silent_s / 3), 600.0, "s")
    queue_max = s.bounded("queue_max", int, 256, 100_000, "messages")
    backoff_max_s = s.bounded("backoff_max_s", float, 5.0, 600.0, "s")
    return Settings(
        port,
        baudrate,
        tuple(devices) or (("?", 0),),
        rto_ms,
        silent_s,
        keepalive_s,
        queue_max,
        backoff_max_s,
    )


def build(name: str, settings: Settings, host: SourceHost, data_dir: Path) -> SerialLinkSource:
    return SerialLinkSource(name, host, settings)


class _Port:
    """pyserial as the link's ``uart``: ``read()`` what is waiting (or None), ``write``."""

    def __init__(self, ser: serial.Serial) -> None:
        self.ser = ser

    def read(self) -> bytes | None:
        n = self.ser.in_waiting
        data = self.ser.read(n or 1)
        if data and not n and self.ser.in_waiting:
            data += self.ser.read(self.ser.in_waiting)
        return data or None

    def write(self, data: bytes) -> int:
        n = self.ser.write(data)
        return n or 0


LINK_COUNTERS = ("frames_in", "frames_out", "bad_frames", "retransmits", "noise_bytes")


def _link_numbers(link: slink.SerialEndpoint | slink.BusMaster) -> dict[str, int]:
    """The link's own counters (they start at 0 with each connection)."""
    out = {
        "frames_in": link.frames_in,
        "frames_out": link.frames_out,
        "bad_frames": link.bad_frames,
        "retransmits": link.retransmits,
        "noise_bytes": link.dec.discarded,  # bytes between frames: line noise
    }
    if isinstance(link, slink.BusMaster):
        out["polls"] = sum(p.polls for p in link.peers.values())
        out["timeouts"] = link.timeouts
    return out


class SerialLinkSource(Source):
    kind = KIND

    def __init__(self, name: str, host: SourceHost, settings: Settings) -> None:
        super().__init__(name, host)
        self.settings = settings
        self._devs = frozenset(d for d, _ in settings.devices)
        self._addr_dev = {a: d for d, a in settings.devices}
        self._dev_addr = {d: a for d, a in settings.devices}
        self._out: dict[str, deque[tuple[int, bytes]]] = {d: deque() for d in self._devs}
        self._queued = 0
        self._retained: dict[str, dict[str, bytes]] = {d: {} for d in self._devs}
        self._qlock = threading.Lock()
        self._stop = threading.Event()
        self._base: dict[str, int] = {}
        self._opened = 0
        self._clock = slink.HostClock()
        self._busy_at = 0  # ticks when the last hand-over to the agent returned
        self.backoff = Backoff(initial=0.2, cap=settings.backoff_max_s)
        self._thread = threading.Thread(target=self._run, name=f"source-{name}", daemon=True)
        for c in (
            *LINK_COUNTERS,
            "records",
            "gates",
            "dispatches",
            "acks_out",
            "cmds_out",
            "foreign_records",
            "foreign_dispatches",
            "unexpected_frames",
            "unroutable",
            "out_dropped",
            "too_long",
            "hellos",
            "reconnects",
            "port_errors",
        ):
            self.count(c, 0)
        if settings.bus:
            self.count("polls", 0)
            self.count("timeouts", 0)

    # -- the Source interface -----------------------------------------------------------

    def devices(self) -> frozenset[str]:
        return self._devs

    @property
    def thread(self) -> threading.Thread:
        return self._thread

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        self.set_state("stopped")

    def deliver(self, topic: str, payload: bytes, retain: bool) -> None:
        parts = topics.split(topic, self.host.prefix)
        if (
            len(parts) != 3
            or parts[0] != "t"
            or parts[1] not in self._devs
            or parts[2] not in ("ack", "cmd")
        ):
            self.count("unroutable")
            log.warning("source %s: nothing to send %s to: dropped", self.name, topic[:200])
            return
        dev, what = parts[1], parts[2]
        if len(payload) > slink.MAX_PAYLOAD:
            self.count("too_long")
            log.error(
                "source %s: a %d-byte message for %s does not fit a frame (%d): dropped",
                self.name,
                len(payload),
                dev,
                slink.MAX_PAYLOAD,
            )
            return
        ftype = slink.ACK if what == "ack" else slink.CMD
        with self._qlock:
            if retain and ftype == slink.CMD:
                self._retained[dev][topic] = payload
            self._enqueue(dev, ftype, payload)

    def _enqueue(self, dev: str, ftype: int, payload: bytes) -> None:
        """Under ``_qlock``: bounded; when full, the oldest message of the fullest device
        goes (an ack lost costs a resend, a command comes again with the next HELLO)."""
        if self._queued >= self.settings.queue_max:
            fullest = max(self._out.values(), key=len)
            if fullest:
                fullest.popleft()
                self._queued -= 1
                self.count("out_dropped")
        self._out[dev].append((ftype, payload))
        self._queued += 1

    def _resend_retained(self, dev: str) -> None:
        with self._qlock:
            for payload in self._retained.get(dev, {}).values():
                self._enqueue(dev, slink.CMD, payload)

    # -- the thread -----------------------------------------------------------------------

    def _run(self) -> None:
        st = self.settings
        self.set_state("down", f"opening {st.port}")
        while not self._stop.is_set():
            try:
                ser = serial.Serial(
                    st.port,
                    st.baudrate,
                    timeout=READ_TIMEOUT_S,
                    write_timeout=WRITE_TIMEOUT_S,
                    exclusive=True,
                )
            except (serial.SerialException, OSError, ValueError) as exc:
                self.set_state("down", f"cannot open {st.port}: {_reason(exc)}")
                self._stop.wait(self.backoff.next_delay())
                continue
            self._opened += 1
            if self._opened > 1:
                self.count("reconnects")
            try:
                self._serve(ser)
            except (serial.SerialException, OSError) as exc:
                self.count("port_errors")
                self.set_state("down", f"{st.port} lost: {_reason(exc)}")
                log.warning("source %s: %s lost: %s", self.name, st.port, exc)
            except Exception as exc:  # a bug must not end the source: count, reopen
                self.count("port_errors")
                self.set_state("down", f"internal error: {exc!r}")
                log.exception("source %s: link failed", self.name)
            finally:
                try:
                    ser.close()
                except Exception:
                    log.debug("close of %s failed", st.port, exc_info=True)
            if not self._stop.is_set():
                self._stop.wait(self.backoff.next_delay())

    def _serve(self, ser: serial.Serial) -> None:
        st = self.settings
        clock = self._clock
        port = _Port(ser)
        byte_us = -(-10_000_000 // st.baudrate)  # 10 bits a byte on the line (8N1)
        link: slink.SerialEndpoint | slink.BusMaster
        if st.bus:
            link = slink.BusMaster(
                port, clock, self._from_bus, list(self._addr_dev), st.rto_ms, 4, byte_us
            )
        else:
            dev = st.devices[0][0]

            def deliver(ftype: int, payload: bytes) -> None:
                self._from_terminal(dev, ftype, payload)

            link = slink.SerialEndpoint(
                port, clock, deliver, st.rto_ms, 6, 4, int(st.keepalive_s * 1000), byte_us
            )
        for dev in self._devs:  # a new connection: the commands again
            self._resend_retained(dev)
        self.set_state("down", f"{st.port} open, waiting for the terminal")
        opened_at = clock.ticks_ms()
        hellos = 0
        try:
            while not self._stop.is_set():
                link.poll(clock.ticks_ms())
                if isinstance(link, slink.SerialEndpoint) and link.hellos != hellos:
                    self.count("hellos", link.hellos - hellos)
                    hellos = link.hellos
                    self._resend_retained(st.devices[0][0])
                self._pump(link)
                self._sync(link, clock.ticks_ms(), opened_at)
        finally:
            for name, n in _link_numbers(link).items():
                self._base[name] = self._base.get(name, 0) + n
            self._publish_counters(None)

    def _pump(self, link: slink.SerialEndpoint | slink.BusMaster) -> None:
        with self._qlock:
            if not self._queued:
                return
            for dev, q in self._out.items():
                while q:
                    if isinstance(link, slink.BusMaster):
                        addr = self._dev_addr[dev]
                        if link.room(addr) <= 0:
                            break
                        ftype, payload = q.popleft()
                        link.send(addr, ftype, payload)
                    else:
                        if link.room() <= 0:
                            break
                        ftype, payload = q.popleft()
                        link.send(ftype, payload)
                    self._queued -= 1
                    self.count("acks_out" if ftype == slink.ACK else "cmds_out")

    def _sync(self, link: slink.SerialEndpoint | slink.BusMaster, now: int, opened: int) -> None:
        st = self.settings
        limit = int(st.silent_s * 1000)
        # time spent blocked handing records to a full intake is ours, not the terminal's
        opened = max(opened, self._busy_at)
        if isinstance(link, slink.BusMaster):
            silent = [
                f"{self._addr_dev[p.addr]} (address {p.addr})"
                for p in link.peers.values()
                if now - max(p.heard_at if p.heard_at is not None else opened, opened) > limit
            ]
            waiting = [p for p in link.peers.values() if p.heard_at is None]
            if silent:
                self.set_state("down", f"silent for {st.silent_s:g} s: " + ", ".join(silent))
            elif not waiting:
                self._up()
        else:
            heard = link.heard_at
            if heard is not None:
                heard = max(heard, opened)
            if heard is not None and now - heard <= limit and link.is_up:
                self._up()
            elif heard is not None and now - heard <= limit:
                # heard, but our frames not yet acknowledged: just after a wait in offer() a
                # resend is due; for long, the gateway-to-terminal wire is broken
                self.set_state(
                    "down", f"terminal on {st.port} heard, our frames not acknowledged yet"
                )
            elif heard is not None or now - opened > limit:
                since = (now - (heard if heard is not None else opened)) / 1000
                self.set_state("down", f"terminal on {st.port} silent for {since:.0f} s")
        self._publish_counters(link)

    def _up(self) -> None:
        with self._lock:
            shown = self._state.state
        if shown != "up":
            self.backoff.reset()
            self.set_state("up")

    def _publish_counters(self, link: slink.SerialEndpoint | slink.BusMaster | None) -> None:
        """Monotonic: what earlier connections counted plus the current link's."""
        now = _link_numbers(link) if link is not None else {}
        with self._lock:
            c = self._state.counters
            for name in set(self._base) | set(now):
                c[name] = self._base.get(name, 0) + now.get(name, 0)

    # -- what the terminals send ------------------------------------------------------------

    def _from_bus(self, addr: int, ftype: int, payload: bytes) -> None:
        dev = self._addr_dev.get(addr)
        if dev is None:
            self.count("unexpected_frames")
            return
        if ftype == slink.HELLO:
            self.count("hellos")
            self._resend_retained(dev)
            return
        self._from_terminal(dev, ftype, payload)

    def _from_terminal(self, dev: str, ftype: int, payload: bytes) -> None:
        prefix = self.host.prefix
        if ftype == slink.REC:
            if self._foreign(dev, payload, "foreign_records", "a record"):
                return
            # unreadable records go on too: the intake quarantines them, counted there
            self.host.offer(topics.terminal_rec(dev, prefix), payload)
            self._busy_at = self._clock.ticks_ms()
            self.count("records")
        elif ftype == slink.GATE:
            self.host.gate(topics.terminal_gate(dev, prefix), payload)
            self._busy_at = self._clock.ticks_ms()
            self.count("gates")
        elif ftype == slink.DISPATCH:
            if self._foreign(dev, payload, "foreign_dispatches", "a dispatch request"):
                return
            # the dispatch gate checks the seal and answers (a sealed deny, or quarantine)
            self.host.dispatch(topics.terminal_dispatch(dev, prefix), payload)
            self._busy_at = self._clock.ticks_ms()
            self.count("dispatches")
        else:
            self.count("unexpected_frames")

    def _foreign(self, dev: str, payload: bytes, counter: str, what: str) -> bool:
        """True (counted, logged) when the message names another device than the one on
        this port (at this bus address): it is not handed on."""
        claimed = _dev_in(payload)
        if claimed is None or claimed == dev:
            return False
        self.count(counter)
        log.warning(
            "source %s: %s of %r from the terminal of %s: not handed on",
            self.name,
            what,
            claimed[:64],
            dev,
        )
        return True


def _dev_in(payload: bytes) -> str | None:
    """The message's ``dev`` if it has a readable one (the intake or the dispatch gate checks
    everything else)."""
    try:
        rec: Any = json.loads(payload)
    except (ValueError, RecursionError):
        return None
    dev = rec.get("dev") if isinstance(rec, dict) else None
    return dev if isinstance(dev, str) else None


def _reason(exc: BaseException) -> str:
    """What a technician reads: ``[Errno 2] No such file or directory: '/dev/ttyUSB0'``
    becomes ``no such port``, the rest as pyserial says it."""
    text = str(exc)
    errno = getattr(exc, "errno", None)
    if errno == 2 or "No such file or directory" in text:
        return "no such port (unplugged?)"
    if errno == 13 or "Permission denied" in text:
        return "permission denied (is the agent's user in the dialout group?)"
    if "Resource temporarily unavailable" in text or "exclusively lock" in text:
        return "in use by another program"
    return text or type(exc).__name__


__all__ = ["HELP", "KIND", "SerialLinkSource", "Settings", "build", "parse"]
