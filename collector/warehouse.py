"""Warehouse stock and stocktakes at the collector, from the stored ``goods.*`` records.

:func:`stock` replays a site's ``goods.in`` / ``goods.out`` / ``goods.pack`` records and
allowed ``goods.dispatch`` decisions (the same rules as the agent's stock,
:mod:`edge_agent.warehouse`): which item ids are in the site now (or as of a time).
:func:`stocktake` compares a closed count (the ``goods.count`` parts of one ``count_id``,
the last with ``last: true``) with the stock when it closed: ``missing`` (in stock, not
counted) and ``unexpected`` (counted, not in stock). :func:`check_stocktakes` raises one
``stocktake_missing`` alarm per closed count that finds items missing; the collector's loop
runs it every few seconds. Both stores (:class:`hostlib.db.Db`).

The views for people (stock per site and item, movements, the 5-day public-security
report) are to be built on these; docs/warehouse.md.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from hostlib.db import Db

ALARM = "stocktake_missing"
WINDOW_MS = 3 * 86_400_000  # closed counts looked at by check_stocktakes


@dataclass
class Stocktake:
    site: str
    count_id: str
    closed_ts: int | None  # capture time of the closing part; None while open
    parts: int
    counted: list[str] = field(default_factory=list)
    expected: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)


def _items(body: dict[str, Any]) -> list[str]:
    out: list[str] = []
    for it in body.get("items", []):
        out.append(str(it["id"]))
        out.extend(str(i) for i in it.get("inner", []))
    return out


def stock(db: Db, site: str, until_ts: int | None = None) -> dict[str, str | None]:
    """Item id → its outer package (None) of every item in ``site`` (as of ``until_ts``)."""
    sql = (
        "SELECT kind, rec FROM records WHERE site = ? "
        "AND kind IN ('goods.in', 'goods.out', 'goods.pack', 'goods.dispatch')"
    )
    args: list[Any] = [site]
    if until_ts is not None:
        sql, args = sql + " AND ts <= ?", [*args, until_ts]
    held: dict[str, str | None] = {}
    for kind, text in db.execute(sql + " ORDER BY ts, dev, seq", args).fetchall():
        body = json.loads(text)["body"]
        if kind == "goods.in":
            for it in body["items"]:
                held[str(it["id"])] = None
                for i in it.get("inner", []):
                    held[str(i)] = str(it["id"])
        elif kind == "goods.out" or (kind == "goods.dispatch" and body["decision"] == "allow"):
            leaving = _items(body) if kind == "goods.out" else [str(i) for i in body["items"]]
            for i in list(leaving):
                leaving.extend(k for k, p in held.items() if p == i)
            for i in leaving:
                held.pop(i, None)
        elif kind == "goods.pack":
            parent = str(body["parent"]["id"])
            if body["action"] == "pack":
                held.setdefault(parent, None)
                for c in body["children"]:
                    if c in held:
                        held[str(c)] = parent
            else:
                for c in body["children"]:
                    if held.get(str(c)) == parent:
                        held[str(c)] = None
                held.pop(parent, None)
    return held


def stocktake(db: Db, site: str, count_id: str) -> Stocktake | None:
    """The count ``count_id`` of ``site`` against the stock; None if no part is stored."""
    rows = db.execute(
        "SELECT ts, rec FROM records WHERE site = ? AND kind = 'goods.count' "
        "AND json_extract(rec, '$.body.count_id') = ? ORDER BY ts, dev, seq",
        (site, count_id),
    ).fetchall()
    if not rows:
        return None
    counted: list[str] = []
    closed: int | None = None
    for ts, text in rows:
        body = json.loads(text)["body"]
        for i in _items(body):
            if i not in counted:
                counted.append(i)
        if body.get("last"):
            closed = int(ts)
    st = Stocktake(site, count_id, closed, len(rows), counted)
    if closed is None:
        return st
    held = stock(db, site, closed)
    # an outer package counted stands for its inner ones
    seen = set(counted) | {i for i, p in held.items() if p is not None and p in counted}
    st.expected = sorted(held)
    st.missing = sorted(i for i in held if i not in seen)
    st.unexpected = sorted(i for i in counted if i not in held)
    return st


def pending_stocktakes(db: Db, now_ms: int | None = None) -> list[tuple[str, str]]:
    """``(site, count_id)`` of the counts closed in the last days not checked yet (a read)."""
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    closed = db.execute(
        "SELECT DISTINCT site, json_extract(rec, '$.body.count_id') FROM records "
        "WHERE kind = 'goods.count' AND ts >= ? "
        "AND CAST(json_extract(rec, '$.body.last') AS TEXT) IN ('1', 'true')",
        (now_ms - WINDOW_MS,),
    ).fetchall()
    out: list[tuple[str, str]] = []
    for site, count_id in closed:
        name = f"stocktake_checked:{site}:{count_id}"
        if not db.execute("SELECT 1 FROM meta WHERE name = ?", (name,)).fetchone():
            out.append((str(site), str(count_id)))
    return out


def check_stocktakes(db: Db, now_ms: int | None = None) -> int:
    """Raise a ``stocktake_missing`` alarm for each count closed in the last days that
    finds items missing, once (meta ``stocktake_checked:{site}:{count_id}``); returns how
    many alarms were raised. ``db`` in a write transaction."""
    raised = 0
    for site, count_id in pending_stocktakes(db, now_ms):
        st = stocktake(db, site, count_id)
        if st is None or st.closed_ts is None:
            continue
        name = f"stocktake_checked:{site}:{count_id}"
        db.execute("INSERT INTO meta(name, value) VALUES (?, ?)", (name, str(len(st.missing))))
        if st.missing:
            shown = ", ".join(st.missing[:5]) + (" …" if len(st.missing) > 5 else "")
            db.execute(
                "INSERT INTO alarms(raised, kind, detail) VALUES (?, ?, ?)",
                (
                    time.time(),
                    ALARM,
                    f"site {site} stocktake {count_id}: {len(st.missing)} item(s) missing: {shown}",
                ),
            )
            raised += 1
    return raised
