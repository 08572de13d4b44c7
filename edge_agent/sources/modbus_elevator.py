"""Source kind ``modbus_elevator``: an elevator controller polled over Modbus, reported as
the gateway-hosted elevator device it is provisioned as.

The gateway polls the controller (:class:`drivers.transports.modbus_poll.ElevatorPoller`,
TCP or RTU, its own reconnect with capped back-off), judges each reading with the elevator
box's rule set (:mod:`edge_agent.sources.elevator_car` over
:mod:`drivers.codecs.elevator_rules`) and makes ``elevator.status`` / ``elevator.fault``
records as a terminal makes them: signed with the hosted device's provisioned key, a
``seq`` and ``boot`` persisted before use, kept in the source's own journal
(:mod:`edge_agent.sources.journal`, ``<data_dir>/sources/<name>.sqlite``) until the agent's
sealed ack for them arrives through :meth:`deliver` (that is, after the group commit), and
offered again after a restart or when no ack came within ``ack_timeout_s``. The agent's
intake takes them exactly as from ``t/{dev}/rec``: the device must be in the site's
registry like any terminal.

Config (``[[sources]]`` table)::

    kind = "modbus_elevator"
    name = "lift-a"
    target = "tcp://192.168.10.20:502"     # or "/dev/ttyUSB0", "rtu:///dev/ttyUSB0?baudrate=9600"
    unit = 1
    identity = "/etc/traceedge/ELV-A-0001.json"   # `traceedge device provision --type elevator-box`
    reg = "31103301062015000123"           # the elevator's registration code
    floors = [[-1, 0], [1, 4500], [2, 8000]]   # [floor, level mm], for over-travel
    rated_mm_s = 1000
    poll_s = 0.5
    # and the box's rule keys: overspeed_pct, overtravel_mm, clear_ms, door_move_ms, ...,
    # status_every_ms, status_min_ms (drivers/codecs/elevator_rules.py)

State: ``up`` while polls succeed, ``down`` with the reason (``cannot connect to ...``,
``no answer from unit 1 ... within 1 s``) from the first failed poll until one succeeds
again. Counters: ``polls``, ``poll_errors``, ``reconnects`` (down -> up), ``records``,
``status_records``, ``fault_records``, ``faults_raised``, ``faults_cleared``,
``offered``, ``resends``, ``acked``, ``quarantined`` (acked as bad by the agent),
``forged_acks``, ``acks_dropped``, ``ignored_messages``, ``unmapped_fault_polls``,
``journal_thinned``, ``journal_over_cap``, ``journal_refused``, ``errors`` (anything else
survived, logged).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import queue
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from drivers.codecs.elevator_rules import CLEAR_DEFAULT, CLEAR_KEY, FAULTS, MAX_DELAY_MS
from drivers.transports.modbus_poll import ElevatorPoller, Poll, Target
from edge_agent.sources.base import Source, SourceHost
from edge_agent.sources.elevator_car import CarSettings, ElevatorCar
from edge_agent.sources.journal import Journal, JournalError
from hostlib.config import Section
from hostlib.errors import ConfigError
from hostlib.registry import load_identity
from wire import topics
from wire.auth import open_terminal_ack
from wire.envelope import WireError

log = logging.getLogger(__name__)

KIND = "modbus_elevator"
HELP = "an elevator controller polled over Modbus TCP or RTU (records as its hosted device)"
REG = re.compile(r"^[0-9A-Z]{20}$")
MAX_ACKS = 1024  # acks waiting for the source thread; more are dropped (resent ones re-ack)
OFFER_CHUNK = 200
SEND_TICK_S = 0.02
CHECK_EVERY_S = 0.5  # how often the oldest unacked record's wait is checked


@dataclass(frozen=True)
class Settings:
    target: Target
    unit: int
    identity: Path
    car: CarSettings
    poll_s: float
    timeout_s: float
    ack_timeout_s: float
    journal_max_bytes: int
    tq: str


def _floors(s: Section) -> tuple[tuple[int, int], ...]:
    raw = s.get("floors", list, [])
    out: list[tuple[int, int]] = []
    for pair in raw:
        if (
            not isinstance(pair, list)
            or len(pair) != 2
            or not all(isinstance(x, int) and not isinstance(x, bool) for x in pair)
        ):
            s.fail("floors", f"must be [floor, level_mm] pairs of integers, not {pair!r}")
            return ()
        out.append((pair[0], pair[1]))
    out.sort()
    if len({f for f, _ in out}) != len(out):
        s.fail("floors", "names a floor twice")
        return ()
    if out and len(out) < 2:
        s.fail("floors", "needs at least two [floor, level_mm] pairs (or none)")
        return ()
    if any(b[1] <= a[1] for a, b in itertools.pairwise(out)):
        s.fail("floors", "levels must grow with the floor number")
        return ()
    return tuple(out)


def parse(s: Section) -> Settings:
    """The ``[[sources]]`` table of kind ``modbus_elevator``."""
    text = s.get("target", str)
    try:
        target = Target.parse(text)
    except ValueError as exc:
        s.fail("target", str(exc))
        target = Target("tcp", host="127.0.0.1")
    unit = s.get("unit", int, 1)
    if not 0 <= unit <= 247:
        s.fail("unit", f"must be a Modbus unit 0..247, not {unit}")
    identity = s.file("identity")
    reg = s.get("reg", str)
    if not REG.match(reg):
        s.fail("reg", f"must be the 20-character registration code (0-9 A-Z), not {reg!r}")
    delays: dict[str, int] = {}
    for _, key, default, _ in FAULTS:
        if key not in delays:
            delays[key] = s.bounded(key, int, default, MAX_DELAY_MS, "ms", zero=True)
    car = CarSettings(
        reg=reg,
        floors=_floors(s),
        rated_mm_s=s.bounded("rated_mm_s", int, 1000, 20000, "mm/s"),
        overspeed_pct=s.bounded("overspeed_pct", int, 115, 200, "%"),
        overtravel_mm=s.bounded("overtravel_mm", int, 150, 5000, "mm"),
        delays=delays,
        clear_ms=s.bounded(CLEAR_KEY, int, CLEAR_DEFAULT, 600000, "ms", zero=True),
        status_every_ms=s.bounded("status_every_ms", int, 300000, 86400000, "ms"),
        status_min_ms=s.bounded("status_min_ms", int, 1000, 600000, "ms", zero=True),
    )
    if car.overspeed_pct <= 100:
        s.fail("overspeed_pct", f"must be above 100 %, not {car.overspeed_pct}")
    tq = s.get("tq", str, "ntp")
    if tq not in ("ntp", "rtc", "unsynced"):
        s.fail("tq", f"must be ntp, rtc or unsynced (the gateway clock's quality), not {tq!r}")
    return Settings(
        target=target,
        unit=unit,
        identity=identity,
        car=car,
        poll_s=s.bounded("poll_s", float, 0.5, 60.0, "s"),
        timeout_s=s.bounded("timeout_s", float, 1.0, 30.0, "s"),
        ack_timeout_s=s.bounded("ack_timeout_s", float, 10.0, 600.0, "s"),
        journal_max_bytes=s.bounded("journal_max_bytes", int, 64 * 1024**2, 1024**4, "bytes"),
        tq=tq,
    )


def build(name: str, settings: Settings, host: SourceHost, data_dir: Path) -> ModbusElevator:
    ident = load_identity(settings.identity)
    if ident.type != "elevator-box":
        raise ConfigError(
            str(settings.identity),
            "",
            f"{ident.dev} is a {ident.type}: a modbus_elevator source speaks for an "
            "elevator-box device (`traceedge device provision --type elevator-box`)",
        )
    path = data_dir / "sources" / f"{name}.sqlite"
    try:
        journal = Journal(path, ident.dev, ident.key_for, settings.journal_max_bytes)
    except JournalError as exc:
        raise ConfigError(str(path), "", str(exc)) from exc
    return ModbusElevator(name, host, settings, ident.dev, ident.recent_keys(), journal)


class ModbusElevator(Source):
    kind = KIND

    def __init__(
        self,
        name: str,
        host: SourceHost,
        settings: Settings,
        dev: str,
        keys: list[bytes],
        journal: Journal,
    ) -> None:
        super().__init__(name, host)
        self.settings = settings
        self.dev = dev
        self.keys = keys  # the newest two: acks are sealed with the key of their last seq
        self.journal = journal
        self.rec_topic = topics.terminal_rec(dev, host.prefix)
        self.ack_topic = topics.terminal_ack(dev, host.prefix)
        self._acks: queue.Queue[bytes] = queue.Queue(MAX_ACKS)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"source-{name}", daemon=True)
        self._was_up = False
        self._sent = 0  # the highest seq offered in the current round (0: offer all again)
        self._oldest = (0, 0.0)  # the oldest offered, unacked seq and since when it is
        self._checked = 0.0
        for c in ("polls", "poll_errors", "reconnects", "records", "acked", "resends"):
            self.count(c, 0)

    # -- the Source interface ---------------------------------------------------------

    def devices(self) -> frozenset[str]:
        return frozenset((self.dev,))

    def deliver(self, topic: str, payload: bytes, retain: bool) -> None:
        if topic != self.ack_topic:  # no gate, no commands for a controller
            self.count("ignored_messages")
            return
        try:
            self._acks.put_nowait(bytes(payload))
        except queue.Full:
            self.count("acks_dropped")  # harmless: unacked records are offered again

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self.set_state("stopped")

    @property
    def thread(self) -> threading.Thread:
        return self._thread

    # -- the thread -------------------------------------------------------------------

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        finally:
            self.journal.close()

    async def _main(self) -> None:
        s = self.settings
        car = ElevatorCar(s.car, _now_ms())
        poller = ElevatorPoller(s.target, s.unit, s.timeout_s)
        tasks = [
            asyncio.create_task(self._send_forever()),
            asyncio.create_task(self._poll_forever(poller, car)),
        ]
        try:
            while not self._stop.is_set():
                await asyncio.sleep(0.05)
                for t in tasks:
                    if t.done():  # cannot happen: both catch everything; say so if it does
                        raise RuntimeError(f"source {self.name}: a task ended") from t.exception()
        finally:
            for t in tasks:
                t.cancel()
            for t in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await t
            poller.close()

    async def _poll_forever(self, poller: ElevatorPoller, car: ElevatorCar) -> None:
        while True:
            try:
                async for p in poller.poll(self.settings.poll_s):
                    try:
                        self._on_poll(car, p)
                    except Exception as exc:  # a bug or a disk error: this poll alone
                        self.count("errors")
                        log.exception("source %s: poll not handled", self.name)
                        self.set_state("down", f"internal error: {exc!r}")
            except Exception as exc:  # the client failed outside its own error tree
                self.count("poll_errors")
                self.count("errors")
                log.exception("source %s: polling failed; starting again", self.name)
                car.unreachable()
                self.set_state("down", f"{self.settings.target}: {exc!r}")
                poller.close()
                await asyncio.sleep(poller.backoff.next_delay())

    def _on_poll(self, car: ElevatorCar, p: Poll) -> None:
        if p.error is not None or p.status is None:
            self.count("poll_errors")
            car.unreachable()
            if self.state().state != "down":
                log.warning("source %s: controller down: %s", self.name, p.error)
            self.set_state("down", str(p.error))
            return
        self.count("polls")
        if self.state().state != "up":
            if self._was_up:
                self.count("reconnects")
                log.info("source %s: controller answers again", self.name)
            self._was_up = True
            self.set_state("up")
        before = car.unmapped
        out = car.sample(p.status, _now_ms(), int(p.at * 1000))
        if car.unmapped != before:
            self.count("unmapped_fault_polls")
        for kind, body in out:
            self._record(kind, body)

    def _record(self, kind: str, body: dict[str, object]) -> None:
        j = self.journal
        thinned, over = j.thinned, j.over_cap
        try:
            j.add(kind, body, int(time.time() * 1000), self.settings.tq)
        except JournalError as exc:
            self.count("journal_refused")
            log.error("source %s: %s: status sample not recorded", self.name, exc)
            return
        self.count("records")
        if kind == "elevator.fault":
            self.count("fault_records")
            self.count("faults_raised" if body["state"] == "raised" else "faults_cleared")
        else:
            self.count("status_records")
        if j.thinned != thinned:
            self.count("journal_thinned", j.thinned - thinned)
        if j.over_cap != over:
            self.count("journal_over_cap", j.over_cap - over)

    async def _send_forever(self) -> None:
        """Offer what the journal holds, oldest first; free on sealed acks; offer all
        again when nothing was acked for ``ack_timeout_s``."""
        while True:
            try:
                await self._send_once()
            except Exception as exc:  # a disk error: try again, never die
                self.count("errors")
                log.error("source %s: sending failed: %r", self.name, exc)
                await asyncio.sleep(1.0)
            await asyncio.sleep(SEND_TICK_S)

    async def _send_once(self) -> None:
        freed = self._take_acks()
        j = self.journal
        now = time.monotonic()
        if freed or now - self._checked >= CHECK_EVERY_S:
            self._checked = now
            self._resend_if_stuck(now)
        while self._sent < j.last_seq:
            batch = j.pending(self._sent, OFFER_CHUNK)
            if not batch:
                self._sent = j.last_seq  # thinned meanwhile: nothing left to offer
                break
            for seq, payload in batch:
                j.high = max(j.high, seq)
                await asyncio.to_thread(self.host.offer, self.rec_topic, payload)
                self._sent = seq
                self.count("offered")
            self._take_acks()

    def _resend_if_stuck(self, now: float) -> None:
        """The firmware's policy: when the oldest record offered has waited
        ``ack_timeout_s`` without its ack, offer every unacked record again."""
        oldest = self.journal.oldest()
        if oldest is None or oldest > self._sent:
            self._oldest = (0, 0.0)
            return
        if self._oldest[0] != oldest:
            self._oldest = (oldest, now)
        elif now - self._oldest[1] > self.settings.ack_timeout_s:
            self.count("resends")
            log.info("source %s: no ack for seq %d: offering again from it", self.name, oldest)
            self._sent = oldest - 1
            self._oldest = (oldest, now)

    def _take_acks(self) -> int:
        """Free what the sealed acks waiting name; returns how many records were freed."""
        total = 0
        while True:
            try:
                payload = self._acks.get_nowait()
            except queue.Empty:
                return total
            try:
                _, ranges, bad = open_terminal_ack(payload, self.dev, self.keys)
            except WireError as exc:
                self.count("forged_acks")
                log.warning("source %s: ack ignored: %s", self.name, exc)
                continue
            freed = self.journal.free(ranges, bad)
            total += freed
            if freed:
                self.count("acked", freed)
            if bad:
                self.count("quarantined", len(bad))
                log.error("source %s: the agent quarantined seq(s) %s", self.name, bad)


def _now_ms() -> int:
    return int(time.monotonic() * 1000)
