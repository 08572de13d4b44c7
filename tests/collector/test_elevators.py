"""Elevators at the collector: a day of one busy elevator and a few others through a real
store (faults raised and cleared, a trapped passenger, maintenance visits, an overdue one),
then the query API over it."""

from __future__ import annotations

import urllib.parse
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collector import elevators
from collector.api import make_app
from collector.elevators import FaultEvent, MaintenanceEvent
from collector.store import SqliteStore
from collector.storedb import StoreDb
from collector.verify import Good
from hostlib.db import Db
from tests.stores import KINDS, StoreUnderTest, open_store
from wire.canonical import canonical
from wire.envelope import make_record
from wire.schemas import default_validator

SITE = "ELV01"
KEY = b"\x07" * 32
MIN = 60_000
HOUR = 60 * MIN
DAY = 24 * HOUR
# 2025-11-24 08:00 China Standard Time
T0 = 1_763_856_000_000 + 24 * HOUR
NOW = T0 + 10 * HOUR

E1 = "31103301062015000001"  # the busy one
E2 = "31103301062012000002"  # last maintained 20 days ago, a repair since
E3 = "31203301062020000003"  # registered, nothing on record
E4 = "31103301022018000004"  # not registered, maintained 3 days ago
COMPANY = "杭州恒达电梯工程有限公司"
W1, C1 = "W0600123", "5A3C9E01"
W2, C2 = "W0600456", "5A3C9E02"

REGISTRY: list[dict[str, str | None]] = [
    {
        "reg": E1,
        "address": "杭州市西湖区文三路 100 号 1 幢 1 单元",
        "company": COMPANY,
        "site": SITE,
    },
    {"reg": E2, "address": "杭州市西湖区文三路 100 号 2 幢", "company": COMPANY, "site": SITE},
    {"reg": E3, "address": "杭州市西湖区教工路 8 号", "company": None, "site": SITE},
]


def h(hours: float) -> int:
    return T0 + int(hours * HOUR)


class Feed:
    """Signs records like the IoT boxes and commits them like the collector."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self.seqs: dict[str, int] = defaultdict(int)
        self.validator = default_validator()
        self.batches = 0

    def make(self, dev: str, kind: str, ts: int, body: dict[str, Any]) -> Good:
        self.validator.validate(kind, body)
        self.seqs[dev] += 1
        rec = make_record(dev, self.seqs[dev], 2, kind, ts, "ntp", body, KEY)
        return Good(dev, self.seqs[dev], kind, ts, str(rec["mac"]), canonical(rec).decode())

    def commit(self, *goods: Good) -> None:
        self.batches += 1
        self.store.commit(SITE, f"b{self.batches}", list(goods), [])


def status(reg: str, floor: int, direction: str = "stopped", **kw: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "reg": reg,
        "dir": direction,
        "floor": floor,
        "door": "closed",
        "door_zone": True,
        "people": False,
        "inspection": False,
        "maintenance": False,
        "faults": [],
    }
    body.update(kw)
    return body


def fault(reg: str, name: str, state: str, floor: int = 3, **kw: Any) -> dict[str, Any]:
    return {"reg": reg, "fault": name, "state": state, "floor": floor, **kw}


def sign_in(reg: str, worker: str, card: str, time_in: int, plan: str) -> dict[str, Any]:
    return {
        "reg": reg,
        "worker": worker,
        "card": card,
        "company": COMPANY,
        "event": "sign_in",
        "plan": plan,
        "time_in": time_in,
    }


def sign_out(
    reg: str, worker: str, card: str, time_in: int, time_out: int, plan: str, items: list[str]
) -> dict[str, Any]:
    body = sign_in(reg, worker, card, time_in, plan)
    body.update(event="sign_out", time_out=time_out, items=items)
    return body


ITEMS = ["制动器间隙", "轿门门锁电气触点", "层门自动关门装置", "轿内报警装置、对讲系统"]


class Scenario:
    """A store of either kind (tests/stores.py) with the registry imported; ``db`` a
    connection to it as the API's readers have one."""

    def __init__(self, sut: StoreUnderTest) -> None:
        self.sut = sut
        self.store = sut.store
        self.feed = Feed(self.store)
        self.conn = StoreDb(sut.path, sut.url)
        self.db: Db = self.conn.connect()
        elevators.import_elevators(self.db, REGISTRY)

    def close(self) -> None:
        self.db.close()
        self.conn.close()
        self.sut.close()

    def add(self, dev: str, kind: str, ts: int, body: dict[str, Any]) -> None:
        self.feed.commit(self.feed.make(dev, kind, ts, body))

    def view(self, reg: str, now: int, days: int = 15) -> elevators.ElevatorView:
        v = elevators.elevator_view(self.db, reg, now, days)
        assert v is not None
        return v


@pytest.fixture(scope="module", params=KINDS)
def scenario(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Scenario]:
    """The day on SQLite, then on PostgreSQL."""
    s = Scenario(open_store(request.param, tmp_path_factory.mktemp("elevators")))
    yield s
    s.close()


@pytest.fixture(scope="module")
def day(scenario: Scenario) -> Scenario:
    """The whole day, with checks at the moments that matter."""
    s = scenario
    box = "ELV-0001"
    samples = [
        s.feed.make(
            box, "elevator.status", h(i / 12), status(E1, 1 + i % 11, ("up", "down")[i % 2])
        )
        for i in range(0, 120)
    ]
    s.feed.commit(*samples)
    s.add(
        box,
        "elevator.status",
        h(10),
        status(E1, 1, counters={"runs": 812_345, "door_cycles": 1_624_707, "run_hours": 41_210}),
    )
    # a door that would not close, raised twice (the box repeats it), then cleared
    s.add(box, "elevator.fault", h(1.0), fault(E1, "door_fails_to_close", "raised", door="open"))
    s.add(box, "elevator.fault", h(1.1), fault(E1, "door_fails_to_close", "raised", door="open"))
    s.add(
        box, "elevator.fault", h(1.5), fault(E1, "door_fails_to_close", "cleared", raised_ts=h(1.0))
    )
    assert [f.fault for f in s.view(E1, h(1.6)).open_faults] == []
    # power lost and not back by the end of the day
    s.add(box, "elevator.fault", h(2.0), fault(E1, "power_loss", "raised", detail="停电"))
    # a passenger trapped in the door zone, then freed
    trapped = fault(E1, "trapped_in_zone", "raised", floor=7, door="closed", people=True)
    s.add(box, "elevator.fault", h(3.0), trapped)
    during = s.view(E1, h(3.2))
    assert during.trapped_passengers
    assert {f.fault: f.alarm for f in during.open_faults} == {
        "power_loss": False,
        "trapped_in_zone": True,
    }
    s.add(
        box,
        "elevator.fault",
        h(3.4),
        fault(E1, "trapped_in_zone", "cleared", floor=7, raised_ts=h(3.0)),
    )
    assert not s.view(E1, h(3.5)).trapped_passengers
    # over-travel at the top: the clear is delivered before the raise
    clear = s.feed.make(
        box,
        "elevator.fault",
        h(4.01),
        fault(E1, "overtravel_top", "cleared", floor=11, raised_ts=h(4.0)),
    )
    raise_ = s.feed.make(
        box,
        "elevator.fault",
        h(4.0),
        fault(E1, "overtravel_top", "raised", floor=11, speed_mm_s=300),
    )
    s.feed.commit(clear)
    s.feed.commit(raise_)
    # the alarm button's clear arrives, its raise was lost
    s.add(box, "elevator.fault", h(5.0), fault(E1, "alarm_button", "cleared", raised_ts=h(4.9)))
    # a half-monthly visit of 45 minutes, a repair, a technician still in the car
    s.add(box, "elevator.maintenance", h(6.0), sign_in(E1, W1, C1, h(6.0), "half_month"))
    s.add(
        box,
        "elevator.maintenance",
        h(6.75),
        sign_out(E1, W1, C1, h(6.0), h(6.75), "half_month", ITEMS),
    )
    s.add(box, "elevator.maintenance", h(8.0), sign_in(E1, W2, C2, h(8.0), "repair"))
    # the box's clock put the sign-out's time_in one second off the sign-in's
    s.add(
        box,
        "elevator.maintenance",
        h(8.5),
        sign_out(E1, W2, C2, h(8.0) + 1000, h(8.5), "repair", ["更换门机皮带"]),
    )
    s.add(box, "elevator.maintenance", h(9.5), sign_in(E1, W1, C1, h(9.5), "quarter"))
    # E2: the last maintenance 20 days ago; a repair two days ago does not count
    t = NOW - 20 * DAY
    s.add("ELV-0002", "elevator.maintenance", t, sign_in(E2, W1, C1, t, "half_month"))
    s.add(
        "ELV-0002",
        "elevator.maintenance",
        t + HOUR,
        sign_out(E2, W1, C1, t, t + HOUR, "half_month", ITEMS),
    )
    t = NOW - 2 * DAY
    s.add(
        "ELV-0002",
        "elevator.maintenance",
        t + HOUR,
        sign_out(E2, W2, C2, t, t + HOUR, "repair", ["调整层门门锁"]),
    )
    s.add("ELV-0002", "elevator.status", NOW - MIN, status(E2, 4))
    # E4: not in the registry, maintained three days ago
    t = NOW - 3 * DAY
    s.add(
        "ELV-0004",
        "elevator.maintenance",
        t + HOUR,
        sign_out(E4, W2, C2, t, t + HOUR, "half_month", ITEMS),
    )
    return s


def test_open_and_recent_faults(day: Scenario) -> None:
    v = day.view(E1, NOW)
    assert v.registered and v.registration is not None
    assert v.registration.address.startswith("杭州市西湖区文三路")
    assert [(f.fault, f.open, f.alarm) for f in v.open_faults] == [("power_loss", True, False)]
    assert not v.trapped_passengers
    recent = {f.fault: f for f in v.recent_faults}
    assert [f.fault for f in v.recent_faults] == [
        "alarm_button",
        "overtravel_top",
        "trapped_in_zone",
        "power_loss",
        "door_fails_to_close",
    ]
    door = recent["door_fails_to_close"]
    assert (door.raises, door.raised_ts, door.last_raised_ts) == (2, h(1.0), h(1.1))
    assert door.cleared_ts == h(1.5) and door.duration_ms == 30 * MIN and not door.open
    trapped = recent["trapped_in_zone"]
    assert trapped.alarm and trapped.people and trapped.floor == 7
    assert trapped.duration_ms == 24 * MIN and not trapped.open
    top = recent["overtravel_top"]
    assert not top.open and top.raises == 1 and top.duration_ms == 36_000
    button = recent["alarm_button"]
    assert button.alarm and button.raises == 0 and button.raised_ts == h(4.9)
    assert button.duration_ms == 6 * MIN
    power = recent["power_loss"]
    assert power.open and power.cleared_ts is None and power.duration_ms is None
    assert power.detail == "停电"


def test_maintenance_visits_and_overdue(day: Scenario) -> None:
    v = day.view(E1, NOW)
    visits = list(reversed(v.visits))  # oldest first
    assert [(x.worker, x.plan, x.signed_in, x.signed_out) for x in visits] == [
        (W1, "half_month", True, True),
        (W2, "repair", True, True),
        (W1, "quarter", True, False),
    ]
    first, repair, current = visits
    assert first.duration_ms == 45 * MIN and first.duration_min == 45
    assert first.items == ITEMS and first.counts_as_maintenance
    assert repair.duration_min == 29 and not repair.counts_as_maintenance
    assert current.time_out is None and current.duration_ms is None
    assert v.last_maintenance_ms == h(6.75)
    assert not v.overdue and v.overdue_days == 15
    # the same elevator 16 days later, nothing done since: overdue
    later = day.view(E1, h(6.75) + 16 * DAY)
    assert later.overdue
    assert not day.view(E1, h(6.75) + 16 * DAY, days=20).overdue
    e2 = day.view(E2, NOW)
    assert e2.overdue and e2.last_maintenance_ms == NOW - 20 * DAY + HOUR
    assert e2.visits[0].plan == "repair" and not e2.visits[0].signed_in


def test_overdue_list(day: Scenario) -> None:
    got = elevators.overdue(day.db, NOW)
    assert [(o.reg, o.last_maintenance_ms, o.days_since) for o in got] == [
        (E2, NOW - 20 * DAY + HOUR, 19),
        (E3, None, None),
    ]
    assert got[0].registration is not None and got[0].registration.company == COMPANY
    assert [o.reg for o in elevators.overdue(day.db, NOW, days=30)] == [E3]
    # E4 is known from its records alone
    e4 = day.view(E4, NOW)
    assert not e4.registered and not e4.overdue and e4.last_status is None
    # two weeks on, only E1's visit of today is recent enough
    assert [o.reg for o in elevators.overdue(day.db, NOW + 14 * DAY)] == sorted([E2, E3, E4])
    assert [o.reg for o in elevators.overdue(day.db, NOW + 15 * DAY)] == sorted([E1, E2, E3, E4])


def test_status_and_history(day: Scenario) -> None:
    v = day.view(E1, NOW)
    assert v.last_status is not None and v.last_status.ts == h(10)
    assert v.last_status.runs == 812_345 and v.last_status.floor == 1
    hist = elevators.history(day.db, E1, 10)
    assert len(hist) == 10
    assert [e.ts for e in hist] == sorted((e.ts for e in hist), reverse=True)
    assert hist[0].kind == "elevator.status" and hist[0].status is not None
    assert hist[0].ts == h(10)
    kinds = {e.kind for e in elevators.history(day.db, E1, 1000)}
    assert kinds == {"elevator.status", "elevator.fault", "elevator.maintenance"}
    full = elevators.history(day.db, E1, 1000)
    assert sum(e.kind == "elevator.status" for e in full) == 121
    assert sum(e.kind == "elevator.fault" for e in full) == 9
    assert sum(e.kind == "elevator.maintenance" for e in full) == 5
    for e in full:
        assert (e.status is not None, e.fault is not None, e.maintenance is not None) == (
            e.kind == "elevator.status",
            e.kind == "elevator.fault",
            e.kind == "elevator.maintenance",
        )
    assert elevators.history(day.db, E3, 10) == []


def test_fault_episodes_pure() -> None:
    def ev(seq: int, ts: int, name: str, state: str, raised_ts: int | None = None) -> FaultEvent:
        return FaultEvent(
            dev="X", seq=seq, ts=ts, fault=name, state=state, floor=1, raised_ts=raised_ts
        )

    events = [
        ev(1, 100, "overspeed", "raised"),
        ev(2, 200, "overspeed", "raised"),
        ev(3, 300, "overspeed", "raised"),
        ev(4, 400, "overspeed", "cleared"),
        ev(5, 500, "overspeed", "raised"),  # raised again after a clear: a new episode
        ev(6, 600, "door_fails_to_open", "cleared"),  # no raise, no raised_ts
        ev(7, 700, "trapped_out_of_zone", "raised"),
    ]
    eps = elevators.fault_episodes(reversed(events))  # arrival order does not matter
    assert [(e.fault, e.open, e.raises, e.duration_ms) for e in eps] == [
        ("overspeed", False, 3, 300),
        ("overspeed", True, 1, None),
        ("door_fails_to_open", False, 0, None),
        ("trapped_out_of_zone", True, 1, None),
    ]
    assert [e.alarm for e in eps] == [False, False, False, True]


def test_pair_visits_pure() -> None:
    def m(
        seq: int, event: str, worker: str, t_in: int, t_out: int | None = None
    ) -> MaintenanceEvent:
        return MaintenanceEvent(
            dev="X",
            seq=seq,
            ts=t_out or t_in,
            event=event,
            worker=worker,
            card="ABCDEF01",
            company=COMPANY,
            plan="half_month",
            time_in=t_in,
            time_out=t_out,
            items=["x"] if t_out else None,
        )

    visits = elevators.pair_visits(
        [
            m(1, "sign_in", "A", 1_000),
            m(2, "sign_in", "B", 2_000),
            m(3, "sign_out", "B", 2_000, 9_000),  # exact pair
            m(4, "sign_out", "A", 1_500, 8_000),  # A's only sign-in within a day before
            m(5, "sign_out", "C", 3_000, 4_000),  # sign-in lost
            m(6, "sign_in", "A", 50 * DAY),  # a later visit, still in progress
        ]
    )
    assert [(v.worker, v.time_in, v.time_out, v.signed_in, v.duration_ms) for v in visits] == [
        ("A", 1_500, 8_000, True, 6_500),
        ("B", 2_000, 9_000, True, 7_000),
        ("C", 3_000, 4_000, False, 1_000),
        ("A", 50 * DAY, None, True, None),
    ]
    # a sign-out more than a day after a sign-in does not pair with it
    far = elevators.pair_visits([m(1, "sign_in", "A", 0), m(2, "sign_out", "A", 5, 2 * DAY)])
    assert [(v.signed_in, v.signed_out) for v in far] == [(True, False), (False, True)]


def test_import_elevators_is_all_or_nothing(any_store: StoreUnderTest) -> None:
    with any_store.write() as db:
        assert elevators.import_elevators(db, REGISTRY) == 3
    for bad in (
        {"reg": "short", "address": "x"},
        {"reg": E4, "address": ""},
        {"reg": "a" + E4[1:], "address": "x"},
    ):
        with pytest.raises(ValueError, match="elevator row 1"), any_store.write() as db:
            elevators.import_elevators(db, [{"reg": E4, "address": "ok"}, bad])
    with any_store.read() as db:
        assert db.execute("SELECT COUNT(*) FROM elevators").fetchone()[0] == 3


def test_ensure_schema_is_idempotent_on_sqlite(tmp_path: Path) -> None:
    """SQLite only: a SQLite store makes its own schema; PostgreSQL's comes from the
    migrations (collector/pgschema.py)."""
    store = SqliteStore(tmp_path / "c.sqlite")
    try:
        elevators.ensure_schema(store.db)
        elevators.ensure_schema(store.db)
        assert elevators.import_elevators(store.db, REGISTRY) == 3
        assert store.db.execute("SELECT COUNT(*) FROM elevators").fetchone()[0] == 3
    finally:
        store.close()


# ---------------------------------------------------------------------------------------------
# The API


@pytest.fixture(scope="module")
def client(day: Scenario) -> TestClient:
    return TestClient(
        make_app(day.sut.ctx()),
        raise_server_exceptions=False,
        headers=day.sut.admin_headers(),
    )


def test_api_elevator(client: TestClient) -> None:
    res = client.get(f"/elevators/{E1}", params={"now_ms": NOW})
    assert res.status_code == 200, res.text
    v = res.json()
    assert v["registration"]["company"] == COMPANY
    assert [f["fault"] for f in v["open_faults"]] == ["power_loss"]
    assert v["trapped_passengers"] is False and v["overdue"] is False
    assert v["visits"][-1]["duration_min"] == 45
    assert v["last_status"]["ts"] == h(10)
    trapped = next(f for f in v["recent_faults"] if f["fault"] == "trapped_in_zone")
    assert trapped["alarm"] is True and trapped["open"] is False
    assert client.get(f"/elevators/{E1}", params={"now_ms": NOW + 16 * DAY}).json()["overdue"]
    assert len(client.get(f"/elevators/{E1}", params={"recent": 2}).json()["recent_faults"]) == 2
    e3 = client.get(f"/elevators/{E3}").json()
    assert e3["registered"] and e3["last_status"] is None and e3["overdue"] is True
    assert client.get("/elevators/" + "9" * 20).status_code == 404
    for bad in ("abc", "a" + E1[1:], E1 + "0"):
        assert client.get(f"/elevators/{bad}").status_code == 422
    assert client.get(f"/elevators/{E1}", params={"days": 0}).status_code == 422


def test_api_history_and_overdue(client: TestClient) -> None:
    res = client.get(f"/elevators/{E1}/history", params={"limit": 5})
    assert res.status_code == 200
    hist = res.json()
    assert len(hist) == 5 and hist[0]["ts"] == h(10) and hist[0]["status"]["floor"] == 1
    assert client.get(f"/elevators/{E1}/history", params={"limit": 0}).status_code == 422
    assert client.get("/elevators/" + "9" * 20 + "/history").status_code == 404
    res = client.get("/elevators/overdue", params={"days": 15, "now_ms": NOW})
    assert res.status_code == 200
    assert [(o["reg"], o["days_since"]) for o in res.json()] == [(E2, 19), (E3, None)]
    res = client.get("/elevators/overdue", params={"days": 30, "now_ms": NOW})
    assert [o["reg"] for o in res.json()] == [E3]
    assert client.get("/elevators/overdue", params={"days": -1}).status_code == 422


_text = st.text(st.characters(codec="utf-8"), max_size=30)


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    segment=st.one_of(_text, st.from_regex(r"[0-9A-Z]{20}", fullmatch=True), st.just(E1)),
    route=st.sampled_from(["/elevators/{}", "/elevators/{}/history", "/elevators/overdue"]),
    params=st.dictionaries(
        st.sampled_from(["days", "now_ms", "limit", "recent"]),
        st.one_of(st.integers(-(2**70), 2**70), _text).map(str),
    ),
)
def test_api_elevator_routes_never_fail_on_any_input(
    client: TestClient, segment: str, route: str, params: dict[str, str]
) -> None:
    url = route.format(urllib.parse.quote(segment, safe=""))
    res = client.get(url, params=params)
    assert res.status_code < 500, (url, params, res.status_code, res.text)
