"""The elevator controller over Modbus: the car model, the pymodbus simulator served over TCP
and as RTU on a pty, and the polling transport reading it, with faults, silence, power
loss and recovery."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Iterator

import pytest

from drivers.codecs.modbus_elevator import COUNT, decode_status
from drivers.transports.errors import DeviceTimeout, DriverError
from drivers.transports.modbus_poll import (
    ElevatorPoller,
    ModbusConnectError,
    ModbusDecodeError,
    ModbusDeviceError,
    ModbusTimeout,
    Poll,
    Target,
    _Backoff,
    read_status,
)
from simulators.elevator_sim import CarConfig, CarModel, ElevatorSimulator

FAST = CarConfig(floor_time=0.2, door_time=0.1, dwell_time=0.3, idle_time=0.2)

Status = dict[str, object]


def run(coro: object, timeout: float = 20.0) -> object:
    return asyncio.run(asyncio.wait_for(coro, timeout))  # type: ignore[arg-type]


@pytest.fixture
def tcp() -> Iterator[tuple[ElevatorSimulator, str]]:
    sim = ElevatorSimulator(CarModel(FAST, floor=0, runs=41, door_cycles=40, run_hours=1234))
    url = sim.start_tcp()
    yield sim, url
    sim.stop()


@pytest.fixture
def rtu() -> Iterator[tuple[ElevatorSimulator, str]]:
    sim = ElevatorSimulator(CarModel(FAST, floor=2))
    path = sim.start_pty()
    yield sim, path
    sim.stop()


async def watch(
    poller: ElevatorPoller, until: Callable[[Status], bool], timeout: float = 8.0
) -> list[Status]:
    """Statuses read every 50 ms until one satisfies ``until``."""
    seen: list[Status] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = await poller.read_status()
        seen.append(status)
        if until(status):
            return seen
        await asyncio.sleep(0.05)
    raise AssertionError(f"condition not met within {timeout} s; last status {seen[-1]}")


# -- the car model, on its own ---------------------------------------------------------------


def test_car_runs_to_a_call_opens_and_closes_its_doors() -> None:
    car = CarModel(FAST, floor=0)
    car.call(3)
    car.advance(0.01)
    s = car.status()
    assert (s["running"], s["direction"], s["speed_mm_s"]) == (True, "up", 1000)
    car.advance(0.1)  # half a floor up: outside the door zone
    assert car.status()["door_zone"] is False
    car.advance(0.6 - 0.11)  # arrives at 3
    s = car.status()
    assert (s["floor"], s["running"], s["door"], s["runs"]) == (3, False, "opening", 1)
    car.advance(0.1)
    assert car.status()["door"] == "open"
    car.advance(0.3 + 0.1)
    s = car.status()
    assert (s["door"], s["door_cycles"], s["door_zone"]) == ("closed", 1, True)
    assert decode_status(car.registers()) == {**s, "fault": "no fault"}


def test_car_serves_calls_on_the_way_and_goes_below_ground() -> None:
    car = CarModel(FAST, floor=5)
    car.call(-1)
    car.advance(0.05)
    car.call(2)  # ahead of the car on its way down: served first
    car.advance(0.6)
    assert car.status()["floor"] == 2 and car.door == "opening"
    car.advance(1.2)  # doors at 2 (0.45 s left), run to -1 (0.6 s), doors opening
    s = car.status()
    assert (s["floor"], s["runs"], s["door_cycles"]) == (-1, 2, 1)
    with pytest.raises(ValueError, match="outside"):
        car.call(11)


def test_run_hours_count_motor_time_on_top_of_the_initial_hours() -> None:
    car = CarModel(CarConfig(floor_time=1800.0), floor=0, run_hours=7)
    car.call(2)
    car.advance(3600.0)
    assert car.status()["run_hours"] == 8


def test_auto_mode_keeps_the_car_busy() -> None:
    car = CarModel(FAST, auto=True, seed=3)
    floors = set()
    for _ in range(400):
        car.advance(0.05)
        floors.add(car.status()["floor"])
    assert car.runs >= 5 and len(floors) >= 4


def test_injected_faults_in_the_model() -> None:
    car = CarModel(FAST, floor=0)
    car.call(4)
    car.advance(0.05)
    car.inject("door_open_while_moving")
    s = car.status()
    assert (s["running"], s["door"], s["fault_code"]) == (True, "open", 1)
    car.clear_faults()
    car.inject("overspeed")
    assert (car.status()["speed_mm_s"], car.status()["fault_code"]) == (1300, 4)
    car.clear_faults()
    car.inject("stop_outside_door_zone")
    car.advance(0.1)
    s = car.status()
    assert (s["running"], s["door_zone"], s["fault_code"], s["speed_mm_s"]) == (False, False, 10, 0)
    stuck = car.position
    car.advance(1.0)
    assert car.position == stuck  # stays put until the fault is cleared
    car.clear_faults()
    car.advance(2.0)
    assert car.status()["floor"] == 4 and car.runs == 1
    car.set_fault(7)
    assert decode_status(car.registers())["fault"] == "motor overheat"
    with pytest.raises(ValueError, match="unknown fault"):
        car.inject("gremlins")


# -- polling the simulator -------------------------------------------------------------------


def test_poll_over_tcp_follows_the_car(tcp: tuple[ElevatorSimulator, str]) -> None:
    sim, url = tcp

    async def go() -> list[Status]:
        async with ElevatorPoller(url, unit=1, timeout=1.0) as poller:
            first = await poller.read_status()
            assert first == {**sim.status(), "fault": "no fault"}
            sim.call(3)
            return [first, *await watch(poller, lambda s: s["floor"] == 3 and s["door"] == "open")]

    seen = run(go())
    assert isinstance(seen, list)
    assert seen[0]["floor"] == 0 and seen[0]["runs"] == 41 and seen[0]["run_hours"] == 1234
    moving = [s for s in seen if s["running"]]
    assert moving and all(s["direction"] == "up" and s["speed_mm_s"] == 1000 for s in moving)
    floors = [s["floor"] for s in seen]
    assert floors == sorted(floors)  # it only went up
    assert {1, 2} <= set(floors)  # and was seen passing floors on the way
    assert any(not s["door_zone"] for s in moving)
    assert seen[-1]["runs"] == 42 and seen[-1]["direction"] == "idle"
    assert all(isinstance(seen[-1][k], int) for k in ("floor", "runs", "door_cycles"))


def test_poll_over_rtu_on_a_pty(rtu: tuple[ElevatorSimulator, str]) -> None:
    sim, path = rtu
    assert os.path.exists(path)

    async def go() -> list[Status]:
        async with ElevatorPoller(path, unit=1, timeout=1.0) as poller:
            assert (await poller.read_status())["floor"] == 2
            sim.call(-1)
            seen = await watch(poller, lambda s: s["floor"] == -1 and s["door"] != "closed")
            assert poller.connected
            return seen

    seen = run(go())
    assert isinstance(seen, list)
    assert any(s["direction"] == "down" for s in seen)
    assert seen[-1]["runs"] == 1
    assert sim.requests >= len(seen)


def test_rtu_options_in_the_target_url(rtu: tuple[ElevatorSimulator, str]) -> None:
    _, path = rtu
    status = run(read_status(f"rtu://{path}?baudrate=9600&parity=N", timeout=1.0))
    assert isinstance(status, dict) and status["floor"] == 2


@pytest.mark.parametrize(
    ("inject", "expect"),
    [
        ("door_open_while_moving", {"running": True, "door": "open", "fault_code": 1}),
        ("overspeed", {"running": True, "speed_mm_s": 1300, "fault_code": 4}),
        (
            "stop_outside_door_zone",
            {"running": False, "door_zone": False, "fault_code": 10, "speed_mm_s": 0},
        ),
    ],
)
def test_injected_faults_show_up_in_the_polled_status(
    tcp: tuple[ElevatorSimulator, str], inject: str, expect: Status
) -> None:
    sim, url = tcp

    async def go() -> Status:
        async with ElevatorPoller(url) as poller:
            sim.call(8)
            await watch(poller, lambda s: bool(s["running"]))
            sim.inject(inject)
            seen = await watch(poller, lambda s: all(s[k] == v for k, v in expect.items()))
            sim.clear_faults()
            after = await watch(poller, lambda s: s["fault_code"] == 0)
            return {"fault": seen[-1]["fault"], "after": after[-1]["fault"]}

    result = run(go())
    assert isinstance(result, dict)
    assert result["fault"] != "no fault" and result["after"] == "no fault"


def test_a_controller_fault_code_is_reported_with_its_text(
    rtu: tuple[ElevatorSimulator, str],
) -> None:
    sim, path = rtu
    sim.set_fault(8)
    status = run(read_status(path))
    assert isinstance(status, dict)
    assert (status["fault_code"], status["fault"]) == (8, "power supply fault / phase loss")
    sim.set_fault(99)
    status = run(read_status(path))
    assert isinstance(status, dict) and status["fault"] == "unknown fault 99"


@pytest.mark.parametrize(("code", "retry"), [(2, False), (6, True)])
def test_exception_responses_are_device_errors(
    tcp: tuple[ElevatorSimulator, str], code: int, retry: bool
) -> None:
    sim, url = tcp
    sim.answer_exception(code)
    with pytest.raises(ModbusDeviceError) as info:
        run(read_status(url))
    assert info.value.code == code and info.value.retry is retry
    assert f"exception {code}" in str(info.value)


def test_registers_outside_the_map_are_a_decode_error(tcp: tuple[ElevatorSimulator, str]) -> None:
    sim, url = tcp
    sim.override([0, 7] + [0] * (COUNT - 2))  # direction 7 does not exist
    with pytest.raises(ModbusDecodeError, match="direction") as info:
        run(read_status(url))
    assert info.value.__cause__ is not None


def test_silent_controller_is_a_timeout_then_polling_resumes(
    tcp: tuple[ElevatorSimulator, str],
) -> None:
    sim, url = tcp

    async def go() -> None:
        async with ElevatorPoller(url, timeout=0.3) as poller:
            await poller.read_status()
            sim.silence()
            started = time.monotonic()
            with pytest.raises(ModbusTimeout) as info:
                await poller.read_status()
            assert 0.25 < time.monotonic() - started < 2.0
            assert info.value.retry is True and isinstance(info.value, DeviceTimeout)
            sim.silence(False)
            assert (await poller.read_status())["runs"] == 41

    run(go())


def test_power_loss_over_tcp_then_polling_resumes(tcp: tuple[ElevatorSimulator, str]) -> None:
    sim, url = tcp

    async def go() -> list[Poll]:
        polls: list[Poll] = []
        powered_at = 0.0
        async with ElevatorPoller(
            url, timeout=0.3, backoff_initial=0.05, backoff_cap=0.4
        ) as poller:
            async for p in poller.poll(interval=0.05):
                polls.append(p)
                good = [q for q in polls if q.status is not None]
                bad = [q for q in polls if q.error is not None]
                if len(good) == 2 and not bad:
                    sim.power_off()
                elif len(bad) == 3 and sim.powered is False:
                    sim.power_on()
                    powered_at = time.time()
                elif bad and p.status is not None:
                    assert p.at - powered_at < 1.0  # resumed within the backoff cap
                    return polls
        return polls

    polls = run(go())
    assert isinstance(polls, list)
    kinds = ["ok" if p.status is not None else type(p.error).__name__ for p in polls]
    assert kinds[:2] == ["ok", "ok"] and kinds[-1] == "ok"
    errors = [p.error for p in polls if p.error is not None]
    assert errors and all(isinstance(e, (ModbusConnectError, ModbusTimeout)) for e in errors)
    assert any(isinstance(e, ModbusConnectError) for e in errors)  # the port is closed
    assert all(e.retry for e in errors)
    assert all(isinstance(e, DriverError) for e in errors)  # the transports' common root


def test_power_loss_over_rtu_is_a_timeout_then_polling_resumes(
    rtu: tuple[ElevatorSimulator, str],
) -> None:
    sim, path = rtu

    async def go() -> None:
        async with ElevatorPoller(path, timeout=0.3) as poller:
            await poller.read_status()
            sim.power_off()
            with pytest.raises(ModbusTimeout, match="no answer"):
                await poller.read_status()
            sim.power_on()
            assert (await poller.read_status())["floor"] == 2

    run(go())


def test_nothing_listening_is_a_connect_error() -> None:
    sim = ElevatorSimulator()
    url = sim.start_tcp()
    sim.stop()
    with pytest.raises(ModbusConnectError) as info:
        run(read_status(url, timeout=0.5))
    assert info.value.retry is True
    with pytest.raises(ModbusConnectError):
        run(read_status("/dev/does-not-exist", timeout=0.5))


def test_a_unit_that_is_not_there(
    tcp: tuple[ElevatorSimulator, str], rtu: tuple[ElevatorSimulator, str]
) -> None:
    # Behind a TCP gateway: "gateway target device failed to respond", worth retrying.
    with pytest.raises(ModbusDeviceError) as info:
        run(read_status(tcp[1], unit=9, timeout=0.5))
    assert (info.value.code, info.value.retry) == (11, True)
    # On a serial bus nobody answers.
    with pytest.raises(ModbusTimeout):
        run(read_status(rtu[1], unit=9, timeout=0.3))
    assert isinstance(run(read_status(rtu[1], unit=1)), dict)  # the bus still works


# -- small pieces ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expect"),
    [
        ("tcp://127.0.0.1:5020", Target("tcp", host="127.0.0.1", port=5020)),
        ("tcp://plc.local", Target("tcp", host="plc.local", port=502)),
        ("/dev/ttyUSB0", Target("rtu", device="/dev/ttyUSB0")),
        (
            "rtu:///dev/ttyS1?baudrate=9600&parity=e&stopbits=2",
            Target("rtu", device="/dev/ttyS1", baudrate=9600, parity="E", stopbits=2),
        ),
    ],
)
def test_target_parse(text: str, expect: Target) -> None:
    assert Target.parse(text) == expect


@pytest.mark.parametrize(
    "bad", ["udp://x:1", "tcp://:502", "tcp://h:99999", "rtu:///dev/x?speed=1", "ttyUSB0"]
)
def test_target_parse_rejects(bad: str) -> None:
    with pytest.raises(ValueError):
        Target.parse(bad)


def test_backoff_doubles_up_to_its_cap() -> None:
    b = _Backoff(0.2, 2.0)
    ceilings = []
    for _ in range(8):
        ceilings.append(b.ceiling())
        delay = b.next_delay()
        assert ceilings[-1] / 2 <= delay <= ceilings[-1]
    assert ceilings == [0.2, 0.4, 0.8, 1.6, 2.0, 2.0, 2.0, 2.0]
    b.reset()
    assert b.ceiling() == 0.2
