"""The gateway-hosted elevator end to end: the pymodbus controller simulator, a real agent
process with a ``modbus_elevator`` source, Mosquitto, a real collector and the platform.
Controller faults become raised / cleared records after the box's debounce; a power cut,
a silent controller and ``kill -9`` of the agent mid-exchange lose nothing and double
nothing: every seq of the hosted device is stored exactly once, contiguous from 1."""

from __future__ import annotations

import json
import random
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from hostlib.registry import Device
from simulators.elevator_sim import CarConfig, CarModel, ElevatorSimulator
from tests.conftest import SITE, Chain, wait_until
from traceedge.provision import device_config, new_device, write_secret
from wire.schemas import default_validator

REG = "31103301062015000123"
FAST = CarConfig(floor_time=0.4, door_time=0.15, dwell_time=0.3, idle_time=0.3)


@pytest.fixture
def sim() -> Iterator[ElevatorSimulator]:
    s = ElevatorSimulator(CarModel(FAST, floor=1, runs=500, door_cycles=480, auto=True, seed=3))
    yield s
    s.stop()


def hosted(tmp_path: Path) -> tuple[Device, Path]:
    dev = new_device("elevator-box", SITE)
    path = write_secret(
        tmp_path / f"{dev.dev}.json", json.dumps(device_config(dev, "127.0.0.1", 0)).encode()
    )
    return dev, path


def table(target: str, identity: Path) -> dict[str, Any]:
    return {
        "kind": "modbus_elevator",
        "name": "lift-a",
        "target": target,
        "identity": str(identity),
        "reg": REG,
        "floors": [[f, 3000 * (f + 1)] for f in range(-1, 11)],
        "poll_s": 0.1,
        "timeout_s": 0.5,
        "ack_timeout_s": 3.0,
        "clear_ms": 300,
        "door_move_ms": 200,
        "door_lock_ms": 0,
        "status_every_ms": 2000,
        "status_min_ms": 100,
    }


def at_collector(ch: Chain, dev: str) -> list[tuple[int, str, dict[str, Any]]]:
    try:
        db = sqlite3.connect(f"file:{ch.store}?mode=ro", uri=True)
    except sqlite3.OperationalError:
        return []
    try:
        rows = db.execute(
            "SELECT seq, kind, rec FROM records WHERE dev = ? ORDER BY seq", (dev,)
        ).fetchall()
    except sqlite3.OperationalError:
        return []
    finally:
        db.close()
    return [(int(s), str(k), json.loads(r)) for s, k, r in rows]


def source_state(ch: Chain) -> dict[str, Any]:
    try:
        (st,) = ch.agent_status()["sources"]
    except Exception:
        return {}
    return st  # type: ignore[no-any-return]


def journal(ch: Chain) -> tuple[int, int]:
    """(records waiting in the source's journal, the next seq it will use)."""
    db = sqlite3.connect(ch.root / "agent" / "sources" / "lift-a.sqlite")
    try:
        depth = db.execute("SELECT COUNT(*) FROM recs").fetchone()[0]
        row = db.execute("SELECT value FROM meta WHERE name = 'next_seq'").fetchone()
    finally:
        db.close()
    return int(depth), int(row[0]) if row else 1


def restart_agent(ch: Chain) -> None:
    """Start the agent again and wait until *its* source is up (the outbox still holds the
    killed agent's last status)."""
    t = time.time()
    ch.agent.start()

    def fresh_and_up() -> bool:
        try:
            st = ch.agent_status()
        except Exception:
            return False
        return bool((st.get("updated_at") or 0) >= t) and source_state(ch).get("state") == "up"

    wait_until(fresh_and_up, 30, "the restarted agent's source up")


def wait_state(ch: Chain, state: str, what: str) -> None:
    try:
        wait_until(lambda: source_state(ch).get("state") == state, 30, what)
    except AssertionError as exc:
        raise AssertionError(f"{exc}: {source_state(ch)}\n{ch.agent.log_tail()}") from None


def settle_and_check(ch: Chain, sim: ElevatorSimulator, dev: Device) -> list[dict[str, Any]]:
    """Cut the controller (no more records), let everything drain, then: every seq once,
    contiguous, valid."""
    sim.power_off()
    wait_state(ch, "down", "the source down: nothing more to record")
    wait_until(lambda: journal(ch)[0] == 0, 60, "the source's journal drained")
    n = journal(ch)[1] - 1
    wait_until(lambda: len(at_collector(ch, dev.dev)) >= n, 60, f"{n} records at the collector")
    ch.wait_forwarded(n)
    ch.assert_exactly_once(n)  # the platform and the store: n each, no gap, no quarantine
    rows = at_collector(ch, dev.dev)
    assert [s for s, _, _ in rows] == list(range(1, n + 1))
    v = default_validator()
    for _, kind, rec in rows:
        v.validate(kind, rec["body"])
    return [r for _, _, r in rows]


def test_controller_faults_outages_and_agent_kill9_over_tcp(
    chain_factory: Callable[..., Chain], sim: ElevatorSimulator, tmp_path: Path
) -> None:
    dev, identity = hosted(tmp_path)
    ch = chain_factory(
        devices_per_type=0, extra_devices=[dev], sources=[table(sim.start_tcp(), identity)]
    )
    wait_state(ch, "up", "the source up")
    wait_until(lambda: len(at_collector(ch, dev.dev)) >= 5, 30, "records at the collector")

    # a fault the controller reports while the car runs: door open while moving (the box's
    # rule over the door and running registers) and the door-lock code 1 (reported)
    sim.inject("door_open_while_moving")
    wait_until(
        lambda: any(
            r["body"].get("fault") == "door_open_while_moving"
            for _, _, r in at_collector(ch, dev.dev)
        ),
        30,
        "door_open_while_moving raised at the collector",
    )
    sim.clear_faults()

    # power cut at the controller, then a controller that keeps its socket but is mute
    sim.power_off()
    wait_state(ch, "down", "the source down without power")
    assert source_state(ch)["error"]
    sim.power_on()
    wait_state(ch, "up", "up with power back")
    sim.silence(True)
    wait_state(ch, "down", "down while the controller is silent")
    assert "no answer" in source_state(ch)["error"]
    sim.silence(False)
    wait_state(ch, "up", "up once it answers")

    # kill -9 of the agent while the car runs and records flow
    rng = random.Random(11)
    for _ in range(3):
        time.sleep(rng.uniform(0.5, 1.5))
        before = journal(ch)[1]
        ch.agent.kill9()
        time.sleep(rng.uniform(0.0, 0.5))
        restart_agent(ch)
        wait_until(lambda b=before: journal(ch)[1] > b + 2, 30, "new records after the restart")

    # and once exactly mid-exchange: records offered to the intake but not committed (the
    # outbox held locked), so not acked, when the agent dies
    db = sqlite3.connect(ch.outbox, timeout=30, isolation_level=None)
    try:
        db.execute("BEGIN IMMEDIATE")
        wait_until(lambda: journal(ch)[0] >= 3, 30, "records offered and not acked")
        ch.agent.kill9()
        db.execute("ROLLBACK")
    finally:
        db.close()
    restart_agent(ch)
    n = journal(ch)[1]
    wait_until(lambda: journal(ch)[1] > n + 2, 30, "records after the last restart")

    recs = settle_and_check(ch, sim, dev)
    events = [
        (r["body"]["fault"], r["body"]["state"]) for r in recs if r["kind"] == "elevator.fault"
    ]
    for fault in ("door_open_while_moving", "door_lock_circuit_open"):
        assert (fault, "raised") in events and (fault, "cleared") in events, events
    assert len({r["boot"] for r in recs}) == 5  # one per agent start
    counters = source_state(ch)["counters"]
    assert counters["poll_errors"] >= 1 and counters.get("forged_acks", 0) == 0, counters


def test_rtu_over_a_pty_and_agent_kill9(
    chain_factory: Callable[..., Chain], sim: ElevatorSimulator, tmp_path: Path
) -> None:
    dev, identity = hosted(tmp_path)
    ch = chain_factory(
        devices_per_type=0, extra_devices=[dev], sources=[table(sim.start_pty(), identity)]
    )
    wait_state(ch, "up", "the source up over RTU")
    wait_until(lambda: len(at_collector(ch, dev.dev)) >= 5, 30, "records at the collector")
    ch.agent.kill9()
    restart_agent(ch)
    sim.power_off()
    wait_state(ch, "down", "down while the controller is off")
    sim.power_on()
    wait_state(ch, "up", "up with power back")
    n = journal(ch)[1]
    wait_until(lambda: journal(ch)[1] > n + 2, 30, "records after the power cut")
    recs = settle_and_check(ch, sim, dev)
    assert {r["kind"] for r in recs} == {"elevator.status"}
    assert all(r["body"]["reg"] == REG and "people" not in r["body"] for r in recs)
