"""The controller's registers mapped to the elevator box's rule set: fault codes, absent
inputs, positions from the configured floors, and every body valid for any registers."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from drivers.codecs.errors import FrameError
from drivers.codecs.modbus_elevator import COUNT, decode_status, encode_status
from edge_agent.sources.elevator_car import CODE_FAULTS, CarSettings, ElevatorCar, level_of
from simulators.elevator_sim import CarModel
from tests.drivers.props import SETTINGS
from wire.schemas import default_validator

REG = "31103301062015000123"
FLOORS = ((-1, 0), (1, 4500), (2, 8000), (3, 11500))
CFG = CarSettings(
    reg=REG,
    floors=FLOORS,
    delays={"power_ms": 1000, "overspeed_ms": 200, "safety_ms": 0, "stop_out_ms": 3000},
    clear_ms=500,
    status_every_ms=60000,
    status_min_ms=1000,
)
VALIDATOR = default_validator()


def idle(**kw: object) -> dict[str, object]:
    """A decoded status, through the real register codec."""
    model = CarModel(floor=1, runs=7, door_cycles=9, run_hours=3)
    status = model.status()
    status.update(kw)
    return decode_status(encode_status(status))


Recs = list[tuple[int, str, dict[str, object]]]


def run(car: ElevatorCar, steps: list[tuple[int, dict[str, object]]]) -> Recs:
    out = []
    for t, status in steps:
        for kind, body in car.sample(status, t, 1_763_900_000_000 + t):
            VALIDATOR.validate(kind, body)
            out.append((t, kind, body))
    return out


def faults(recs: Recs) -> list[tuple[int, str, str]]:
    return [(t, str(b["fault"]), str(b["state"])) for t, k, b in recs if k == "elevator.fault"]


def test_a_quiet_car_sends_one_status_without_people() -> None:
    car = ElevatorCar(CFG, 0)
    recs = run(car, [(t, idle()) for t in range(0, 5000, 500)])
    assert [k for _, k, _ in recs] == ["elevator.status"]
    body = recs[0][2]
    assert "people" not in body and body["inspection"] is False and body["maintenance"] is False
    assert body == {
        "reg": REG,
        "dir": "stopped",
        "floor": 1,
        "door": "closed",
        "door_zone": True,
        "inspection": False,
        "maintenance": False,
        "faults": [],
        "counters": {"runs": 7, "door_cycles": 9, "run_hours": 3},
    }


def test_power_fault_code_is_power_loss_with_the_box_debounce() -> None:
    car = ElevatorCar(CFG, 0)
    steps = [(0, idle())]
    steps += [(t, idle(fault_code=8)) for t in range(500, 3000, 250)]
    steps += [(t, idle()) for t in range(3000, 5000, 250)]
    recs = run(car, steps)
    assert faults(recs) == [(1500, "power_loss", "raised"), (3500, "power_loss", "cleared")]
    raised = next(b for _, k, b in recs if k == "elevator.fault")
    assert raised["detail"] == "停电" and "people" not in raised and raised["door"] == "closed"
    cleared = [b for _, k, b in recs if k == "elevator.fault"][1]
    assert cleared["raised_ts"] == 1_763_900_000_000 + 1500
    statuses = [(t, b["faults"]) for t, k, b in recs if k == "elevator.status"]
    assert statuses == [(0, []), (1500, ["power_loss"]), (3500, [])]


def test_a_code_with_no_schema_name_is_counted_not_recorded() -> None:
    car = ElevatorCar(CFG, 0)
    recs = run(car, [(t, idle(fault_code=5)) for t in range(0, 3000, 500)])  # overload
    assert faults(recs) == [] and car.unmapped == 6 and car.code == 5
    assert 5 not in CODE_FAULTS


def test_overspeed_from_the_speed_and_from_the_governor_code() -> None:
    moving = {"running": True, "direction": "up", "door_zone": False}
    car = ElevatorCar(CFG, 0)
    steps = [(t, idle(**moving, speed_mm_s=1200)) for t in range(0, 1000, 100)]
    steps += [(t, idle(**moving, speed_mm_s=1000, fault_code=4)) for t in range(1000, 2000, 100)]
    steps += [(t, idle(**moving, speed_mm_s=1000)) for t in range(2000, 3000, 100)]
    assert faults(run(car, steps)) == [(200, "overspeed", "raised"), (2500, "overspeed", "cleared")]


def test_a_floor_past_the_top_is_over_travel() -> None:
    car = ElevatorCar(CFG, 0)
    recs = run(car, [(t, idle(floor=4, door_zone=False)) for t in range(0, 1000, 100)])
    assert ("overtravel_top", "raised") in [(f, s) for _, f, s in faults(recs)]
    no_floors = ElevatorCar(CarSettings(reg=REG, delays=CFG.delays), 0)
    recs = run(no_floors, [(t, idle(floor=40)) for t in range(0, 1000, 100)])
    assert faults(recs) == []  # no floors configured: positions unknown


def test_a_gap_in_the_readings_is_not_time_a_condition_held() -> None:
    car = ElevatorCar(CFG, 0)
    out = run(car, [(0, idle(fault_code=6))])
    assert faults(out) == [(0, "safety_circuit_open", "raised")]  # safety_ms 0: at once
    car2 = ElevatorCar(CFG, 0)
    run(car2, [(0, idle(fault_code=8))])
    car2.unreachable()  # 5 s nobody could read it
    recs = run(car2, [(5000, idle(fault_code=8)), (5500, idle(fault_code=8))])
    assert faults(recs) == []  # held 0.5 s since it was seen again, not 5.5 s
    recs = run(car2, [(6000, idle(fault_code=8))])
    assert faults(recs) == [(6000, "power_loss", "raised")]


def test_the_simulators_stop_outside_the_door_zone() -> None:
    model = CarModel(floor=1)
    model.call(3)
    model.inject("stop_outside_door_zone")
    car = ElevatorCar(CFG, 0)
    steps = []
    for t in range(0, 8000, 100):
        model.advance(0.1)
        steps.append((t, decode_status(model.registers())))
    recs = run(car, steps)
    got = faults(recs)
    assert got and got[0][1:] == ("stop_outside_door_zone", "raised"), got
    halted = next(t for t, s in steps if s["fault_code"] == 10)
    assert got[0][0] == halted + 3000


def test_level_of_the_configured_floors() -> None:
    assert [level_of(FLOORS, f) for f in (-1, 1, 2, 3)] == [0, 4500, 8000, 11500]
    assert level_of(FLOORS, 4) == 15000 and level_of(FLOORS, -2) == -4500
    assert level_of(FLOORS, 0) == 0  # no floor 0 here: the level below it
    assert level_of((), 3) is None


@SETTINGS
@given(st.lists(st.integers(1, 6000), min_size=2, max_size=12), st.integers(-25, 60))
def test_levels_grow_with_the_floor(heights: list[int], start: int) -> None:
    levels, lvl = [], 0
    for h in heights:
        levels.append(lvl)
        lvl += h
    floors = tuple((start + i, levels[i]) for i in range(len(levels)))
    got = [level_of(floors, f) for f in range(start - 5, start + len(floors) + 5)]
    assert all(a is not None and b is not None and a < b for a, b in itertools.pairwise(got))


registers = st.lists(
    st.one_of(st.integers(0, 0xFFFF), st.sampled_from([0, 1, 2, 3, 4, 8, 10, 0xFFFF])),
    min_size=COUNT,
    max_size=COUNT,
)


@SETTINGS
@given(st.lists(st.tuples(st.integers(0, 3000), registers), min_size=1, max_size=30))
def test_any_registers_that_decode_give_valid_records(polls: list[tuple[int, list[int]]]) -> None:
    car = ElevatorCar(CFG, 0)
    t = 0
    for dt, regs in polls:
        t += dt
        try:
            status = decode_status(regs)
        except FrameError:
            car.unreachable()  # what the source does with a poll that fails
            continue
        for kind, body in car.sample(status, t, 1_763_900_000_000 + t):
            VALIDATOR.validate(kind, body)
