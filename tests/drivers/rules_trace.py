"""Run the elevator rule set over sample sequences; the same code under CPython and
MicroPython (``test_elevator_rules.py`` compares the two traces).

A sample is ``[dt_ms, moving, closed, zone, people, busy, speed, pos, mains, alarm,
reported]`` (``people``, ``pos``, ``mains``, ``alarm`` may be None; ``reported`` a list
of fault names). A trace lists, per sample, the fault events and whether a status sample
was due, as plain lists (JSON on both sides).
"""

from drivers.codecs.elevator_rules import (
    FAULTS,
    Limits,
    Rules,
    StatusTimer,
    checks,
    fault_body,
    status_body,
)


class Clock:
    def diff(self, a: int, b: int) -> int:
        return a - b


DELAYS = {
    "door_move_ms": 300,
    "overspeed_ms": 200,
    "stop_out_ms": 1000,
    "trapped_ms": 1500,
    "safety_ms": 800,
}


def trace(samples: list, clear_ms: int = 400) -> list:  # type: ignore[type-arg]
    clock = Clock()
    rules = Rules(clock, lambda key, default: DELAYS.get(key, default // 10), clear_ms)
    lim = Limits(1000, 115, 20000, 0, 150)
    now = 0
    timer = StatusTimer(clock, 5000, 700, now)
    out = []
    for s in samples:
        now += s[0]
        events: list = []  # type: ignore[type-arg]
        on_event = _recorder(events, timer, now, s[4], s[6])
        sample = checks(lim, s[1], s[2], s[3], s[4], s[5], s[6], s[7], s[8], s[9])
        rules.update(now, sample, tuple(s[10]), on_event)
        active = rules.active()
        due = timer.due(now, (s[1], s[2], s[3], tuple(active)))
        if due:
            body = status_body("R", "up", 1, "closed", s[3], s[4], s[5], False, active, 1, 2, 3)
            events.append(["status", len(body), active])
        out.append(events)
    return out


def _recorder(events: list, timer: StatusTimer, now: int, people: object, speed: int) -> object:  # type: ignore[type-arg]
    def on_event(f: object, ev: int) -> None:
        body = fault_body("REG", f, ev, now, 1, "closed", people, speed)  # type: ignore[arg-type]
        events.append([body["fault"], body["state"], body.get("raised_ts", -1)])
        timer.pending = True

    return on_event


def names() -> list:  # type: ignore[type-arg]
    return [f[0] for f in FAULTS]
