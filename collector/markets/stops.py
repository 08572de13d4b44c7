"""Stop-trading orders (中止交易): issue one for a batch, list those in force.

An order applies to a batch id wherever it is sold. A settlement line counts as sold after
the stop when its record's capture time ``ts`` is at or after the order's issue time (a sale
made before the order but delivered later is not flagged); such a sale raises the alarm
``sold_after_stop``: here for settlements already applied when the order is issued, in the
settlement trigger (:mod:`collector.markets.schema`) for those applied later. The collector
relays the list of orders to every market terminal (:mod:`collector.pushdown`).

An order can be lifted (:func:`lift_stop`, with a reason; the order and its lifting stay in
``batch_stop_lifts``): sales after that are no longer flagged. Every stop and every lift
advances the stop list's version (:func:`stop_list_version`), so the terminals take the
newer list, which no longer names a lifted batch.
"""

from __future__ import annotations

import time

from collector.markets.queries import batch_known, stop_order
from collector.markets.results import StopOrder, StopResult
from collector.markets.schema import project
from hostlib.db import Db
from hostlib.sqlite import get_meta, set_meta, write_tx

ALARM_SOLD_AFTER_STOP = "sold_after_stop"


class UnknownBatch(LookupError):
    """No entry and no sale names this batch id."""


def stop_trading(db: Db, batch_id: str, reason: str, *, now_ms: int | None = None) -> StopResult:
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
        _advance_version(db)
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


def stops(db: Db) -> list[StopOrder]:
    """Every stop order, oldest first (what the terminals must refuse)."""
    return [
        StopOrder(batch_id=b, reason=r, issued_ms=t)
        for b, r, t in db.execute(
            "SELECT batch_id, reason, issued_ms FROM batch_stops ORDER BY issued_ms, batch_id"
        )
    ]


class NotStopped(LookupError):
    """The batch has no stop order in force."""


def lift_stop(db: Db, batch_id: str, reason: str, *, now_ms: int | None = None) -> StopOrder:
    """Lift the stop order in force for ``batch_id`` (the goods were cleared); returns the
    order lifted. Raises :class:`NotStopped` when there is none, ``ValueError`` on an empty
    reason."""
    if not reason.strip():
        raise ValueError("lifting a stop order needs a reason")
    lifted_ms = int(time.time() * 1000) if now_ms is None else now_ms
    with write_tx(db):
        order = stop_order(db, batch_id)
        if order is None:
            raise NotStopped(batch_id)
        db.execute(
            "INSERT INTO batch_stop_lifts(batch_id, reason, stop_reason, stop_issued_ms, "
            "lifted_ms) VALUES (?, ?, ?, ?, ?)",
            (batch_id, reason, order.reason, order.issued_ms, lifted_ms),
        )
        _advance_version(db)
        db.execute("DELETE FROM batch_stops WHERE batch_id = ?", (batch_id,))
    return order


def stop_list_version(db: Db) -> int:
    """Grows with every stop and every lift (a store from before lifting existed counts
    its orders)."""
    v = get_meta(db, "stop_list_version")
    if v is not None:
        return int(v)
    return int(db.execute("SELECT COUNT(*) FROM batch_stops").fetchone()[0])


def _advance_version(db: Db) -> None:
    """Called before the change, so a store without the counter yet continues from the
    version it pushed before (its count of orders)."""
    set_meta(db, {"stop_list_version": str(stop_list_version(db) + 1)})
