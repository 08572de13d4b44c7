"""The outbox against real SQLite files: group commit, dedup, thinning, refusal, acks."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from edge_agent.outbox import ROW_OVERHEAD, Incoming, Outbox


def rec(dev: str, seq: int, kind: str, size: int = 200) -> Incoming:
    return Incoming(dev, seq, kind, b"x" * size)


def test_wal_and_full_sync(tmp_path: Path) -> None:
    ob = Outbox(tmp_path / "o.sqlite", 10**9)
    assert ob.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert ob.db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    ob.close()


def test_group_commit_and_duplicate_identity(tmp_path: Path) -> None:
    ob = Outbox(tmp_path / "o.sqlite", 10**9)
    r = ob.add_many([rec("A", i, "cylinder.fill") for i in range(1, 101)])
    assert len(r.stored) == 100 and not r.duplicates
    r = ob.add_many([rec("A", 100, "cylinder.fill"), rec("A", 101, "cylinder.fill")])
    assert [i.seq for i in r.stored] == [101]
    assert [i.seq for i in r.duplicates] == [100]
    assert ob.depth()[0] == 101
    ob.close()
    # committed means on disk: a fresh connection sees everything
    db = sqlite3.connect(tmp_path / "o.sqlite")
    assert db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0] == 101
    db.close()


def test_depth_counts_and_ages_from_the_first_row(tmp_path: Path) -> None:
    ob = Outbox(tmp_path / "o.sqlite", 10**9)
    assert ob.depth() == (0, 0, None)
    ob.add_many([rec("A", i, "cylinder.fill") for i in range(1, 11)])
    ob.db.execute("UPDATE outbox SET received = received - 3600 WHERE seq <= 5")
    ob.db.commit()
    n, nbytes, age = ob.depth()
    assert (n, nbytes) == (10, 10 * (200 + ROW_OVERHEAD))
    assert age is not None and 3600 <= age < 3660
    ob.delete_range(1, 5)  # the hour-old ones acked: the oldest is now seconds old
    n, _, age = ob.depth()
    assert n == 5 and age is not None and age < 60
    ob.close()


def test_ids_never_go_back_after_delete(tmp_path: Path) -> None:
    ob = Outbox(tmp_path / "o.sqlite", 10**9)
    ob.add_many([rec("A", i, "market.settlement") for i in range(1, 11)])
    rows = ob.read_after(0, 100, 10**9)
    assert ob.delete_range(rows[0].id, rows[-1].id) == 10
    ob.add_many([rec("A", 11, "market.settlement")])
    again = ob.read_after(rows[-1].id, 100, 10**9)
    assert len(again) == 1 and again[0].id > rows[-1].id
    ob.close()


def test_full_outbox_thins_status_samples_first(tmp_path: Path) -> None:
    per = 200 + ROW_OVERHEAD
    ob = Outbox(tmp_path / "o.sqlite", max_bytes=per * 100)
    ob.add_many([rec("E", i, "elevator.status") for i in range(1, 61)])
    ob.add_many([rec("C", i, "cylinder.fill") for i in range(1, 41)])
    assert ob.depth()[0] == 100
    r = ob.add_many([rec("C", i, "cylinder.fill") for i in range(41, 51)])
    assert len(r.stored) == 10 and not r.refused
    assert r.evicted == 10
    kinds = dict(ob.db.execute("SELECT kind, COUNT(*) FROM outbox GROUP BY kind").fetchall())
    assert kinds == {"cylinder.fill": 50, "elevator.status": 50}
    # thinned, not truncated: the oldest sample survives, every other one of the oldest went
    seqs = [
        s
        for (s,) in ob.db.execute(
            "SELECT seq FROM outbox WHERE kind = 'elevator.status' ORDER BY seq"
        )
    ]
    assert seqs[0] == 1
    assert seqs[:10] == [1, 3, 5, 7, 9, 11, 13, 15, 17, 19]
    assert ob.counters()["evicted"] == 10
    assert not ob.alarm
    ob.close()


def test_only_protected_left_refuses_loudly_and_keeps_everything(tmp_path: Path) -> None:
    per = 200 + ROW_OVERHEAD
    ob = Outbox(tmp_path / "o.sqlite", max_bytes=per * 20)
    ob.add_many([rec("E", i, "elevator.status") for i in range(1, 5)])
    ob.add_many([rec("M", i, "market.settlement") for i in range(1, 17)])
    r = ob.add_many([rec("M", i, "market.settlement") for i in range(17, 27)])
    # four samples thinned away to make room, then the rest refused
    assert len(r.stored) == 4
    assert [i.seq for i in r.refused] == [21, 22, 23, 24, 25, 26]
    assert ob.alarm
    assert ob.get_meta("alarm_outbox_full") == "1"
    assert ob.counters()["refused"] == 6
    protected = ob.db.execute(
        "SELECT COUNT(*) FROM outbox WHERE kind = 'market.settlement'"
    ).fetchone()[0]
    assert protected == 20  # nothing protected was ever evicted
    # draining clears the alarm
    rows = ob.read_after(0, 1000, 10**9)
    ob.delete_range(rows[0].id, rows[-1].id)
    assert not ob.alarm and ob.get_meta("alarm_outbox_full") == "0"
    ob.close()


def test_bytes_survive_restart(tmp_path: Path) -> None:
    ob = Outbox(tmp_path / "o.sqlite", 10**9)
    ob.add_many([rec("A", i, "cylinder.check", 100 + i) for i in range(1, 21)])
    before = ob.bytes
    ob.close()
    ob2 = Outbox(tmp_path / "o.sqlite", 10**9)
    assert ob2.bytes == before
    ob2.close()


def test_read_after_respects_byte_bound(tmp_path: Path) -> None:
    ob = Outbox(tmp_path / "o.sqlite", 10**9)
    ob.add_many([rec("A", i, "cylinder.check", 1000) for i in range(1, 51)])
    rows = ob.read_after(0, 1000, 10_500)
    assert len(rows) == 10
    assert len(ob.read_after(0, 1000, 10)) == 1  # always at least one
    ob.close()


def test_quarantine_kept_with_reason(tmp_path: Path) -> None:
    ob = Outbox(tmp_path / "o.sqlite", 10**9)
    ob.quarantine([("t/X/rec", "json", "bad", b"\xff" * 10000)])
    row = ob.db.execute("SELECT topic, reason, length(payload) FROM quarantine").fetchone()
    assert row == ("t/X/rec", "json", 8192)
    assert ob.counters()["quarantined"] == 1
    ob.close()


def test_watermark_contiguous_and_persistent(tmp_path: Path) -> None:
    ob = Outbox(tmp_path / "o.sqlite", 10**9)
    r = ob.add_many([rec("A", s, "cylinder.fill") for s in (1, 2, 4, 5)])
    assert r.watermarks == {"A": 2}  # 3 is missing: 4 and 5 wait above the hole
    ob.add_many([rec("A", 2, "cylinder.fill")])  # a duplicate changes nothing
    assert ob.watermark("A") == 2
    rows = ob.read_after(0, 100, 10**9)
    ob.delete_range(rows[0].id, rows[-1].id)  # uploaded and gone: still counted as committed
    ob.close()
    ob = Outbox(tmp_path / "o.sqlite", 10**9)
    assert ob.watermark("A") == 2
    r = ob.add_many([rec("A", 3, "cylinder.fill")])
    assert r.watermarks == {"A": 5}
    ob.close()


def test_watermark_gives_up_on_a_hole_that_never_fills() -> None:
    from edge_agent.outbox import MAX_ABOVE, advance

    wm, above, gave_up = advance(0, set(), list(range(2, MAX_ABOVE + 2)))
    assert (wm, above, gave_up) == (0, set(range(2, MAX_ABOVE + 2)), False)
    wm, above, gave_up = advance(wm, above, [MAX_ABOVE + 5])
    assert gave_up and wm == MAX_ABOVE + 1 and above == {MAX_ABOVE + 5}
