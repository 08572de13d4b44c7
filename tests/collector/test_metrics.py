"""The collector's ``/metrics``: what a real store holds, as Prometheus text that
prometheus_client parses and ``promtool check metrics`` passes; every scrape reads small
tables and indexes only, never the records or the quarantine's payloads. On SQLite and
PostgreSQL (tests/stores.py); SQLite only: the query plans, a store file not made yet, and
stores made before the quarantine kept its reasons."""

from __future__ import annotations

import json
import re
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from collector import sites
from collector.api import ApiContext, make_app
from collector.api_metrics import render, store_families
from collector.store import SqliteStore, summarize
from collector.verify import Bad, Good
from hostlib.sqlite import open_ro
from tests.apiauth import bearer
from tests.promtool import check_metrics, value
from tests.stores import StoreUnderTest, open_store

P = "traceedge_collector_"


def good(dev: str, seq: int, mac: str = "") -> Good:
    rec = {"v": 1, "dev": dev, "seq": seq, "kind": "elevator.status", "body": {}}
    return Good(
        dev, seq, "elevator.status", 1_700_000_000_000, mac or f"m-{dev}-{seq}", json.dumps(rec)
    )


def bad(reason: str, seq: int) -> Bad:
    return Bad(reason, f"{reason} of A1/{seq}", "A1", seq, b"{}")


@pytest.fixture
def sqlite_sut(tmp_path: Path) -> Iterator[StoreUnderTest]:
    s = open_store("sqlite", tmp_path)
    yield s
    s.close()


def fill(sut: StoreUnderTest) -> float:
    """Two sites: A with a gap and bad records, B clean; returns when it was written."""
    store = sut.store
    store.commit("A", "a1", [good("A1", 1), good("A1", 2), good("A1", 4)], [])
    store.commit("A", "a2", [good("A1", 1, mac="other")], [bad("mac", 7), bad("mac", 8)])
    store.commit("A", "a3", [], [bad("schema", 9)])
    store.commit("B", "b1", [good("B1", s) for s in (1, 2, 3)], [])
    store.quarantine_payload("A", "batch_decode", "not a batch", b"junk")
    store.site_status("A", {"depth": 7, "oldest_age_s": 100, "alarm_outbox_full": 0})
    store.site_status(
        "B", {"depth": 0, "oldest_age_s": 0, "alarm_outbox_full": 1, "sources_down": 2}
    )
    store.heartbeat("collector-0", {"at": time.time()})
    rows = [{"site": c, "name": f"market {c}", "kind": "market"} for c in ("A", "B", "Z")]
    with sut.write() as db:
        sites.import_sites(db, rows)  # Z: registered, never heard from
    return time.time()


def test_a_scrape_says_what_the_store_holds(any_store: StoreUnderTest) -> None:
    written = fill(any_store)
    store = any_store.store
    now = written + 60
    ctx = any_store.ctx()
    text = render(ctx, clock=lambda: now)

    assert value(text, P + "stored_records_total") == 6
    assert value(text, P + "batches_total") == 4
    assert value(text, P + "conflicting_records_total") == 1
    quarantined = {"mac": 2, "schema": 1, "conflict": 1, "batch_decode": 1}
    for reason, n in quarantined.items():
        assert value(text, P + "quarantined_records_total", reason=reason) == n
    assert value(text, P + "alarms") == 1  # the conflict
    assert value(text, P + "site_missing_records", site="A") == 1  # A1 seq 3
    assert value(text, P + "site_missing_records", site="B") == 0
    assert value(text, P + "site_stored_records_total", site="B") == 3
    assert value(text, P + "site_devices", site="A") == 1
    assert value(text, P + "site_never_seen", site="Z") == 1
    assert value(text, P + "site_never_seen", site="A") == 0
    assert value(text, P + "site_agent_backlog_records", site="A") == 7
    # the agent said 100 s a minute ago: its oldest record is 160 s old now
    assert 159 < value(text, P + "site_agent_backlog_age_seconds", site="A") < 162
    assert value(text, P + "site_agent_backlog_age_seconds", site="B") == 0
    assert value(text, P + "site_agent_outbox_full", site="B") == 1
    assert value(text, P + "site_agent_sources_down", site="B") == 2  # its serial/Modbus links
    assert value(text, P + "site_agent_sources_down", site="A") == 0  # an agent without any
    for site in ("A", "B"):
        assert 59 < value(text, P + "site_last_seen_age_seconds", site=site) < 62
        assert 59 < value(text, P + "site_last_status_age_seconds", site=site) < 62
        assert 59 < value(text, P + "site_last_record_age_seconds", site=site) < 62
    assert 59 < value(text, P + "process_heartbeat_age_seconds", process="collector-0") < 62
    assert value(text, P + "store_up") == 1

    # forwarding: all 6 wait, the oldest a minute old; 2 claimed and delivered, 4 wait
    assert value(text, P + "forward_backlog_records") == 6 == _summary(any_store)["forward_backlog"]
    assert 59 < value(text, P + "forward_lag_seconds") < 62
    batch = store.claim_forward(2, 30.0)
    assert batch is not None
    assert value(render(ctx, clock=lambda: now), P + "forward_backlog_records") == 6
    store.forwarded(batch, batch.ids)
    text = render(ctx, clock=lambda: now)
    assert value(text, P + "forward_backlog_records") == 4 == _summary(any_store)["forward_backlog"]
    assert value(text, P + "forwarded_records_total") == 2
    rest = store.claim_forward(10, 30.0)
    assert rest is not None
    store.hold(rest, {rest.ids[0]: "the mapper refused it"})
    store.forwarded(rest, rest.ids[1:])
    text = render(ctx, clock=lambda: now)
    assert value(text, P + "forward_backlog_records") == 0 == _summary(any_store)["forward_backlog"]
    assert value(text, P + "forward_held_records") == 1
    assert value(text, P + "forward_lag_seconds") == 0


def _summary(sut: StoreUnderTest) -> dict[str, Any]:
    """What ``collector status`` counts exactly (record by record)."""
    with sut.read() as db:
        return summarize(db)


def test_this_process_workers_and_live_counters(any_store: StoreUnderTest) -> None:
    live = {
        "batches": 3,
        "poisoned": 1,
        "status_refused": {"mac": 2, "unknown_gateway": 1},
        "queue": 5,
        "broker_connected": 1,
        "platform_ok": 0,
    }
    ctx = any_store.ctx(dead_workers=lambda: ["forwarder"], live=lambda: live)
    text = render(ctx)
    assert value(text, P + "dead_workers") == 1
    assert value(text, P + "worker_dead", worker="forwarder") == 1
    assert value(text, P + "process_batches_total") == 3
    assert value(text, P + "process_poisoned_messages_total") == 1
    assert value(text, P + "process_status_refused_total", reason="mac") == 2
    assert value(text, P + "process_status_refused_total", reason="unknown_gateway") == 1
    assert value(text, P + "process_queue_messages") == 5
    assert value(text, P + "process_broker_connected") == 1
    assert value(text, P + "process_platform_ok") == 0
    healthy = render(any_store.ctx(dead_workers=lambda: []))
    assert value(healthy, P + "dead_workers") == 0


def test_every_metric_has_help_a_type_and_sites_a_label(any_store: StoreUnderTest) -> None:
    fill(any_store)
    text = render(any_store.ctx(dead_workers=lambda: ["ingest"], live=lambda: {"batches": 1}))
    check_metrics(text)
    fams = list(text_string_to_metric_families(text.decode()))
    assert len(fams) > 25
    for fam in fams:
        assert fam.name.startswith(P) and fam.documentation, fam.name
        assert fam.type in ("counter", "gauge"), fam.name
        for s in fam.samples:
            if fam.type == "counter":
                assert s.name == fam.name + "_total", s
            if fam.name.startswith(P + "site_"):
                assert set(s.labels) == {"site"}, s


def test_a_store_that_cannot_be_read_is_said_and_the_rest_still_answers(tmp_path: Path) -> None:
    text = render(ApiContext(tmp_path / "none.sqlite", dead_workers=lambda: ["ingest"]))
    assert value(text, P + "store_up") == 0
    assert value(text, P + "dead_workers") == 1
    assert not (tmp_path / "none.sqlite").exists()  # a scrape creates nothing


def test_get_metrics_over_the_api_with_a_monitor_token(any_store: StoreUnderTest) -> None:
    fill(any_store)
    monitor, inspector = any_store.token("monitor"), any_store.token("inspector")
    ctx = any_store.ctx(dead_workers=lambda: [], live=lambda: {"batches": 2})
    with TestClient(make_app(ctx)) as client:
        reply = client.get("/metrics", headers=bearer(monitor))
        assert client.get("/metrics").status_code == 401
        assert client.get("/metrics", headers=bearer(inspector)).status_code == 403
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert value(reply.text, P + "stored_records_total") == 6
    assert value(reply.text, P + "process_batches_total") == 2


FULL_SCAN = re.compile(r"\bSCAN (records|quarantine)\b(?!_)")


def test_a_scrape_reads_no_records_and_no_quarantine_payloads(sqlite_sut: StoreUnderTest) -> None:
    """Its cost does not grow with the store: every statement a scrape runs is planned
    without a full scan of ``records`` or ``quarantine`` (docs/metrics.md: ~N ms at 1M)."""
    fill(sqlite_sut)
    sqlite_sut.store.claim_forward(2, 30.0)
    statements: list[str] = []
    with open_ro(sqlite_sut.path) as db:
        db.set_trace_callback(statements.append)
        store_families(db, time.time())
        db.set_trace_callback(None)
        assert len(statements) >= 8
        for sql in statements:
            if not sql.lstrip().upper().startswith("SELECT"):
                continue
            plan = " | ".join(r[3] for r in db.execute("EXPLAIN QUERY PLAN " + sql, _args(sql)))
            assert not FULL_SCAN.search(plan), f"{sql}\n  → {plan}"


def _args(sql: str) -> tuple[int, ...]:
    """The trace shows statements with their values bound; none is left to bind."""
    return (0,) * sql.count("?")


def test_quarantine_reasons_of_an_older_store_are_counted_from_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    s = SqliteStore(path)
    s.commit("A", "a1", [], [bad("mac", 1), bad("mac", 2), bad("schema", 3)])
    s.quarantine_payload("A", "batch_decode", "x", b"y")
    s.db.execute("DROP TABLE quarantine_reasons")  # as a store made before it was
    s.close()
    s = SqliteStore(path)
    try:
        text = render(ApiContext(path))
    finally:
        s.close()
    assert value(text, P + "quarantined_records_total", reason="mac") == 2
    assert value(text, P + "quarantined_records_total", reason="schema") == 1
    assert value(text, P + "quarantined_records_total", reason="batch_decode") == 1


def test_quarantined_records_counted_before_reasons_and_evicted_are_unknown(
    tmp_path: Path,
) -> None:
    path = tmp_path / "old.sqlite"
    s = SqliteStore(path)
    s.commit("A", "a1", [], [bad("mac", 1)])
    with s.atomic() as db:  # quarantined and evicted by a version that kept no reasons
        db.execute("UPDATE counters SET value = value + 4 WHERE name = 'quarantined'")
    s.close()
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT SUM(records) FROM quarantine_reasons").fetchone()[0] == 1
    text = render(ApiContext(path))
    assert value(text, P + "quarantined_records_total", reason="mac") == 1
    assert value(text, P + "quarantined_records_total", reason="unknown") == 4
