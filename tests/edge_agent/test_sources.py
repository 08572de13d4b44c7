"""The agent's sources: config, the router, and a real agent taking a source's records.

The source kind here is a small one of the test's own (a queue of records it was handed),
registered for the test: what is checked is the agent's side of the seam (its records go
through the real intake and outbox, its acks come back sealed to it and never to the
broker, its state shows in ``agent status`` and ``/metrics``); the real kinds have their
own end-to-end tests.
"""

from __future__ import annotations

import json
import queue
import random
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from edge_agent.agent import Agent
from edge_agent.settings import load_agent
from edge_agent.sources import kinds
from edge_agent.sources.base import Source, SourceHost, SourceSet
from edge_agent.status import format_status, read_status
from hostlib.config import Section
from hostlib.errors import ConfigError
from hostlib.registry import Device, add_devices
from simulators.records import make_body
from tests.conftest import wait_until
from traceedge.brokers import free_port
from traceedge.launch import agent_config
from traceedge.provision import new_device, site_trust
from wire import auth, topics
from wire.canonical import canonical
from wire.envelope import make_record

SITE = "W01"


@dataclass(frozen=True)
class QueueSettings:
    devices: tuple[str, ...]


class QueueSource(Source):
    """Offers what ``feed`` is given; keeps what the agent delivers."""

    kind = "test_queue"

    def __init__(self, name: str, host: SourceHost, devices: tuple[str, ...]) -> None:
        super().__init__(name, host)
        self._devices = frozenset(devices)
        self.feed: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self.delivered: list[tuple[str, bytes, bool]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"source-{name}", daemon=True)

    def devices(self) -> frozenset[str]:
        return self._devices

    def deliver(self, topic: str, payload: bytes, retain: bool) -> None:
        self.delivered.append((topic, payload, retain))

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    @property
    def thread(self) -> threading.Thread:
        return self._thread

    def _run(self) -> None:
        self.set_state("up")
        while not self._stop.is_set():
            try:
                topic, payload = self.feed.get(timeout=0.1)
            except queue.Empty:
                continue
            self.host.offer(topic, payload)
            self.count("records")


BUILT: list[QueueSource] = []


def _parse(s: Section) -> QueueSettings:
    return QueueSettings(tuple(s.get("devices", list)))


def _build(name: str, st: QueueSettings, host: SourceHost, data_dir: Path) -> Source:
    BUILT.append(QueueSource(name, host, st.devices))
    return BUILT[-1]


@pytest.fixture
def test_kind(monkeypatch: pytest.MonkeyPatch) -> None:
    BUILT.clear()
    monkeypatch.setitem(kinds.KINDS, "test_queue", kinds.Kind(_parse, _build, "a test's"))


def _config(tmp_path: Path, sources: list[dict[str, Any]], dev: Device, metrics: int = 0) -> Path:
    registry = tmp_path / "registry" / "devices.json"
    add_devices(registry, [dev], 0)
    trust = site_trust(tmp_path, registry, SITE)
    unused = free_port()  # no broker: a source's answers must not need one
    return agent_config(
        tmp_path / "agent.toml",
        SITE,
        tmp_path / "agent",
        unused,
        unused,
        devices=trust.agent_devices,
        identity=trust.identity,
        command_key=trust.command_pub,
        agent={"metrics_port": metrics} if metrics else None,
        sources=sources,
    )


def test_sources_are_read_from_the_config(tmp_path: Path, test_kind: None) -> None:
    dev = new_device("elevator-box", SITE)
    cfg = _config(tmp_path, [{"kind": "test_queue", "name": "bus-1", "devices": [dev.dev]}], dev)
    st = load_agent(cfg)
    assert [(c.kind, c.name, c.settings) for c in st.sources] == [
        ("test_queue", "bus-1", QueueSettings((dev.dev,)))
    ]


@pytest.mark.parametrize(
    ("tables", "key", "says"),
    [
        ([{"kind": "nonesuch"}], "sources[0].kind", "unknown source kind 'nonesuch'"),
        ([{"name": "x"}], "sources[0].kind", "is required"),
        ([{"kind": "test_queue", "devices": [], "speed": 3}], "sources[0].speed", "unknown key"),
        (
            [{"kind": "test_queue", "name": "a", "devices": []}] * 2,
            "sources[1].name",
            "another source is named 'a'",
        ),
        ([{"kind": "test_queue", "name": "a b", "devices": []}], "sources[0].name", "letters"),
    ],
)
def test_a_bad_source_table_is_named(
    tmp_path: Path, test_kind: None, tables: list[dict[str, Any]], key: str, says: str
) -> None:
    cfg = _config(tmp_path, tables, new_device("elevator-box", SITE))
    with pytest.raises(ConfigError) as err:
        load_agent(cfg)
    assert err.value.key == key and says in str(err.value), str(err.value)
    problems: list[ConfigError] = []
    load_agent(cfg, problems)  # `config check` collects it with the rest
    assert [p.key for p in problems] == [key]


def test_the_router_sends_a_sources_devices_there_and_the_rest_to_the_broker() -> None:
    class Host:
        prefix = "p"

        def offer(self, topic: str, payload: bytes) -> None: ...

        def gate(self, topic: str, payload: bytes) -> None: ...

        def dispatch(self, topic: str, payload: bytes) -> None: ...

    src = QueueSource("s", Host(), ("EL-W01-AAAAAA",))
    published: list[tuple[str, bytes, bool]] = []

    def publish(t: str, p: bytes, r: bool) -> bool:
        published.append((t, p, r))
        return True

    sources = SourceSet([src], "p")
    for dev in ("EL-W01-AAAAAA", "EL-W01-BBBBBB"):
        assert sources.route(topics.terminal_ack(dev, "p"), b"a", False, publish)
        assert sources.route(topics.terminal_cmd(dev, "p"), b"c", True, publish)
    assert sources.route("p/edge/W01/status", b"s", True, publish)  # not a terminal's topic
    assert src.delivered == [
        ("p/t/EL-W01-AAAAAA/ack", b"a", False),
        ("p/t/EL-W01-AAAAAA/cmd", b"c", True),
    ]
    assert [t for t, _, _ in published] == [
        "p/t/EL-W01-BBBBBB/ack",
        "p/t/EL-W01-BBBBBB/cmd",
        "p/edge/W01/status",
    ]
    with pytest.raises(ValueError, match="two sources are named s"):
        SourceSet([src, src], "p")


def _record(dev: Device, seq: int) -> bytes:
    body = make_body("elevator.status", random.Random(seq), dev.dev, seq, SITE)
    rec = make_record(
        dev.dev, seq, 1, "elevator.status", int(time.time() * 1000), "ntp", body, dev.key
    )
    return canonical(rec)


def test_an_agent_takes_a_sources_records_and_answers_it_alone(
    tmp_path: Path, test_kind: None
) -> None:
    dev = new_device("elevator-box", SITE)
    port = free_port()
    cfg = _config(
        tmp_path, [{"kind": "test_queue", "name": "box", "devices": [dev.dev]}], dev, port
    )
    agent = Agent(load_agent(cfg))
    agent.start()
    try:
        (src,) = BUILT
        for seq in (1, 2, 3):
            src.feed.put((topics.terminal_rec(dev.dev), _record(dev, seq)))
        wait_until(lambda: len(src.delivered) >= 1, 20, "the agent's ack to the source")
        wait_until(
            lambda: any(
                auth.open_terminal_ack(p, dev.dev, [dev.key])[0] == 3 for _, p, _ in src.delivered
            ),
            20,
            "an ack up to seq 3",
        )
        assert all(t == topics.terminal_ack(dev.dev) and not r for t, _, r in src.delivered)
        assert agent.outbox.depth()[0] == 3
        agent.write_status()
        st = read_status(agent.settings.outbox_path)
        (shown,) = st["sources"]
        assert (shown["name"], shown["kind"], shown["state"]) == ("box", "test_queue", "up")
        assert shown["counters"] == {"records": 3}
        text = format_status(st)
        assert "source      box (test_queue): up since" in text and "records 3" in text
        body = (
            urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
        )
        assert (
            f'traceedge_agent_source_up{{kind="test_queue",site="{SITE}",source="box"}} 1.0' in body
        )
        assert (
            f'traceedge_agent_source_events_total{{counter="records",kind="test_queue",'
            f'site="{SITE}",source="box"}} 3.0'
        ) in body
        assert "source:box" in agent.workers()
    finally:
        agent.stop()
    # what it did is still there for `agent status` after it stopped
    st = read_status(tmp_path / "agent" / "outbox.sqlite")
    assert st["sources"][0]["counters"] == {"records": 3}
    assert json.loads(json.dumps(st["sources"]))  # plain JSON
