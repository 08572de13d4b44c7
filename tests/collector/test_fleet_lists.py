"""Fleet-wide lists over a real store, SQLite and PostgreSQL: cylinders refused or held by
the fill gates, and elevators with open faults or trapped passengers, with scope and the
indexes they read; the cylinder registry's import; the elevator fault state both stores'
triggers keep."""

from __future__ import annotations

import json
import sqlite3
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collector import cylinders, elevators
from collector.api import make_app
from collector.verify import Good
from hostlib.db import Db, dialect
from tests.stores import KINDS, StoreUnderTest, open_store
from wire.canonical import canonical
from wire.envelope import make_record
from wire.schemas import default_validator

KEY = b"\x05" * 32
T0 = 1_763_856_000_000
MIN = 60_000


class Feed:
    def __init__(self, store: Any) -> None:
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


def _fill(sut: StoreUnderTest) -> None:
    feed = Feed(sut.store)
    with sut.write() as db:
        cylinders.import_cylinders(
            db,
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
    f("S2", "CYL-S2", "cylinder.check", T0 + 4 * MIN, check("C3-0001", "post", []))  # re-checked
    f("S2", "CYL-S2", "cylinder.check", T0 + 5 * MIN, check("C4-0001", "post", ["leaking"]))
    f("S2", "CYL-S2", "cylinder.check", T0 + 6 * MIN, check("C5-0001", "pre", ["scrapped"]))

    with sut.write() as db:
        elevators.import_elevators(db, [{"reg": E1, "address": "文三路 100 号", "site": "S1"}])
    f("S1", "ELV-S1", "elevator.fault", T0, fault(E1, "trapped_in_zone", "raised"))
    f("S2", "ELV-S2", "elevator.fault", T0, fault(E2, "door_fails_to_close", "raised"))
    f("S2", "ELV-S2", "elevator.fault", T0 + MIN, fault(E2, "door_fails_to_close", "cleared"))
    f("S2", "ELV-S2", "elevator.fault", T0 + 2 * MIN, fault(E3, "overspeed", "raised"))
    f("S2", "ELV-S2", "elevator.fault", T0 + 3 * MIN, fault(E4, "trapped_out_of_zone", "raised"))
    f("S2", "ELV-S2", "elevator.fault", T0 + 9 * MIN, fault(E4, "trapped_out_of_zone", "cleared"))


@pytest.fixture
def filled(any_store: StoreUnderTest) -> StoreUnderTest:
    """Refusals, holds and elevator faults in a store of either kind."""
    _fill(any_store)
    return any_store


@pytest.fixture
def db(filled: StoreUnderTest) -> Iterator[Db]:
    """A read-only connection, as the API reads."""
    with filled.read() as conn:
        yield conn


def test_refusals_newest_first_with_filters(db: Db) -> None:
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


def test_held_cylinders_are_those_whose_last_post_check_denied(db: Db) -> None:
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


def _plan(db: Db, sql: str, *args: Any) -> str:
    """The plan's text; on PostgreSQL with sequential scans off, so that a table of a few
    rows still shows whether an index matches the query's terms."""
    if dialect(db) == "postgres":
        db.execute("SET LOCAL enable_seqscan = off")
        return " | ".join(str(r[0]) for r in db.execute("EXPLAIN " + sql, args))
    return " | ".join(str(r[3]) for r in db.execute("EXPLAIN QUERY PLAN " + sql, args))


def test_the_lists_read_their_partial_indexes(db: Db) -> None:
    sql = (
        f"SELECT dev, seq, ts, site, rec FROM records WHERE {cylinders._DENIED} "
        "ORDER BY ts DESC, id DESC LIMIT 10"
    )
    assert "records_cyl_denied" in _plan(db, sql)
    history = (
        "SELECT rec FROM records WHERE kind IN ('cylinder.fill', 'cylinder.check') "
        "AND json_extract(rec, '$.body.cyl') = ? ORDER BY ts DESC, id DESC LIMIT ?"
    )
    assert "records_cyl" in _plan(db, history, "C2-0001", 200)
    for sql in elevators._ROWS.values():
        assert "records_elevator_reg" in _plan(db, sql, E1, "elevator.fault", 10)
    assert "records_elevator_reg" in _plan(db, elevators._RECORD_REGS[dialect(db)])


def test_elevators_with_open_faults_or_trapped_passengers(db: Db) -> None:
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


def test_the_fault_state_follows_capture_order(any_store: StoreUnderTest) -> None:
    feed = Feed(any_store.store)
    # the clear arrives before the raise it clears (a box offline for a while)
    feed.put("S2", "ELV-X", "elevator.fault", T0 + 5 * MIN, fault(E2, "overspeed", "cleared"))
    feed.put("S2", "ELV-Y", "elevator.fault", T0, fault(E2, "overspeed", "raised"))
    feed.put("S2", "ELV-Y", "elevator.fault", T0 + MIN, fault(E3, "power_loss", "raised"))
    with any_store.read() as db:
        assert [r.reg for r in elevators.fleet_faults(db)] == [E3]
        assert elevators.open_faults(db, E2) == []  # the elevator's page agrees


def test_the_fault_state_is_rebuilt_for_an_old_sqlite_store(tmp_path: Path) -> None:
    """SQLite only: a store made before the table existed gets it filled from the stored
    records when the collector makes it (PostgreSQL had it from its first migration)."""
    sut = open_store("sqlite", tmp_path)
    try:
        _fill(sut)
    finally:
        sut.close()
    rw = sqlite3.connect(str(sut.path), isolation_level=None)
    try:
        before = sorted(rw.execute("SELECT * FROM elevator_fault_last"))
        rw.executescript("DROP TRIGGER elevator_fault_last_feed; DROP TABLE elevator_fault_last;")
        elevators.ensure_schema(rw)
        assert sorted(rw.execute("SELECT * FROM elevator_fault_last")) == before
        assert len(before) == 4  # E1, E2, E3, E4: one fault each
    finally:
        rw.close()


def test_cylinder_registry_import_is_versioned_and_all_or_nothing(
    any_store: StoreUnderTest,
) -> None:
    entry = {
        "cyl": "C9-0001",
        "owner": "GASCO",
        "manufactured": "2020-01-01",
        "next_inspection": "2027-01-01",
        "medium": "lpg",
        "design_life_years": 8,
        "tare_g": 15_000,
        "max_fill_g": 14_500,
        "tag": "04a1b2c3",
    }
    with any_store.write() as db:
        assert cylinders.import_cylinders(db, [entry]) == 1
    with any_store.write() as db:
        assert cylinders.import_cylinders(db, [{**entry, "owner": "OTHERGAS"}]) == 2
    bad = {**entry, "cyl": "C9-0002", "medium": "water"}
    with (
        pytest.raises(cylinders.CylinderRegistryError, match="entry 1: medium"),
        any_store.write() as db,
    ):
        cylinders.import_cylinders(db, [{**entry, "cyl": "C9-0003"}, bad])
    with any_store.read() as db:
        snap = cylinders.snapshot(db)
        assert cylinders.registry_version(db) == 2
        hist = cylinders.history(db, "C9-0001")
        assert cylinders.history(db, "C9-0003") is None  # the refused import left nothing
    assert snap["version"] == 2 and [c["cyl"] for c in snap["cylinders"]] == ["C9-0001"]
    assert snap["cylinders"][0]["owner"] == "OTHERGAS" and snap["cylinders"][0]["tag"] == "04A1B2C3"
    assert hist is not None and hist["registered"] and hist["events"] == []


# The fault state kept by the trigger (SQLite: elevator_fault_last_feed; PostgreSQL:
# te_elevator_fault_last) for any delivery order, clock ties and resends.
_fault_event = st.tuples(
    st.sampled_from(["ELV-a", "ELV-B", "elv-C"]),  # capture-order ties break on dev, bytewise
    st.sampled_from([E1, E2]),
    st.sampled_from(["overspeed", "trapped_in_zone"]),
    st.sampled_from(["raised", "cleared"]),
    st.integers(0, 5),  # minutes: many ties
)


def _fault_state(sut: StoreUnderTest) -> tuple[list[tuple[Any, ...]], list[Any]]:
    with sut.read() as db:
        rows = db.execute(
            "SELECT reg, fault, ts, dev, seq, state, site FROM elevator_fault_last"
        ).fetchall()
        lists = [r.model_dump() for r in elevators.fleet_faults(db)]
    return sorted(tuple(r) for r in rows), lists


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    events=st.lists(_fault_event, min_size=1, max_size=14),
    order=st.randoms(use_true_random=False),
    resend=st.lists(st.integers(0, 13), max_size=4),
    batch=st.integers(1, 4),
)
def test_both_stores_keep_the_same_fault_state_for_out_of_order_faults(
    tmp_path_factory: pytest.TempPathFactory,
    events: list[tuple[str, str, str, str, int]],
    order: Any,
    resend: list[int],
    batch: int,
) -> None:
    seqs: dict[str, int] = defaultdict(int)
    goods: list[tuple[str, Good]] = []
    for dev, reg, name, state, minute in events:
        seqs[dev] += 1
        body = fault(reg, name, state)
        rec = make_record(dev, seqs[dev], 1, "elevator.fault", T0 + minute * MIN, "ntp", body, KEY)
        g = Good(
            dev,
            seqs[dev],
            "elevator.fault",
            T0 + minute * MIN,
            str(rec["mac"]),
            canonical(rec).decode(),
        )
        goods.append((f"S{len(goods) % 2}", g))
    order.shuffle(goods)  # delivered out of capture order
    goods += [goods[i] for i in resend if i < len(goods)]  # and some sent again
    stores = [open_store(kind, tmp_path_factory.mktemp("faults")) for kind in KINDS]
    try:
        for sut in stores:
            for i in range(0, len(goods), batch):
                for site, g in goods[i : i + batch]:
                    sut.store.commit(site, f"b{i}", [g], [])
        lite, pg = (_fault_state(s) for s in stores)
        assert lite == pg
        # and the state is each fault's latest event in capture order
        latest: dict[tuple[str, str], tuple[int, bytes, int]] = {}
        for _, g in goods:
            b = json.loads(g.text)["body"]
            key = (g.ts, g.dev.encode(), g.seq)
            latest[(b["reg"], b["fault"])] = max(latest.get((b["reg"], b["fault"]), key), key)
        assert {(r[0], r[1]): (r[2], r[3].encode(), r[4]) for r in lite[0]} == latest
    finally:
        for sut in stores:
            sut.close()


def test_cylinder_routes_over_either_store(filled: StoreUnderTest) -> None:
    client = TestClient(
        make_app(filled.ctx()), raise_server_exceptions=True, headers=filled.admin_headers()
    )
    res = client.get("/cylinders/C2-0001")
    assert res.status_code == 200, res.text
    assert res.json()["held_overfilled"] and res.json()["entry"]["owner"] == "GASCO"
    assert client.get("/cylinders/C9-9999").status_code == 404
    res = client.get("/cylinders/refused", params={"stage": "post"})
    assert res.status_code == 200, res.text
    assert [h["cyl"] for h in res.json()["held"]] == ["C4-0001", "C2-0001"]
    assert [r["cyl"] for r in res.json()["refused"]] == ["C4-0001", "C3-0001", "C2-0001"]
