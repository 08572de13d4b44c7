"""The ``serial_link`` source on its own: its config, and its behaviour against terminal
simulators behind real ptys (pyserial on one end), with an in-test host standing in for the
agent's intake (it seals an ack per record with the device key, as the agent does after
its commit). The agent itself is in tests/e2e/test_serial_link.py."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest

from edge_agent.settings import load_agent
from edge_agent.sources.serial_link import SerialLinkSource, Settings, parse
from hostlib.config import Section
from hostlib.errors import ConfigError
from hostlib.registry import Device, add_devices
from simulators.slink_sim import SerialLinkSim
from tests.conftest import wait_until
from traceedge.brokers import free_port
from traceedge.launch import agent_config
from traceedge.provision import new_device, site_trust
from wire import auth, topics

SITE = "W01"


def _parse(table: dict[str, Any]) -> Settings:
    s = Section("agent.toml", "sources[0]", table)
    st = parse(s)
    s.used |= {"kind", "name"}
    s.finish()
    return st


def test_point_to_point_and_bus_configs() -> None:
    p = _parse({"port": "/dev/ttyUSB0", "devices": ["ELV-1"]})
    assert not p.bus and p.devices == (("ELV-1", 0),) and p.baudrate == 115200
    b = _parse({"port": "/dev/ttyS1", "devices": {"ELV-1": 1, "ELV-2": 9}, "rto_ms": 80})
    assert b.bus and b.devices == (("ELV-1", 1), ("ELV-2", 9)) and b.rto_ms == 80


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"devices": ["A"]}, "sources[0].port: is required"),
        ({"port": "/dev/x"}, "sources[0].devices: is required"),
        ({"port": "/dev/x", "devices": ["A", "B"]}, "exactly one terminal"),
        ({"port": "/dev/x", "devices": {"A": 1, "B": 1}}, "distinct integers 1..254"),
        ({"port": "/dev/x", "devices": {"A": 0}}, "distinct integers 1..254"),
        ({"port": "/dev/x", "devices": {"A": 255}}, "distinct integers 1..254"),
        ({"port": "/dev/x", "devices": ["A"], "rto_ms": 0}, "rto_ms: must be 1..10000 ms"),
        ({"port": "/dev/x", "devices": ["A"], "parity": "E"}, "parity: unknown key"),
    ],
)
def test_bad_config_names_the_key(table: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace(".", r"\.").replace("[", r"\[")):
        _parse(table)


def test_agent_config_with_a_serial_link(tmp_path: Path) -> None:
    dev = new_device("elevator-box", SITE)
    registry = tmp_path / "registry" / "devices.json"
    add_devices(registry, [dev], 0)
    trust = site_trust(tmp_path, registry, SITE)
    port = free_port()
    cfg = agent_config(
        tmp_path / "agent.toml",
        SITE,
        tmp_path / "agent",
        port,
        port,
        devices=trust.agent_devices,
        identity=trust.identity,
        command_key=trust.command_pub,
        sources=[{"kind": "serial_link", "name": "rs485-1", "port": "/dev/ttyUSB9",
                  "devices": {dev.dev: 3}}],
    )  # fmt: skip
    st = load_agent(cfg)
    (src,) = st.sources
    assert (src.kind, src.name, src.settings.devices) == ("serial_link", "rs485-1", ((dev.dev, 3),))


class Host:
    """The agent's side of the seam, as far as this source needs it: each record offered
    is kept and acknowledged (sealed with its device's key); gate requests kept; dispatch
    requests kept and, when ``answer`` is set, answered as the agent's dispatch gate does (a
    sealed ``t: gate`` answer on ``t/{dev}/cmd``, echoing the request's id and nonce)."""

    prefix = ""

    def __init__(self, devices: list[Device], ack: bool = True) -> None:
        self.keys = {d.dev: d.key for d in devices}
        self.records: dict[tuple[str, int], bytes] = {}
        self.offers = 0
        self.gates: list[tuple[str, bytes]] = []
        self.dispatches: list[tuple[str, bytes]] = []
        self.answer: str | None = None  # "allow" / "deny": answer dispatch requests
        self.ack = ack
        self.src: SerialLinkSource | None = None
        self.lock = threading.Lock()

    def offer(self, topic: str, payload: bytes) -> None:
        rec = json.loads(payload)
        dev = topics.split(topic)[1]
        assert dev == rec["dev"]
        with self.lock:
            self.offers += 1
            self.records.setdefault((dev, rec["seq"]), payload)
        if self.ack and self.src is not None:
            ack = auth.terminal_ack(dev, 0, [(rec["seq"], rec["seq"])], [], self.keys[dev])
            self.src.deliver(topics.terminal_ack(dev), ack, False)

    def gate(self, topic: str, payload: bytes) -> None:
        self.gates.append((topic, payload))

    def dispatch(self, topic: str, payload: bytes) -> None:
        with self.lock:
            self.dispatches.append((topic, payload))
        if self.answer is None or self.src is None:
            return
        dev = topics.split(topic, self.prefix)[1]
        req = json.loads(payload)
        assert auth.check_dispatch_request(req, dev, [self.keys[dev]])
        reasons = [] if self.answer == "allow" else ["no_licence"]
        ans = auth.gate_answer(dev, req["id"], req["n"], self.answer, reasons, 1, self.keys[dev], 7)
        self.src.deliver(topics.terminal_cmd(dev, self.prefix), ans, False)


def _source(host: Host, port: str, devices: tuple[tuple[str, int], ...]) -> SerialLinkSource:
    st = Settings(port, 115200, devices, 120, 2.0, 0.5, 64, 0.5)
    src = SerialLinkSource("wired", host, st)
    host.src = src
    src.start()
    return src


def test_garbage_and_corrupt_frames_are_counted_and_survived(tmp_path: Path) -> None:
    dev = new_device("elevator-box", SITE)
    host = Host([dev])
    link = str(tmp_path / "tty")
    with SerialLinkSim([dev], link=link, resend_after_s=2.0) as sim:
        src = _source(host, link, ((dev.dev, 0),))
        try:
            sim.produce(30)
            wait_until(lambda: len(host.records) >= 10, 20, "records flowing")
            sim.noise_next(b"\x7e\x01\x09\xff\xff" + bytes(range(200)))
            sim.corrupt_next(3, after=2)
            sim.produce(30)
            wait_until(lambda: sim.pending() == 0, 30, "every record acknowledged")
            st = src.state()
            assert st.state == "up" and src.thread.is_alive()
            assert st.counters["bad_frames"] >= 1, st.counters
        finally:
            src.stop()
    assert len(host.records) == 60


def test_a_record_of_a_device_not_on_the_port_is_counted_not_offered(tmp_path: Path) -> None:
    mine, other = new_device("elevator-box", SITE), new_device("elevator-box", SITE)
    host = Host([mine, other])
    link = str(tmp_path / "tty")
    with SerialLinkSim([other], link=link) as sim:  # wired where `mine` should be
        src = _source(host, link, ((mine.dev, 0),))
        try:
            sim.produce(3)
            wait_until(lambda: src.state().counters["foreign_records"] >= 3, 20, "3 counted")
        finally:
            src.stop()
    assert host.offers == 0


def test_retained_command_again_after_the_terminal_restarts(tmp_path: Path) -> None:
    dev = new_device("elevator-box", SITE)
    host = Host([dev])
    link = str(tmp_path / "tty")
    with SerialLinkSim([dev], link=link) as sim:
        src = _source(host, link, ((dev.dev, 0),))
        try:
            wait_until(lambda: src.state().state == "up", 20, "the link up")
            cmd = auth.stop_list(dev.dev, 1, [], dev.key)
            src.deliver(topics.terminal_cmd(dev.dev), cmd, True)
            t = sim.terminal(dev.dev)
            wait_until(lambda: t.cmds == [cmd], 20, "the command delivered")
            with sim.lock:  # the terminal reboots: a new link layer, which says HELLO
                t.ep = sim._endpoint(t)
            wait_until(lambda: t.cmds == [cmd, cmd], 20, "the command again after HELLO")
            assert src.state().counters["hellos"] >= 2
        finally:
            src.stop()


def test_rs485_bus_frames_go_to_the_right_terminal(tmp_path: Path) -> None:
    devs = [new_device("elevator-box", SITE) for _ in range(3)]
    host = Host(devs)
    link = str(tmp_path / "bus")
    with SerialLinkSim(devs, addrs=[4, 5, 6], link=link) as sim:
        src = _source(host, link, tuple((d.dev, a) for d, a in zip(devs, [4, 5, 6], strict=True)))
        try:
            sim.produce(25)
            wait_until(lambda: sim.pending() == 0, 30, "every record acknowledged")
            for d in devs:
                assert sim.terminal(d.dev).stats.forged_acks == 0  # acks reached their owner
            sim.silent = True
            wait_until(lambda: "silent" in src.state().error, 20, "the bus shown silent")
            assert src.state().state == "down"
        finally:
            src.stop()
    assert sorted(host.records) == sorted((d.dev, s) for d in devs for s in range(1, 26))


def test_port_missing_at_start_then_plugged_in(tmp_path: Path) -> None:
    dev = new_device("elevator-box", SITE)
    host = Host([dev])
    link = str(tmp_path / "tty")
    src = _source(host, link, ((dev.dev, 0),))
    try:
        wait_until(lambda: "no such port" in src.state().error, 10, "the reason shown")
        assert src.state().state == "down"
        with SerialLinkSim([dev], link=link) as sim:
            sim.produce(5)
            wait_until(lambda: sim.pending() == 0, 30, "every record acknowledged")
            assert src.state().state == "up"
    finally:
        src.stop()
    assert src.state().state == "stopped"


def test_what_cannot_be_carried_is_counted_and_dropped() -> None:
    dev = new_device("elevator-box", SITE)
    src = SerialLinkSource(
        "w", Host([dev]), Settings("/dev/null", 9600, ((dev.dev, 0),), 100, 2.0, 1.0, 3, 1.0)
    )
    src.deliver(topics.terminal_cmd(dev.dev), b"x" * 16385, True)  # longer than a frame
    src.deliver(topics.terminal_rec(dev.dev), b"{}", False)  # not ack / cmd
    src.deliver(topics.terminal_ack("OTHER-1"), b"{}", False)  # not this port's device
    for i in range(5):  # the queue holds 3: the oldest go
        src.deliver(topics.terminal_ack(dev.dev), b"%d" % i, False)
    c = src.state().counters
    assert (c["too_long"], c["unroutable"], c["out_dropped"]) == (1, 2, 2), c
    assert [p for _, p in src._out[dev.dev]] == [b"2", b"3", b"4"]
    assert src._retained[dev.dev] == {}


def test_a_full_intake_is_not_a_silent_terminal(tmp_path: Path) -> None:
    """While the agent's intake is full the source waits in offer() and polls nobody; the
    terminals' silence then is the agent's, not theirs: never shown as silent."""
    import time

    dev = new_device("elevator-box", SITE)

    class SlowHost(Host):
        def offer(self, topic: str, payload: bytes) -> None:
            if not self.records:
                time.sleep(3.0)  # longer than silent_s (2 s)
            super().offer(topic, payload)

    host = SlowHost([dev])
    link = str(tmp_path / "tty")
    errors: list[str] = []
    with SerialLinkSim([dev], link=link) as sim:
        src = _source(host, link, ((dev.dev, 0),))
        try:
            sim.produce(3)
            deadline = time.monotonic() + 20
            while sim.pending() and time.monotonic() < deadline:
                errors.append(src.state().error)
                time.sleep(0.05)
            assert sim.pending() == 0
        finally:
            src.stop()
    assert not [e for e in errors if "silent" in e], sorted(set(errors))


def test_the_commented_examples_in_the_agent_config_parse(tmp_path: Path) -> None:
    example = (Path(__file__).resolve().parents[2] / "config" / "agent.example.toml").read_text()
    lines = example.splitlines()
    start = lines.index(
        "# docs/serial-link.md). Their records go through the same intake, outbox and sealed acks."
    )
    table = [
        ln[2:]
        for ln in lines[start:]
        if (ln.startswith("# ") and "=" in ln) or ln == "# [[sources]]"
    ]
    path = tmp_path / "agent.toml"
    path.write_text(example + "\n" + "\n".join(table) + "\n")
    p2p, bus = load_agent(path, files=False).sources
    assert (p2p.kind, p2p.name, p2p.settings.devices) == (
        "serial_link",
        "elevator-uart",
        (("ELV-S001-7C21D0", 0),),
    )
    assert bus.settings.bus and bus.settings.devices[1] == ("ELV-S001-7C21D1", 2)


def test_a_terminal_heard_but_not_hearing_is_shown_so(tmp_path: Path) -> None:
    """The wire from the gateway to the terminal cut: its records still arrive, but the
    gateway's frames are never acknowledged; shown as such, not as a silent terminal."""
    dev = new_device("elevator-box", SITE)
    host = Host([dev])
    link = str(tmp_path / "tty")
    with SerialLinkSim([dev], link=link) as sim:
        sim.deaf = True
        src = _source(host, link, ((dev.dev, 0),))
        try:
            sim.produce(2)
            wait_until(
                lambda: "not acknowledged" in src.state().error, 20, "the one-way link shown"
            )
            assert src.state().state == "down"
            assert "silent" not in src.state().error
            sim.deaf = False
            wait_until(lambda: sim.pending() == 0, 30, "every record acknowledged once it hears")
            assert src.state().state == "up"
        finally:
            src.stop()


def _request(rid: int) -> dict[str, Any]:
    return {
        "id": rid,
        "n": f"{rid:032x}",
        "operator": "OP-1",
        "product_class": "chemical_toxic",
        "items": ["https://id.gs1.org/00/069300000000001234"],
        "quantity": 50000,
        "unit": "g",
        "licence": "JD-330200-2025-0042",
        "party": "Buyer",
    }


def _answers(cmds: list[bytes]) -> list[tuple[int, str]]:
    return [(m["id"], m["decision"]) for m in map(json.loads, cmds)]


def test_a_dispatch_request_reaches_the_dispatch_gate_and_its_answer_comes_back(
    tmp_path: Path,
) -> None:
    """A warehouse handheld on a point-to-point link asks twice (allowed, then denied):
    each DISPATCH frame is handed to the agent's dispatch gate as ``t/{dev}/dispatch``
    (under the local prefix), byte for byte, and each sealed answer reaches the handheld."""
    dev = new_device("warehouse-terminal", SITE)
    host = Host([dev])
    host.prefix = "lab"
    host.answer = "allow"
    link = str(tmp_path / "tty")
    with SerialLinkSim([dev], link=link) as sim:
        src = _source(host, link, ((dev.dev, 0),))
        try:
            sent = sim.ask_dispatch(dev.dev, _request(1))
            t = sim.terminal(dev.dev)
            wait_until(lambda: len(t.cmds) == 1, 20, "the allow back at the handheld")
            host.answer = "deny"
            sim.ask_dispatch(dev.dev, _request(2))
            wait_until(lambda: len(t.cmds) == 2, 20, "the deny back at the handheld")
            c = src.state().counters
        finally:
            src.stop()
    assert host.dispatches[0] == (f"lab/t/{dev.dev}/dispatch", sent)
    assert [tp for tp, _ in host.dispatches] == [topics.terminal_dispatch(dev.dev, "lab")] * 2
    assert _answers(t.cmds) == [(1, "allow"), (2, "deny")]
    assert auth.check_gate_answer(json.loads(t.cmds[1]), dev.dev, f"{2:032x}", [dev.key])
    assert json.loads(t.cmds[1])["reasons"] == ["no_licence"]
    assert (c["dispatches"], c["gates"], c["records"], c["cmds_out"]) == (2, 0, 0, 2), c
    assert c["foreign_dispatches"] == 0 and c["unexpected_frames"] == 0


def test_dispatch_requests_on_a_bus_go_to_the_gate_and_back_by_address(tmp_path: Path) -> None:
    devs = [new_device("warehouse-terminal", SITE) for _ in range(3)]
    host = Host(devs)
    host.answer = "allow"
    link = str(tmp_path / "bus")
    with SerialLinkSim(devs, addrs=[7, 8, 9], link=link) as sim:
        src = _source(host, link, tuple((d.dev, a) for d, a in zip(devs, [7, 8, 9], strict=True)))
        try:
            sim.ask_dispatch(devs[1].dev, _request(5))
            sim.ask_dispatch(devs[2].dev, _request(6))
            sim.produce(3, devs[0].dev)  # records on the same bus meanwhile
            wait_until(
                lambda: all(sim.terminal(d.dev).cmds for d in devs[1:]) and sim.pending() == 0,
                30,
                "both answers back and the records acknowledged",
            )
            c = src.state().counters
        finally:
            src.stop()
    assert sorted(tp for tp, _ in host.dispatches) == sorted(
        topics.terminal_dispatch(d.dev) for d in devs[1:]
    )
    assert _answers(sim.terminal(devs[1].dev).cmds) == [(5, "allow")]
    assert _answers(sim.terminal(devs[2].dev).cmds) == [(6, "allow")]
    assert sim.terminal(devs[0].dev).cmds == []
    assert c["dispatches"] == 2 and c["records"] == 3, c


def test_a_dispatch_request_of_a_device_not_on_the_port_is_counted_not_handed_on(
    tmp_path: Path,
) -> None:
    mine, other = new_device("warehouse-terminal", SITE), new_device("warehouse-terminal", SITE)
    host = Host([mine, other])
    host.answer = "allow"
    link = str(tmp_path / "tty")
    with SerialLinkSim([other], link=link) as sim:  # wired where `mine` should be
        src = _source(host, link, ((mine.dev, 0),))
        try:
            sim.ask_dispatch(other.dev, _request(1))
            sim.ask_dispatch(other.dev, _request(2))
            wait_until(lambda: src.state().counters["foreign_dispatches"] >= 2, 20, "2 counted")
            c = src.state().counters
        finally:
            src.stop()
    assert host.dispatches == [] and c["dispatches"] == 0
    assert sim.terminal(other.dev).cmds == []
