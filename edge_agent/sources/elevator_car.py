"""An elevator read from its controller, judged by the elevator box's own rule set.

Pure: a decoded controller status (:func:`drivers.codecs.modbus_elevator.decode_status`)
and the time in, record bodies out. The faults, their debounce and when a status sample is
due are :mod:`drivers.codecs.elevator_rules`, the module the elevator box firmware runs,
so a controller-read elevator and a sensor-box elevator report the same way.

What the controller's registers give the rules:

==================  ===========================================================
rule input          from the controller
==================  ===========================================================
moving              ``running``
closed              ``door == "closed"`` (``obstructed`` is reported ``open``)
zone                ``door_zone``
speed               ``speed_mm_s``
pos                 the level (mm) of ``floor`` in the configured ``floors``
                    (beyond the end floors: one floor height per floor more);
                    no ``floors``: not known, over-travel never raises
people, alarm       not given by the controller: absent, so the trapped and
                    alarm-button faults never raise, and ``people`` is left out
                    of the records
busy                no inspection / maintenance mode in the map: never busy
mains               not given; power loss comes from the fault code (8)
==================  ===========================================================

The controller's own fault code is reported to the rules (the fault is bad while the
controller reports it) where it means the same as a fault of the record schema
(:data:`CODE_FAULTS`); the other codes (overload, overheat, encoder, emergency stop,
communication lost, unknown codes) have no fault name in the schema and are counted
(:attr:`ElevatorCar.unmapped`), not recorded.

A controller out of reach is *not* an elevator fault (the domain's power loss is the
car's mains, which the controller reports as code 8): it is the source's state. While
nothing can be read, no condition counts as held (:meth:`ElevatorCar.unreachable`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from drivers.codecs.elevator_rules import (
    Condition,
    Limits,
    Rules,
    StatusTimer,
    checks,
    fault_body,
    status_body,
)

CODE_FAULTS = {
    1: "door_lock_circuit_open",  # door lock circuit open while running
    2: "door_fails_to_close",
    3: "door_fails_to_open",
    4: "overspeed",  # governor
    6: "safety_circuit_open",
    8: "power_loss",  # power supply fault / phase loss
    10: "stop_outside_door_zone",
}
FLOOR_MIN, FLOOR_MAX = -20, 300  # the record schema's range
DIRECTIONS = {"idle": "stopped", "up": "up", "down": "down"}
DOORS = {"closed": "closed", "opening": "opening", "open": "open", "closing": "closing"}


class MsClock:
    """The rules' clock on the host: monotonic milliseconds, plain subtraction."""

    @staticmethod
    def diff(a: int, b: int) -> int:
        return a - b


@dataclass(frozen=True)
class CarSettings:
    """The elevator's numbers, with the elevator box's config keys and defaults."""

    reg: str
    floors: tuple[tuple[int, int], ...] = ()  # (floor, level mm), sorted by floor
    rated_mm_s: int = 1000
    overspeed_pct: int = 115
    overtravel_mm: int = 150
    delays: dict[str, int] = field(default_factory=dict)  # FAULTS' delay keys -> ms
    clear_ms: int = 2000
    status_every_ms: int = 300000
    status_min_ms: int = 1000

    def delay(self, key: str, default: int) -> int:
        return self.delays.get(key, default)


def level_of(floors: tuple[tuple[int, int], ...], floor: int) -> int | None:
    """The level (mm) of ``floor``; past the end floors one end storey's height per floor."""
    if not floors:
        return None
    for f, lvl in floors:
        if f == floor:
            return lvl
    (f0, l0), (f1, l1) = floors[0], floors[-1]
    if len(floors) > 1 and floor > f1:
        return l1 + (floor - f1) * (l1 - floors[-2][1])
    if len(floors) > 1 and floor < f0:
        return l0 - (f0 - floor) * (floors[1][1] - l0)
    # a floor between two configured ones (a skipped number): the nearest lower level
    below = [lvl for f, lvl in floors if f < floor]
    return below[-1] if below else l0


class ElevatorCar:
    """Feed it every successful poll (:meth:`sample`); it returns the records to make."""

    def __init__(self, cfg: CarSettings, now_ms: int) -> None:
        self.cfg = cfg
        clock = MsClock()
        self.rules = Rules(clock, cfg.delay, cfg.clear_ms)
        levels = [lvl for _, lvl in cfg.floors]
        self.limits = Limits(
            cfg.rated_mm_s,
            cfg.overspeed_pct,
            max(levels) if levels else None,
            min(levels) if levels else None,
            cfg.overtravel_mm,
        )
        self.timer = StatusTimer(clock, cfg.status_every_ms, cfg.status_min_ms, now_ms)
        self.unmapped = 0  # polls that carried a fault code with no record name
        self.code = 0  # the controller's fault code at the last poll

    def unreachable(self) -> None:
        """A poll failed: the gap is not time a condition was seen to hold."""
        self.rules.unobserved()

    def sample(
        self, status: dict[str, object], now_ms: int, ts: int
    ) -> list[tuple[str, dict[str, object]]]:
        """One decoded controller status at monotonic ``now_ms`` (wall clock ``ts``, ms
        since the epoch) -> ``[(kind, body), ...]``: fault events first, then a status
        sample when one is due."""
        moving = status["running"] is True
        door = DOORS.get(str(status["door"]), "open")
        closed = door == "closed"
        zone = status["door_zone"] is True
        speed = int(status["speed_mm_s"])  # type: ignore[call-overload]
        raw_floor = int(status["floor"])  # type: ignore[call-overload]
        floor = max(FLOOR_MIN, min(FLOOR_MAX, raw_floor))
        code = int(status["fault_code"])  # type: ignore[call-overload]
        self.code = code
        reported: tuple[str, ...] = ()
        if code:
            name = CODE_FAULTS.get(code)
            if name is None:
                self.unmapped += 1
            else:
                reported = (name,)
        pos = level_of(self.cfg.floors, raw_floor)
        inputs = checks(self.limits, moving, closed, zone, None, False, speed, pos, None, None)
        out: list[tuple[str, dict[str, object]]] = []
        reg = self.cfg.reg

        def event(f: Condition, ev: int) -> None:
            out.append(("elevator.fault", fault_body(reg, f, ev, ts, floor, door, None, speed)))
            self.timer.pending = True

        self.rules.update(now_ms, inputs, reported, event)
        direction = DIRECTIONS.get(str(status["direction"]), "stopped") if moving else "stopped"
        faults = self.rules.active()
        key = (direction, floor, door, zone, tuple(faults))
        if self.timer.due(now_ms, key):
            out.append(
                (
                    "elevator.status",
                    status_body(
                        reg,
                        direction,
                        floor,
                        door,
                        zone,
                        None,
                        False,
                        False,
                        faults,
                        int(status["runs"]),  # type: ignore[call-overload]
                        int(status["door_cycles"]),  # type: ignore[call-overload]
                        int(status["run_hours"]),  # type: ignore[call-overload]
                    ),
                )
            )
        return out
