"""The simulated world: virtual time, pins, peripherals on buses, scheduled events.

``VirtualClock`` starts its ticks 5 s before they wrap (2**30 ms), so any firmware code
that compares ticks without ``diff`` fails in the tests. ``World.run(until, poll)``
advances time in steps, firing scheduled events (a scenario script) and device models,
then calls ``poll`` (the firmware's main loop) once per step.
"""

from te.hal import Clock

_TYPING = False
if _TYPING:
    from typing import Any, Callable

PERIOD = 1 << 30
# 2025-11-23T09:00:00+08:00
WALL0 = 1763859600000


class WatchdogReset(Exception):
    """The simulated watchdog expired (or ``machine.reset()`` was called)."""


class VirtualClock(Clock):
    def __init__(self, world: "World", wall_ms: int, start_ticks: int) -> None:
        self.world = world
        self.t = 0
        self.t0 = start_ticks
        self.wall0 = wall_ms

    def ticks_ms(self) -> int:
        return (self.t0 + self.t) & (PERIOD - 1)

    def diff(self, a: int, b: int) -> int:
        d = (a - b) & (PERIOD - 1)
        return d - PERIOD if d >= PERIOD // 2 else d

    def add(self, a: int, ms: int) -> int:
        return (a + ms) & (PERIOD - 1)

    def sleep_ms(self, ms: int) -> None:
        self.world.advance(ms)

    def wall_ms(self) -> int:
        return self.wall0 + self.t

    def set_wall_ms(self, ms: int) -> None:
        self.wall0 = ms - self.t


class RealClock(Clock):
    """Real ticks, simulated wall time (end-to-end runs under ``asyncio``)."""

    def __init__(self, wall_ms: int) -> None:
        self.base = wall_ms - super().wall_ms()

    def wall_ms(self) -> int:
        return super().wall_ms() + self.base

    def set_wall_ms(self, ms: int) -> None:
        self.base = ms - super().wall_ms()


class World:
    def __init__(self, wall_ms: int = WALL0, start_ticks: int = PERIOD - 5000,
                 real_time: bool = False) -> None:
        self.clock: "Clock" = (RealClock(wall_ms) if real_time
                               else VirtualClock(self, wall_ms, start_ticks))
        self.real_time = real_time
        self.levels: "dict[int, int]" = {}      # input pins driven by the scenario
        self.pulls: "dict[int, int]" = {}       # pull-ups/downs configured by firmware
        self.outputs: "dict[int, int]" = {}     # output pins driven by firmware
        self.history: "list[tuple[int, int, int]]" = []  # (t, pin, level) of outputs
        self.irqs: "dict[int, Any]" = {}        # pin -> (handler, trigger, pin object)
        self.uarts: "dict[int, Any]" = {}       # uart id -> device model
        self.rx: "dict[int, list[tuple[int, bytes]]]" = {}
        self.spi: "dict[int, list[Any]]" = {}   # bus id -> devices (each knows its CS pin)
        self.adc: "dict[int, int]" = {}
        self.models: "list[Any]" = []           # objects with step(world, now)
        self.events: "list[tuple[int, int, Callable[[World], None]]]" = []
        self.keypad: "Any" = None
        self.wdt_timeout = 0
        self.wdt_fed = 0
        self.resets = 0
        self._n = 0
        self.t_start = self.clock.ticks_ms()
        self._last = 0

    @property
    def now(self) -> int:
        """Milliseconds since the world began."""
        c = self.clock
        if isinstance(c, VirtualClock):
            return c.t
        return c.diff(c.ticks_ms(), self.t_start)

    # -- scenario ------------------------------------------------------------------
    def at(self, t_ms: int, fn: "Callable[[World], None]") -> None:
        self._n += 1
        self.events.append((t_ms, self._n, fn))
        self.events.sort()

    def script(self, steps: "list[tuple[int, Callable[[World], None]]]") -> None:
        for t, fn in steps:
            self.at(t, fn)

    def set_pin(self, n: int, level: int) -> None:
        old = self.read_pin(n)
        self.levels[n] = level
        h = self.irqs.get(n)
        if h is not None and old != level:
            handler, trigger, pin = h
            if (level and trigger & 1) or (not level and trigger & 2):
                handler(pin)

    def read_pin(self, n: int) -> int:
        if n in self.outputs:
            return self.outputs[n]
        if self.keypad is not None:
            v = self.keypad.level(self, n)
            if v is not None:
                return int(v)
        if n in self.levels:
            return self.levels[n]
        return 1 if self.pulls.get(n) == 1 else 0

    def drive(self, n: int, level: int) -> None:
        if self.outputs.get(n) != level:
            self.history.append((self.now, n, level))
        self.outputs[n] = level

    def output_on(self, n: int) -> "list[tuple[int, int]]":
        """``(t, level)`` changes of output pin ``n``."""
        return [(t, lv) for t, p, lv in self.history if p == n]

    # -- buses ---------------------------------------------------------------------
    def attach_uart(self, uid: int, device: "Any") -> None:
        self.uarts[uid] = device
        self.rx[uid] = []
        device.attached(self, uid)

    def to_host(self, uid: int, data: bytes, delay_ms: int = 2) -> None:
        self.rx.setdefault(uid, []).append((self.now + delay_ms, data))

    def from_host(self, uid: int, data: bytes) -> None:
        dev = self.uarts.get(uid)
        if dev is not None:
            dev.receive(self, data)

    def host_read(self, uid: int) -> bytes:
        q = self.rx.get(uid)
        if not q:
            return b""
        now = self.now
        out = b""
        while q and q[0][0] <= now:
            out += q.pop(0)[1]
        return out

    def attach_spi(self, bus: int, device: "Any") -> None:
        self.spi.setdefault(bus, []).append(device)

    # -- time --------------------------------------------------------------------------
    def advance(self, ms: int) -> None:
        c = self.clock
        assert isinstance(c, VirtualClock)
        end = c.t + ms
        while self.events and self.events[0][0] <= end:
            t, _, fn = self.events.pop(0)
            if t > c.t:
                self._step_models(t - c.t)
                c.t = t
            fn(self)
        if end > c.t:
            self._step_models(end - c.t)
            c.t = end
        self._check_wdt()

    def _step_models(self, dt: int) -> None:
        for m in self.models:
            m.step(self, dt)

    def tick(self) -> None:
        """Real-time worlds: move the device models on and run the events that are due."""
        now = self.now
        if now > self._last:
            self._step_models(now - self._last)
            self._last = now
        while self.events and self.events[0][0] <= now:
            self.events.pop(0)[2](self)
        self._check_wdt()

    def _check_wdt(self) -> None:
        if self.wdt_timeout and self.now - self.wdt_fed > self.wdt_timeout:
            self.resets += 1
            self.wdt_timeout = 0
            raise WatchdogReset("watchdog expired at t=%d ms" % self.now)

    def run(self, until_ms: int, poll: "Callable[[], None]", step_ms: int = 10) -> None:
        while self.now < until_ms:
            self.advance(step_ms)
            poll()


WORLD = World()


def new_world(**kw: "Any") -> World:
    global WORLD
    WORLD = World(**kw)
    return WORLD
