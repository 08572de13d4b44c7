"""The ``modbus_elevator`` source in a real agent (its intake, outbox and sealed acks)
against the pymodbus controller simulator: records made once and acked out of the
journal, faults raised and cleared after the box's debounce, and the source down and up
again through a power cut and a silent controller. No broker is needed: the source's
records and acks never touch one."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from edge_agent.agent import Agent
from edge_agent.settings import load_agent
from edge_agent.sources import modbus_elevator
from edge_agent.sources.modbus_elevator import ModbusElevator
from edge_agent.status import format_status, read_status
from hostlib.config import Section
from hostlib.errors import ConfigError
from hostlib.registry import Device, Registry, add_devices, rotate_key
from simulators.elevator_sim import CarConfig, CarModel, ElevatorSimulator
from tests.conftest import wait_until
from traceedge.brokers import free_port
from traceedge.launch import agent_config
from traceedge.provision import device_config, new_device, site_trust, write_secret
from wire import auth, topics
from wire.envelope import decode_record, verify_mac
from wire.schemas import default_validator

SITE = "M01"
REG = "31103301062015000123"
FAST = CarConfig(floor_time=0.3, door_time=0.1, dwell_time=0.2, idle_time=0.3)
RULES = {
    "power_ms": 300,
    "safety_ms": 0,
    "clear_ms": 300,
    "status_every_ms": 2000,
    "status_min_ms": 200,
    "door_move_ms": 200,
    "stop_out_ms": 500,
}


def source_table(target: str, identity: Path, **kw: Any) -> dict[str, Any]:
    return {
        "kind": "modbus_elevator",
        "name": "lift-a",
        "target": target,
        "unit": 1,
        "identity": str(identity),
        "reg": REG,
        "floors": [[f, 3000 * (f + 1)] for f in range(-1, 11)],
        "poll_s": 0.1,
        "timeout_s": 0.5,
        "ack_timeout_s": 3.0,
        **RULES,
        **kw,
    }


def setup_agent(tmp_path: Path, target: str, rotate_at: int = 0, **kw: Any) -> tuple[Path, Device]:
    """An agent config with the source; ``rotate_at``: the device's key rotated from that
    seq on (the identity file then holds both keys, as `traceedge device rotate-key`
    writes it)."""
    dev = new_device("elevator-box", SITE)
    registry = tmp_path / "registry" / "devices.json"
    add_devices(registry, [dev], 0)
    cfg_file = device_config(dev, "127.0.0.1", 0)
    if rotate_at:
        rotate_key(registry, dev.dev, bytes(range(32)), rotate_at, 0)
        rotated = Registry(registry).get(dev.dev)
        assert rotated is not None
        dev = rotated
        cfg_file = {**cfg_file, "key": dev.key.hex(), "keys": [[f, k.hex()] for f, k in dev.keys]}
    trust = site_trust(tmp_path, registry, SITE)
    identity = write_secret(tmp_path / "trust" / f"{dev.dev}.json", json.dumps(cfg_file).encode())
    unused = free_port()
    cfg = agent_config(
        tmp_path / "agent.toml",
        SITE,
        tmp_path / "agent",
        unused,
        unused,
        devices=trust.agent_devices,
        identity=trust.identity,
        command_key=trust.command_pub,
        sources=[source_table(target, identity, **kw)],
    )
    return cfg, dev


def stored(outbox: Path, dev: str) -> list[dict[str, Any]]:
    db = sqlite3.connect(outbox)
    try:
        rows = db.execute("SELECT rec FROM outbox WHERE dev = ? ORDER BY seq", (dev,)).fetchall()
    finally:
        db.close()
    return [decode_record(bytes(r[0])) for r in rows]


@pytest.fixture
def sim() -> Iterator[ElevatorSimulator]:
    s = ElevatorSimulator(CarModel(FAST, floor=1, runs=100, door_cycles=90, run_hours=12))
    yield s
    s.stop()


def check_all(recs: list[dict[str, Any]], dev: Device) -> None:
    v = default_validator()
    for r in recs:
        assert verify_mac(r, dev.key_for(r["seq"]))
        v.validate(r["kind"], r["body"])
    seqs = [r["seq"] for r in recs]
    assert seqs == list(range(1, len(seqs) + 1)), seqs  # each once, none missing


def fault_events(recs: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(r["body"]["fault"], r["body"]["state"]) for r in recs if r["kind"] == "elevator.fault"]


def test_records_faults_and_a_controller_that_goes_away(
    tmp_path: Path, sim: ElevatorSimulator
) -> None:
    cfg, dev = setup_agent(tmp_path, sim.start_tcp())
    agent = Agent(load_agent(cfg))
    agent.start()
    try:
        (src,) = agent.sources
        assert isinstance(src, ModbusElevator)
        outbox = agent.settings.outbox_path
        wait_until(lambda: src.state().state == "up", 20, "the source up")
        wait_until(lambda: len(stored(outbox, dev.dev)) >= 1, 20, "the first status stored")
        sim.call(4)
        sim.set_fault(8)  # power supply fault: power_loss after 300 ms
        wait_until(
            lambda: ("power_loss", "raised") in fault_events(stored(outbox, dev.dev)), 20, "raised"
        )
        sim.clear_faults()
        wait_until(
            lambda: ("power_loss", "cleared") in fault_events(stored(outbox, dev.dev)), 20, "clear"
        )
        # a power cut at the controller: down with the reason, up again by itself
        sim.power_off()
        wait_until(lambda: src.state().state == "down", 20, "the source down")
        assert "connect" in src.state().error or "answer" in src.state().error, src.state()
        sim.power_on()
        wait_until(lambda: src.state().state == "up", 20, "the source up again")
        # a controller that keeps the connection but never answers
        sim.silence(True)
        wait_until(lambda: src.state().state == "down", 20, "down while silent")
        assert "no answer" in src.state().error, src.state()
        sim.silence(False)
        wait_until(lambda: src.state().state == "up", 20, "up after the silence")
        # registers out of the map, then a Modbus exception: counted, survived, no record
        n = len(stored(outbox, dev.dev))
        sim.override([0xFFFF] * 12)
        wait_until(lambda: src.state().state == "down", 20, "down on registers out of the map")
        assert "not in" in src.state().error, src.state()
        sim.override(None)
        sim.answer_exception(4)
        wait_until(lambda: "exception 4" in src.state().error, 20, "a Modbus exception shown")
        sim.answer_exception(None)
        wait_until(lambda: src.state().state == "up", 20, "up after the bad answers")
        assert src.thread.is_alive() and len(stored(outbox, dev.dev)) >= n
        wait_until(lambda: src.journal.depth() == 0, 20, "every record acked out of the journal")
        c = src.state().counters
        assert c["reconnects"] == 3 and c["poll_errors"] >= 2 and c["polls"] > 10, c
        assert c["faults_raised"] == c["faults_cleared"] == 1, c
        assert c["acked"] == c["records"] and c.get("forged_acks", 0) == 0, c
        agent.write_status()
        text = format_status(read_status(outbox))
        assert "lift-a (modbus_elevator): up" in text, text
    finally:
        agent.stop()
    recs = stored(outbox, dev.dev)
    check_all(recs, dev)
    assert fault_events(recs) == [("power_loss", "raised"), ("power_loss", "cleared")]
    status = [r["body"] for r in recs if r["kind"] == "elevator.status"]
    assert any(b["dir"] == "up" for b in status) and all("people" not in b for b in status)
    assert {r["boot"] for r in recs} == {1}


def run_until_records(cfg: Path, dev: Device, sim: ElevatorSimulator, floor: int, n: int) -> None:
    """Start an agent, send the car to ``floor``, stop once ``n`` more records are stored."""
    agent = Agent(load_agent(cfg))
    agent.start()
    try:
        (src,) = agent.sources
        wait_until(lambda: src.state().state == "up", 20, "the source up")
        sim.call(floor)
        before = len(stored(agent.settings.outbox_path, dev.dev))
        wait_until(
            lambda: len(stored(agent.settings.outbox_path, dev.dev)) >= before + n, 30, "records"
        )
    finally:
        agent.stop()


def test_a_restarted_agent_offers_its_journal_again_and_continues_the_seqs(
    tmp_path: Path, sim: ElevatorSimulator
) -> None:
    cfg, dev = setup_agent(tmp_path, sim.start_pty())  # Modbus RTU on a pty
    run_until_records(cfg, dev, sim, 3, 3)
    run_until_records(cfg, dev, sim, 0, 3)
    recs = stored(tmp_path / "agent" / "outbox.sqlite", dev.dev)
    check_all(recs, dev)
    assert sorted({r["boot"] for r in recs}) == [1, 2]


def test_bad_source_config_is_named(tmp_path: Path) -> None:
    cfg, _ = setup_agent(tmp_path, "tcp://127.0.0.1:1", reg="31103301062015", poll_s=0)
    problems: list[ConfigError] = []
    load_agent(cfg, problems)
    assert sorted(p.key for p in problems) == ["sources[0].poll_s", "sources[0].reg"], problems
    with pytest.raises(ConfigError, match="sources\\[0\\]"):
        load_agent(cfg)


def test_an_identity_of_another_type_stops_start_up(tmp_path: Path) -> None:
    cfg, dev = setup_agent(tmp_path, "tcp://127.0.0.1:1")
    ident = tmp_path / "trust" / f"{dev.dev}.json"
    ident.write_text(json.dumps({**json.loads(ident.read_text()), "type": "market-scale"}))
    with pytest.raises(ConfigError, match="elevator-box"):
        Agent(load_agent(cfg))


def test_the_commented_example_in_the_agent_config_parses(tmp_path: Path) -> None:
    example = (Path(__file__).resolve().parents[2] / "config" / "agent.example.toml").read_text()
    lines = example.splitlines()
    start = lines.index("# [[sources]]")
    table = [
        ln[2:]
        for ln in lines[start:]
        if (ln.startswith("# ") and "=" in ln) or ln == "# [[sources]]"
    ]
    path = tmp_path / "agent.toml"
    path.write_text(example + "\n" + "\n".join(table) + "\n")
    src, *wired = load_agent(path, files=False).sources  # then the serial_link examples
    assert [w.kind for w in wired] == ["serial_link", "serial_link"]
    assert (src.kind, src.name) == ("modbus_elevator", "lift-a")
    assert src.settings.car.floors[0] == (-1, 0) and src.settings.poll_s == 0.5


def test_unplug_and_replug_the_rs485_adapter(tmp_path: Path, sim: ElevatorSimulator) -> None:
    """Unplugged, the line goes dead and the device node disappears (a symlink to the pty
    stands for /dev/ttyUSB0); plugged back, polling resumes by itself."""
    port = tmp_path / "ttyUSB0"
    port.symlink_to(sim.start_pty())
    cfg, dev = setup_agent(tmp_path, str(port))
    agent = Agent(load_agent(cfg))
    agent.start()
    try:
        (src,) = agent.sources
        wait_until(lambda: src.state().state == "up", 20, "the source up")
        target = port.readlink()
        port.unlink()
        sim.power_off()
        wait_until(lambda: "no such port" in src.state().error, 20, "down: no such port")
        assert src.state().state == "down" and str(port) in src.state().error
        port.symlink_to(target)
        sim.power_on()
        wait_until(lambda: src.state().state == "up", 20, "up again once plugged back")
        assert src.state().counters["reconnects"] == 1
        wait_until(lambda: src.journal.depth() == 0, 20, "every record acked")
    finally:
        agent.stop()
    check_all(stored(tmp_path / "agent" / "outbox.sqlite", dev.dev), dev)


class AckingHost:
    """The agent's side of the seam reduced to its answer: every record offered is acked
    (sealed with the device key, as the intake does after its commit) except the seqs in
    ``lose_once`` the first time, and forged acks (another key) are sent beside."""

    prefix = ""

    def __init__(self, dev: Device, lose_once: set[int]) -> None:
        self.dev = dev
        self.lose_once = set(lose_once)
        self.offered: list[int] = []
        self.source: ModbusElevator | None = None

    def offer(self, topic: str, payload: bytes) -> None:
        rec = decode_record(payload)
        seq = int(rec["seq"])  # type: ignore[call-overload]
        self.offered.append(seq)
        assert self.source is not None and topic == topics.terminal_rec(self.dev.dev)
        ack = topics.terminal_ack(self.dev.dev)
        self.source.deliver(
            ack, auth.terminal_ack(self.dev.dev, seq, [(seq, seq)], [], b"x" * 32), False
        )
        if seq in self.lose_once:
            self.lose_once.discard(seq)
            return
        self.source.deliver(
            ack, auth.terminal_ack(self.dev.dev, seq, [(seq, seq)], [], self.dev.key), False
        )

    def gate(self, topic: str, payload: bytes) -> None:
        raise AssertionError("no gate requests from a controller")

    def dispatch(self, topic: str, payload: bytes) -> None:
        raise AssertionError("no dispatch requests from a controller")


def test_an_unacked_record_is_offered_again_after_the_ack_timeout(
    tmp_path: Path, sim: ElevatorSimulator
) -> None:
    dev = new_device("elevator-box", SITE)
    identity = write_secret(
        tmp_path / "id.json", json.dumps(device_config(dev, "127.0.0.1", 0)).encode()
    )
    raw = source_table(sim.start_tcp(), identity, ack_timeout_s=1.0)
    for k in ("kind", "name"):
        raw.pop(k)
    settings = modbus_elevator.parse(Section(str(tmp_path / "a.toml"), "sources[0]", raw))
    host = AckingHost(dev, {2})
    src = modbus_elevator.build("lift", settings, host, tmp_path / "agent")
    host.source = src
    src.start()
    try:
        sim.call(3)
        wait_until(lambda: host.offered.count(2) == 2, 20, "seq 2 offered again")
        wait_until(lambda: src.journal.depth() == 0, 20, "everything acked")
    finally:
        src.stop()
    c = src.state().counters
    assert c["resends"] >= 1 and c["forged_acks"] == len(host.offered), c
    assert c["acked"] == c["records"] == max(host.offered), c
    assert sorted(set(host.offered)) == list(range(1, max(host.offered) + 1))


def test_a_hosted_device_with_a_rotated_key_signs_each_seq_with_its_key(
    tmp_path: Path, sim: ElevatorSimulator
) -> None:
    cfg, dev = setup_agent(tmp_path, sim.start_tcp(), rotate_at=4)
    assert len(dev.keys) == 2
    agent = Agent(load_agent(cfg))
    agent.start()
    try:
        (src,) = agent.sources
        wait_until(lambda: src.state().state == "up", 20, "the source up")
        sim.call(5)
        wait_until(lambda: len(stored(agent.settings.outbox_path, dev.dev)) >= 8, 30, "records")
        wait_until(lambda: src.journal.depth() == 0, 20, "acked under both keys")
    finally:
        agent.stop()
    recs = stored(tmp_path / "agent" / "outbox.sqlite", dev.dev)
    check_all(recs, dev)
    assert not verify_mac(recs[0], dev.key) and verify_mac(recs[-1], dev.key)
