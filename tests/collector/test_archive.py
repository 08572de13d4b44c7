"""Retention: records past ``keep_days`` move to Parquet and out of the hot store, and stay
findable, deduplicated and counted. Real SQLite store, real pyarrow files, the real API and
CLI; the store's own forwarding calls stand for an accepting platform."""

from __future__ import annotations

import json
import random
import sqlite3
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from collector import markets
from collector.api import ApiContext, make_app
from collector.archive import files, run
from collector.archive.source import SqliteArchiveSource
from collector.store import SqliteStore, device_report, summarize
from collector.verify import Good
from simulators.records import make_body
from tests.apiauth import admin_headers
from traceedge.cli import main
from wire.canonical import canonical
from wire.checkdigit import with_check_digit
from wire.envelope import make_record
from wire.tracecode import make_trace_code

KEY = bytes(range(32))
DAY_MS = 86_400_000
# 2025-11-24 00:00 China time: far past any retention the tests use
DAY0 = 1_763_856_000_000 + 16 * 3_600_000
NOW_MS = DAY0 + 400 * DAY_MS
CUTOFF = run.cutoff_ms(NOW_MS, 30)


def good(dev: str, seq: int, ts: int, kind: str = "elevator.status", body: Any = None) -> Good:
    if body is None:
        body = make_body(kind, random.Random(seq), dev, seq, "S001", now_ms=ts)
    rec = make_record(dev, seq, 1, kind, ts, "ntp", body, KEY)
    return Good(dev, seq, kind, ts, str(rec["mac"]), canonical(rec).decode())


def forward_all(store: SqliteStore) -> None:
    """What the forwarder does when the platform accepts every document."""
    while (batch := store.claim_forward(1000, 60.0)) is not None:
        store.forwarded(batch, batch.ids)


def archive(store: SqliteStore, root: Path, **kw: Any) -> run.Summary:
    return run.run(SqliteArchiveSource(store), root, CUTOFF, **kw)


def hot(path: Path) -> list[tuple[str, int]]:
    db = sqlite3.connect(path)
    try:
        return [(str(d), int(s)) for d, s in db.execute("SELECT dev, seq FROM records ORDER BY id")]
    finally:
        db.close()


def archived_rows(root: Path) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for e in files.entries(root):
        out.extend(pq.read_table(e.path(root)).to_pylist())
    return out


def _no_clock(report: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in d.items() if k != "silent_s"} for d in report]


def counters(store: SqliteStore) -> dict[str, Any]:
    s = summarize(store.db)
    s.pop("processes")
    return s


@pytest.fixture
def store(tmp_path: Path) -> Any:
    st = SqliteStore(tmp_path / "collector.sqlite")
    yield st
    st.close()


def test_a_record_survives_the_round_trip_and_the_api_finds_it(
    store: SqliteStore, tmp_path: Path
) -> None:
    old = [good("EL-1", s, DAY0 + s * 3_600_000) for s in range(1, 31)]  # two days
    old_b = [good("EL-2", s, DAY0 + s * 60_000) for s in range(1, 6)]
    recent = [good("EL-1", 31, NOW_MS - 1000)]
    store.commit("S001", "b1", old + recent, [])
    store.commit("S002", "b2", old_b, [])
    forward_all(store)
    before = counters(store)
    gaps_before = device_report(store.db)
    root = tmp_path / "archive"

    s = archive(store, root)

    assert (s.rows, s.freed) == (35, 35)
    assert sorted((f.day, f.site, f.rows) for f in s.files) == [
        ("2025-11-24", "S001", 23),
        ("2025-11-24", "S002", 5),
        ("2025-11-25", "S001", 7),
    ]
    assert (root / "2025-11-24" / "S001.parquet").exists()
    manifest = json.loads((root / "2025-11-24" / "manifest.json").read_text())
    for f in manifest["files"]:
        assert f["purged"] is True
        assert f["sha256"] == files.sha256_file(root / "2025-11-24" / f["file"])
        assert {"rows", "min_id", "max_id", "min_ts", "max_ts", "created"} <= set(f)
    assert hot(store.path) == [("EL-1", 31)]
    assert pq.ParquetFile(root / "2025-11-24" / "S002.parquet").schema_arrow.names == list(
        files.COLUMNS
    )
    # counters, gaps and watermarks are those of before: archiving moves, it loses nothing
    assert counters(store) == before
    assert _no_clock(device_report(store.db)) == _no_clock(gaps_before)

    api = TestClient(make_app(ApiContext(store.path, archive_dir=root)))
    headers = admin_headers(store.path)
    for g in (old[0], old[17], old_b[4], recent[0]):
        reply = api.get(f"/records/{g.dev}/{g.seq}", headers=headers)
        assert reply.status_code == 200, reply.text
        assert reply.json() == json.loads(g.text)
    assert api.get("/records/EL-1/99", headers=headers).status_code == 404
    assert api.get("/stats", headers=headers).json()["archive_read_errors"] == 0


def test_gaps_stay_where_they_were(store: SqliteStore, tmp_path: Path) -> None:
    store.commit("S001", "b", [good("EL-9", s, DAY0 + s) for s in (1, 2, 5, 6, 9)], [])
    forward_all(store)
    before = [(d["missing"], d["gaps"], d["watermark"]) for d in device_report(store.db)]
    assert before == [(4, [[3, 4], [7, 8]], 2)]
    archive(store, tmp_path / "archive")
    assert hot(store.path) == []
    after = [(d["missing"], d["gaps"], d["watermark"]) for d in device_report(store.db)]
    assert after == before


def test_records_not_safe_to_remove_stay(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "collector.sqlite", project_inline=False)
    try:
        store.commit("S001", "b1", [good("EL-1", s, DAY0 + s) for s in range(1, 5)], [])
        forward_all(store)  # 1-4 forwarded
        store.commit("S001", "b2", [good("EL-1", s, DAY0 + s) for s in range(5, 8)], [])
        pending = store.claim_forward(2, 60.0)  # 5, 6: a delivery not settled yet
        assert pending is not None and pending.ids == [5, 6]
        store.commit("S001", "b3", [good("EL-1", 8, DAY0 + 8)], [])
        held = store.claim_forward(10, 60.0)  # the lease of 5-6 is live: 7-8 are next
        assert held is not None and held.ids == [7, 8]
        store.hold(held, {8: "the mapper refuses it"})
        store.forwarded(held, [7])  # 7 delivered, 8 held
        entry = good("MKT-GATE", 1, DAY0 + 9, "market.entry", _entry_body("B1"))
        store.commit("S001", "b4", [entry], [])
        forward_all(store)  # forwarded, but the market projection has not applied it
        kept = run.run(SqliteArchiveSource(store), tmp_path / "archive", CUTOFF)
        assert sorted(hot(store.path)) == [("EL-1", 5), ("EL-1", 6), ("EL-1", 8), ("MKT-GATE", 1)]
        assert kept.kept_back == {"not_forwarded": 0, "forwarding": 3, "not_projected": 1}
        assert sorted((r["dev"], r["seq"]) for r in archived_rows(tmp_path / "archive")) == [
            ("EL-1", s) for s in (1, 2, 3, 4, 7)
        ]
        store.project()
        run.run(SqliteArchiveSource(store), tmp_path / "archive", CUTOFF)
        assert ("MKT-GATE", 1) not in hot(store.path)
    finally:
        store.close()


def test_a_crash_between_writing_and_deleting_loses_and_duplicates_nothing(
    store: SqliteStore, tmp_path: Path
) -> None:
    root = tmp_path / "archive"
    goods = [good(f"EL-{d}", s, DAY0 + s * 7_200_000) for d in range(3) for s in range(1, 21)]
    store.commit("S001", "b", goods, [])
    forward_all(store)
    source = SqliteArchiveSource(store)
    # the first phase alone, as if the process died before deleting anything
    written = run.write(source, root, CUTOFF, chunk_rows=7, max_open=2)
    assert sum(e.rows for e in written) == 60 and len(hot(store.path)) == 60
    assert not any(e.purged for e in files.entries(root))
    # and a crash in the middle of a later write: a temp file and a part no manifest lists
    (root / "2025-11-24" / "S001.9.parquet.tmp").write_bytes(b"half")
    (root / "2025-11-24" / "S001.9.parquet").write_bytes(b"unlisted")

    s = archive(store, root, chunk_rows=7)

    assert (s.recovered, s.freed, s.files) == (len(written), 60, [])
    assert sorted(s.cleaned) == ["2025-11-24/S001.9.parquet", "2025-11-24/S001.9.parquet.tmp"]
    rows = archived_rows(root)
    keys = Counter((r["dev"], r["seq"]) for r in rows)
    assert len(keys) == 60 and set(keys.values()) == {1}
    assert {(r["dev"], r["seq"]): r["rec"] for r in rows} == {(g.dev, g.seq): g.text for g in goods}
    assert hot(store.path) == []
    _, problems = files.verify(root)
    assert problems == []

    # a record of an archived day arrives weeks later: a new part of the same day and site
    late = good("EL-0", 21, DAY0 + 3_600_000)
    store.commit("S001", "late", [late], [])
    forward_all(store)
    s2 = archive(store, root)
    assert [(f.day, f.file, f.rows) for f in s2.files] == [("2025-11-24", "S001.1.parquet", 1)]
    day_files = [e.file for e in files.load_day(root, "2025-11-24")]
    assert day_files[-1] == "S001.1.parquet" and len(set(day_files)) == len(day_files)


def test_a_damaged_part_deletes_nothing(store: SqliteStore, tmp_path: Path) -> None:
    root = tmp_path / "archive"
    store.commit("S001", "b", [good("EL-1", s, DAY0 + s) for s in range(1, 6)], [])
    forward_all(store)
    (entry,) = run.write(SqliteArchiveSource(store), root, CUTOFF)
    _flip_a_byte(entry.path(root))
    with pytest.raises(files.ArchiveFileError, match=r"S001\.parquet: checksum mismatch"):
        archive(store, root)
    assert len(hot(store.path)) == 5


def test_a_resent_archived_record_is_a_duplicate_or_a_conflict(
    store: SqliteStore, tmp_path: Path
) -> None:
    goods = [good("EL-1", s, DAY0 + s) for s in range(1, 6)]
    store.commit("S001", "b", goods, [])
    forward_all(store)
    archive(store, tmp_path / "archive")
    before = counters(store)

    again = store.commit("S001", "resent", [goods[2], good("EL-1", 6, DAY0 + 6)], [])
    assert (again.stored, again.duplicates, again.bad) == (1, 1, 0)
    copy = goods[3]
    forged = Good(copy.dev, copy.seq, copy.kind, copy.ts, "0" * 64, copy.text)
    clash = store.commit("S001", "forged", [forged], [])
    assert (clash.stored, clash.duplicates, clash.bad) == (0, 0, 1)

    after = counters(store)
    assert after["records"] == before["records"] + 1  # EL-1 6 only
    assert (after["duplicates"], after["conflicts"]) == (
        before["duplicates"] + 1,
        before["conflicts"] + 1,
    )
    assert hot(store.path) == [("EL-1", 6)]
    alarm = store.db.execute("SELECT kind, dev, seq FROM alarms ORDER BY id DESC").fetchone()
    assert alarm == ("conflict", "EL-1", 4)
    q = store.db.execute("SELECT reason, dev, seq FROM quarantine ORDER BY id DESC").fetchone()
    assert q == ("conflict", "EL-1", 4)
    # the fast path still takes an ordinary batch of new records, beyond the horizon
    new = store.commit("S001", "new", [good("EL-1", s, NOW_MS) for s in (7, 8)], [])
    assert (new.stored, new.duplicates) == (2, 0)


def _entry_body(batch_id: str) -> dict[str, Any]:
    return {
        "market": "M330106001",
        "trader": "T0001",
        "card": "A1B2C301",
        "batch_id": batch_id,
        "cert_no": "QC330106-2025-000123",
        "origin": "浙江省金华市",
        "goods_code": "0101",
        "goods_name": "猪肉",
        "quantity_g": 100_000,
    }


def test_a_trace_chain_is_the_same_from_the_archive(store: SqliteStore, tmp_path: Path) -> None:
    batch_id = with_check_digit("1000012511240101001")
    code = make_trace_code("100001", "251124", 1, 1)
    markets.import_traders(
        store.db,
        [{"trader": "T0001", "name": "王建国", "card_uid": "A1B2C301", "market": "M330106001"}],
    )
    sale = {
        "market": "M330106001",
        "terminal": "M330106001-001",
        "scale_sw": "ACS-15RT V3.0.7",
        "tran_id": with_check_digit("3301062511240100001"),
        "trace_id": code,
        "seller": "T0001",
        "seller_card": "A1B2C301",
        "lines": [
            {
                "batch_id": batch_id,
                "goods_code": "0101",
                "goods_name": "猪肉",
                "mode": "weighed",
                "weight_g": 1500,
                "price_fen_per_kg": 3000,
                "amount_fen": 4500,
            }
        ],
        "total_fen": 4500,
        "pay": "wechat",
    }
    store.commit(
        "MKT01",
        "b",
        [
            good("MKT-GATE", 1, DAY0 + 5 * 3_600_000, "market.entry", _entry_body(batch_id)),
            good("MKT-S01", 1, DAY0 + 9 * 3_600_000, "market.settlement", sale),
        ],
        [],
    )
    forward_all(store)
    root = tmp_path / "archive"
    api = TestClient(make_app(ApiContext(store.path, archive_dir=root)))
    headers = admin_headers(store.path)
    before = api.get(f"/trace/{code}", headers=headers)
    assert before.status_code == 200, before.text
    assert before.json()["origins"] == ["浙江省金华市"]

    assert archive(store, root).freed == 2
    assert hot(store.path) == []

    after = api.get(f"/trace/{code}", headers=headers)
    assert after.status_code == 200, after.text
    assert after.json() == before.json()
    unknown = make_trace_code("100001", "251124", 1, 2)
    assert api.get(f"/trace/{unknown}", headers=headers).status_code == 404


def _flip_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def _config(tmp_path: Path, retention: str = "[retention]\nkeep_days = 30\n") -> Path:
    res = CliRunner().invoke(main, ["collector", "keygen", "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    cfg = tmp_path / "collector.toml"
    cfg.write_text(
        '[collector]\ndata_dir = "data"\nregistry = "devices.json"\ncommand_key = "command.key"\n'
        + retention
    )
    return cfg


def test_the_cli_archives_verifies_and_names_a_damaged_file(tmp_path: Path) -> None:
    cfg = _config(tmp_path)
    path = tmp_path / "data" / "collector.sqlite"
    store = SqliteStore(path)
    goods = [good("EL-1", s, DAY0 + s * 3_600_000) for s in range(1, 40)]
    store.commit("S001", "b", goods, [])
    forward_all(store)
    store.close()
    cli = CliRunner()

    dry = cli.invoke(main, ["collector", "archive", "--config", str(cfg), "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "2025-11-24 S001: 23 records" in dry.output and "dry run: 39 records" in dry.output
    assert len(hot(path)) == 39

    done = cli.invoke(main, ["collector", "archive", "--config", str(cfg)])
    assert done.exit_code == 0, done.output
    assert "2025-11-24/S001.parquet: 23 rows" in done.output
    assert "39 records" in done.output and "39 records removed from the store" in done.output
    assert hot(path) == []

    ok = cli.invoke(main, ["collector", "archive", "--config", str(cfg), "--verify"])
    assert ok.exit_code == 0, ok.output
    assert "2 files checked" in ok.output

    root = tmp_path / "data" / "archive"
    _flip_a_byte(root / "2025-11-25" / "S001.parquet")
    bad = cli.invoke(main, ["collector", "archive", "--config", str(cfg), "--verify"])
    assert bad.exit_code != 0
    assert "2025-11-25/S001.parquet: checksum mismatch" in bad.output

    # the API answers what the good file holds, and names the damaged one otherwise
    api = TestClient(make_app(path))  # the default archive folder: beside the store
    headers = admin_headers(path)
    assert api.get("/records/EL-1/1", headers=headers).json() == json.loads(goods[0].text)
    broken = api.get("/records/EL-1/30", headers=headers)
    assert broken.status_code == 503
    assert "2025-11-25/S001.parquet: checksum mismatch" in broken.json()["detail"]
    assert api.get("/stats", headers=headers).json()["archive_read_errors"] >= 1

    help_ = cli.invoke(main, ["collector", "archive", "--help"])
    assert "Example:" in help_.output and "--older-than-days" in help_.output


def test_the_cli_needs_a_retention(tmp_path: Path) -> None:
    cfg = _config(tmp_path, retention="")
    SqliteStore(tmp_path / "data" / "collector.sqlite").close()
    res = CliRunner().invoke(main, ["collector", "archive", "--config", str(cfg)])
    assert res.exit_code == 1
    assert "retention.keep_days" in res.output
    res = CliRunner().invoke(
        main, ["collector", "archive", "--config", str(cfg), "--older-than-days", "30"]
    )
    assert res.exit_code == 0, res.output
    assert "0 files" in res.output
