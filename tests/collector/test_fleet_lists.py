"""Fleet-wide lists over a real store: cylinders refused or held by the fill gates, and
elevators with open faults or trapped passengers, with scope and the indexes they read."""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from collector import cylinders, elevators
from collector.store import SqliteStore
from collector.verify import Good
from wire.canonical import canonical
from wire.envelope import make_record
from wire.schemas import default_validator

KEY = b"\x05" * 32
T0 = 1_763_856_000_000
MIN = 60_000


class Feed:
    def __init__(self, store: SqliteStore) -> None:
        self.store = store
        self.seqs: dict[str, int] = defaultdict(int)
        self.validator = default_validator()

    def put(self, site: str, dev: str, kind: str, ts: int, body: dict[str, Any]) -> None:
        self.validator.validate(kind, body)
        self.seqs[dev] += 1
        seq = self.seqs[dev]
        rec = make_record(dev, seq, 1, kind, ts, "ntp", body, KEY)
        good = Good(dev, seq, kind, ts, str(rec["mac"]), canonical(rec).decode())
        self.store.commit(site, f"{dev}-{seq}", [good], [])


def check(cyl: str, stage: str, reasons: list[str], station: str = "ST1") -> dict[str, Any]:
    body: dict[str, Any] = {
        "cyl": cyl,
        "station": station,
        "operator": "OP7",
        "stage": stage,
        "decision": "deny" if reasons else "allow",
        "reasons": reasons,
        "reg_ver": 3,
    }
    if stage == "post":
        body["post"] = {"reweigh_g": 29_000, "leak_ok": "leaking" not in reasons, "checker": "Q1"}
    return body


def fault(reg: str, name: str, state: str) -> dict[str, Any]:
    return {"reg": reg, "fault": name, "state": state, "floor": 3}


E1, E2, E3, E4 = (f"3110330106201500000{i}" for i in range(1, 5))


@pytest.fixture
def path(tmp_path: Path) -> Path:
    p = tmp_path / "collector.sqlite"
    store = SqliteStore(p)
    feed = Feed(store)
    try:
        cylinders.import_cylinders(
            store.db,
            [
                {
                    "cyl": "C2-0001",
                    "owner": "GASCO",
                    "manufactured": "2020-01-01",
                    "next_inspection": "2027-01-01",
                    "medium": "lpg",
                    "design_life_years": 8,
                    "tare_g": 15_000,
                    "max_fill_g": 14_500,
                }
            ],
        )
        f = feed.put
        f("S1", "CYL-S1", "cylinder.check", T0, check("C1-0001", "pre", ["inspection_overdue"]))
        f("S1", "CYL-S1", "cylinder.check", T0 + 1 * MIN, check("C1-0002", "pre", []))
        f("S1", "CYL-S1", "cylinder.check", T0 + 2 * MIN, check("C2-0001", "post", ["overfilled"]))
        f("S2", "CYL-S2", "cylinder.check", T0 + 3 * MIN, check("C3-0001", "post", ["overfilled"]))
        f(
            "S2", "CYL-S2", "cylinder.check", T0 + 4 * MIN, check("C3-0001", "post", [])
        )  # re-checked
        f("S2", "CYL-S2", "cylinder.check", T0 + 5 * MIN, check("C4-0001", "post", ["leaking"]))
        f("S2", "CYL-S2", "cylinder.check", T0 + 6 * MIN, check("C5-0001", "pre", ["scrapped"]))

        elevators.import_elevators(
            store.db, [{"reg": E1, "address": "文三路 100 号", "site": "S1"}]
        )
        f("S1", "ELV-S1", "elevator.fault", T0, fault(E1, "trapped_in_zone", "raised"))
        f("S2", "ELV-S2", "elevator.fault", T0, fault(E2, "door_fails_to_close", "raised"))
        f("S2", "ELV-S2", "elevator.fault", T0 + MIN, fault(E2, "door_fails_to_close", "cleared"))
        f("S2", "ELV-S2", "elevator.fault", T0 + 2 * MIN, fault(E3, "overspeed", "raised"))
        f(
            "S2",
            "ELV-S2",
            "elevator.fault",
            T0 + 3 * MIN,
            fault(E4, "trapped_out_of_zone", "raised"),
        )
        f(
            "S2",
            "ELV-S2",
            "elevator.fault",
            T0 + 9 * MIN,
            fault(E4, "trapped_out_of_zone", "cleared"),
        )
    finally:
        store.close()
    return p


@pytest.fixture
def db(path: Path) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    yield conn
    conn.close()


def test_refusals_newest_first_with_filters(db: sqlite3.Connection) -> None:
    all_ = cylinders.refusals(db)
    assert [r.cyl for r in all_] == ["C5-0001", "C4-0001", "C3-0001", "C2-0001", "C1-0001"]
    assert all_[0].reasons == ["scrapped"] and all_[0].site == "S2" and all_[0].stage == "pre"
    assert all_[0].operator == "OP7" and all_[0].reg_ver == 3 and all_[0].dev == "CYL-S2"
    assert [r.cyl for r in cylinders.refusals(db, stage="pre")] == ["C5-0001", "C1-0001"]
    assert [r.cyl for r in cylinders.refusals(db, site="S1")] == ["C2-0001", "C1-0001"]
    assert [r.cyl for r in cylinders.refusals(db, reason="overfilled")] == ["C3-0001", "C2-0001"]
    assert [r.cyl for r in cylinders.refusals(db, since_ms=T0 + 5 * MIN)] == ["C5-0001", "C4-0001"]
    assert [r.cyl for r in cylinders.refusals(db, limit=2, offset=1)] == ["C4-0001", "C3-0001"]
    assert {r.site for r in cylinders.refusals(db, sites={"S1"})} == {"S1"}
    assert cylinders.refusals(db, sites=frozenset()) == []


def test_held_cylinders_are_those_whose_last_post_check_denied(db: sqlite3.Connection) -> None:
    held = cylinders.held(db)
    assert [(h.cyl, h.reasons) for h in held] == [
        ("C4-0001", ["leaking"]),
        ("C2-0001", ["overfilled"]),
    ]
    c2 = held[1]
    assert c2.owner == "GASCO" and c2.site == "S1" and c2.station == "ST1"
    assert c2.since_ts == T0 + 2 * MIN and held[0].owner is None
    assert [h.cyl for h in cylinders.held(db, sites={"S1"})] == ["C2-0001"]
    # the per-cylinder history agrees
    hist = cylinders.history(db, "C2-0001")
    assert hist is not None and hist["held_overfilled"]


def _plan(db: sqlite3.Connection, sql: str, *args: Any) -> str:
    return " | ".join(str(r[3]) for r in db.execute("EXPLAIN QUERY PLAN " + sql, args))


def test_the_lists_read_their_partial_indexes(db: sqlite3.Connection) -> None:
    sql = (
        f"SELECT dev, seq, ts, site, rec FROM records WHERE {cylinders._DENIED} "
        "ORDER BY ts DESC, id DESC LIMIT 10"
    )
    assert "records_cyl_denied" in _plan(db, sql)


def test_elevators_with_open_faults_or_trapped_passengers(db: sqlite3.Connection) -> None:
    rows = elevators.fleet_faults(db)
    assert [r.reg for r in rows] == [E1, E4, E3]  # trapped now first, then newest fault
    e1 = rows[0]
    assert e1.trapped_passengers and e1.site == "S1" and e1.registration is not None
    assert [f.fault for f in e1.open_faults] == ["trapped_in_zone"]
    e4 = rows[1]
    assert not e4.trapped_passengers and e4.open_faults == [] and e4.site == "S2"
    assert [(t.fault, t.open, t.duration_ms) for t in e4.trapped_events] == [
        ("trapped_out_of_zone", False, 6 * MIN)
    ]
    assert rows[2].open_faults[0].fault == "overspeed" and rows[2].trapped_events == []
    # a trapped episode older than the reference time drops out; open faults stay
    assert [r.reg for r in elevators.fleet_faults(db, since_ms=T0 + 4 * MIN)] == [E1, E3]
    assert [r.reg for r in elevators.fleet_faults(db, sites={"S1"})] == [E1]
    assert [r.reg for r in elevators.fleet_faults(db, limit=2)] == [E1, E4]
    assert E2 not in [r.reg for r in rows]  # its fault was cleared


def test_the_fault_state_follows_capture_order_and_is_rebuilt_for_an_old_store(
    tmp_path: Path, path: Path
) -> None:
    p = tmp_path / "late.sqlite"
    store = SqliteStore(p)
    feed = Feed(store)
    try:  # the clear arrives before the raise it clears (a box offline for a while)
        feed.put("S2", "ELV-X", "elevator.fault", T0 + 5 * MIN, fault(E2, "overspeed", "cleared"))
        feed.put("S2", "ELV-Y", "elevator.fault", T0, fault(E2, "overspeed", "raised"))
        feed.put("S2", "ELV-Y", "elevator.fault", T0 + MIN, fault(E3, "power_loss", "raised"))
    finally:
        store.close()
    with sqlite3.connect(str(p)) as db:
        assert [r.reg for r in elevators.fleet_faults(db)] == [E3]
        assert elevators.open_faults(db, E2) == []  # the elevator's page agrees
    # a store made before the table: it is filled from the stored records when made
    rw = sqlite3.connect(str(path), isolation_level=None)
    try:
        before = sorted(rw.execute("SELECT * FROM elevator_fault_last"))
        rw.executescript("DROP TRIGGER elevator_fault_last_feed; DROP TABLE elevator_fault_last;")
        elevators.ensure_schema(rw)
        assert sorted(rw.execute("SELECT * FROM elevator_fault_last")) == before
        assert len(before) == 4  # E1, E2, E3, E4: one fault each
    finally:
        rw.close()
