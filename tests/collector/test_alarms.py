"""Alarms and quarantine for the regulator over a real store: alarms raised by the store
itself (conflicting copies, a message that made the collector fail), quarantine rows of bad
batches; filters, paging, scope, and acknowledging with a comment and its audit entry. On
both stores (a store made before the ack tables existed is SQLite's alone)."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from collector import alarms, audit
from collector.storedb import StoreDb
from collector.verify import Bad
from hostlib.db import Db
from hostlib.registry import Registry
from tests.collector import fleetdata
from tests.stores import KINDS, StoreUnderTest

INSPECTOR = audit.Actor("王检查 [t1]", "inspector", "10.0.0.7")


@dataclass
class Scene:
    sut: StoreUnderTest
    registry: Path
    before: float  # before the alarms were raised

    @property
    def path(self) -> Path:
        return self.sut.path


def _bad(reason: str, n: int) -> Bad:
    return Bad(reason, f"record {n}: {reason}", f"X{n}", n, f'{{"n": {n}}}'.encode())


def _scene(tmp_path: Path, kind: str) -> Scene:
    fs = fleetdata.build(tmp_path, kind)
    before = time.time()
    store = fs.sut.store
    try:
        # conflicting copies: same (dev, seq), other content -> alarm "conflict" + quarantine
        other = fleetdata.make("ELV-S1-01", "elevator.status", 1, "S1", key=fleetdata.KEY2)
        store.commit("S1", "c1", [other], [])
        other = fleetdata.make("MKT-S2-01", "market.entry", 2, "S2", key=fleetdata.KEY2)
        store.commit("S2", "c2", [other], [])
        # a batch of S1 with three bad records of two reasons: one quarantine row
        store.commit("S1", "bad1", [], [_bad("schema", 1), _bad("schema", 2), _bad("mac", 3)])
        store.commit("S2", "bad2", [], [_bad("mac", 4)])
        # a message that made the collector fail: alarm without a device, site in its detail
        store.quarantine_payload("S3", "poison", "worker crashed", b"\x00\x01", alarm=True)
    except BaseException:
        fs.close()
        raise
    return Scene(fs.sut, fs.registry, before)


@pytest.fixture(params=KINDS)
def scene(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Scene]:
    made = _scene(tmp_path, request.param)
    yield made
    made.sut.close()


@pytest.fixture
def db(scene: Scene) -> Iterator[Db]:
    """An autocommit connection, as the API's writes use (each change in its own write_tx)."""
    store = StoreDb(scene.path, scene.sut.url)
    conn = store.connect()
    yield conn
    conn.close()
    store.close()


def test_alarms_newest_first_with_their_site(db: Db) -> None:
    page = alarms.list_alarms(db)
    assert page.total == 3 and len(page.items) == 3
    assert [a.id for a in page.items] == sorted((a.id for a in page.items), reverse=True)
    by_kind = {(a.kind, a.dev): a for a in page.items}
    assert by_kind[("conflict", "ELV-S1-01")].site == "S1"
    assert by_kind[("conflict", "MKT-S2-01")].site == "S2"
    poison = by_kind[("poison", None)]
    assert poison.site == "S3" and poison.ack is None and poison.seq is None


def test_alarm_filters_and_paging(scene: Scene, db: Db) -> None:
    assert [a.dev for a in alarms.list_alarms(db, kind="conflict").items] == [
        "MKT-S2-01",
        "ELV-S1-01",
    ]
    assert [a.kind for a in alarms.list_alarms(db, site="S3").items] == ["poison"]
    assert [a.dev for a in alarms.list_alarms(db, dev="ELV-S1-01").items] == ["ELV-S1-01"]
    assert alarms.list_alarms(db, since=scene.before).total == 3
    assert alarms.list_alarms(db, since=time.time() + 60).total == 0
    assert alarms.list_alarms(db, kind="conflict", site="S2").total == 1
    p1 = alarms.list_alarms(db, limit=2)
    p2 = alarms.list_alarms(db, limit=2, offset=2)
    assert p1.total == p2.total == 3 and len(p1.items) == 2 and len(p2.items) == 1
    assert {a.id for a in p1.items}.isdisjoint({a.id for a in p2.items})
    with pytest.raises(ValueError):
        alarms.list_alarms(db, limit=0)
    with pytest.raises(ValueError):
        alarms.list_alarms(db, offset=-1)


def test_alarm_scope(db: Db) -> None:
    assert {a.site for a in alarms.list_alarms(db, sites={"S1", "S3"}).items} == {"S1", "S3"}
    assert alarms.list_alarms(db, sites=frozenset()).total == 0
    # a district sees nothing of another site even when it asks for it
    assert alarms.list_alarms(db, site="S2", sites={"S1"}).total == 0


def test_the_registry_gives_the_site_of_a_device_never_stored(scene: Scene, db: Db) -> None:
    db.execute(
        "INSERT INTO alarms(raised, kind, dev, seq, detail) "
        "VALUES (?, 'revoked_device', 'MKT-S3-01', 9, 'refused')",
        (time.time(),),
    )
    reg = Registry(scene.registry).devices()
    a = alarms.list_alarms(db, kind="revoked_device", registry=reg).items[0]
    assert a.site == "S3"
    assert alarms.list_alarms(db, kind="revoked_device", sites={"S3"}, registry=reg).total == 1
    assert alarms.list_alarms(db, kind="revoked_device").items[0].site is None


def _audit(db: Db) -> list[audit.AuditEntry]:
    return list(reversed(audit.entries(db, 100)))


def test_acknowledge_records_the_ack_and_an_audit_entry(db: Db) -> None:
    target = alarms.list_alarms(db, kind="conflict", site="S1").items[0]
    ack = alarms.acknowledge(db, target.id, INSPECTOR, "  设备重装后重发，已核对  ")
    assert ack.by == INSPECTOR.name and ack.role == "inspector"
    assert ack.comment == "设备重装后重发，已核对"
    got = alarms.get_alarm(db, target.id)
    assert got is not None and got.ack == ack
    row = db.execute(
        'SELECT alarm_id, "by", comment, audit_id FROM alarm_acks WHERE alarm_id = ?',
        (target.id,),
    ).fetchone()
    assert row == (target.id, INSPECTOR.name, ack.comment, ack.audit_id)
    (entry,) = _audit(db)
    assert entry.id == ack.audit_id and entry.action == "alarm.ack"
    assert entry.target == f"alarm:{target.id}" and entry.result == "ok"
    assert entry.actor == INSPECTOR.name and entry.address == "10.0.0.7"
    assert entry.detail["comment"] == ack.comment and entry.detail["site"] == "S1"
    assert entry.detail["kind"] == "conflict" and entry.detail["dev"] == "ELV-S1-01"
    assert audit.verify(db).ok
    assert [a.id for a in alarms.list_alarms(db, acknowledged=True).items] == [target.id]
    assert target.id not in [a.id for a in alarms.list_alarms(db, acknowledged=False).items]
    assert alarms.list_alarms(db, acknowledged=False).total == 2
    assert alarms.open_counts(db) == {"conflict": 1, "poison": 1}
    assert alarms.open_counts(db, sites={"S3"}) == {"poison": 1}


def test_refusals_are_audited_and_change_nothing(db: Db) -> None:
    a = alarms.list_alarms(db, site="S3").items[0]
    first = alarms.acknowledge(db, a.id, INSPECTOR, "checked")
    with pytest.raises(alarms.AlreadyAcknowledged) as again:
        alarms.acknowledge(db, a.id, INSPECTOR, "checked twice")
    assert again.value.ack == first
    with pytest.raises(alarms.UnknownAlarm):
        alarms.acknowledge(db, 99_999, INSPECTOR, "none such")
    other = alarms.list_alarms(db, site="S2").items[0]
    with pytest.raises(alarms.UnknownAlarm):  # outside the actor's scope: as if unknown
        alarms.acknowledge(db, other.id, INSPECTOR, "not mine", may_site=lambda s: s == "S1")
    with pytest.raises(ValueError):
        alarms.acknowledge(db, other.id, INSPECTOR, "   ")
    with pytest.raises(ValueError):
        alarms.acknowledge(db, other.id, INSPECTOR, "x" * (alarms.MAX_COMMENT + 1))
    results = [(e.target, e.result) for e in _audit(db)]
    assert results == [
        (f"alarm:{a.id}", "ok"),
        (f"alarm:{a.id}", "refused: already acknowledged"),
        ("alarm:99999", "refused: unknown alarm"),
        (f"alarm:{other.id}", "refused: unknown alarm"),
    ]
    assert alarms.get_alarm(db, other.id).ack is None  # type: ignore[union-attr]
    assert db.execute("SELECT COUNT(*) FROM alarm_acks").fetchone()[0] == 1
    assert audit.verify(db).ok


def test_quarantine_rows_count_their_records(db: Db) -> None:
    page = alarms.list_quarantine(db)
    assert page.total == 5
    reasons = [q.reason for q in page.items]
    assert reasons == ["poison", "mac", "mixed", "conflict", "conflict"]
    mixed = page.items[2]
    assert mixed.counts == {"schema": 2, "mac": 1} and mixed.records == 3
    assert mixed.site == "S1" and mixed.batch == "bad1" and mixed.payload_bytes > 0
    assert page.items[0].counts == {"poison": 1} and page.items[0].records == 1
    # by reason: the mixed batch holds a "mac" record too
    assert [q.batch for q in alarms.list_quarantine(db, reason="mac").items] == ["bad2", "bad1"]
    assert [q.batch for q in alarms.list_quarantine(db, reason="schema").items] == ["bad1"]
    assert {q.site for q in alarms.list_quarantine(db, site="S1").items} == {"S1"}
    assert alarms.list_quarantine(db, site="S1").total == 2
    assert alarms.list_quarantine(db, sites={"S3"}).total == 1
    assert alarms.list_quarantine(db, since=time.time() + 60).total == 0
    assert len(alarms.list_quarantine(db, limit=2, offset=4).items) == 1


def test_acknowledge_a_quarantine_entry(db: Db) -> None:
    mixed = alarms.list_quarantine(db, reason="schema").items[0]
    ack = alarms.acknowledge_quarantine(db, mixed.id, INSPECTOR, "终端固件 2.1 已知问题")
    got = alarms.get_quarantine(db, mixed.id)
    assert got is not None and got.ack == ack
    (entry,) = _audit(db)
    assert (entry.action, entry.target, entry.result) == (
        "quarantine.ack",
        f"quarantine:{mixed.id}",
        "ok",
    )
    assert entry.detail["records"] == 3 and entry.detail["site"] == "S1"
    assert alarms.list_quarantine(db, acknowledged=True).total == 1
    assert alarms.list_quarantine(db, acknowledged=False).total == 4
    with pytest.raises(alarms.AlreadyAcknowledged):
        alarms.acknowledge_quarantine(db, mixed.id, INSPECTOR, "again")
    with pytest.raises(alarms.UnknownAlarm):
        alarms.acknowledge_quarantine(db, mixed.id + 1000, INSPECTOR, "none")
    assert audit.verify(db).ok


@pytest.fixture
def sqlite_scene(tmp_path: Path) -> Iterator[Scene]:
    made = _scene(tmp_path, "sqlite")
    yield made
    made.sut.close()


def test_a_store_without_ack_tables_still_lists(sqlite_scene: Scene) -> None:
    """SQLite only: a PostgreSQL store has every table its migrations made."""
    scene = sqlite_scene
    rw = sqlite3.connect(str(scene.path), isolation_level=None)
    rw.executescript("DROP TABLE alarm_acks; DROP TABLE quarantine_acks;")
    rw.close()
    with sqlite3.connect(f"file:{scene.path}?mode=ro", uri=True) as ro:
        assert alarms.list_alarms(ro, acknowledged=False).total == 3
        assert alarms.list_alarms(ro, acknowledged=True).total == 0
        assert alarms.list_quarantine(ro, acknowledged=False).total == 5
        assert alarms.get_quarantine(ro, 1) is not None
