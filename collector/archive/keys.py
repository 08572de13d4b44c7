"""What the hot store keeps of archived records: their identities, for deduplication and gaps.

A record moved to the archive leaves two traces in the hot store, written in the same
transaction that deletes it (:meth:`collector.archive.source.SqliteArchiveSource.remove`):

* ``archived_keys(dev, seq, mac)`` (``WITHOUT ROWID``, about 100 bytes a record): a resent
  copy of an archived record is still a duplicate (same MAC) or a conflict (other MAC),
  never stored twice; and a device's gap ranges still count its archived seqs as present;
* ``archive_horizon(dev, seq)``: the highest archived seq of each device, and the meta value
  ``archive_version`` bumped by every removal. :meth:`collector.store.SqliteStore.commit`
  reads the version (one lookup a batch) and looks at ``archived_keys`` only for a record
  whose seq is at or below its device's horizon: an ordinary batch of new records costs
  what it cost before archiving existed.

No pyarrow here: the store imports this module on every start.
"""

from __future__ import annotations

import sqlite3

from hostlib.db import Db

SCHEMA = """
CREATE TABLE IF NOT EXISTS archived_keys (
    dev TEXT NOT NULL,
    seq INTEGER NOT NULL,
    mac TEXT NOT NULL,
    PRIMARY KEY (dev, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS archive_horizon (dev TEXT PRIMARY KEY, seq INTEGER NOT NULL);
"""

VERSION = "archive_version"
"""The meta name whose value changes whenever records leave the hot store."""


def ensure_schema(db: sqlite3.Connection) -> None:
    """Create the two tables (idempotent; outside a transaction)."""
    db.executescript(SCHEMA)


def horizons(db: Db) -> dict[str, int]:
    """Each device's highest archived seq (devices never archived are absent)."""
    return {str(d): int(s) for d, s in db.execute("SELECT dev, seq FROM archive_horizon")}


def archived_mac(db: Db, dev: str, seq: int) -> str | None:
    """The MAC of the archived record ``(dev, seq)``; None when it was never archived."""
    row = db.execute(
        "SELECT mac FROM archived_keys WHERE dev = ? AND seq = ?", (dev, seq)
    ).fetchone()
    return None if row is None else str(row[0])


def device_horizon(db: Db, dev: str) -> int:
    """``dev``'s highest archived seq, 0 if none (or the store predates archiving: a
    read-only connection to an old store has no such table)."""
    try:
        row = db.execute("SELECT seq FROM archive_horizon WHERE dev = ?", (dev,)).fetchone()
    except sqlite3.OperationalError:
        return 0
    return 0 if row is None else int(row[0])
