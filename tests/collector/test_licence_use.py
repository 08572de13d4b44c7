"""A licence's use across its sites at the collector, on both stores: summed per site from
the ``goods.out`` records naming it (read from the partial index), pushed to each of its
sites as what the *other* sites used (signed, versioned, not re-sent unchanged), an alarm
once when the sites together went over its quantity, and the reporting list flagging its
sales."""

from __future__ import annotations

import csv
import io
import threading
import time
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from collector import licence_use, licences, whviews
from collector.alarms import list_alarms
from collector.api import make_app
from collector.pushdown import PushDown
from collector.storedb import StoreDb
from hostlib.registry import Registry, add_devices
from tests.collector.test_markets import at, connect
from tests.collector.test_pushdown import Published
from tests.collector.test_whviews import DEV_A, DEV_B, A, B, PlanSpy, SiteFeed, goods_out
from tests.collector.test_whviews import feed_day as whviews_day
from tests.stores import StoreUnderTest
from traceedge.provision import new_device, site_gateway, site_trust
from wire.command import load_private_key

LIC = "JD-330200-2025-0042"  # the licence test_whviews' sales name
C = "WH03"  # a site the licence is not valid at


def licence(quantity: int, sites: list[str]) -> dict[str, Any]:
    return {
        "licence": LIC,
        "kind": "toxic_purchase",
        "holder": "宁波港华电镀厂",
        "classes": ["chemical_toxic", "fertiliser"],
        "quantity": quantity,
        "unit": "g",
        "valid_from": "2025-01-01",
        "valid_until": "2099-12-31",
        "sites": sites,
    }


def other(number: str, sites: list[str]) -> dict[str, Any]:
    return {**licence(1000, sites), "licence": number}


def test_use_is_summed_per_site_alarmed_once_and_flagged(any_store: StoreUnderTest) -> None:
    whviews_day(any_store)  # A: 25 000 + 25 000 + 5 000 g against the licence, B: 10 000 g
    db = connect(any_store)
    try:
        licences.import_licences(db, [licence(100_000, [A, B]), other("JD-UNUSED", ["*"])])
        assert licence_use.use_by_site(db) == {(LIC, "g"): {A: 55_000, B: 10_000}}
        snap = licence_use.use_snapshot(db)
        assert snap["version"] == 0  # nothing versioned yet: nothing is pushed
        assert licence_use.changed(db)
        assert licence_use.refresh(db, now=1000.0) == (True, 0)  # within its quantity
        assert not licence_use.changed(db) and licence_use.refresh(db) == (False, 0)
        snap = licence_use.use_snapshot(db)
        assert snap["version"] == 1_000_000  # a time in ms: ahead of any older store
        assert licence_use.for_site(snap, A)["use"] == [
            {"licence": LIC, "unit": "g", "elsewhere": 10_000}
        ]  # JD-UNUSED: used nowhere, left out
        assert licence_use.for_site(snap, B)["use"][0]["elsewhere"] == 55_000
        assert licence_use.for_site(snap, C)["use"] == []  # not valid at C: not sent there
        # the quantity lowered below what the two sites let leave together: an alarm at each
        licences.import_licences(db, [licence(60_000, [A, B])])
        assert licence_use.refresh(db, now=2000.0) == (True, 2)  # the quantity: a new digest
        assert licence_use.refresh(db) == (False, 0)  # once
        alarms = db.execute("SELECT kind, detail FROM alarms ORDER BY id").fetchall()
        assert [a[0] for a in alarms] == ["licence_overdrawn"] * 2
        assert [a[1].split(":")[0] for a in alarms] == [A, B]  # each site's inspector sees it
        assert f"licence {LIC}: 65000 g" in alarms[0][1] and "above its 60000 g" in alarms[0][1]
        assert f"{A} 55000, {B} 10000" in alarms[0][1]
        with any_store.read() as r:  # the alarm list puts each under its site
            page = list_alarms(r, kind="licence_overdrawn", sites=[B])
        assert [x.site for x in page.items] == [B]
        assert licence_use.overdrawn(db) == frozenset({LIC})
        # more use: the totals change (a new version) and the alarm is raised again
        f = SiteFeed(any_store.store)
        f.seqs[DEV_B] = 100  # after the day's records
        f.commit([f.make(DEV_B, "goods.out", at(9), goods_out(B, [22], 1_000, "LB"))])
        assert licence_use.refresh(db, now=3000.0) == (True, 2)
        assert licence_use.use_snapshot(db)["version"] == 3_000_000
        # the officer's list flags the licence's sales, and so does its CSV
        rep = whviews.to_report(db, now_ms=at(30))
        assert rep and all(x.licence_overdrawn for x in rep)
        rows = list(csv.reader(io.StringIO(whviews.report_csv(rep)[1:])))
        assert rows[0][-1] == "许可证超量 licence overdrawn" and rows[1][-1] == "是 yes"
        # its quantity raised by a new import: no longer overdrawn, nothing flagged
        licences.import_licences(db, [licence(100_000, [A, B])])
        assert licence_use.refresh(db, now=4000.0) == (True, 0)
        assert licence_use.overdrawn(db) == frozenset()
        assert not any(x.licence_overdrawn for x in whviews.to_report(db, now_ms=at(30)))
    finally:
        db.close()


def test_the_api_lists_licences_in_scope_with_their_use(any_store: StoreUnderTest) -> None:
    whviews_day(any_store)
    db = connect(any_store)
    try:
        licences.import_licences(
            db, [licence(60_000, [A, B]), other("JD-B", [B]), other("JD-ALL", ["*"])]
        )
    finally:
        db.close()
    reg = any_store.path.parent / "devices.json"
    reg.write_text('{"devices": {}}')
    client = TestClient(make_app(any_store.ctx(registry_path=reg)))
    site_a = {"Authorization": f"Bearer {any_store.token('inspector', f'site:{A}')}"}
    got = client.get("/warehouse/licences", headers=site_a)
    assert got.status_code == 200, got.text
    by = {x["licence"]: x for x in got.json()}
    assert sorted(by) == [LIC, "JD-ALL"]  # JD-B is not valid at A
    assert by[LIC]["used"] == {A: 55_000}  # B's share: out of this token's scope
    assert by[LIC]["used_total"] == 65_000 and by[LIC]["overdrawn"] is True
    assert by["JD-ALL"]["used_total"] == 0 and by["JD-ALL"]["overdrawn"] is False
    admin = any_store.admin_headers()
    over = client.get("/warehouse/licences", params={"overdrawn": "true"}, headers=admin)
    assert [x["licence"] for x in over.json()] == [LIC]
    assert over.json()[0]["used"] == {A: 55_000, B: 10_000}
    op = {"Authorization": f"Bearer {any_store.token('operator', 'market:M1')}"}
    assert client.get("/warehouse/licences", headers=op).status_code == 403


def test_units_other_than_the_licences_do_not_count(any_store: StoreUnderTest) -> None:
    f = SiteFeed(any_store.store)
    f.commit(
        [
            f.make(DEV_A, "goods.out", at(1), goods_out(A, [1], 700, "L1")),
            f.make(DEV_A, "goods.out", at(2), {**goods_out(A, [2], 900, "L1"), "unit": "ml"}),
            f.make(DEV_B, "goods.out", at(3), {**goods_out(B, [3], 500, "L1"), "licence": "X"}),
        ]
    )
    db = connect(any_store)
    try:
        licences.import_licences(db, [licence(1_000, [A, B])])
        uses = licence_use.licence_uses(db)
        assert [(u.licence, u.sites, u.total, u.overdrawn) for u in uses] == [
            (LIC, {A: 700}, 700, False)
        ]
    finally:
        db.close()


def test_the_sum_reads_the_licensed_sales_index(any_store: StoreUnderTest) -> None:
    whviews_day(any_store)
    with any_store.write() as db:
        if any_store.postgres:  # a tiny table: make the planner show it can use the index
            db.execute("SET LOCAL enable_seqscan = off")
        spy = PlanSpy(db, any_store.postgres)
        licence_use.use_by_site(spy)
    assert "records_goods_licence" in spy.plans[0]


def test_the_use_elsewhere_is_pushed_signed_per_site(
    any_store: StoreUnderTest, tmp_path: Path
) -> None:
    registry = tmp_path / "registry" / "devices.json"
    add_devices(registry, [new_device("warehouse-terminal", s) for s in (A, B)], int(time.time()))
    trust = site_trust(tmp_path, registry, A)
    site_gateway(registry, B, tmp_path / "trust")
    key = load_private_key(trust.command_key)
    whviews_day(any_store)
    db = connect(any_store)
    sent = Published()
    storedb = StoreDb(any_store.path, any_store.url, pool_size=1)
    push = PushDown(storedb, Registry(registry), key, sent)
    try:
        licences.import_licences(db, [licence(100_000, [A, B])])
        push.tick()
        assert sent.take("licence_use", key) == {}  # not versioned yet
        licence_use.refresh(db)
        assert push.tick() == 2  # the use, to each site
        got = sent.take("licence_use", key)
        assert {s: c["use"] for s, c in got.items()} == {
            A: [{"licence": LIC, "unit": "g", "elsewhere": 10_000}],
            B: [{"licence": LIC, "unit": "g", "elsewhere": 55_000}],
        }
        assert push.tick() == 0  # unchanged: not sent again before republish_s
        licence_use.refresh(db)
        assert push.tick() == 0  # the totals did not change: no new version
    finally:
        storedb.close()
        db.close()


def test_collectors_sharing_a_store_raise_the_alarm_once(any_store: StoreUnderTest) -> None:
    """Two collectors refreshing at the same moment: one version, one alarm."""
    whviews_day(any_store)
    db = connect(any_store)
    try:
        licences.import_licences(db, [licence(60_000, [A, B])])
    finally:
        db.close()
    stores = [StoreDb(any_store.path, any_store.url, pool_size=1) for _ in range(2)]
    start = threading.Barrier(2)
    results: list[tuple[bool, int]] = []

    def run(s: StoreDb) -> None:
        with s.write() as w:
            start.wait(10)
            results.append(licence_use.refresh(w))

    if any_store.postgres:  # SQLite's write transactions already take turns
        threads = [threading.Thread(target=run, args=(s,)) for s in stores]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
    else:
        start = threading.Barrier(1)
        for s in stores:
            run(s)
    for s in stores:
        s.close()
    assert sorted(results) == [(False, 0), (True, 2)]
    with any_store.read() as r:
        assert r.execute("SELECT COUNT(*) FROM alarms").fetchone()[0] == 2  # A and B


def test_every_version_of_a_licence_is_kept(any_store: StoreUnderTest) -> None:
    """The seller keeps copies of the licences its sales were made against (art. 41): an
    import that changes a licence adds a version, one that repeats it adds none; the API
    shows them oldest first to a token whose sites the licence is valid at."""
    db = connect(any_store)
    try:
        v1 = licences.import_licences(db, [licence(60_000, [A]), other("JD-B", [B])])
        v2 = licences.import_licences(db, [licence(60_000, [A])])  # unchanged: no new copy
        v3 = licences.import_licences(db, [licence(90_000, [A, B])])
        hist = licences.licence_history(db, LIC)
        assert [(h["version"], h["entry"]["quantity"]) for h in hist] == [
            (v1, 60_000),
            (v3, 90_000),
        ]
        assert v2 == v1 + 1
        # what a goods.dispatch decided at registry version v2 was decided against
        assert licences.licence_at(db, LIC, v2)["quantity"] == 60_000  # type: ignore[index]
        assert licences.licence_at(db, LIC, v3)["quantity"] == 90_000  # type: ignore[index]
        assert licences.licence_at(db, LIC, 0) is None
        assert licences.licence_history(db, "JD-NONE") == []
    finally:
        db.close()
    reg = any_store.path.parent / "devices.json"
    reg.write_text('{"devices": {}}')
    client = TestClient(make_app(any_store.ctx(registry_path=reg)))
    site_b = {"Authorization": f"Bearer {any_store.token('inspector', f'site:{B}')}"}
    got = client.get(f"/warehouse/licences/{LIC}/history", headers=site_b)
    assert got.status_code == 200, got.text
    assert [h["version"] for h in got.json()] == [v3]  # the first copy was for A only
    admin = client.get(f"/warehouse/licences/{LIC}/history", headers=any_store.admin_headers())
    assert [h["entry"]["quantity"] for h in admin.json()] == [60_000, 90_000]
    site_c = {"Authorization": f"Bearer {any_store.token('inspector', f'site:{C}')}"}
    assert client.get(f"/warehouse/licences/{LIC}/history", headers=site_c).status_code == 404
    assert client.get("/warehouse/licences/JD-NONE/history", headers=site_b).status_code == 404


def test_a_store_made_before_the_history_gets_its_licences_as_the_first_copy(
    pg_url: str, monkeypatch: Any, tmp_path: Path
) -> None:
    """PostgreSQL migration 8 and the SQLite schema both copy the licences on file."""
    import json
    import sqlite3

    import psycopg

    from collector import pgschema, pgstore

    entry = json.dumps(licence(60_000, [A]), sort_keys=True, ensure_ascii=False)
    monkeypatch.setattr(pgschema, "MIGRATIONS", pgschema.MIGRATIONS[:7])
    monkeypatch.setattr(pgschema, "LATEST", 7)
    assert pgstore.migrate(pg_url) == list(range(1, 8))
    with psycopg.connect(pg_url) as conn:
        conn.execute("INSERT INTO licences VALUES (%s, %s, 1.0)", (LIC, entry))
        conn.execute("INSERT INTO meta VALUES ('licence_registry_version', '3')")
    monkeypatch.undo()
    assert pgstore.migrate(pg_url) == list(range(8, pgschema.LATEST + 1))
    with psycopg.connect(pg_url) as conn:
        rows = conn.execute("SELECT licence, version, entry FROM licence_history").fetchall()
    assert rows == [(LIC, 3, entry)]

    db = sqlite3.connect(tmp_path / "old.db")
    db.executescript(
        "CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);"
        "CREATE TABLE licences (licence TEXT PRIMARY KEY, entry TEXT NOT NULL, updated REAL);"
        "CREATE TABLE records (kind TEXT, ts INTEGER);"
    )
    db.execute("INSERT INTO licences VALUES (?, ?, 1.0)", (LIC, entry))
    db.execute("INSERT INTO meta VALUES ('licence_registry_version', '3')")
    licences.ensure_schema(db)
    licences.ensure_schema(db)  # at every start: copied once
    assert licences.licence_history(db, LIC) == [
        {"version": 3, "imported": 1.0, "entry": json.loads(entry)}
    ]
    db.close()
