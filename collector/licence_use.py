"""What each purchase licence let leave at every site, pushed to its other sites, and the
alarm when the sites together went over its quantity (docs/warehouse.md, issue 14).

A licence may be valid at several sites (``sites``, or ``*``); each site's agent counts only
what left through its own gate. The collector sees every site's ``goods.out`` naming a
licence, so :func:`use_by_site` sums them in the database per licence, unit and site (partial
index ``records_goods_licence``: exactly those sales, both stores). From it:

* :func:`use_snapshot` / :func:`for_site`: the ``licence_use`` command pushed down to each site
  (signed, versioned and retained like the licence registry, :mod:`collector.pushdown`):
  ``{"version", "use": [{"licence", "unit", "elsewhere"}]}``, for each licence of the site
  (same unit as the licence) what its *other* sites let leave (a licence used nowhere else
  is left out). The agent's dispatch gate adds it to what it let leave itself
  (:mod:`edge_agent.dispatchgate`).
* :func:`refresh`: run by the collector's loop every :data:`EVERY_S` (the debounce: a busy
  day bumps the version, hence pushes, at most once a period, not per record). It bumps the
  version (meta ``licence_use_version``) only when the totals (or a licence's quantity or
  sites) changed (meta ``licence_use_digest``), and raises a ``licence_overdrawn`` alarm for
  a licence whose use across its sites is above its quantity (sites cut off from the centre
  can still overdraw it together: each knew only its own use), again only if the use grows
  further (meta ``licence_overdrawn:{licence}`` holds the total alarmed at; removed when the
  licence is no longer over, its quantity raised by a new import, say). The alarm is raised
  at each site that let some go (its detail starts ``{site}: ``, as alarms without a device
  name their site), so each site's inspector sees it.
* :func:`licence_lines`: the licences with their use per site and in total, ``overdrawn``
  flagged, for the officer (``GET /warehouse/licences``); :func:`overdrawn` for the
  reporting list's flag and the ``traceedge_collector_licences_overdrawn`` metric.

Quantities follow ``goods.out`` (the sale the reporting list shows), not the gate's allowed
``goods.dispatch`` (each allowed dispatch is followed by its ``goods.out``).
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from typing import Any

from collector import licences
from hostlib.db import Db
from hostlib.sqlite import set_meta

ALARM = "licence_overdrawn"
USE_VERSION = "licence_use_version"
USE_DIGEST = "licence_use_digest"
USE_LOCK = "licence_use_refreshed"
OVERDRAWN = "licence_overdrawn:"  # meta name prefix, value: the total alarmed at
EVERY_S = 10.0

# the predicate of records_goods_licence, as written there (SQLite matches it as written)
LICENSED = "kind = 'goods.out' AND json_extract(rec, '$.body.licence') IS NOT NULL"

SCHEMA = f"""
CREATE INDEX IF NOT EXISTS records_goods_licence ON records(ts) WHERE {LICENSED};
"""
# the same in migration 7 of collector/pgschema.py


def ensure_schema(db: Any) -> None:
    db.executescript(SCHEMA)


@dataclass
class LicenceUse:
    """One licence's use across its sites, against its quantity (in its unit)."""

    licence: str
    quantity: int
    unit: str
    valid_at: list[str]  # the licence's sites, or ["*"]
    sites: dict[str, int] = field(default_factory=dict)  # site → quantity left there

    @property
    def total(self) -> int:
        return sum(self.sites.values())

    @property
    def overdrawn(self) -> bool:
        return self.total > self.quantity


def use_by_site(db: Db) -> dict[tuple[str, str], dict[str, int]]:
    """``(licence, unit)`` → site → what left there against it (``goods.out`` records)."""
    rows = db.execute(
        "SELECT json_extract(rec, '$.body.licence'), json_extract(rec, '$.body.unit'), site,"
        " SUM(CAST(json_extract(rec, '$.body.quantity') AS INTEGER))"
        f" FROM records WHERE {LICENSED} GROUP BY 1, 2, 3"
    ).fetchall()
    out: dict[tuple[str, str], dict[str, int]] = {}
    for lic, unit, site, qty in rows:
        out.setdefault((str(lic), str(unit)), {})[str(site)] = int(qty or 0)
    return out


def licence_uses(db: Db) -> list[LicenceUse]:
    """Every licence on file with what left against it at each site, in its unit."""
    used = use_by_site(db)
    return [
        LicenceUse(
            e["licence"],
            int(e["quantity"]),
            e["unit"],
            list(e["sites"]),
            dict(used.get((e["licence"], e["unit"]), {})),
        )
        for e in licences.licences_snapshot(db)["licences"]
    ]


def _version(db: Db, name: str) -> int:
    row = db.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
    return int(row[0]) if row else 0


def use_snapshot(db: Db) -> dict[str, Any]:
    """Every licence's per-site use and the version; :func:`for_site` slices it."""
    return {
        "type": "licence_use",
        "version": _version(db, USE_VERSION),
        "use": licence_uses(db),
    }


def for_site(snap: dict[str, Any], site: str) -> dict[str, Any]:
    """What each licence that may be presented at ``site`` let leave at the other sites."""
    use = []
    for u in snap["use"]:
        if site in u.valid_at or "*" in u.valid_at:
            elsewhere = sum(q for s, q in u.sites.items() if s != site)
            if elsewhere:  # a full snapshot: a licence left out is used nowhere else
                use.append({"licence": u.licence, "unit": u.unit, "elsewhere": elsewhere})
    return {"type": "licence_use", "version": snap["version"], "use": use}


def _digest(uses: list[LicenceUse]) -> str:
    text = json.dumps(
        [[u.licence, u.quantity, u.unit, u.valid_at, sorted(u.sites.items())] for u in uses]
    )
    return hashlib.sha256(text.encode()).hexdigest()


def changed(db: Db) -> bool:
    """Do the totals differ from those last versioned? (a read; the loop's cheap check)"""
    row = db.execute("SELECT value FROM meta WHERE name = ?", (USE_DIGEST,)).fetchone()
    return (row[0] if row else None) != _digest(licence_uses(db))


def refresh(db: Db, now: float | None = None) -> tuple[bool, int]:
    """Bump the version when the totals (or a licence's quantity or sites) changed; for each
    licence newly overdrawn (or overdrawn further) raise an alarm at each site that let some
    go; forget an overdraw that is over. ``db`` in a write transaction; returns (bumped,
    alarms raised)."""
    now = time.time() if now is None else now
    # collectors sharing a PostgreSQL store run this too: the row lock of this upsert, held
    # to the commit, makes them take turns (each statement after it sees the other's commit)
    set_meta(db, {USE_LOCK: str(now)})
    uses = licence_uses(db)
    digest = _digest(uses)
    row = db.execute("SELECT value FROM meta WHERE name = ?", (USE_DIGEST,)).fetchone()
    bumped = (row[0] if row else None) != digest
    if bumped:
        # never below a time in ms: a store restored from an older backup still goes forward
        version = max(_version(db, USE_VERSION) + 1, int(now * 1000))
        set_meta(db, {USE_VERSION: str(version), USE_DIGEST: digest})
    raised = 0
    for u in uses:
        name = OVERDRAWN + u.licence
        row = db.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        if not u.overdrawn:
            if row is not None:  # its quantity raised since, or sales archived: over
                db.execute("DELETE FROM meta WHERE name = ?", (name,))
            continue
        if row is not None and int(row[0]) >= u.total:
            continue
        set_meta(db, {name: str(u.total)})
        shown = ", ".join(f"{s} {q}" for s, q in sorted(u.sites.items()))
        # one per site that let some go, its site first ("S1: …", as alarms without a
        # device name theirs): each site's inspector sees it
        for site in sorted(s for s, q in u.sites.items() if q > 0):
            db.execute(
                "INSERT INTO alarms(raised, kind, detail) VALUES (?, ?, ?)",
                (
                    now,
                    ALARM,
                    f"{site}: licence {u.licence}: {u.total} {u.unit} left against it at its "
                    f"sites together, above its {u.quantity} {u.unit} ({shown})",
                ),
            )
            raised += 1
    return bumped, raised


@dataclass
class LicenceLine:
    """A licence as the officer sees it (``GET /warehouse/licences``): what left against it
    at each site in the token's scope, the total at all its sites, and whether the sites
    together went over its quantity. ``holder`` is personal data (regulator's listener)."""

    licence: str
    kind: str
    holder: str
    classes: list[str]
    quantity: int
    unit: str
    valid_from: str
    valid_until: str
    sites: list[str]  # where it may be presented, or ["*"]
    used: dict[str, int]  # site (in scope) → quantity left there against it
    used_total: int  # at every site
    overdrawn: bool


def licence_lines(
    db: Db, sites: frozenset[str] | None = None, *, only_overdrawn: bool = False
) -> list[LicenceLine]:
    """The licences that may be presented at a site of ``sites`` (None: every licence)."""
    used = use_by_site(db)
    out: list[LicenceLine] = []
    for e in licences.licences_snapshot(db)["licences"]:
        valid_at = list(e["sites"])
        if sites is not None and "*" not in valid_at and not sites & set(valid_at):
            continue
        at = used.get((e["licence"], e["unit"]), {})
        total = sum(at.values())
        line = LicenceLine(
            e["licence"],
            e["kind"],
            e["holder"],
            list(e["classes"]),
            int(e["quantity"]),
            e["unit"],
            e["valid_from"],
            e["valid_until"],
            valid_at,
            {s: q for s, q in sorted(at.items()) if sites is None or s in sites},
            total,
            total > int(e["quantity"]),
        )
        if line.overdrawn or not only_overdrawn:
            out.append(line)
    return out


def overdrawn(db: Db) -> frozenset[str]:
    """The licences overdrawn as of the last :func:`refresh` (the reporting list flags their
    sales; the ``traceedge_collector_licences_overdrawn`` metric counts them)."""
    rows = db.execute("SELECT name FROM meta WHERE name LIKE 'licence_overdrawn:%'").fetchall()
    return frozenset(str(r[0])[len(OVERDRAWN) :] for r in rows)
