"""The few reads the console needs that no other module offers: the latest batches with
their stock and stop state (a page's worth, newest entry first), and the markets a principal
may see. Read-only; every value reaches SQLite as a parameter."""

from __future__ import annotations

import json
from dataclasses import dataclass

from collector import sites
from collector.access import Principal
from hostlib.db import Db

BATCHES_SQL = """
SELECT b.batch_id, b.quantity_g, b.pieces, b.sold_g, b.sold_pieces, b.overdrawn_alarm,
       r.ts, json_extract(r.rec, '$.body.market'), json_extract(r.rec, '$.body.goods_name'),
       json_extract(r.rec, '$.body.origin'), s.reason, s.issued_ms
FROM market_batches AS b
LEFT JOIN records AS r ON r.id = b.entry_id
LEFT JOIN batch_stops AS s ON s.batch_id = b.batch_id
WHERE (:markets IS NULL
       OR json_extract(r.rec, '$.body.market') IN (SELECT value FROM json_each(:markets)))
  AND (:q = '' OR b.batch_id LIKE :q || '%')
  AND (:stopped = 0 OR s.batch_id IS NOT NULL)
ORDER BY b.entry_id IS NULL, b.entry_id DESC
LIMIT :limit
"""


@dataclass(frozen=True)
class BatchRow:
    batch_id: str
    quantity_g: int | None
    pieces: int | None
    sold_g: int
    sold_pieces: int
    overdrawn: bool
    entered_ms: int | None
    market: str | None
    goods_name: str | None
    origin: str | None
    stop_reason: str | None
    stop_issued_ms: int | None


def visible_markets(db: Db, p: Principal) -> frozenset[str] | None:
    """None: every market; else the market codes ``p`` may see."""
    if p.scope_kind == "all":
        return None
    if p.scope_kind == "market":
        return frozenset({p.scope_value})
    return sites.markets_in(db, p.site_filter(db) or frozenset())


def latest_batches(
    db: Db,
    markets: frozenset[str] | None,
    q: str = "",
    stopped_only: bool = False,
    limit: int = 200,
) -> list[BatchRow]:
    """Batches newest entry first (those with no entry yet last), within ``markets``."""
    rows = db.execute(
        BATCHES_SQL,
        {
            "markets": None if markets is None else json.dumps(sorted(markets)),
            "q": q,
            "stopped": int(stopped_only),
            "limit": limit,
        },
    ).fetchall()
    return [
        BatchRow(
            batch_id=str(r[0]),
            quantity_g=r[1],
            pieces=r[2],
            sold_g=int(r[3]),
            sold_pieces=int(r[4]),
            overdrawn=bool(r[5]),
            entered_ms=r[6],
            market=r[7],
            goods_name=r[8],
            origin=r[9],
            stop_reason=r[10],
            stop_issued_ms=r[11],
        )
        for r in rows
    ]
