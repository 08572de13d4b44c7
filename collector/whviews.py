"""Warehouse views for people at the collector: stock per site and item, movements, and the
5-day list of controlled-chemical sales to report to public security (docs/warehouse.md).

Stock is **SQL over indexed records**, not a replay in Python: ``goods.in`` adds its
quantity, ``goods.out`` takes it away, grouped in the database by site, class, product,
unit and lot (partial index ``records_goods`` on ``(site, kind, ts)`` of the ``goods.*``
kinds, so a site's rows are read from the index, never the whole table). Records are
immutable and a store writes a few hundred a day, so the aggregate stays in the
milliseconds for years of one store; a projection table kept by triggers would also be
cheap but is one more thing to keep equal on two stores. The item-level stock (which tag
ids are in) stays :func:`collector.warehouse.stock`, used by stocktakes.

Sales to report (危险化学品安全管理条例 art. 41): every ``goods.out`` of class
``chemical_toxic`` or ``chemical_precursor`` not yet marked reported (table
``goods_reported``, one row per record: who, when, note), oldest first, read from the
partial index ``records_goods_controlled`` (exactly those sales). The sale's local date
(China, :func:`wire.tracecode.local_day`) is day 0; it is due by day 5; ``days_left`` below
0 is overdue. :func:`mark_reported` writes the marks and one audit entry in one transaction.

Every function takes ``sites``: None for every site, or the site codes a token sees.
Personal data (buyer, address, handler, ID number) is in :class:`Sale`: only the regulator's
listener serves it.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from collector import audit, licence_use
from hostlib.db import Db
from hostlib.sqlite import write_tx
from wire import tracecode
from wire.canonical import canonical
from wire.goods import CONTROLLED_CLASSES

CONTROLLED = CONTROLLED_CLASSES
REPORT_DAYS = 5
MOVEMENT_KINDS = ("goods.in", "goods.out", "goods.pack", "goods.count")
MAX_MARK = 500
# the partial index's own predicate, repeated in each query so both planners (SQLite matches
# the term as written) read a site's goods records from the index
GOODS = "kind IN ('goods.in', 'goods.out', 'goods.pack', 'goods.count')"
SOLD = (  # the predicate of records_goods_controlled, as written there
    "kind = 'goods.out' "
    "AND json_extract(rec, '$.body.product_class') IN ('chemical_toxic', 'chemical_precursor')"
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS goods_reported (
    dev TEXT NOT NULL,
    seq INTEGER NOT NULL,
    site TEXT NOT NULL,
    reported_by TEXT NOT NULL,
    reported_at REAL NOT NULL,
    note TEXT NOT NULL,
    PRIMARY KEY (dev, seq)
);
CREATE INDEX IF NOT EXISTS records_goods ON records(site, kind, ts)
    WHERE kind IN ('goods.in', 'goods.out', 'goods.pack', 'goods.count');
CREATE INDEX IF NOT EXISTS records_goods_controlled ON records(ts)
    WHERE kind = 'goods.out'
    AND json_extract(rec, '$.body.product_class') IN ('chemical_toxic', 'chemical_precursor');
"""
# the same in migration 6 of collector/pgschema.py


def ensure_schema(db: Any) -> None:
    db.executescript(SCHEMA)


@dataclass
class StockLine:
    site: str
    product_class: str
    product: str  # product code, or its name when it has none
    name: str
    unit: str
    quantity: int  # received minus sent out
    lots: list[str] = field(default_factory=list)  # lots with a quantity left


@dataclass
class Movement:
    site: str
    dev: str
    seq: int
    kind: str
    ts: int
    local_time: str
    operator: str
    product_class: str | None
    product: str | None
    quantity: int | None
    unit: str | None
    lot: str | None
    items: int
    party: str | None  # personal data: regulator's listener only
    detail: str  # count_id/part, pack/unpack parent


@dataclass
class Sale:
    site: str
    dev: str
    seq: int
    ts: int
    local_time: str
    sale_date: str
    due_date: str
    days_left: int
    overdue: bool
    product_class: str
    product: str
    quantity: int
    unit: str
    lot: str | None
    buyer: str
    buyer_address: str | None
    handler: str | None
    handler_id: str | None
    licence: str | None
    use: str | None
    # the licence's use across its sites went above its quantity (collector/licence_use.py)
    licence_overdrawn: bool = False


def _site_sql(sites: frozenset[str] | None, col: str = "site") -> tuple[str, list[Any]]:
    if sites is None:
        return "", []
    if not sites:
        return " AND 1 = 0", []
    return f" AND {col} IN ({', '.join('?' * len(sites))})", sorted(sites)


_P = "json_extract(rec, '$.body.{}')"


def stock(
    db: Db,
    sites: frozenset[str] | None = None,
    *,
    site: str | None = None,
    product_class: str | None = None,
    product: str | None = None,
) -> list[StockLine]:
    """Quantity per site, class, product and unit with the lots that have some left; lines
    whose quantity is 0 are left out."""
    where, args = _site_sql(sites)
    for value, expr in (
        (site, "site"),
        (product_class, _P.format("product_class")),
    ):
        if value is not None:
            where, args = where + f" AND {expr} = ?", [*args, value]
    code = f"COALESCE({_P.format('product.code')}, {_P.format('product.name')})"
    if product is not None:
        where += f" AND ({code} = ? OR {_P.format('product.name')} = ?)"
        args += [product, product]
    q = f"CAST({_P.format('quantity')} AS INTEGER)"
    sql = (
        f"SELECT site, {_P.format('product_class')}, {code}, MAX({_P.format('product.name')}),"
        f" {_P.format('unit')}, COALESCE({_P.format('lot')}, ''),"
        f" SUM(CASE WHEN kind = 'goods.in' THEN {q} ELSE -{q} END)"
        f" FROM records WHERE {GOODS} AND kind IN ('goods.in', 'goods.out')"
        + where
        + " GROUP BY 1, 2, 3, 5, 6"
    )
    lines: dict[tuple[str, str, str, str], StockLine] = {}
    for s, cls, prod, name, unit, lot, qty in db.execute(sql, args).fetchall():
        key = (str(s), str(cls), str(prod), str(unit))
        line = lines.get(key)
        if line is None:
            line = lines[key] = StockLine(key[0], key[1], key[2], str(name or prod), key[3], 0)
        line.quantity += int(qty)
        if lot and int(qty) > 0:
            line.lots.append(str(lot))
    out = [x for x in lines.values() if x.quantity != 0]
    for x in out:
        x.lots.sort()
    return sorted(out, key=lambda x: (x.site, x.product_class, x.product, x.unit))


def _movement(site: str, dev: str, seq: int, kind: str, ts: int, text: str) -> Movement:
    b = json.loads(text)["body"]
    product = b.get("product") or {}
    if kind == "goods.count":
        detail = f"count {b.get('count_id')} part {b.get('part')}" + (
            " (last)" if b.get("last") else ""
        )
        items = len(b.get("items", []))
    elif kind == "goods.pack":
        detail = f"{b.get('action')} {b.get('parent', {}).get('id')}"
        items = len(b.get("children", []))
    else:
        detail = str(b.get("doc") or "")
        items = len(b.get("items", [])) + sum(len(i.get("inner", [])) for i in b.get("items", []))
    return Movement(
        site,
        dev,
        int(seq),
        kind,
        int(ts),
        tracecode.local_datetime(int(ts)),
        str(b.get("operator", "")),
        b.get("product_class"),
        product.get("code") or product.get("name"),
        b.get("quantity"),
        b.get("unit"),
        b.get("lot"),
        items,
        b.get("party"),
        detail,
    )


def movements(
    db: Db,
    sites: frozenset[str] | None = None,
    *,
    site: str | None = None,
    kinds: Iterable[str] = MOVEMENT_KINDS,
    since_ms: int | None = None,
    until_ms: int | None = None,
    product: str | None = None,
    item: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[Movement]:
    """The ``goods.*`` records of the sites in scope, newest first, paged. ``item``: only
    those naming this item id (an item, an inner package, a packed child or a parent): the
    id as the record's canonical JSON spells it, a quoted string, matched in the text."""
    kinds = [k for k in kinds if k in MOVEMENT_KINDS]
    if not kinds:
        return []
    where, args = _site_sql(sites)
    sql = (
        f"SELECT site, dev, seq, kind, ts, rec FROM records WHERE {GOODS} AND kind IN "
        f"({', '.join('?' * len(kinds))})" + where
    )
    args = [*kinds, *args]
    for value, cond in ((site, "site = ?"), (since_ms, "ts >= ?"), (until_ms, "ts < ?")):
        if value is not None:
            sql, args = sql + f" AND {cond}", [*args, value]
    if product is not None:
        sql += f" AND (COALESCE({_P.format('product.code')}, {_P.format('product.name')}) = ?"
        sql += f" OR {_P.format('product.name')} = ?)"
        args += [product, product]
    if item is not None:
        sql += " AND rec LIKE ? ESCAPE '!'"
        args.append(item_pattern(item))
    sql += " ORDER BY ts DESC, dev, seq DESC LIMIT ? OFFSET ?"
    rows = db.execute(sql, [*args, limit, offset]).fetchall()
    return [_movement(str(r[0]), str(r[1]), int(r[2]), str(r[3]), int(r[4]), r[5]) for r in rows]


def item_pattern(item: str) -> str:
    """The ``LIKE … ESCAPE '!'`` pattern of records whose text holds ``item`` as a JSON
    string (``%`` and ``_`` in the id match themselves only)."""
    return "%" + re.sub(r"([!%_])", r"!\1", canonical(item).decode()) + "%"


def _days_left(ts: int, now_ms: int) -> tuple[str, str, int]:
    sale = dt.date.fromisoformat(tracecode.local_day(ts))
    today = dt.date.fromisoformat(tracecode.local_day(now_ms))
    due = sale + dt.timedelta(days=REPORT_DAYS)
    return sale.isoformat(), due.isoformat(), (due - today).days


def to_report(
    db: Db,
    sites: frozenset[str] | None = None,
    *,
    now_ms: int | None = None,
    site: str | None = None,
    limit: int = 10_000,
) -> list[Sale]:
    """Sales of controlled chemicals not yet marked reported, oldest first."""
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    where, args = _site_sql(sites, "r.site")
    if site is not None:
        where, args = where + " AND r.site = ?", [*args, site]
    rows = db.execute(
        f"SELECT r.site, r.dev, r.seq, r.ts, r.rec FROM records AS r WHERE {SOLD}"
        + where
        + " AND NOT EXISTS (SELECT 1 FROM goods_reported AS g"
        " WHERE g.dev = r.dev AND g.seq = r.seq) ORDER BY r.ts, r.dev, r.seq LIMIT ?",
        [*args, limit],
    ).fetchall()
    out: list[Sale] = []
    over = licence_use.overdrawn(db) if rows else frozenset()
    for s, dev, seq, ts, text in rows:
        b = json.loads(text)["body"]
        sale, due, left = _days_left(int(ts), now_ms)
        product = b.get("product") or {}
        out.append(
            Sale(
                str(s),
                str(dev),
                int(seq),
                int(ts),
                tracecode.local_datetime(int(ts)),
                sale,
                due,
                left,
                left < 0,
                str(b["product_class"]),
                str(product.get("name", ""))
                + (f" ({product['code']})" if "code" in product else ""),
                int(b["quantity"]),
                str(b["unit"]),
                b.get("lot"),
                str(b.get("party", "")),
                b.get("party_address"),
                b.get("handler"),
                b.get("handler_id"),
                b.get("licence"),
                b.get("use"),
                b.get("licence") in over,
            )
        )
    return out


CSV_HEADER = [
    ("售出时间", "sold at"),
    ("站点", "site"),
    ("设备", "device"),
    ("序号", "seq"),
    ("类别", "class"),
    ("品名", "product"),
    ("批号", "lot"),
    ("数量", "quantity"),
    ("单位", "unit"),
    ("购买单位", "buyer"),
    ("地址", "address"),
    ("经办人", "handler"),
    ("身份证号", "ID number"),
    ("许可证号", "licence"),
    ("用途", "use"),
    ("报告期限", "due"),
    ("剩余天数", "days left"),
    ("逾期", "overdue"),
    ("许可证超量", "licence overdrawn"),
]


def report_csv(sales: list[Sale]) -> str:
    """The list as CSV for Excel: BOM first, a Chinese and English header, CRLF line ends."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\r\n")
    w.writerow([f"{zh} {en}" for zh, en in CSV_HEADER])
    for x in sales:
        w.writerow(
            [
                x.local_time,
                x.site,
                x.dev,
                x.seq,
                x.product_class,
                x.product,
                x.lot or "",
                x.quantity,
                x.unit,
                x.buyer,
                x.buyer_address or "",
                x.handler or "",
                x.handler_id or "",
                x.licence or "",
                x.use or "",
                x.due_date,
                x.days_left,
                "是 yes" if x.overdue else "否 no",
                "是 yes" if x.licence_overdrawn else "否 no",
            ]
        )
    return "\ufeff" + out.getvalue()


class UnknownSale(LookupError):
    """A sale named is not a controlled-chemical ``goods.out`` in the token's scope."""


@dataclass
class Marked:
    marked: list[str]  # "dev/seq"
    already: list[str]


def mark_reported(
    db: Db,
    keys: list[tuple[str, int]],
    actor: audit.Actor,
    note: str,
    sites: frozenset[str] | None = None,
    signing_key: Any = None,
) -> Marked:
    """Mark sales reported to public security (who, when, note) and audit it, in one
    transaction; all or nothing: one unknown or out-of-scope sale refuses all."""
    where, args = _site_sql(sites)
    res = Marked([], [])
    with write_tx(db):
        found: list[tuple[str, int, str]] = []
        for dev, seq in keys:
            row = db.execute(
                f"SELECT site FROM records WHERE dev = ? AND seq = ? AND {SOLD}" + where,
                [dev, seq, *args],
            ).fetchone()
            if row is None:
                raise UnknownSale(f"no controlled-chemical sale {dev}/{seq}")
            found.append((dev, seq, str(row[0])))
        now = time.time()
        for dev, seq, site in found:
            if db.execute(
                "SELECT 1 FROM goods_reported WHERE dev = ? AND seq = ?", (dev, seq)
            ).fetchone():
                res.already.append(f"{dev}/{seq}")
                continue
            db.execute(
                "INSERT INTO goods_reported(dev, seq, site, reported_by, reported_at, note)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (dev, seq, site, actor.name, now, note),
            )
            res.marked.append(f"{dev}/{seq}")
        audit.record(
            db,
            actor,
            "goods.reported",
            ",".join(res.marked) or "-",
            {"note": note, "already": res.already},
            signing_key=signing_key,
        )
    return res
