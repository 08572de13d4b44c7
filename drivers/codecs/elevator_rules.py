"""The elevator's fault and status rules: one rule set for the sensor box and the gateway.

The elevator IoT box (``firmware/micropython/apps/elevator``) and the gateway's Modbus
elevator source (``edge_agent/sources/modbus_elevator.py``) both decide here when a fault
is raised or cleared and when a status sample is due, so the two can never disagree.
Pure and in the MicroPython-compatible subset: inputs in, events out; the caller reads
its sensors or registers and writes the records.

A *sample* is what one side knows about the car at one instant (:func:`checks`)::

    moving   bool        the car is running
    closed   bool        the car door is closed
    zone     bool        the car stands within a door zone (平层)
    people   bool|None   someone is in the car (None: no sensor)
    busy     bool        inspection or maintenance mode: the car is being worked on
    speed    int         car speed, mm/s, unsigned
    pos      int|None    car position in mm on the floors' scale (None: not known)
    mains    bool|None   mains power present (None: not known)
    alarm    bool|None   the car's alarm button is held (None: no button wired)

An input that is ``None`` never raises its faults (and always lets them clear). A side
may also pass faults its equipment reports itself (a controller's fault code, mapped to
these names by the caller): such a fault is bad while reported and good only when both
its own rule and the report say so.

=========================  =====================================  ========================
fault                      raised when (held ``<key>``)            cleared when
=========================  =====================================  ========================
door_open_while_moving     moving and door open (``door_move_ms``)   closed or stopped
overspeed                  speed > rated x ``overspeed_pct`` %      speed <= rated
                           (``overspeed_ms``)
overtravel_top / _bottom   past the end level by ``overtravel_mm``  back within half of it
                           (``overtravel_ms``)
stop_outside_door_zone     stopped outside a door zone, not busy    in zone, moving or busy
                           (``stop_out_ms``)
trapped_in_zone / _out_    stopped, door closed, people in, not     door open or empty
                           busy; in / outside a zone (``trapped_ms``)
power_loss                 mains absent (``power_ms``)               mains back
alarm_button               button held (``alarm_ms``)               released
safety_circuit_open,       reported only (``safety_ms``,            no longer reported
door_lock_circuit_open,    ``door_lock_ms``, ``door_fail_ms``)
door_fails_to_open / close
=========================  =====================================  ========================

Every clear waits ``clear_ms`` of the good condition (:class:`Condition`). Status: a
sample goes out when its key changed (at most every ``status_min_ms``), when something
asked for one (a fault event, a visit) and at least every ``status_every_ms``
(:class:`StatusTimer`).

Times are milliseconds from a ``clock`` whose ``diff(a, b)`` gives ``a - b`` (the board's
``ticks_diff``, which wraps; on the host plain subtraction).
"""

RAISED = 1
CLEARED = 2

# (name, delay key, default raise delay ms, label) in the order :func:`checks` returns.
FAULTS = (
    ("door_open_while_moving", "door_move_ms", 300, "开门走车"),
    ("overspeed", "overspeed_ms", 200, "超速"),
    ("overtravel_top", "overtravel_ms", 100, "冲顶"),
    ("overtravel_bottom", "overtravel_ms", 100, "蹲底"),
    ("stop_outside_door_zone", "stop_out_ms", 10000, "门区外停梯"),
    ("trapped_in_zone", "trapped_ms", 60000, "平层关人"),
    ("trapped_out_of_zone", "trapped_ms", 60000, "非平层关人"),
    ("power_loss", "power_ms", 1000, "停电"),
    ("alarm_button", "alarm_ms", 500, "轿内报警按钮"),
    ("safety_circuit_open", "safety_ms", 0, "安全回路断路"),
    ("door_lock_circuit_open", "door_lock_ms", 0, "门锁回路断路"),
    ("door_fails_to_open", "door_fail_ms", 0, "开门故障"),
    ("door_fails_to_close", "door_fail_ms", 0, "关门故障"),
)
NAMES = tuple(f[0] for f in FAULTS)
LABELS = {f[0]: f[3] for f in FAULTS}
CLEAR_KEY = "clear_ms"
CLEAR_DEFAULT = 2000
MAX_DELAY_MS = 3600000
DOORS = ("closed", "open", "closing", "opening")


class Condition:
    """A fault: raised after ``bad`` held ``raise_ms``, cleared after ``good`` held
    ``clear_ms``. ``update`` returns ``RAISED``, ``CLEARED`` or 0."""

    __slots__ = ("active", "clear_ms", "clock", "name", "raise_ms", "raised_ts", "since")

    def __init__(self, name: str, clock: object, raise_ms: int, clear_ms: int) -> None:
        self.name = name
        self.clock = clock
        self.raise_ms = raise_ms
        self.clear_ms = clear_ms
        self.active = False
        self.since = -1
        self.raised_ts = 0

    def _held(self, now: int, cond: bool, ms: int) -> bool:
        if not cond:
            self.since = -1
            return False
        if self.since < 0:
            self.since = now
        if self.clock.diff(now, self.since) >= ms:  # type: ignore[attr-defined]
            self.since = -1
            return True
        return False

    def update(self, now: int, bad: bool, good: bool) -> int:
        if not self.active:
            if self._held(now, bad, self.raise_ms):
                self.active = True
                return RAISED
        elif self._held(now, good, self.clear_ms):
            self.active = False
            return CLEARED
        return 0


class Limits:
    """The car's fixed numbers: ``rated`` mm/s, ``over_pct`` (% of rated that is
    overspeed), ``top`` / ``bottom`` end levels in mm (None: positions not known) and
    ``overtravel`` mm past them."""

    __slots__ = ("bottom", "over_pct", "overtravel", "rated", "top")

    def __init__(
        self, rated: int, over_pct: int, top: "int | None", bottom: "int | None", overtravel: int
    ) -> None:
        self.rated = rated
        self.over_pct = over_pct
        self.top = top
        self.bottom = bottom
        self.overtravel = overtravel


def checks(
    lim: Limits,
    moving: bool,
    closed: bool,
    zone: bool,
    people: "bool | None",
    busy: bool,
    speed: int,
    pos: "int | None",
    mains: "bool | None",
    alarm: "bool | None",
) -> tuple:  # type: ignore[type-arg]
    """``(bad, good)`` for every fault of :data:`FAULTS`, in its order, for one sample."""
    stopped = not moving
    v = speed if speed >= 0 else -speed
    ot = lim.overtravel
    top = lim.top
    bottom = lim.bottom
    known = pos is not None
    inside = people is True
    return (
        (moving and not closed, closed or stopped),
        (v * 100 > lim.rated * lim.over_pct, v <= lim.rated),
        (
            known and top is not None and pos > top + ot,  # type: ignore[operator]
            not known or top is None or pos <= top + ot // 2,  # type: ignore[operator]
        ),
        (
            known and bottom is not None and pos < bottom - ot,  # type: ignore[operator]
            not known or bottom is None or pos >= bottom - ot // 2,  # type: ignore[operator]
        ),
        (stopped and not zone and not busy, zone or moving or busy),
        (stopped and closed and inside and zone and not busy, not closed or not inside),
        (stopped and closed and inside and not zone and not busy, not closed or not inside),
        (mains is False, mains is not False),
        (alarm is True, alarm is not True),
        (False, True),
        (False, True),
        (False, True),
        (False, True),
    )


class Rules:
    """One :class:`Condition` per fault of :data:`FAULTS`; ``delay(key, default)`` gives
    each raise delay (the side's config), ``clear_ms`` every clear delay."""

    def __init__(self, clock: object, delay: object, clear_ms: int) -> None:
        self.faults = [
            Condition(name, clock, delay(key, default), clear_ms)  # type: ignore[operator]
            for name, key, default, _ in FAULTS
        ]

    def update(self, now: int, sample: tuple, reported: tuple, on_event: object) -> None:  # type: ignore[type-arg]
        """Feed one sample (:func:`checks`); ``reported``: fault names the equipment
        reports itself; ``on_event(condition, RAISED | CLEARED)`` for every change."""
        for i, f in enumerate(self.faults):
            bad, good = sample[i]
            if reported and f.name in reported:
                bad, good = True, False
            ev = f.update(now, bool(bad), bool(good))
            if ev:
                on_event(f, ev)  # type: ignore[operator]

    def unobserved(self) -> None:
        """Nothing could be read (a controller out of reach): no condition counts as held
        across the gap; raised faults stay raised until a sample clears them."""
        for f in self.faults:
            f.since = -1

    def active(self) -> "list[str]":
        """The names of the faults raised now, sorted."""
        return sorted(f.name for f in self.faults if f.active)


class StatusTimer:
    """When a status sample is due: on change of its key (at most every ``min_ms``), when
    :attr:`pending` was set, and at least every ``every_ms``. The first one is due at once."""

    __slots__ = ("at", "clock", "every", "first", "last", "min", "pending")

    def __init__(self, clock: object, every_ms: int, min_ms: int, now: int) -> None:
        self.clock = clock
        self.every = every_ms
        self.min = min_ms
        self.last: object = None
        self.pending = True
        self.at = now
        self.first = True

    def due(self, now: int, key: object) -> bool:
        """True when a sample with ``key`` should go out now (then it counts as sent)."""
        d = self.clock.diff(now, self.at)  # type: ignore[attr-defined]
        changed = key != self.last or self.pending
        if not self.first and d < self.every and not (changed and d >= self.min):
            return False
        self.first = False
        self.last = key
        self.pending = False
        self.at = now
        return True


def door_text(closed: bool) -> str:
    return "closed" if closed else "open"


def fault_body(
    reg: str,
    f: Condition,
    ev: int,
    ts: int,
    floor: int,
    door: str,
    people: "bool | None",
    speed: int,
) -> "dict[str, object]":
    """The ``elevator.fault`` body of event ``ev`` of ``f`` at ``ts`` (ms since the epoch);
    records the raise time on ``f`` for its clear. ``people`` None: left out."""
    body: dict[str, object] = {
        "reg": reg,
        "fault": f.name,
        "state": "raised" if ev == RAISED else "cleared",
        "floor": floor,
        "door": door,
    }
    if people is not None:
        body["people"] = people
    body["speed_mm_s"] = min(speed if speed >= 0 else -speed, 20000)
    body["detail"] = LABELS[f.name]
    if ev == RAISED:
        f.raised_ts = ts
    else:
        body["raised_ts"] = f.raised_ts
    return body


def status_body(
    reg: str,
    direction: str,
    floor: int,
    door: str,
    zone: bool,
    people: "bool | None",
    inspection: bool,
    maintenance: bool,
    faults: "list[str]",
    runs: int,
    door_cycles: int,
    run_hours: int,
) -> "dict[str, object]":
    """The ``elevator.status`` body (counters wrapped to 32 bits; ``people`` None: no
    sensor, left out)."""
    body: dict[str, object] = {
        "reg": reg,
        "dir": direction,
        "floor": floor,
        "door": door,
        "door_zone": zone,
    }
    if people is not None:
        body["people"] = people
    body["inspection"] = inspection
    body["maintenance"] = maintenance
    body["faults"] = faults
    body["counters"] = {
        "runs": runs & 0xFFFFFFFF,
        "door_cycles": door_cycles & 0xFFFFFFFF,
        "run_hours": run_hours & 0xFFFFFFFF,
    }
    return body
