"""One licence as the officer checks it (console ``/console/warehouse/licences/{licence}``):
its versions with what changed between them, and the sales made against it, each with the
dispatch gate's decision where the collector holds it (docs/warehouse.md).

* :func:`versions`: :func:`collector.licences.licence_history` in scope (a version is shown
  to a token for a site it was valid at, as ``GET /warehouse/licences/{licence}/history``
  does), each with the fields that changed from the version before it: quantity (and unit),
  validity, sites, classes, kind, holder.
* :func:`sales`: the ``goods.out`` records naming the licence at the sites in scope, newest
  first, paged, read through a partial index (its predicate repeated as written:
  ``records_goods_licence``, or the planner's pick ``records_goods`` by site). A sale's
  ``gate_seq`` is the ``seq`` of the site gateway's ``goods.dispatch`` that allowed it: the
  page's decisions are looked up in **one** query (``goods.dispatch`` at the page's sites,
  in the page's time window with a day's margin, matched on site, ``seq`` and the
  requesting ``terminal``), so a page costs two queries whatever its length. The decision
  names the registry version it was made against (``reg_ver``), which
  :func:`collector.licences.licence_at` turns into the licence as it stood then. On SQLite
  the partial index ``records_goods_dispatch`` on ``(site, ts)`` of the ``goods.dispatch``
  records serves that query; PostgreSQL reads it through ``records_site_ts`` (migration 1),
  so it needs no migration.

Personal data (buyer, handler, holder): only the regulator's listener serves these.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from collector import licence_use, licences
from hostlib.db import Db
from wire import tracecode

SCHEMA = """
CREATE INDEX IF NOT EXISTS records_goods_dispatch ON records(site, ts)
    WHERE kind = 'goods.dispatch';
"""


def ensure_schema(db: Any) -> None:
    """SQLite only (PostgreSQL's ``records_site_ts`` does the same there)."""
    db.executescript(SCHEMA)


# the fields whose change between versions is shown, in this order
COMPARED = ("quantity", "valid", "sites", "classes", "kind", "holder")
DISPATCH_WINDOW_MS = 24 * 3600 * 1000  # a decision is at most this long before its sale


@dataclass
class Version:
    version: int  # the registry version (a goods.dispatch record's reg_ver)
    imported: str  # local time
    entry: dict[str, Any]
    changed: list[str] = field(default_factory=list)  # of COMPARED; empty for the first


def in_scope(entry: dict[str, Any], sites: frozenset[str] | None) -> bool:
    """May ``entry`` be presented at a site of ``sites`` (None: every site)?"""
    return sites is None or "*" in entry["sites"] or bool(sites & set(entry["sites"]))


def _view(e: dict[str, Any], f: str) -> Any:
    if f == "quantity":
        return (e["quantity"], e["unit"])
    if f == "valid":
        return (e["valid_from"], e["valid_until"])
    return e[f]


def versions(db: Db, licence: str, sites: frozenset[str] | None = None) -> list[Version]:
    """The licence's versions in scope, oldest first, each with what changed from the one
    before it (in scope or not: the change is the licence's, as imported)."""
    out: list[Version] = []
    before: dict[str, Any] | None = None
    for h in licences.licence_history(db, licence):
        e = h["entry"]
        changed = [] if before is None else [f for f in COMPARED if _view(before, f) != _view(e, f)]
        before = e
        if in_scope(e, sites):
            out.append(
                Version(
                    h["version"], tracecode.local_datetime(int(h["imported"] * 1000)), e, changed
                )
            )
    return out


@dataclass
class Decision:
    """The gateway's ``goods.dispatch`` that let a sale leave."""

    dev: str
    seq: int
    decision: str
    reasons: list[str]
    reg_ver: int
    used_here: int | None
    used_elsewhere: int | None


@dataclass
class LicenceSale:
    site: str
    dev: str
    seq: int
    ts: int
    local_time: str
    product_class: str
    product: str
    quantity: int
    unit: str
    lot: str | None
    buyer: str  # personal data
    handler: str | None  # personal data
    use: str | None
    gate_seq: int | None
    dispatch: Decision | None = None


def _site_sql(sites: frozenset[str] | None) -> tuple[str, list[Any]]:
    if sites is None:
        return "", []
    if not sites:
        return " AND 1 = 0", []
    return f" AND site IN ({', '.join('?' * len(sites))})", sorted(sites)


def sales(
    db: Db,
    licence: str,
    sites: frozenset[str] | None = None,
    *,
    limit: int = 50,
    offset: int = 0,
) -> list[LicenceSale]:
    """The ``goods.out`` naming ``licence`` at the sites in scope, newest first, paged, each
    with its dispatch decision when the collector holds it."""
    where, args = _site_sql(sites)
    rows = db.execute(
        f"SELECT site, dev, seq, ts, rec FROM records WHERE {licence_use.LICENSED}"
        " AND json_extract(rec, '$.body.licence') = ?"
        + where
        + " ORDER BY ts DESC, dev, seq DESC LIMIT ? OFFSET ?",
        [licence, *args, limit, offset],
    ).fetchall()
    out: list[LicenceSale] = []
    for s, dev, seq, ts, text in rows:
        b = json.loads(text)["body"]
        product = b.get("product") or {}
        gate = b.get("gate_seq")
        out.append(
            LicenceSale(
                str(s),
                str(dev),
                int(seq),
                int(ts),
                tracecode.local_datetime(int(ts)),
                str(b.get("product_class", "")),
                str(product.get("name", ""))
                + (f" ({product['code']})" if "code" in product else ""),
                int(b.get("quantity", 0)),
                str(b.get("unit", "")),
                b.get("lot"),
                str(b.get("party", "")),
                b.get("handler"),
                b.get("use"),
                gate if isinstance(gate, int) and not isinstance(gate, bool) else None,
            )
        )
    _decisions(db, out)
    return out


def _decisions(db: Db, page: list[LicenceSale]) -> None:
    """Fill each sale's ``dispatch`` from the gateway's records, one query for the page."""
    wanted = [(x, x.gate_seq) for x in page if x.gate_seq is not None]
    if not wanted:
        return
    site_list = sorted({x.site for x, _ in wanted})
    seqs = sorted({g for _, g in wanted})
    lo = min(x.ts for x, _ in wanted) - DISPATCH_WINDOW_MS
    hi = max(x.ts for x, _ in wanted) + DISPATCH_WINDOW_MS  # clocks of two devices
    rows = db.execute(
        "SELECT site, dev, seq, rec FROM records WHERE kind = 'goods.dispatch'"
        f" AND site IN ({', '.join('?' * len(site_list))}) AND ts >= ? AND ts <= ?"
        f" AND seq IN ({', '.join('?' * len(seqs))})",
        [*site_list, lo, hi, *seqs],
    ).fetchall()
    found: dict[tuple[str, int, str], Decision] = {}
    for s, dev, seq, text in rows:
        b = json.loads(text)["body"]
        found[(str(s), int(seq), str(b.get("terminal", "")))] = Decision(
            str(dev),
            int(seq),
            str(b.get("decision", "")),
            [str(r) for r in b.get("reasons", [])],
            int(b.get("reg_ver", 0)),
            b.get("used_here"),
            b.get("used_elsewhere"),
        )
    for x, g in wanted:
        x.dispatch = found.get((x.site, g, x.dev))
