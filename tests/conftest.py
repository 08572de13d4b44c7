"""Fixtures that start real peers: Mosquitto (or amqtt) on a free port, the fake platform,
the collector and the edge agent as child processes, simulated terminals.

A test that cannot get its component fails with a message saying what to install.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

from collector.store import read_summary
from edge_agent.status import read_status
from hostlib.errors import StoreError
from hostlib.mqttlink import BrokerSettings
from hostlib.registry import Device, add_devices
from simulators.fleet import Fleet
from simulators.platform import PlatformServer
from tests.pg import PgCluster, PgUnavailable, create_database, drop_database, server_url
from tests.stores import StoreUnderTest, store_of
from traceedge.brokers import MOSQUITTO_HINT, Broker, find_mosquitto, free_port
from traceedge.launch import Role, agent_config, collector_config
from traceedge.provision import SiteTrust, new_device, site_trust

# Hypothesis profiles. ``ci`` (the default): 1,000 examples per property, derandomised so a
# run is repeatable (a checksum collision found once is not a flaky failure). ``nightly``
# (``HYPOTHESIS_PROFILE=nightly``): 10,000 examples from a fresh seed each run, to find
# what the fixed CI examples cannot.
settings.register_profile("ci", max_examples=1000, derandomize=True, deadline=None)
settings.register_profile("nightly", max_examples=10_000, derandomize=False, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

SITE = "T01"


def wait_until(cond: Callable[[], bool], timeout: float, what: str, every: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def require_mosquitto() -> None:
    if find_mosquitto() is None:
        pytest.fail(f"mosquitto binary not found: {MOSQUITTO_HINT}", pytrace=False)


@dataclass
class Chain:
    """One site's whole chain; every part can be killed and restarted by the test."""

    root: Path
    broker: Broker
    central: Broker
    platform: PlatformServer
    devices: list[Device]
    registry: Path
    agent: Role
    collectors: list[Role]
    trust: SiteTrust
    fleets: list[Fleet] = field(default_factory=list)
    store_url: str | None = None  # the collectors' PostgreSQL store; None: SQLite in root
    _pg: Any = None  # a PostgresStore the test reads the shared store through

    @property
    def store(self) -> Path:
        return self.root / "collector" / "collector.sqlite"

    @property
    def outbox(self) -> Path:
        return self.root / "agent" / "outbox.sqlite"

    def collector_stats(self) -> dict[str, Any]:
        """The store's summary; empty while it cannot be read (as for SQLite)."""
        if self.store_url is None:
            return read_summary(self.store)
        from collector.pgstore import PostgresStore

        try:
            if self._pg is None:
                self._pg = PostgresStore(self.store_url, timeout_s=2.0)
            summary: dict[str, Any] = self._pg.summary()
            return summary
        except StoreError:
            return {}

    def agent_status(self) -> dict[str, Any]:
        return read_status(self.outbox)

    def platform_stats(self) -> dict[str, int]:
        return self.platform.platform.stats()

    def fleet(self, devices: list[Device] | None = None, **kw: Any) -> Fleet:
        f = Fleet(
            BrokerSettings(port=self.broker.port),
            devices or self.devices,
            client_id=f"fleet-{len(self.fleets)}",
            **kw,
        )
        self.fleets.append(f)
        return f

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Agent subscribed to its terminals, every collector to the batches."""

        def ready() -> bool:
            try:
                a = self.agent_status()
            except Exception:
                return False
            procs = self.collector_stats().get("processes", {})
            live = [p for p in procs.values() if p["running"] and p["connected"]]
            return bool(a["local_connected"]) and len(live) >= len(self.collectors)

        try:
            wait_until(ready, timeout, "agent and collectors to connect")
        except AssertionError as exc:
            raise AssertionError(
                f"{exc}\nagent log:\n{self.agent.log_tail()}\n"
                f"collector log:\n{self.collectors[0].log_tail()}"
            ) from None

    def wait_forwarded(self, n: int, timeout: float = 120.0) -> None:
        try:
            wait_until(
                lambda: self.platform_stats()["records"] >= n,
                timeout,
                f"{n} records at the platform",
            )
        except AssertionError as exc:
            raise AssertionError(
                f"{exc}\nplatform {self.platform_stats()}\ncollector {self.collector_stats()}"
                f"\nagent log:\n{self.agent.log_tail()}\ncollector log:\n"
                f"{self.collectors[0].log_tail()}"
            ) from None

    def assert_exactly_once(self, generated: int) -> None:
        p = self.platform_stats()
        c = self.collector_stats()
        assert p["records"] == generated, p
        assert p["duplicate_records"] == 0, p
        assert c["records"] == generated, c
        assert c["gaps"] == 0, c
        assert c["quarantined"] == 0, c["quarantine_by_reason"]


def make_chain(
    root: Path,
    broker_kind: str = "mosquitto",
    separate_central: bool = False,
    collectors: int = 1,
    devices_per_type: int = 2,
    agent_overrides: dict[str, Any] | None = None,
    uplink_overrides: dict[str, Any] | None = None,
    platform_overrides: dict[str, Any] | None = None,
    api_port: int = 0,
    public: dict[str, Any] | None = None,
    store_url: str | None = None,
    store_urls: list[str] | None = None,
    sources: list[dict[str, Any]] | None = None,
    extra_devices: list[Device] | None = None,
) -> Chain:
    """``sources``: the agent's ``[[sources]]`` tables; ``extra_devices``: devices registered
    beside the fleet's (the terminals on those sources, say).
    ``store_url``: the PostgreSQL database every collector shares (and the test reads);
    ``store_urls``: each collector's own URL of it instead (one through a proxy, say);
    ``platform_overrides``: the collectors' ``[platform]`` settings (``batch_records``…)."""
    if broker_kind == "mosquitto":
        require_mosquitto()
    registry = root / "registry" / "devices.json"
    devices = [
        new_device(t, SITE)
        for t in ("cylinder-reader", "elevator-box", "market-scale")
        for _ in range(devices_per_type)
    ]
    add_devices(registry, devices + list(extra_devices or []), int(time.time()))
    agent_overrides = dict(agent_overrides or {})
    # the gateway's identity (batch acks, status, the records it makes) and the command keys
    trust = site_trust(root, registry, SITE)
    broker = Broker(broker_kind, free_port(), root / "broker").start()
    central = (
        Broker(broker_kind, free_port(), root / "central").start() if separate_central else broker
    )
    platform = PlatformServer(port=0, seed=7).start()
    roles = []
    for i in range(collectors):
        cfg = collector_config(
            root / f"collector-{i}.toml",
            root / "collector",
            registry,
            central.port,
            platform.url,
            shared=broker_kind == "mosquitto",
            client_id=f"collector-{i}",
            api_port=api_port if i == 0 else 0,
            public=public if i == 0 else None,
            command_key=trust.command_key,
            store_url=store_urls[i] if store_urls else store_url,
            platform=platform_overrides,
        )
        roles.append(Role("collector", cfg, root / f"collector-{i}.log").start())
    acfg = agent_config(
        root / "agent.toml",
        SITE,
        root / "agent",
        broker.port,
        central.port,
        devices=trust.agent_devices,
        identity=trust.identity,
        command_key=trust.command_pub,
        agent=agent_overrides,
        uplink=uplink_overrides,
        sources=sources,
    )
    agent = Role("agent", acfg, root / "agent.log").start()
    ch = Chain(
        root, broker, central, platform, devices, registry, agent, roles, trust, store_url=store_url
    )
    try:
        ch.wait_ready()
    except BaseException:
        stop_chain(ch)  # a chain that never came up leaves no process behind
        raise
    return ch


def stop_chain(ch: Chain) -> None:
    for f in ch.fleets:
        f.stop()
    ch.agent.stop()
    for c in ch.collectors:
        c.stop()
    ch.platform.stop()
    ch.broker.stop()
    if ch.central is not ch.broker:
        ch.central.stop()
    if ch._pg is not None:
        ch._pg.close()


@pytest.fixture
def chain_factory(tmp_path: Path) -> Iterator[Callable[..., Chain]]:
    made: list[Chain] = []

    def make(**kw: Any) -> Chain:
        ch = make_chain(tmp_path / f"chain{len(made)}", **kw)
        made.append(ch)
        return ch

    yield make
    for ch in made:
        stop_chain(ch)


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh, empty database on the machine's PostgreSQL, dropped after the test."""
    try:
        url = create_database(server_url())
    except PgUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        yield url
    finally:
        drop_database(url)


@pytest.fixture
def pg_cluster() -> Iterator[PgCluster]:
    """A private PostgreSQL cluster, started, that the test may stop, kill and restart."""
    try:
        cluster = PgCluster().start()
    except PgUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        yield cluster
    finally:
        cluster.close()


@pytest.fixture(params=["sqlite", "postgres"])
def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreUnderTest]:
    """An empty store, once on SQLite and once on PostgreSQL (tests/stores.py)."""
    sut = store_of(request.param, tmp_path)
    try:
        yield sut
    finally:
        sut.close()
