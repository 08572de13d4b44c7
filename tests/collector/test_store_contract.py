"""The store contract, run against both stores: the SQLite file and PostgreSQL (a fresh
database on the machine's server per test). Whatever a collector can see through the
:class:`collector.store.Store` protocol — results, summaries, forwarding claims, leases,
holds, quarantine bounds — must be the same on both."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collector.pgstore import PostgresStore
from collector.store import SqliteStore, Store
from collector.verify import Bad, Good
from tests.pg import create_database, drop_database, server_url

SITE = "S1"
MakeStore = Callable[..., Any]


def good(dev: str, seq: int, mac: str = "", kind: str = "elevator.status") -> Good:
    mac = mac or f"{dev}-{seq}".encode().hex().ljust(64, "0")[:64]
    text = f'{{"dev":"{dev}","seq":{seq},"mac":"{mac}"}}'
    return Good(dev, seq, kind, 1_763_900_000_000 + seq, mac, text)


BATCHES: list[list[Good]] = [
    [good("A", s) for s in range(1, 6)] + [good("B", s) for s in range(1, 4)],
    [good("A", s) for s in range(6, 9)],  # all new again
    [good("A", 9), good("A", 3), good("B", 4)],  # a duplicate of a stored record
    [good("B", 5), good("B", 2, mac="f" * 64)],  # a conflict
    [good("C", 1), good("C", 1)],  # the same identity twice in one batch
    [good("C", 2), good("C", 1, mac="e" * 64), good("C", 3)],
    [],
]
BAD = [Bad("mac", "MAC does not match the device key", "A", 99, b"{}")]
RESULTS = [(8, 0, 0), (3, 0, 0), (2, 1, 1), (1, 0, 1), (1, 1, 0), (2, 0, 1), (0, 0, 0)]


@pytest.fixture(params=["sqlite", "postgres"])
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MakeStore]:
    """A factory of stores on one database: several calls are several collector processes
    sharing it (``owner`` names each one's counters on PostgreSQL)."""
    made: list[Any] = []
    url = create_database(server_url()) if request.param == "postgres" else ""

    def make(owner: str = "c1", **kw: Any) -> Any:
        if url:
            s: Any = PostgresStore(url, owner=owner, **kw)
        else:
            s = SqliteStore(tmp_path / "store.sqlite", **kw)
        made.append(s)
        return s

    try:
        yield make
    finally:
        for s in made:
            s.close()
        if url:
            drop_database(url)


def _counts(summary: dict[str, Any]) -> dict[str, Any]:
    return {k: summary[k] for k in COMPARED}


COMPARED = (
    "records",
    "devices",
    "gaps",
    "forward_backlog",
    "forward_held",
    "alarms",
    "quarantine_by_reason",
    "batches",
    "stored",
    "duplicates",
    "quarantined",
    "conflicts",
    "forwarded",
    "forward_batches",
    "forward_failures",
    "forward_holds",
    "quarantine_evicted",
)


def test_each_record_once_conflicts_quarantined(make_store: MakeStore) -> None:
    store: Store = make_store(project_inline=False)
    got = []
    for i, batch in enumerate(BATCHES):
        r = store.commit(SITE, f"b{i}", batch, BAD if i == 2 else [])
        got.append((r.stored, r.duplicates, r.bad))
    assert got == RESULTS
    s = store.summary()
    assert _counts(s) == {
        "records": 17,
        "devices": 3,
        "gaps": 0,
        "forward_backlog": 17,
        "forward_held": 0,
        "alarms": 2,  # the two conflicts
        "quarantine_by_reason": {"conflict": 2, "mac": 1},
        "batches": 7,
        "stored": 17,
        "duplicates": 2,
        "quarantined": 3,
        "conflicts": 2,
        "forwarded": 0,
        "forward_batches": 0,
        "forward_failures": 0,
        "forward_holds": 0,
        "quarantine_evicted": 0,
    }


def test_gaps_are_max_seq_minus_count(make_store: MakeStore) -> None:
    store: Store = make_store(project_inline=False)
    store.commit(SITE, "b", [good("D", s) for s in (1, 2, 5, 9)], [])
    assert (store.summary()["gaps"], store.summary()["records"]) == (5, 4)
    store.commit(SITE, "b2", [good("D", s) for s in (3, 4)], [])
    assert store.summary()["gaps"] == 3


def _forward_all(store: Store, limit: int = 4) -> list[int]:
    out: list[int] = []
    while (fb := store.claim_forward(limit, 30.0)) is not None:
        out += fb.ids
        store.forwarded(fb, fb.ids)
    return out


def test_forwarding_leases_holds_and_retries(make_store: MakeStore) -> None:
    store: Store = make_store(project_inline=False)
    store.commit(SITE, "b", [good("A", s) for s in range(1, 11)], [])
    first = store.claim_forward(4, 0.05)
    assert first is not None and len(first.ids) == 4
    key = first.delivery_key(first.ids)
    time.sleep(0.1)  # its lease runs out: the same records come back, under the same key
    again = store.claim_forward(4, 30.0)
    assert again is not None
    assert (again.lease, again.ids, again.delivery_key(again.ids)) == (first.lease, first.ids, key)
    store.hold(again, {again.ids[0]: "the mapper refuses it"})
    store.forwarded(again, again.ids[1:])
    store.forwarded(first, first.ids)  # settled already: changes nothing
    s = store.summary()
    assert (s["forwarded"], s["forward_holds"], s["forward_held"]) == (3, 1, 1)
    assert s["alarms"] == 1
    rest = _forward_all(store)
    assert len(rest) == 6
    assert store.claim_held(10, 30.0) is None  # not due until a retry is asked for
    assert store.retry_held() == 1
    held = store.claim_held(10, 30.0)
    assert held is not None and held.ids == [again.ids[0]] and held.lease == ""
    store.forward_failed(held)
    held = store.claim_held(10, 30.0)
    assert held is not None
    store.forwarded(held, held.ids)
    s = store.summary()
    assert (s["forwarded"], s["forward_held"], s["forward_backlog"], s["forward_failures"]) == (
        10,
        0,
        0,
        1,
    )


def test_a_batch_settled_elsewhere_holds_nothing(make_store: MakeStore) -> None:
    """A forwarder whose lease ran out while it mapped the batch: another collector claimed
    and delivered the same batch; the first one's hold must not keep those records back."""
    slow, fast = make_store(owner="c1", project_inline=False), make_store(owner="c2")
    slow.commit(SITE, "b", [good("A", s) for s in range(1, 4)], [])
    first = slow.claim_forward(10, 0.05)
    assert first is not None
    time.sleep(0.1)
    again = fast.claim_forward(10, 30.0)
    assert again is not None and again.ids == first.ids
    fast.forwarded(again, again.ids)
    slow.hold(first, {first.ids[0]: "the mapper refuses it"})
    s = slow.summary()
    assert (s["forward_held"], s["forward_holds"], s["forwarded"], s["alarms"]) == (0, 0, 3, 0)


def test_a_failed_forward_is_claimed_again_at_once(make_store: MakeStore) -> None:
    store: Store = make_store(project_inline=False)
    store.commit(SITE, "b", [good("A", s) for s in range(1, 4)], [])
    fb = store.claim_forward(10, 300.0)
    assert fb is not None
    store.forward_failed(fb)
    again = store.claim_forward(10, 300.0)
    assert again is not None and again.ids == fb.ids and again.lease == fb.lease


def test_quarantine_is_bounded_in_bytes(make_store: MakeStore) -> None:
    store: Store = make_store(project_inline=False, max_quarantine_bytes=4000)
    for i in range(20):
        store.quarantine_payload(SITE, "garbage", f"junk {i}\x00", b"\xff" * 500)
    s = store.summary()
    assert s["quarantined"] == 20
    assert s["quarantine_bytes"] <= 4000
    assert s["quarantine_evicted"] >= 12
    assert s["quarantine_by_reason"]["garbage"] == 20 - s["quarantine_evicted"]


def test_heartbeats_and_site_status_are_kept(make_store: MakeStore) -> None:
    store: Store = make_store(project_inline=False)
    store.heartbeat("c1", {"at": time.time(), "batches": 3})
    store.site_status(SITE, {"depth": 5, "oldest_age_s": 1.5})
    procs = store.summary()["processes"]
    assert procs["c1"]["running"] is True and procs["c1"]["batches"] == 3


def test_many_writers_store_each_record_once_and_forward_it_once(make_store: MakeStore) -> None:
    """Three processes' stores commit overlapping batches (agents resend; a batch can reach
    two collectors) and claim forward batches at the same time."""
    stores = [make_store(owner=f"c{i}", project_inline=False) for i in range(3)]
    devs = [f"D{i}" for i in range(6)]
    batches = [[good(d, s) for d in devs for s in range(k, k + 20)] for k in range(1, 200, 10)]
    errors: list[BaseException] = []

    def write(store: Store, mine: list[list[Good]]) -> None:
        try:
            for i, b in enumerate(mine):
                store.commit(SITE, f"b{i}", b, [])
        except BaseException as exc:  # reported below, not lost in the thread
            errors.append(exc)

    threads = [
        threading.Thread(target=write, args=(s, batches[i::2] + batches[::3]))
        for i, s in enumerate(stores)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    forwarded: list[list[int]] = [[] for _ in stores]

    def forward(i: int) -> None:
        try:
            forwarded[i] = _forward_all(stores[i], 25)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=forward, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    every = sorted(i for f in forwarded for i in f)
    expected = len(devs) * 210  # seqs 1..210 for every device
    s = stores[0].summary()
    assert (s["records"], s["gaps"], s["forwarded"], s["forward_backlog"]) == (
        expected,
        0,
        expected,
        0,
    )
    assert len(every) == len(set(every)) == expected
    assert s["stored"] == expected and s["conflicts"] == 0


_ident = st.tuples(st.sampled_from("XYZ"), st.integers(1, 12), st.sampled_from("ab"))


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.lists(_ident, max_size=8), max_size=6))
def test_both_stores_agree_on_any_sequence_of_batches(
    tmp_path_factory: pytest.TempPathFactory, batches: list[list[tuple[str, int, str]]]
) -> None:
    """Random batches with repeats and MAC changes: the SQLite and PostgreSQL stores give
    the same results and the same summary."""
    url = create_database(server_url())
    path = tmp_path_factory.mktemp("agree") / "s.sqlite"
    pg = PostgresStore(url, project_inline=False)
    lite = SqliteStore(path, project_inline=False)
    try:
        for i, batch in enumerate(batches):
            gs = [good(d, s, mac=m * 64) for d, s, m in batch]
            a, b = lite.commit(SITE, f"b{i}", gs, []), pg.commit(SITE, f"b{i}", gs, [])
            assert a == b
        assert _counts(lite.summary()) == _counts(pg.summary())
    finally:
        pg.close()
        lite.close()
        drop_database(url)


def _market(dev: str, seq: int, body: dict[str, Any]) -> Good:
    kind = "market.entry" if "quantity_g" in body else "market.settlement"
    mac = f"{dev}-{seq}".encode().hex().ljust(64, "0")[:64]
    text = json.dumps({"body": body, "dev": dev, "mac": mac, "seq": seq}, sort_keys=True)
    return Good(dev, seq, kind, 1_763_900_000_000 + seq, mac, text)


# the hops (卡单同行) by record identity: entry (dev, seq) → sale (dev, seq), line
_LINKS = (
    "SELECT e.dev, e.seq, s.dev, s.seq, l.line, src.batch_id, src.goods_code "
    "FROM market_links l JOIN records e ON e.id = l.entry_id "
    "JOIN records s ON s.id = l.record_id JOIN market_sources src ON src.entry_id = l.entry_id "
    "ORDER BY 1, 2, 3, 4, 5"
)


def _projected(store: Any) -> dict[str, Any]:
    """Market state of either store, in one shape."""
    if isinstance(store, PostgresStore):
        with store._tx() as cur:
            batches = cur.execute(
                "SELECT batch_id, entries, quantity_g, pieces, sold_g, sold_pieces, "
                "overdrawn_alarm::int FROM market_batches ORDER BY batch_id"
            ).fetchall()
            lines = cur.execute(
                "SELECT r.dev, r.seq, l.line, l.batch_id, l.trace_id, l.weight_g, l.pieces "
                "FROM market_lines l JOIN records r ON r.id = l.record_id ORDER BY 1, 2, 3"
            ).fetchall()
            alarms = cur.execute("SELECT kind, dev, seq FROM alarms ORDER BY 1, 2, 3").fetchall()
            links = cur.execute(_LINKS).fetchall()
    else:
        db = store.db
        batches = db.execute(
            "SELECT batch_id, entries, quantity_g, pieces, sold_g, sold_pieces, "
            "overdrawn_alarm FROM market_batches ORDER BY batch_id"
        ).fetchall()
        lines = db.execute(
            "SELECT r.dev, r.seq, l.line, l.batch_id, l.trace_id, l.weight_g, l.pieces "
            "FROM market_lines l JOIN records r ON r.id = l.record_id ORDER BY 1, 2, 3"
        ).fetchall()
        alarms = db.execute("SELECT kind, dev, seq FROM alarms ORDER BY 1, 2, 3").fetchall()
        links = db.execute(_LINKS).fetchall()
    return {
        "links": [tuple(x) for x in links],
        "batches": [tuple(b) for b in batches],
        "lines": [tuple(x) for x in lines],
        "alarms": [tuple(a) for a in alarms],
    }


_line = st.fixed_dictionaries(
    {
        "batch_id": st.sampled_from(["B1", "B2", "B3"]),
        "weight_g": st.integers(0, 3000),
        "mode": st.sampled_from(["weighed", "counted"]),
        "pieces": st.integers(0, 5),
        "goods_code": st.sampled_from(["G1", "G2"]),
    }
)
_source = st.one_of(
    st.none(),
    st.fixed_dictionaries(
        {"trace_id": st.text("01", min_size=4, max_size=4), "via": st.just("qr")}
    ),
    st.fixed_dictionaries({"tran_id": st.sampled_from(["V1", "V2"]), "via": st.just("keyed")}),
)
_body = st.one_of(
    st.fixed_dictionaries(
        {
            "batch_id": st.sampled_from(["B1", "B2", "B3"]),
            "quantity_g": st.integers(1000, 6000),
            "pieces": st.one_of(st.none(), st.integers(1, 10)),
            "goods_code": st.sampled_from(["G1", "G2"]),
            "source": _source,
        }
    ).map(lambda d: {k: v for k, v in d.items() if v is not None}),
    st.fixed_dictionaries(
        {
            "trace_id": st.text("01", min_size=4, max_size=4),
            "tran_id": st.sampled_from(["V1", "V2", "V3"]),
            "lines": st.lists(_line),
        }
    ),
)


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.lists(_body, min_size=1, max_size=4), min_size=1, max_size=5))
def test_the_market_projection_is_the_same_on_both_stores(
    tmp_path_factory: pytest.TempPathFactory, batches: list[list[dict[str, Any]]]
) -> None:
    """Entries and settlements in any order, overdrawn batches, a batch registered twice,
    entries naming upstream sales (by trace code or voucher): stock, lines, alarms and hops
    projected by PostgreSQL's te_market_apply / te_market_link equal what the SQLite
    triggers make."""
    url = create_database(server_url())
    path = tmp_path_factory.mktemp("market") / "s.sqlite"
    pg = PostgresStore(url, project_inline=False)
    lite = SqliteStore(path, project_inline=False)
    try:
        seq = 0
        for i, bodies in enumerate(batches):
            recs = []
            for body in bodies:
                seq += 1
                recs.append(_market("M1", seq, body))
            assert lite.commit(SITE, f"b{i}", recs, []) == pg.commit(SITE, f"b{i}", recs, [])
            if i % 2:  # projected in steps, as the projector thread does
                lite.project(3)
                pg.project(3)
        while lite.project():
            pass
        while pg.project():
            pass
        assert _projected(lite) == _projected(pg)
        assert pg.summary()["projection_backlog"] == 0
    finally:
        pg.close()
        lite.close()
        drop_database(url)


def test_market_projection_overdrawn_and_registered_twice(make_store: MakeStore) -> None:
    store = make_store(project_inline=False)
    line = {"batch_id": "B1", "weight_g": 1500, "mode": "weighed"}
    recs = [
        _market("M1", 1, {"trace_id": "0001", "lines": [line]}),  # sold before its entry
        _market("M1", 2, {"batch_id": "B1", "quantity_g": 2000}),
        _market("M1", 3, {"trace_id": "0002", "lines": [line]}),  # 3000 g of 2000 g
        _market("M1", 4, {"batch_id": "B1", "quantity_g": 9000}),  # registered again
    ]
    store.commit(SITE, "b", recs, [])
    while store.project(2):
        pass
    got = _projected(store)
    assert got["batches"] == [("B1", 2, 2000, None, 3000, 0, 1)]
    assert [x[:3] for x in got["lines"]] == [("M1", 1, 0), ("M1", 3, 0)]
    assert got["alarms"] == [("batch_entry_duplicate", "M1", 4), ("batch_overdrawn", "M1", 3)]


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(_body, min_size=1, max_size=8), st.randoms(use_true_random=False))
def test_hops_come_out_the_same_whichever_arrives_first(
    make_store: MakeStore, bodies: list[dict[str, Any]], rnd: Any
) -> None:
    """The same records stored in two orders (each projected as it arrives): the same hops."""
    got = []
    for order in (list(range(len(bodies))), rnd.sample(range(len(bodies)), len(bodies))):
        store = make_store(project_inline=False)
        for n, i in enumerate(order):
            store.commit(SITE, f"b{n}", [_market("M1", i + 1, bodies[i])], [])
            while store.project():
                pass
        got.append(_projected(store)["links"])
    assert got[0] == got[1]


def test_an_entry_links_to_the_upstream_lines_of_its_goods(make_store: MakeStore) -> None:
    store = make_store(project_inline=False)
    lines = [
        {"batch_id": "B1", "weight_g": 1500, "mode": "weighed", "goods_code": "G1"},
        {"batch_id": "B2", "weight_g": 900, "mode": "weighed", "goods_code": "G2"},
    ]
    entry = {"batch_id": "R1", "quantity_g": 1500, "goods_code": "G1"}
    recs = [
        _market("R", 1, {**entry, "source": {"trace_id": "0001", "via": "qr"}}),  # sale later
        _market("W", 1, {"trace_id": "0001", "tran_id": "V1", "lines": lines}),
        _market("R", 2, {**entry, "batch_id": "R2", "source": {"tran_id": "V1", "via": "keyed"}}),
        _market("R", 3, {**entry, "batch_id": "R3", "source": {"tran_id": "V9", "via": "keyed"}}),
    ]
    store.commit(SITE, "b", recs, [])
    while store.project(1):
        pass
    assert _projected(store)["links"] == [
        ("R", 1, "W", 1, 0, "R1", "G1"),
        ("R", 2, "W", 1, 0, "R2", "G1"),
    ]
