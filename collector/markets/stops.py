"""Stop-trading orders (中止交易): issue one for a batch, list those in force.

An order applies to a batch id wherever it is sold. A settlement line counts as sold after
the stop when its record's capture time ``ts`` is at or after the order's issue time (a sale
made before the order but delivered later is not flagged); such a sale raises the alarm
``sold_after_stop``: here for settlements already applied when the order is issued, in the
settlement trigger (:mod:`collector.markets.schema`) for those applied later. The collector
relays the list of orders to every market terminal (:mod:`collector.pushdown`).

A stop follows the goods down the chain (:func:`follow_stops`): the batches entered in other
markets from sales of a stopped batch are stopped too, when the order is issued and whenever
the projection links a new one later; lifting the upstream order lifts them.

An order can be lifted (:func:`lift_stop`, with a reason; the order and its lifting stay in
``batch_stop_lifts``): sales after that are no longer flagged. Every stop and every lift
advances the stop list's version (:func:`stop_list_version`), so the terminals take the
newer list, which no longer names a lifted batch.
"""

from __future__ import annotations

import time

from collector.markets import chain
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
        hits = _insert_stop(db, batch_id, reason, issued_ms)
        follow_stops(db, advance=False)
    return StopResult(
        stop=StopOrder(batch_id=batch_id, reason=reason, issued_ms=issued_ms),
        issued=True,
        flagged=hits,
    )


def _insert_stop(db: Db, batch_id: str, reason: str, issued_ms: int) -> int:
    """The order in ``batch_stops``; flags and alarms the sales stored already at or after
    it. Returns how many settlements it flagged."""
    db.execute(
        "INSERT INTO batch_stops(batch_id, reason, issued_ms, issued) VALUES (?, ?, ?, ?) "
        "ON CONFLICT(batch_id) DO NOTHING",
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
                f"batch {batch_id}: sold after the stop-trading order, trace code {trace or '?'}",
            )
            for _, dev, seq, trace in hits
        ],
    )
    return len({h[0] for h in hits})


def follow_stops(db: Db, *, advance: bool = True) -> int:
    """A stop follows the goods (卡单同行): every batch entered downstream from a stopped
    batch (:func:`collector.markets.chain.downstream`) gets its own order, with the upstream
    order's issue time and a reason naming it, and so reaches the terminals of its market.
    ``batch_stop_chain`` remembers each such order's root; a batch in it is not stopped
    again (lifting a derived order on its own sticks), and lifting the root lifts them all.
    Called after the projection applies records and when an order is issued; returns how
    many orders it added (and advances the stop list's version when it added one)."""
    roots = db.execute(
        "SELECT s.batch_id, s.reason, s.issued_ms FROM batch_stops AS s "
        "WHERE NOT EXISTS (SELECT 1 FROM batch_stop_chain AS c WHERE c.batch_id = s.batch_id) "
        "ORDER BY s.issued_ms, s.batch_id"
    ).fetchall()
    added = 0
    for root, reason, issued_ms in roots:
        for d in chain.downstream(db, str(root)):
            known = db.execute(
                "SELECT 1 FROM batch_stop_chain WHERE batch_id = ? "
                "UNION ALL SELECT 1 FROM batch_stops WHERE batch_id = ?",
                (d.batch_id, d.batch_id),
            ).fetchone()
            if known is not None:
                continue
            # another collector applying records at the same time may follow the same hop:
            # the first insert wins, the second (waiting for it) inserts nothing
            if not db.execute(
                "INSERT INTO batch_stop_chain(batch_id, root) VALUES (?, ?) "
                "ON CONFLICT(batch_id) DO NOTHING",
                (d.batch_id, root),
            ).rowcount:
                continue
            if advance and not added:
                _advance_version(db)
            _insert_stop(
                db,
                d.batch_id,
                f"follows the stop of upstream batch {root} ({d.hop} hop(s) up): {reason}",
                int(issued_ms),
            )
            added += 1
    return added


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
        # the orders that followed this one down the chain are lifted with it
        for (derived,) in db.execute(
            "SELECT c.batch_id FROM batch_stop_chain AS c JOIN batch_stops AS s "
            "ON s.batch_id = c.batch_id WHERE c.root = ? ORDER BY c.batch_id",
            (batch_id,),
        ).fetchall():
            sub = stop_order(db, str(derived))
            if sub is not None:
                db.execute(
                    "INSERT INTO batch_stop_lifts(batch_id, reason, stop_reason, "
                    "stop_issued_ms, lifted_ms) VALUES (?, ?, ?, ?, ?)",
                    (
                        derived,
                        f"upstream batch {batch_id} lifted: {reason}",
                        sub.reason,
                        sub.issued_ms,
                        lifted_ms,
                    ),
                )
                db.execute("DELETE FROM batch_stops WHERE batch_id = ?", (derived,))
        db.execute("DELETE FROM batch_stop_chain WHERE root = ?", (batch_id,))
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
