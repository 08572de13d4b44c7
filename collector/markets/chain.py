"""The chain across markets (卡单同行): hops back to the origin, reach forward, chain flags.

A ``market.entry`` may name its ``source``: the upstream sale its goods were bought in (the
trace code and/or voucher number on the wholesale receipt, read from its QR code, its
barcode or keyed in). The projection (:mod:`collector.markets.schema`, PostgreSQL migration
4) keeps it in ``market_sources`` and links the entry to the upstream sale's lines of the
same goods code in ``market_links``, whichever of the two arrives first.

Walks are bounded (:data:`MAX_DEPTH` hops) and keep a set of what they visited, so a cycle
(impossible with honest codes: a sale names batches entered before it) ends them anyway.

Flags, never refusals (the goods are physically there): derived from the projected state
each time they are read, so a flag clears itself when what was missing arrives:

* ``source_unknown``: an entry names an upstream sale the store has no line of its goods
  for (no such sale yet, or a sale of other goods);
* ``source_over_quantity``: the entries naming one upstream sale's goods (one sale, one goods
  code: its lines of those goods together) registered more than it sold, beyond the
  tolerance :data:`TOLERANCE_PERMILLE` of the grams sold, at least :data:`TOLERANCE_MIN_G`
  grams (two verified scales and some handling; a counted sale is compared in pieces when
  the entries give pieces, exactly).
"""

from __future__ import annotations

from dataclasses import dataclass

from hostlib.db import Db

MAX_DEPTH = 8  # markets back (or forward) a walk follows; real chains have 2 or 3
TOLERANCE_PERMILLE = 20  # 2 % of the grams the upstream sale sold
TOLERANCE_MIN_G = 100

SOURCE_UNKNOWN = "source_unknown"
SOURCE_OVER_QUANTITY = "source_over_quantity"


@dataclass(frozen=True, kw_only=True)
class Source:
    """What an entry says it came from."""

    trace_id: str | None
    tran_id: str | None
    via: str | None


@dataclass(frozen=True, kw_only=True)
class UpstreamLine:
    """A line of the upstream sale an entry is linked to."""

    record_id: int
    line: int
    batch_id: str | None  # the upstream batch the line sold from


@dataclass(frozen=True, kw_only=True)
class Downstream:
    """A batch entered downstream from goods of a batch of the reach."""

    batch_id: str
    hop: int  # 1: entered from a sale of the recalled batch itself, 2: one market further
    from_batch: str  # the upstream batch whose sale it was bought in
    from_trace_id: str | None  # that sale's trace code
    entry_id: int


@dataclass(frozen=True, kw_only=True)
class ChainFlag:
    flag: str
    batch_id: str  # the downstream batch (its entry named the source)
    entry_id: int
    trace_id: str | None
    tran_id: str | None
    detail: str


def source_of(db: Db, entry_id: int) -> Source | None:
    """The source an entry names; None when it names none."""
    row = db.execute(
        "SELECT trace_id, tran_id, via FROM market_sources WHERE entry_id = ?", (entry_id,)
    ).fetchone()
    return None if row is None else Source(trace_id=row[0], tran_id=row[1], via=row[2])


def upstream_lines(db: Db, entry_id: int) -> list[UpstreamLine]:
    """The upstream sale lines an entry is linked to, in record order."""
    return [
        UpstreamLine(record_id=int(r), line=int(n), batch_id=b)
        for r, n, b in db.execute(
            "SELECT l.record_id, l.line, ml.batch_id FROM market_links AS l "
            "LEFT JOIN market_lines AS ml ON ml.record_id = l.record_id AND ml.line = l.line "
            "WHERE l.entry_id = ? ORDER BY l.record_id, l.line",
            (entry_id,),
        )
    ]


def downstream(db: Db, batch_id: str, max_depth: int = MAX_DEPTH) -> list[Downstream]:
    """Every batch entered from goods of ``batch_id``, hop by hop (breadth first): the
    entries linked to its sales' lines, then those linked to their sales, and so on."""
    seen = {batch_id}
    out: list[Downstream] = []
    level = [batch_id]
    for hop in range(1, max_depth + 1):
        nxt: list[str] = []
        for b in level:
            for down, entry_id, trace_id in db.execute(
                "SELECT src.batch_id, MIN(src.entry_id), MIN(ml.trace_id) "
                "FROM market_lines AS ml JOIN market_links AS l "
                "ON l.record_id = ml.record_id AND l.line = ml.line "
                "JOIN market_sources AS src ON src.entry_id = l.entry_id "
                "WHERE ml.batch_id = ? GROUP BY src.batch_id ORDER BY src.batch_id",
                (b,),
            ).fetchall():
                if down in seen:
                    continue
                seen.add(down)
                nxt.append(str(down))
                out.append(
                    Downstream(
                        batch_id=str(down),
                        hop=hop,
                        from_batch=b,
                        from_trace_id=trace_id,
                        entry_id=int(entry_id),
                    )
                )
        if not nxt:
            break
        level = nxt
    return out


def _tolerance_g(sold_g: int) -> int:
    return max(TOLERANCE_MIN_G, sold_g * TOLERANCE_PERMILLE // 1000)


def flags(
    db: Db, batch_id: str | None = None, limit: int = 1000, *, entry_id: int | None = None
) -> list[ChainFlag]:
    """The chain flags in force (of the entries of ``batch_id``, or the entry ``entry_id``,
    only, when given)."""
    if entry_id is not None:
        row = db.execute(
            "SELECT batch_id FROM market_sources WHERE entry_id = ?", (entry_id,)
        ).fetchone()
        if row is None:
            return []
        return [f for f in flags(db, str(row[0]), limit) if f.entry_id == entry_id]
    where = "" if batch_id is None else "AND src.batch_id = ? "
    args: tuple[object, ...] = () if batch_id is None else (batch_id,)
    out: list[ChainFlag] = []
    for entry_id, b, trace_id, tran_id, goods in db.execute(
        "SELECT src.entry_id, src.batch_id, src.trace_id, src.tran_id, src.goods_code "
        "FROM market_sources AS src "
        "WHERE NOT EXISTS (SELECT 1 FROM market_links AS l WHERE l.entry_id = src.entry_id) "
        + where
        + "ORDER BY src.entry_id LIMIT ?",
        (*args, limit),
    ).fetchall():
        named = " / ".join(x for x in (trace_id, tran_id) if x)
        out.append(
            ChainFlag(
                flag=SOURCE_UNKNOWN,
                batch_id=str(b),
                entry_id=int(entry_id),
                trace_id=trace_id,
                tran_id=tran_id,
                detail=f"batch {b}: its entry names upstream sale {named}, "
                f"which the collector has no sale of goods {goods} for (yet)",
            )
        )
    out.extend(_over_quantity(db, batch_id))
    return out[:limit]


def _over_quantity(db: Db, batch_id: str | None) -> list[ChainFlag]:
    """Per upstream sale and goods code: what the entries (each batch's kept entry) naming
    it registered, against what its lines of those goods sold."""
    groups: dict[tuple[int, str], dict[str, object]] = {}
    sql = (
        "SELECT l.record_id, src.goods_code, l.entry_id, src.batch_id, src.quantity_g, "
        "src.pieces, src.trace_id, src.tran_id, l.line, ml.weight_g, ml.pieces "
        "FROM market_links AS l JOIN market_sources AS src ON src.entry_id = l.entry_id "
        "JOIN market_batches AS b ON b.batch_id = src.batch_id AND b.entry_id = src.entry_id "
        "JOIN market_lines AS ml ON ml.record_id = l.record_id AND ml.line = l.line "
    )
    order = "ORDER BY l.record_id, src.goods_code, l.entry_id, l.line"
    if batch_id is None:
        rows = db.execute(sql + order).fetchall()
    else:
        rows = db.execute(
            sql + "WHERE l.record_id IN (SELECT l2.record_id FROM market_links AS l2 "
            "JOIN market_sources AS s2 ON s2.entry_id = l2.entry_id WHERE s2.batch_id = ?) "
            + order,
            (batch_id,),
        ).fetchall()
    for rid, goods, entry_id, b, qty, pieces, trace_id, tran_id, line, w, p in rows:
        g = groups.setdefault(
            (int(rid), str(goods)), {"entries": {}, "lines": {}, "codes": (trace_id, tran_id)}
        )
        g["entries"][int(entry_id)] = (str(b), int(qty), pieces)  # type: ignore[index]
        g["lines"][int(line)] = (int(w), int(p))  # type: ignore[index]
    out: list[ChainFlag] = []
    for (_rid, goods), g in groups.items():
        entries: dict[int, tuple[str, int, int | None]] = g["entries"]  # type: ignore[assignment]
        lines: dict[int, tuple[int, int]] = g["lines"]  # type: ignore[assignment]
        sold_g = sum(w for w, _ in lines.values())
        sold_p = sum(p for _, p in lines.values())
        took_g = sum(q for _, q, _ in entries.values())
        if sold_g > 0:
            over = took_g > sold_g + _tolerance_g(sold_g)
            said = f"{took_g} g registered of {sold_g} g sold"
        else:
            took_p = sum(p or 0 for _, _, p in entries.values())
            over = (
                sold_p > 0
                and all(p is not None for _, _, p in entries.values())
                and (took_p > sold_p)
            )
            said = f"{took_p} pieces registered of {sold_p} sold"
        if not over:
            continue
        trace_id, tran_id = g["codes"]  # type: ignore[misc]
        named = " / ".join(x for x in (trace_id, tran_id) if x)
        for entry_id, (b, _, _) in sorted(entries.items()):
            if batch_id is not None and b != batch_id:
                continue
            out.append(
                ChainFlag(
                    flag=SOURCE_OVER_QUANTITY,
                    batch_id=b,
                    entry_id=entry_id,
                    trace_id=trace_id,
                    tran_id=tran_id,
                    detail=f"upstream sale {named}, goods {goods}: the entries naming it "
                    f"took more than it sold ({said})",
                )
            )
    return out
