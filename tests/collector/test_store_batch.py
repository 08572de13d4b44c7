"""A batch of new records goes into the store with one executemany; a batch holding a record
stored before is rolled back and goes record by record. Both ways leave the same rows (ids
included), counters, device state and quarantine as the record-by-record path alone."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from collector.store import SqliteStore
from collector.verify import Bad, Good

SITE = "S1"


def _good(dev: str, seq: int, mac: str = "") -> Good:
    mac = mac or f"{dev}-{seq}".encode().hex().ljust(64, "0")[:64]
    text = f'{{"dev":"{dev}","seq":{seq},"mac":"{mac}"}}'
    return Good(dev, seq, "elevator.status", 1_763_900_000_000 + seq, mac, text)


BATCHES: list[list[Good]] = [
    [_good("A", s) for s in range(1, 6)] + [_good("B", s) for s in range(1, 4)],
    [_good("A", s) for s in range(6, 9)],  # all new again
    [_good("A", 9), _good("A", 3), _good("B", 4)],  # a duplicate of a stored record
    [_good("B", 5), _good("B", 2, mac="f" * 64)],  # a conflict
    [_good("C", 1), _good("C", 1)],  # the same identity twice in one batch
    [_good("C", 2), _good("C", 1, mac="e" * 64), _good("C", 3)],
    [],
]
BAD = [Bad("mac", "MAC does not match the device key", "A", 99, b"{}")]


def _tables(path: Path) -> dict[str, list[tuple[object, ...]]]:
    db = sqlite3.connect(path)
    try:
        return {
            "records": db.execute(
                "SELECT id, dev, seq, kind, ts, site, mac, rec FROM records ORDER BY id"
            ).fetchall(),
            "counters": db.execute("SELECT name, value FROM counters ORDER BY name").fetchall(),
            "device_state": db.execute(
                "SELECT dev, site, count, max_seq FROM device_state ORDER BY dev"
            ).fetchall(),
            "quarantine": db.execute(
                "SELECT site, batch, reason, detail, dev, seq, payload, counts FROM quarantine "
                "ORDER BY id"
            ).fetchall(),
            "quarantine_reasons": db.execute(
                "SELECT reason, records FROM quarantine_reasons ORDER BY reason"
            ).fetchall(),
            "alarms": db.execute(
                "SELECT kind, dev, seq, detail FROM alarms ORDER BY id"
            ).fetchall(),
        }
    finally:
        db.close()


def test_batch_insert_leaves_what_record_by_record_leaves(tmp_path: Path) -> None:
    fast = SqliteStore(tmp_path / "fast.sqlite", project_inline=False)
    slow = SqliteStore(tmp_path / "slow.sqlite", project_inline=False)
    results = []
    for i, good in enumerate(BATCHES):
        bad = BAD if i == 2 else []
        got = fast.commit(SITE, f"b{i}", good, bad)
        with slow.atomic() as db:  # the record-by-record path alone
            want = slow._commit(db, 1.0, SITE, f"b{i}", good, bad)
        assert (got.stored, got.duplicates, got.bad) == (want.stored, want.duplicates, want.bad)
        results.append((got.stored, got.duplicates, got.bad))
    fast.close()
    slow.close()
    assert results == [(8, 0, 0), (3, 0, 0), (2, 1, 1), (1, 0, 1), (1, 1, 0), (2, 0, 1), (0, 0, 0)]
    assert _tables(tmp_path / "fast.sqlite") == _tables(tmp_path / "slow.sqlite")


def test_a_caller_s_own_transaction_is_never_rolled_back(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.sqlite", project_inline=False)
    store.commit(SITE, "b0", [_good("A", 1)], [])
    with store.atomic() as db:
        db.execute("INSERT INTO alarms(raised, kind, dev, seq, detail) VALUES (1, 'x', 'A', 1, '')")
        res = store.commit(SITE, "b1", [_good("A", 2), _good("A", 1)], [])
    assert (res.stored, res.duplicates) == (1, 1)
    store.close()
    tables = _tables(tmp_path / "s.sqlite")
    assert [r[2] for r in tables["records"]] == [1, 2]
    assert [a[0] for a in tables["alarms"]] == ["x"]
