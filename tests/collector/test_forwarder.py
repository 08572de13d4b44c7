"""The forwarder counts a record forwarded only when the platform accepted a document carrying
it. A record the EPCIS mapper refuses is held with its reason (alarm, ``collector status``,
``GET /forwarding``) while the rest of its batch goes on; once a retry can express it, it is
delivered exactly once.

Real parts throughout: records signed by provisioned devices and verified as the collector's
intake verifies them, a SqliteStore, the forwarder, the fake platform over HTTP, the CLI.
"""

from __future__ import annotations

import json
import logging
import random
import sqlite3
import time
from collections import defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from collector.api import make_app
from collector.epcis import MAX_MS, EpcisError, event_id, record_to_event
from collector.forwarder import Forwarder
from collector.settings import PlatformSettings, load_collector
from collector.store import SqliteStore, read_summary
from collector.verify import verify_batch
from hostlib.registry import Device, Registry, add_devices, load_identity
from simulators.platform import PlatformServer
from simulators.records import BASE_MS, make_body
from tests.apiauth import admin_headers
from tests.conftest import wait_until
from traceedge.cli import main
from traceedge.cli.common import NOT_RUNNING
from traceedge.launch import collector_config
from traceedge.provision import new_device, site_trust
from wire.batch import encode_batch
from wire.canonical import canonical
from wire.envelope import KINDS, make_record
from wire.schemas import default_validator

SITE = "FW01"
DEVICE_TYPE = {
    "cylinder": "cylinder-reader",
    "elevator": "elevator-box",
    "market": "market-scale",
    "goods": "warehouse-terminal",
}
# The first millisecond of the year 10000: a clock gone wrong. The wire takes it (any ts
# below 2**53), an EPCIS dateTime cannot say it.
YEAR_10000 = MAX_MS + 1
FW_LOG = "collector.forwarder"


@dataclass
class Central:
    """A collector's store, config and platform; records arrive as its intake commits them."""

    root: Path
    platform: PlatformServer
    fmt: str = "epcis"
    devices: dict[str, Device] = field(default_factory=dict)
    seqs: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    forwarders: list[Forwarder] = field(default_factory=list)
    batches: int = 0

    def __post_init__(self) -> None:
        self.registry = self.root / "registry" / "devices.json"
        self.devices = {fam: new_device(t, SITE) for fam, t in DEVICE_TYPE.items()}
        add_devices(self.registry, list(self.devices.values()), int(time.time()))
        trust = site_trust(self.root, self.registry, SITE)
        self.gateway = load_identity(trust.identity)
        self.config = collector_config(
            self.root / "collector.toml",
            self.root / "collector",
            self.registry,
            1883,  # no broker here: the forwarder alone runs
            self.platform.url,
            trust.command_key,
            platform={"format": self.fmt},
        )
        settings = load_collector(self.config)
        assert settings.platform is not None
        self.settings: PlatformSettings = settings.platform
        self.path = settings.store_path
        self.store = SqliteStore(self.path)

    def record(self, kind: str, ts: int | None = None, tq: str = "ntp") -> dict[str, Any]:
        """A signed record of ``kind`` from this site's terminal of its family."""
        dev = self.devices[kind.split(".")[0]]
        self.seqs[dev.dev] += 1
        seq = self.seqs[dev.dev]
        now = BASE_MS + seq * 30_000
        body = make_body(kind, random.Random(f"{kind}|{seq}"), dev.dev, seq, SITE, now_ms=now)
        return make_record(dev.dev, seq, 1, kind, now if ts is None else ts, tq, body, dev.key)

    def commit(self, records: list[dict[str, Any]]) -> None:
        """Verify an uplink batch of ``records`` and commit it, as the collector does."""
        self.batches += 1
        payload = encode_batch(
            SITE, self.gateway.dev, f"b{self.batches}", [canonical(r) for r in records]
        )
        vb = verify_batch(SITE, payload, Registry(self.registry), default_validator(), 1 << 22)
        assert vb.bad == [], vb.bad  # every record is good at intake
        assert self.store.commit(SITE, vb.batch_id, vb.good, vb.bad).stored == len(records)

    def forwarder(self, **kw: Any) -> Forwarder:
        fw = Forwarder(self.store, self.settings, **kw)
        self.forwarders.append(fw)
        fw.start()
        return fw

    def summary(self) -> dict[str, Any]:
        return read_summary(self.path)

    def forwarding(self) -> dict[str, Any]:
        with TestClient(make_app(self.path), headers=admin_headers(self.path)) as client:
            reply = client.get("/forwarding")
        assert reply.status_code == 200, reply.text
        out: dict[str, Any] = reply.json()
        return out

    def cli(self, *args: str) -> str:
        res = CliRunner().invoke(main, ["collector", *args, "--config", str(self.config)])
        # This test drives the store itself: no collector process runs, and `status` says
        # so with its exit status (3); every other command succeeds (0).
        assert res.exit_code == (NOT_RUNNING if args[0] == "status" else 0), res.output
        return res.output

    def close(self) -> None:
        for fw in self.forwarders:
            fw.stop()
        self.forwarders.clear()
        self.store.close()


@pytest.fixture
def platform() -> Iterator[PlatformServer]:
    with PlatformServer() as srv:
        yield srv


@pytest.fixture
def central(tmp_path: Path, platform: PlatformServer) -> Iterator[Central]:
    c = Central(tmp_path, platform)
    yield c
    c.close()


def ids_at(platform: PlatformServer) -> set[str]:
    return {ev["eventID"] for ev in platform.platform.events()}


def event_ids(records: list[dict[str, Any]]) -> set[str]:
    return {event_id(r["dev"], r["seq"]) for r in records}


def mapper_without_maintenance(rec: Mapping[str, Any], tz: str) -> dict[str, Any]:
    """The mapping of a build that predates maintenance visits: it refuses them just as
    ``record_to_event`` refuses any kind it has no mapping for."""
    if rec["kind"] == "elevator.maintenance":
        where = f"record {rec['dev']}/{rec['seq']}"
        raise EpcisError(where, "no EPCIS mapping for kind 'elevator.maintenance'")
    return record_to_event(rec, tz)


def test_a_record_the_mapper_refuses_is_held_and_only_the_others_are_forwarded(
    central: Central, platform: PlatformServer
) -> None:
    stats = platform.platform.stats
    central.forwarder()
    lone = central.record("elevator.status", ts=YEAR_10000, tq="unsynced")
    with pytest.raises(EpcisError, match="not a time"):
        record_to_event(lone)
    central.commit([lone])
    wait_until(lambda: central.summary()["forward_held"] == 1, 10, "the record to be held")
    time.sleep(1.0)  # the forwarder idles; nothing may have been posted, not even empty
    assert (stats()["requests"], stats()["epcis_documents"]) == (0, 0)

    goods = [central.record(kind) for kind in KINDS]
    rogue = central.record("elevator.fault", ts=YEAR_10000, tq="unsynced")
    central.commit([*goods[:3], rogue, *goods[3:]])
    wait_until(lambda: central.summary()["forwarded"] == len(goods), 15, "the good records")

    s = central.summary()
    assert (s["forwarded"], s["forward_held"], s["forward_holds"]) == (len(goods), 2, 2)
    assert (s["forward_backlog"], s["alarms"]) == (0, 2)
    p = stats()
    assert (p["epcis_documents"], p["epcis_events"], p["duplicate_events"]) == (1, len(goods), 0)
    assert ids_at(platform) == event_ids(goods)

    view = central.forwarding()
    assert (view["forwarded"], view["backlog"], view["held"]) == (len(goods), 0, 2)
    held = {(h["dev"], h["seq"]): h for h in view["records"]}
    assert set(held) == {(lone["dev"], lone["seq"]), (rogue["dev"], rogue["seq"])}
    for h in held.values():
        assert "is not a time in ms since the epoch" in h["reason"]
        assert (h["attempts"], h["retry_due"]) == (1, False)
    assert held[(rogue["dev"], rogue["seq"])]["kind"] == "elevator.fault"
    with sqlite3.connect(central.path) as db:
        alarms = db.execute("SELECT kind, dev, seq FROM alarms ORDER BY id").fetchall()
    assert alarms == [
        ("forward_held", lone["dev"], lone["seq"]),
        ("forward_held", rogue["dev"], rogue["seq"]),
    ]

    text = central.cli("status")
    assert "held back from the platform" in text
    assert f"{rogue['dev']}/{rogue['seq']} elevator.fault: record" in text
    status = json.loads(central.cli("status", "--json"))
    assert (status["forwarded"], status["forward_held"]) == (len(goods), 2)
    assert [h["seq"] for h in status["forward_held_records"]] == [lone["seq"], rogue["seq"]]

    # A restart tries them again; still refused, they stay held: no post, no new alarm.
    central.close()
    central.store = SqliteStore(central.path)
    central.forwarder()
    wait_until(
        lambda: [h["attempts"] for h in central.forwarding()["records"]] == [2, 2],
        10,
        "the retry at start",
    )
    s = central.summary()
    assert (s["forward_held"], s["forward_holds"], s["alarms"], s["forwarded"]) == (
        2,
        2,
        2,
        len(goods),
    )
    assert stats()["requests"] == 1


def test_a_held_record_is_delivered_once_when_a_fixed_build_starts(
    central: Central, platform: PlatformServer
) -> None:
    stats = platform.platform.stats
    old = central.forwarder(mapper=mapper_without_maintenance)
    kinds = ["elevator.status", "elevator.maintenance", "market.entry", "elevator.maintenance"]
    records = [central.record(kind) for kind in [*kinds, "cylinder.fill", "elevator.fault"]]
    visits = [r for r in records if r["kind"] == "elevator.maintenance"]
    central.commit(records)
    wait_until(lambda: central.summary()["forward_held"] == 2, 15, "the visits to be held")
    wait_until(lambda: central.summary()["forwarded"] == 4, 15, "the rest to be forwarded")
    assert ids_at(platform) == event_ids(records) - event_ids(visits)
    reasons = {h["reason"] for h in central.forwarding()["records"]}
    assert reasons == {
        f"record {v['dev']}/{v['seq']}: no EPCIS mapping for kind 'elevator.maintenance'"
        for v in visits
    }

    # The operator asks again while the old build runs: tried, still refused, still held.
    assert "2 held records due for another attempt" in central.cli("forward-retry")
    wait_until(
        lambda: (
            [(h["attempts"], h["retry_due"]) for h in central.forwarding()["records"]]
            == [(2, False), (2, False)]
        ),
        10,
        "the running forwarder to try them again",
    )
    assert (central.summary()["forward_held"], central.summary()["alarms"]) == (2, 2)

    # The fixed build starts while the platform is down: the retry fails and is kept.
    old.stop()
    central.forwarders.remove(old)
    platform.platform.set_faults(down_for_s=60)
    central.forwarder()
    wait_until(lambda: central.summary()["forward_failures"] >= 1, 10, "a failed retry")
    assert central.summary()["forward_held"] == 2
    platform.platform.set_faults(down_for_s=0)
    wait_until(lambda: central.summary()["forward_held"] == 0, 15, "the visits to be delivered")

    s = central.summary()
    assert (s["forwarded"], s["forward_backlog"], s["forward_holds"]) == (len(records), 0, 2)
    p = stats()
    assert (p["epcis_events"], p["duplicate_events"], p["duplicate_documents"]) == (6, 0, 0)
    assert ids_at(platform) == event_ids(records)
    assert central.forwarding()["records"] == []
    assert json.loads(central.cli("status", "--json"))["forward_held_records"] == []
    assert "0 held records due" in central.cli("forward-retry")


def test_a_restored_store_reusing_row_ids_is_not_taken_for_a_duplicate(
    tmp_path: Path, platform: PlatformServer
) -> None:
    """Plain records: the key names the records, not only their row ids. A store restored
    from a backup gives its next records the row ids of records forwarded after the backup;
    under a key of row ids alone the platform answered "duplicate" and they were lost."""
    central = Central(tmp_path, platform, fmt="records")
    records = platform.platform.records
    try:
        central.forwarder()
        central.commit([central.record("elevator.status") for _ in range(3)])
        wait_until(lambda: central.summary()["forwarded"] == 3, 10, "the first records")
        backup = tmp_path / "backup.sqlite"
        with sqlite3.connect(central.path) as src, sqlite3.connect(backup) as dst:
            src.backup(dst)
        central.commit([central.record("elevator.status") for _ in range(3)])
        wait_until(lambda: central.summary()["forwarded"] == 6, 10, "the records after it")
        central.close()

        for suffix in ("", "-wal", "-shm"):
            Path(f"{central.path}{suffix}").unlink(missing_ok=True)
        backup.rename(central.path)
        central.store = SqliteStore(central.path)
        market = [central.record("market.entry") for _ in range(3)]
        central.commit(market)
        central.forwarder()
        wait_until(lambda: central.summary()["forwarded"] == 6, 10, "the restored store")
        wait_until(lambda: len(records()) == 9, 10, "the market records at the platform")
        assert platform.platform.stats()["duplicate_batches"] == 0
        dev = central.devices["market"].dev
        assert [r["seq"] for r in records(dev)] == [1, 2, 3]
    finally:
        central.close()


def test_the_backlog_is_a_subtraction_that_survives_an_old_store(tmp_path: Path) -> None:
    """A store made before ``forward_claimed`` existed counts what its cursor passed once, at
    open; from then on the backlog is stored minus claimed, equal to a count after the cursor."""
    from collector.store import summarize
    from collector.verify import Good

    path = tmp_path / "c.sqlite"
    st = SqliteStore(path)
    good = [
        Good("D1", i, "cylinder.check", 1000 + i, f"m{i}", f'{{"dev":"D1","seq":{i}}}')
        for i in range(1, 51)
    ]
    st.commit("S1", "b1", good, [])
    assert st.claim_forward(20, 60.0) is not None
    db = sqlite3.connect(path)

    def count_after_cursor() -> int:
        cursor = int(db.execute("SELECT value FROM meta WHERE name='forward_cursor'").fetchone()[0])
        return int(db.execute("SELECT COUNT(*) FROM records WHERE id > ?", (cursor,)).fetchone()[0])

    assert summarize(db)["forward_backlog"] == count_after_cursor() + 20 == 50
    st.close()
    db.execute("DELETE FROM meta WHERE name = 'forward_claimed'")  # as an older store
    db.commit()
    st = SqliteStore(path)
    assert summarize(db)["forward_backlog"] == count_after_cursor() + 20
    st.close()
    db.close()


def test_a_platform_down_is_one_warning_and_its_return_one_line(
    central: Central, platform: PlatformServer, caplog: pytest.LogCaptureFixture
) -> None:
    """A platform that is down is retried every few seconds for as long as it takes: the log
    says so once (WARNING), not on each attempt (DEBUG), and says when it is back (INFO)."""
    caplog.set_level(logging.DEBUG, logger=FW_LOG)
    platform.platform.set_faults(down_for_s=3.0)
    central.commit([central.record("cylinder.check")])
    fw = central.forwarder()
    wait_until(lambda: fw.outage.attempts >= 3, 30, "three failed deliveries", every=0.05)
    wait_until(lambda: central.summary()["forwarded"] == 1, 30, "the record forwarded")
    said = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == FW_LOG]
    warned = [m for level, m in said if level == "WARNING"]
    assert len(warned) == 1 and "platform answered 503" in warned[0], said
    assert any(level == "INFO" and "recovered after" in m for level, m in said), said
    assert sum(level == "DEBUG" for level, _ in said) >= 2, said
