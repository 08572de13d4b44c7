"""Stop-trading orders (中止交易): issue one for a batch, list those in force.

An order applies to a batch id wherever it is sold. A settlement line counts as sold after
the stop when its record's capture time ``ts`` is at or after the order's issue time (a sale
made before the order but delivered later is not flagged); such a sale raises the alarm
``sold_after_stop``: here for settlements already applied when the order is issued, in the
settlement trigger (:mod:`collector.markets.schema`) for those applied later. The collector
relays the list of orders to every market terminal (:mod:`collector.pushdown`).
"""

from __future__ import annotations

import sqlite3
import time

from collector.markets.queries import batch_known, stop_order
from collector.markets.results import StopOrder, StopResult
from collector.markets.schema import project
from hostlib.sqlite import write_tx

ALARM_SOLD_AFTER_STOP = "sold_after_stop"


class UnknownBatch(LookupError):
    """No entry and no sale names this batch id."""


def stop_trading(
    db: sqlite3.Connection, batch_id: str, reason: str, *, now_ms: int | None = None
) -> StopResult:
    """Issue a stop-trading order for a batch (中止交易): later sales of it are flagged.

    Settlements already stored whose capture time is at or after ``now_ms`` (default: now)
    are flagged and alarmed at once. A second order for a stopped batch changes nothing and
    returns the first. Raises :class:`UnknownBatch` when no entry or sale names the batch,
    ``ValueError`` on an empty reason.
    """
    if not reason.strip():
        raise ValueError("a stop order needs a reason")
    issued_ms = int(time.time() * 1000) if now_ms is None else now_ms
    with write_tx(db):
        # A running collector applies market records just behind ingest: catch up first,
        # so every stored entry and sale counts for this order.
        while project(db):
            pass
        if not batch_known(db, batch_id):
            raise UnknownBatch(batch_id)
        existing = stop_order(db, batch_id)
        if existing is not None:
            return StopResult(stop=existing, issued=False, flagged=0)
        db.execute(
            "INSERT INTO batch_stops(batch_id, reason, issued_ms, issued) VALUES (?, ?, ?, ?)",
            (batch_id, reason, issued_ms, time.time()),
        )
        hits = db.execute(
            "SELECT DISTINCT l.record_id, r.dev, r.seq, l.trace_id FROM market_lines AS l "
            "JOIN records AS r ON r.id = l.record_id "
            "WHERE l.batch_id = ? AND l.ts >= ? AND l.after_stop = 0",
            (batch_id, issued_ms),
        ).fetchall()
        db.execute(
            "UPDATE market_lines SET after_stop = 1 WHERE batch_id = ? AND ts >= ?",
            (batch_id, issued_ms),
        )
        now = time.time()
        db.executemany(
            "INSERT INTO alarms(raised, kind, dev, seq, detail) VALUES (?, ?, ?, ?, ?)",
            [
                (
                    now,
                    ALARM_SOLD_AFTER_STOP,
                    dev,
                    seq,
                    f"batch {batch_id}: sold after the stop-trading order, "
                    f"trace code {trace or '?'}",
                )
                for _, dev, seq, trace in hits
            ],
        )
    return StopResult(
        stop=StopOrder(batch_id=batch_id, reason=reason, issued_ms=issued_ms),
        issued=True,
        flagged=len({h[0] for h in hits}),
    )


def stops(db: sqlite3.Connection) -> list[StopOrder]:
    """Every stop order, oldest first (what the terminals must refuse)."""
    return [
        StopOrder(batch_id=b, reason=r, issued_ms=t)
        for b, r, t in db.execute(
            "SELECT batch_id, reason, issued_ms FROM batch_stops ORDER BY issued_ms, batch_id"
        )
    ]
