"""Elevator box scenarios: every fault raised and cleared (with its debounce and
threshold), status on change, maintenance sign-in / sign-out across a reboot."""

import scen
from elevator import LABELS
from scen import ALARM, DOOR, INSP, MAINS, PEOPLE, faults, status_trace
from tesim.world import WALL0

_TYPING = False
if _TYPING:
    from typing import Any

REG = "31103301062015000123"


def _rows(recs: "list[dict[str, Any]]") -> "list[tuple[Any, ...]]":
    """Each fault record as (ms since start, fault, state, floor, door, people, speed,
    raised at (ms since start) on a clear), after checking the fields every one carries."""
    out = []
    for r in recs:
        if r["kind"] != "elevator.fault":
            continue
        b = r["body"]
        assert b["reg"] == REG and b["detail"] == LABELS[b["fault"]]
        assert set(b) <= {
            "reg",
            "fault",
            "state",
            "floor",
            "door",
            "people",
            "speed_mm_s",
            "raised_ts",
            "detail",
        }
        raised = b["raised_ts"] - WALL0 if "raised_ts" in b else None
        out.append(
            (
                r["ts"] - WALL0,
                b["fault"],
                b["state"],
                b["floor"],
                b["door"],
                b["people"],
                b["speed_mm_s"],
                raised,
            )
        )
    return out


def test_run_with_door_open_overspeed_and_overtravel() -> None:
    rig = scen.elevator()
    car = rig.dev["car"]
    w = rig.w
    w.at(2000, lambda w: car.go(1000, 10500))  # floor 1 -> 4 at 1 m/s
    w.at(4000, lambda w: w.set_pin(DOOR, 0))  # door opens while moving ...
    w.at(5000, lambda w: w.set_pin(DOOR, 1))  # ... for a second
    w.at(6000, lambda w: car.go(1300, 10500))  # 1.3 m/s: over 115 % of rated
    w.at(8000, lambda w: car.go(900, 10500))
    w.at(16000, lambda w: car.go(300, 10800))  # 300 mm past the top level
    w.at(18500, lambda w: car.go(-300, 10500))  # back (within stop_out_ms)
    w.at(24000, lambda w: car.go(-1000, -200))  # down, 200 mm past the bottom
    w.at(36000, lambda w: car.go(300, 0))
    rig.run(45000)
    recs = scen.dump(rig.ch)
    # delays: door 300 ms, overspeed 200 ms (after the 500 ms speed window), over-travel
    # 100 ms past 150 mm; every clear 1 s of the good condition
    assert _rows(recs) == [
        (4300, "door_open_while_moving", "raised", 2, "open", False, 1000, None),
        (6000, "door_open_while_moving", "cleared", 2, "closed", False, 1000, 4300),
        (6700, "overspeed", "raised", 2, "closed", False, 1300, None),
        (9500, "overspeed", "cleared", 3, "closed", False, 900, 6700),
        (16650, "overtravel_top", "raised", 4, "closed", False, 300, None),
        (20300, "overtravel_top", "cleared", 4, "closed", False, 0, 16650),
        (34800, "overtravel_bottom", "raised", 1, "closed", False, 1000, None),
        (37450, "overtravel_bottom", "cleared", 1, "closed", False, 100, 34800),
    ], _rows(recs)
    st = status_trace(recs)
    assert st[0] == ("stopped", 1, "closed", True, False, False, ())
    assert ("up", 2, "open", False, False, False, ()) in st
    assert ("up", 3, "closed", False, False, False, ("overspeed",)) in st
    assert ("stopped", 4, "closed", True, False, False, ()) in st
    assert ("down", 1, "closed", False, False, False, ("overtravel_bottom",)) in st
    assert st[-1] == ("stopped", 1, "closed", True, False, False, ())
    assert len(st) == 32, len(st)  # on change, at most one a second
    app: Any = rig.rt.app
    assert (app.runs, app.door_cycles) == (5, 1), (app.runs, app.door_cycles)


def test_stuck_between_floors_trapped_and_rescued() -> None:
    rig = scen.elevator()
    car = rig.dev["car"]
    w = rig.w
    w.at(1000, lambda w: w.set_pin(PEOPLE, 1))
    w.at(2000, lambda w: car.go(1000, 5000))  # stops between floors 2 and 3
    w.at(20000, lambda w: car.go(300, 7000))  # rescue: creep to floor 3
    w.at(28000, lambda w: w.set_pin(DOOR, 0))  # door opens: people out
    w.at(30000, lambda w: w.set_pin(PEOPLE, 0))
    w.at(31000, lambda w: w.set_pin(DOOR, 1))
    w.at(32000, lambda w: w.set_pin(PEOPLE, 1))  # someone in, door closed, at a floor
    w.at(45000, lambda w: w.set_pin(DOOR, 0))
    rig.run(50000)
    recs = scen.dump(rig.ch)
    # standing still from 7.5 s (the speed window sees the stop 0.5 s late): outside the
    # door zone for 3 s, trapped after 5 s
    assert _rows(recs) == [
        (10500, "stop_outside_door_zone", "raised", 2, "closed", True, 0, None),
        (12500, "trapped_out_of_zone", "raised", 2, "closed", True, 0, None),
        (21100, "stop_outside_door_zone", "cleared", 3, "closed", True, 300, 10500),
        (29000, "trapped_out_of_zone", "cleared", 3, "open", True, 0, 12500),
        (37000, "trapped_in_zone", "raised", 3, "closed", True, 0, None),
        (46000, "trapped_in_zone", "cleared", 3, "open", True, 0, 37000),
    ], _rows(recs)
    st = status_trace(recs)
    assert (
        "stopped",
        2,
        "closed",
        False,
        True,
        False,
        ("stop_outside_door_zone", "trapped_out_of_zone"),
    ) in st


def test_inspection_mode_suppresses_stuck_faults() -> None:
    rig = scen.elevator()
    car = rig.dev["car"]
    rig.w.at(500, lambda w: w.set_pin(INSP, 1))
    rig.w.at(1000, lambda w: w.set_pin(PEOPLE, 1))
    rig.w.at(2000, lambda w: car.go(300, 1500))
    rig.run(20000)
    recs = scen.dump(rig.ch)
    assert faults(recs) == []
    assert [r["body"]["inspection"] for r in recs if r["kind"] == "elevator.status"][-1]


def test_power_loss_and_alarm_button_with_debounce() -> None:
    rig = scen.elevator()
    w = rig.w
    w.at(1000, lambda w: w.set_pin(MAINS, 0))
    w.at(1500, lambda w: w.set_pin(MAINS, 1))  # a 0.5 s dip: debounced away
    w.at(3000, lambda w: w.set_pin(MAINS, 0))  # a real outage
    w.at(9000, lambda w: w.set_pin(MAINS, 1))
    w.at(12000, lambda w: w.set_pin(ALARM, 0))
    w.at(12200, lambda w: w.set_pin(ALARM, 1))  # 0.2 s touch: ignored
    w.at(14000, lambda w: w.set_pin(ALARM, 0))  # held
    w.at(16000, lambda w: w.set_pin(ALARM, 1))
    rig.run(20000)
    recs = scen.dump(rig.ch)
    # the 0.5 s dip (< 1 s) and the 0.2 s touch (< 0.5 s) are debounced away
    assert _rows(recs) == [
        (4000, "power_loss", "raised", 1, "closed", False, 0, None),
        (10000, "power_loss", "cleared", 1, "closed", False, 0, 4000),
        (14500, "alarm_button", "raised", 1, "closed", False, 0, None),
        (17000, "alarm_button", "cleared", 1, "closed", False, 0, 14500),
    ], _rows(recs)

    def idle(faults: "tuple[str, ...]") -> "tuple[Any, ...]":
        return ("stopped", 1, "closed", True, False, False, faults)

    assert status_trace(recs) == [
        idle(()),
        idle(("power_loss",)),
        idle(()),
        idle(("alarm_button",)),
        idle(()),
    ]


def test_maintenance_sign_in_and_out_across_a_reboot() -> None:
    rig = scen.elevator()
    scen.tap(rig, 1000, bytes.fromhex("A1B2C3D4"))
    scen.tap(rig, 3000, bytes.fromhex("DEADBEEF"))  # not a technician's card
    rig.run(5000)
    rig.reboot(__import__("elevator").App, scen.elevator_cfg(), "ELV-B7-0001")
    scen.tap(rig, 8000, bytes.fromhex("04112233445566"))  # another technician: refused
    scen.tap(rig, 10000, bytes.fromhex("A1B2C3D4"))
    rig.run(12000)
    recs = scen.dump(rig.ch)
    m = [r["body"] for r in recs if r["kind"] == "elevator.maintenance"]
    t_in = WALL0 + 1000
    assert len(m) == 2, m
    assert m[0] == {
        "reg": REG,
        "worker": "W0612345",
        "card": "A1B2C3D4",
        "company": "杭州恒达电梯工程有限公司",
        "event": "sign_in",
        "plan": "half_month",
        "time_in": m[0]["time_in"],
    }
    assert t_in <= m[0]["time_in"] <= t_in + 300
    items = scen.example("elevator")["elevator"]["items"]["half_month"]
    assert m[1] == dict(m[0], event="sign_out", time_out=m[1]["time_out"], items=items)
    assert WALL0 + 10000 <= m[1]["time_out"] <= WALL0 + 10300
    boots = sorted({r["boot"] for r in recs})
    assert boots == [1, 2] and [r["seq"] for r in recs] == list(range(1, len(recs) + 1))
    maint = [r["body"]["maintenance"] for r in recs if r["kind"] == "elevator.status"]
    assert maint[0] is False and True in maint and maint[-1] is False
    app: Any = rig.rt.app
    assert app.unknown_cards == 0  # counted before the reboot
    assert "another technician is signed in" in rig.rt.messages


def test_periodic_status() -> None:
    cfg = scen.elevator_cfg()
    cfg["elevator"]["status_every_ms"] = 10000
    rig = scen.elevator(cfg)
    rig.run(35000)
    recs = scen.dump(rig.ch)
    ts = [r["ts"] - WALL0 for r in recs]
    assert [r["kind"] for r in recs] == ["elevator.status"] * 4, ts
    assert [t // 1000 for t in ts] == [0, 10, 20, 30], ts
    assert recs[0]["body"]["counters"] == {"runs": 0, "door_cycles": 0, "run_hours": 0}
