"""Cylinder registry at the collector, and a cylinder's history.

Entries (see :mod:`edge_agent.fillgate` for their meaning) are imported from JSON; each
import bumps the registry version, and the collector pushes the new snapshot down to every
site's agent (retained on ``edge/{site}/cmd``) so fill gates answer offline.

Across the fleet: :func:`refusals` lists the fill gate's denials (a cylinder refused before
filling, or stopped after it), newest first; :func:`held` the cylinders whose latest post-fill
check denied them (over-filled, leaking): they must not leave the station. Both read only
the denials, through the partial index ``records_cyl_denied``.
"""

from __future__ import annotations

import json
import re
import sqlite3
import time
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from hostlib.db import Db
from hostlib.sqlite import set_meta, write_tx

SCHEMA = """
CREATE TABLE IF NOT EXISTS cylinders (
    cyl TEXT PRIMARY KEY,
    entry TEXT NOT NULL,
    updated REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS records_cyl ON records(json_extract(rec, '$.body.cyl'))
    WHERE kind IN ('cylinder.fill', 'cylinder.check');
CREATE INDEX IF NOT EXISTS records_cyl_denied ON records(ts)
    WHERE kind = 'cylinder.check' AND json_extract(rec, '$.body.decision') = 'deny';
"""

_CODE = re.compile(r"^[0-9A-Z][0-9A-Z-]{3,31}$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_STATION = re.compile(r"^[0-9A-Za-z][0-9A-Za-z_.-]{0,31}$")
MEDIA = ("lpg", "cng", "o2", "n2", "ar", "co2", "c2h2", "other")


class CylinderRegistryError(ValueError):
    """An entry is malformed; the import is refused as a whole (nothing is changed)."""


def ensure_schema(db: sqlite3.Connection) -> None:
    db.executescript(SCHEMA)


def check_entry(i: int, e: object) -> dict[str, Any]:
    def bad(field: str, why: str) -> CylinderRegistryError:
        return CylinderRegistryError(f"entry {i}: {field}: {why}")

    if not isinstance(e, dict):
        raise bad("-", "not an object")
    out: dict[str, Any] = {}
    for f, pat in (("cyl", _CODE), ("owner", _STATION)):
        if not isinstance(e.get(f), str) or not pat.match(e[f]):
            raise bad(f, "missing or malformed")
        out[f] = e[f]
    for f in ("manufactured", "next_inspection"):
        if not isinstance(e.get(f), str) or not _DATE.match(e[f]):
            raise bad(f, "must be a date YYYY-MM-DD")
        out[f] = e[f]
    if e.get("medium") not in MEDIA:
        raise bad("medium", f"one of {', '.join(MEDIA)}")
    out["medium"] = e["medium"]
    if e.get("status", "in_service") not in ("in_service", "scrapped"):
        raise bad("status", "in_service or scrapped")
    out["status"] = e.get("status", "in_service")
    for f, hi in (("design_life_years", 100), ("tare_g", 2_000_000), ("max_fill_g", 2_000_000)):
        v = e.get(f)
        if not isinstance(v, int) or isinstance(v, bool) or not 0 < v <= hi:
            raise bad(f, f"an integer in 1..{hi}")
        out[f] = v
    ent = e.get("entrusted", [])
    if not isinstance(ent, list) or not all(isinstance(s, str) and _STATION.match(s) for s in ent):
        raise bad("entrusted", "a list of station codes")
    out["entrusted"] = ent
    if "tag" in e:
        if not isinstance(e["tag"], str) or not re.fullmatch(r"[0-9A-Fa-f]{8,64}", e["tag"]):
            raise bad("tag", "hex UID or EPC")
        out["tag"] = e["tag"].upper()
    return out


def import_cylinders(db: Db, entries: list[object]) -> int:
    """Validate all, then upsert all in one transaction; returns the new registry version.

    ``db`` is a store's connection (:class:`collector.store.SqliteStore` created the table)."""
    checked = [check_entry(i, e) for i, e in enumerate(entries)]
    now = time.time()
    with write_tx(db):
        db.executemany(
            "INSERT INTO cylinders(cyl, entry, updated) VALUES (?, ?, ?) "
            "ON CONFLICT(cyl) DO UPDATE SET entry = excluded.entry, updated = excluded.updated",
            [(e["cyl"], json.dumps(e, sort_keys=True), now) for e in checked],
        )
        row = db.execute(
            "SELECT value FROM meta WHERE name = 'cylinder_registry_version'"
        ).fetchone()
        version = (int(row[0]) if row else 0) + 1
        set_meta(db, {"cylinder_registry_version": str(version)})
    return version


def registry_version(db: Db) -> int:
    row = db.execute("SELECT value FROM meta WHERE name = 'cylinder_registry_version'").fetchone()
    return int(row[0]) if row else 0


def snapshot(db: Db) -> dict[str, Any]:
    """The push-down command: every entry and the version."""
    version = registry_version(db)
    try:
        rows = db.execute("SELECT entry FROM cylinders ORDER BY cyl").fetchall()
    except sqlite3.OperationalError:
        rows = []
    return {
        "type": "cylinder_registry",
        "version": version,
        "cylinders": [json.loads(r[0]) for r in rows],
    }


def history(db: Db, cyl: str, limit: int = 200) -> dict[str, Any] | None:
    """Registry entry and every check and fill of ``cyl``, newest first; None if unknown."""
    try:
        row = db.execute("SELECT entry FROM cylinders WHERE cyl = ?", (cyl,)).fetchone()
    except sqlite3.OperationalError:
        row = None
    recs = db.execute(
        "SELECT rec FROM records WHERE kind IN ('cylinder.fill', 'cylinder.check') "
        "AND json_extract(rec, '$.body.cyl') = ? ORDER BY ts DESC, id DESC LIMIT ?",
        (cyl, limit),
    ).fetchall()
    if row is None and not recs:
        return None
    events = [json.loads(r[0]) for r in recs]
    for e in events:
        e.pop("mac", None)
    open_overfill = [
        e
        for e in events
        if e["kind"] == "cylinder.check"
        and e["body"]["stage"] == "post"
        and "overfilled" in e["body"]["reasons"]
    ]
    last_post = next(
        (e for e in events if e["kind"] == "cylinder.check" and e["body"]["stage"] == "post"),
        None,
    )
    return {
        "cyl": cyl,
        "registered": row is not None,
        "entry": json.loads(row[0]) if row else None,
        "events": events,
        "fills": sum(1 for e in events if e["kind"] == "cylinder.fill"),
        "denied_checks": sum(
            1 for e in events if e["kind"] == "cylinder.check" and e["body"]["decision"] == "deny"
        ),
        # the last post-fill check decides whether the cylinder may leave
        "held_overfilled": bool(open_overfill) and last_post is open_overfill[0],
    }


@dataclass(frozen=True)
class Refusal:
    """One denial of the fill gate (a ``cylinder.check`` record with decision ``deny``)."""

    dev: str
    seq: int
    ts: int  # capture time, ms since the epoch
    site: str
    cyl: str
    station: str
    operator: str
    stage: str  # pre: refused before filling; post: stopped after filling
    reasons: list[str]
    reg_ver: int


@dataclass(frozen=True)
class HeldCylinder:
    """A cylinder whose latest post-fill check denied it: it must not leave the station."""

    cyl: str
    site: str
    station: str
    since_ts: int  # capture time of the check that holds it
    reasons: list[str]
    dev: str
    seq: int
    owner: str | None  # from the registry, when registered


# The partial index's own terms, spelled exactly so SQLite uses it.
_DENIED = "kind = 'cylinder.check' AND json_extract(rec, '$.body.decision') = 'deny'"


def _refusal(dev: str, seq: int, ts: int, site: str, text: str) -> Refusal:
    b = json.loads(text)["body"]
    return Refusal(
        dev=dev,
        seq=int(seq),
        ts=int(ts),
        site=site,
        cyl=str(b["cyl"]),
        station=str(b["station"]),
        operator=str(b["operator"]),
        stage=str(b["stage"]),
        reasons=[str(r) for r in b["reasons"]],
        reg_ver=int(b["reg_ver"]),
    )


def refusals(
    db: Db,
    *,
    since_ms: int | None = None,
    site: str | None = None,
    stage: str | None = None,
    reason: str | None = None,
    limit: int = 100,
    offset: int = 0,
    sites: Collection[str] | None = None,
) -> list[Refusal]:
    """Fill-gate denials across the fleet, newest first, filtered by capture time, site,
    stage (``pre`` / ``post``), reason; ``sites``: a principal's scope (None: all)."""
    sql = f"SELECT dev, seq, ts, site, rec FROM records WHERE {_DENIED}"
    args: list[Any] = []
    if since_ms is not None:
        sql, args = sql + " AND ts >= ?", [*args, since_ms]
    if site is not None:
        sql, args = sql + " AND site = ?", [*args, site]
    if stage is not None:
        sql, args = sql + " AND json_extract(rec, '$.body.stage') = ?", [*args, stage]
    if reason is not None:
        sql += " AND EXISTS (SELECT 1 FROM json_each(rec, '$.body.reasons') WHERE value = ?)"
        args.append(reason)
    if sites is not None:
        sql, args = (
            sql + " AND site IN (SELECT value FROM json_each(?))",
            [
                *args,
                json.dumps(sorted(sites)),
            ],
        )
    rows = db.execute(sql + " ORDER BY ts DESC, id DESC LIMIT ? OFFSET ?", (*args, limit, offset))
    return [_refusal(*r) for r in rows]


def held(db: Db, *, sites: Collection[str] | None = None) -> list[HeldCylinder]:
    """Cylinders held at their station now, newest hold first."""
    cyls = [
        str(c)
        for (c,) in db.execute(
            f"SELECT DISTINCT json_extract(rec, '$.body.cyl') FROM records WHERE {_DENIED} "
            "AND json_extract(rec, '$.body.stage') = 'post'"
        )
    ]
    out: list[HeldCylinder] = []
    for cyl in cyls:
        last = db.execute(
            "SELECT dev, seq, ts, site, rec FROM records "
            "WHERE kind IN ('cylinder.fill', 'cylinder.check') "
            "AND json_extract(rec, '$.body.cyl') = ? AND kind = 'cylinder.check' "
            "AND json_extract(rec, '$.body.stage') = 'post' ORDER BY ts DESC, id DESC LIMIT 1",
            (cyl,),
        ).fetchone()
        if last is None:
            continue
        r = _refusal(*last)
        if json.loads(last[4])["body"]["decision"] != "deny":
            continue
        if sites is not None and r.site not in sites:
            continue
        try:
            entry = db.execute("SELECT entry FROM cylinders WHERE cyl = ?", (cyl,)).fetchone()
        except sqlite3.OperationalError:
            entry = None
        out.append(
            HeldCylinder(
                cyl=cyl,
                site=r.site,
                station=r.station,
                since_ts=r.ts,
                reasons=r.reasons,
                dev=r.dev,
                seq=r.seq,
                owner=json.loads(entry[0]).get("owner") if entry else None,
            )
        )
    out.sort(key=lambda h: (-h.since_ts, h.cyl))
    return out
