"""Licence registry and recalled lots at the collector, for the warehouse dispatch gate.

Licences (剧毒化学品购买许可证, precursor purchase records, business licences) are imported
from JSON or CSV (:func:`parse_csv`), all or nothing (a bad row is named by its index and
field, nothing is changed); each import bumps the registry version and the collector pushes
each site the licences that may be presented there (``sites``: site codes, or ``*`` for
every site), signed, retained on ``edge/{site}/cmd`` (:mod:`collector.pushdown`). Recalled
lots are imported the same way and pushed to every site. The agent's dispatch gate decides
from what it holds, offline (:mod:`edge_agent.dispatchgate`, docs/warehouse.md).

A licence's ``holder`` is the licensed buyer (a unit or a person): personal data, never shown
by the public listener.
"""

from __future__ import annotations

import csv
import io
import json
import re
import sqlite3
import time
from typing import Any

from hostlib.db import Db
from hostlib.sqlite import set_meta, write_tx
from wire.goods import PRODUCT_CLASSES, UNITS

SCHEMA = """
CREATE TABLE IF NOT EXISTS licences (
    licence TEXT PRIMARY KEY,
    entry TEXT NOT NULL,
    updated REAL NOT NULL
);
-- every version of every licence as imported, never changed or deleted: the seller keeps
-- copies of the licences a sale was made against (art. 41: at least one year)
CREATE TABLE IF NOT EXISTS licence_history (
    licence TEXT NOT NULL,
    version INTEGER NOT NULL,
    entry TEXT NOT NULL,
    imported REAL NOT NULL,
    PRIMARY KEY (licence, version)
);
CREATE TABLE IF NOT EXISTS recalled_lots (
    lot TEXT PRIMARY KEY,
    entry TEXT NOT NULL,
    updated REAL NOT NULL
);
-- the collector's loop looks for closed stocktakes every second (collector/warehouse.py)
CREATE INDEX IF NOT EXISTS records_goods_count ON records(ts) WHERE kind = 'goods.count';
"""

# the same in migration 5 of collector/pgschema.py
CLASSES = PRODUCT_CLASSES
KINDS = ("toxic_purchase", "precursor_purchase", "business", "other")
_TOKEN = re.compile(r"^[!-~]{1,40}$")
_SITE = re.compile(r"^(\*|[0-9A-Za-z][0-9A-Za-z_.-]{0,31})$")
_DATE = re.compile(r"^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$")
MAX_QUANTITY = 1_000_000_000
LICENCE_VERSION = "licence_registry_version"
RECALL_VERSION = "recall_list_version"


class LicenceRegistryError(ValueError):
    """A row is malformed; the import is refused as a whole (nothing is changed)."""


def ensure_schema(db: sqlite3.Connection) -> None:
    db.executescript(SCHEMA)
    # a store made before the history was kept: its licences as the first version on file
    db.execute(
        "INSERT OR IGNORE INTO licence_history(licence, version, entry, imported) "
        "SELECT licence, COALESCE((SELECT CAST(value AS INTEGER) FROM meta "
        "WHERE name = 'licence_registry_version'), 0), entry, updated FROM licences "
        "WHERE licence NOT IN (SELECT licence FROM licence_history)"
    )


def _text(e: dict[str, Any], f: str, hi: int, bad: Any) -> str:
    v = e.get(f)
    if not isinstance(v, str) or not 1 <= len(v) <= hi or v != v.strip():
        raise bad(f, f"a text of 1..{hi} characters, no surrounding spaces")
    return v


def check_licence(i: int, e: object) -> dict[str, Any]:
    """One licence entry, normalised; :class:`LicenceRegistryError` naming row and field."""

    def bad(field: str, why: str) -> LicenceRegistryError:
        return LicenceRegistryError(f"entry {i}: {field}: {why}")

    if not isinstance(e, dict):
        raise bad("-", "not an object")
    unknown = set(e) - {
        "licence",
        "kind",
        "holder",
        "classes",
        "quantity",
        "unit",
        "valid_from",
        "valid_until",
        "sites",
    }
    if unknown:
        raise bad(sorted(unknown)[0], "unknown field")
    if not isinstance(e.get("licence"), str) or not _TOKEN.match(e["licence"]):
        raise bad("licence", "the licence number: 1..40 printable ASCII characters, no spaces")
    if e.get("kind") not in KINDS:
        raise bad("kind", f"one of {', '.join(KINDS)}")
    holder = _text(e, "holder", 64, bad)
    classes = e.get("classes")
    if (
        not isinstance(classes, list)
        or not classes
        or not all(c in CLASSES for c in classes)
        or len(set(classes)) != len(classes)
    ):
        raise bad("classes", f"a non-empty list of distinct classes of {', '.join(CLASSES)}")
    q = e.get("quantity")
    if not isinstance(q, int) or isinstance(q, bool) or not 1 <= q <= MAX_QUANTITY:
        raise bad("quantity", f"an integer in 1..{MAX_QUANTITY}")
    if e.get("unit") not in UNITS:
        raise bad("unit", f"one of {', '.join(UNITS)}")
    for f in ("valid_from", "valid_until"):
        if not isinstance(e.get(f), str) or not _DATE.match(e[f]):
            raise bad(f, "a date YYYY-MM-DD")
    if e["valid_until"] < e["valid_from"]:
        raise bad("valid_until", "before valid_from")
    sites = e.get("sites")
    if (
        not isinstance(sites, list)
        or not sites
        or not all(isinstance(s, str) and _SITE.match(s) for s in sites)
    ):
        raise bad("sites", 'a non-empty list of site codes, or ["*"] for every site')
    return {
        "licence": e["licence"],
        "kind": e["kind"],
        "holder": holder,
        "classes": list(classes),
        "quantity": q,
        "unit": e["unit"],
        "valid_from": e["valid_from"],
        "valid_until": e["valid_until"],
        "sites": sorted(set(sites)),
    }


def check_recall(i: int, e: object) -> dict[str, Any]:
    def bad(field: str, why: str) -> LicenceRegistryError:
        return LicenceRegistryError(f"entry {i}: {field}: {why}")

    if not isinstance(e, dict):
        raise bad("-", "not an object")
    unknown = set(e) - {"lot", "product", "reason", "since"}
    if unknown:
        raise bad(sorted(unknown)[0], "unknown field")
    if not isinstance(e.get("lot"), str) or not _TOKEN.match(e["lot"]):
        raise bad("lot", "the lot number: 1..40 printable ASCII characters, no spaces")
    out: dict[str, Any] = {"lot": e["lot"], "reason": _text(e, "reason", 120, bad)}
    if "product" in e:
        out["product"] = _text(e, "product", 64, bad)
    if "since" in e:
        if not isinstance(e["since"], str) or not _DATE.match(e["since"]):
            raise bad("since", "a date YYYY-MM-DD")
        out["since"] = e["since"]
    return out


_INT_COLUMNS = ("quantity",)
_LIST_COLUMNS = ("classes", "sites")


def parse_csv(text: str) -> list[object]:
    """Rows of a CSV with a header line, as entries: ``classes`` and ``sites`` are lists
    separated by spaces or ``;``, ``quantity`` an integer (left as text when it is not one,
    so the check names it); empty cells are left out. Malformed CSV:
    :class:`LicenceRegistryError` with the line."""
    rows: list[object] = []
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        table = list(reader)
    except csv.Error as exc:
        raise LicenceRegistryError(f"CSV line {reader.line_num}: {exc}") from None
    for row in table:
        e: dict[str, Any] = {}
        for k, v in row.items():
            if k is None or v is None or v.strip() == "":
                continue
            k, v = k.strip(), v.strip()
            if k in _LIST_COLUMNS:
                e[k] = [x for x in re.split(r"[;\s]+", v) if x]
            elif k in _INT_COLUMNS and re.fullmatch(r"\d{1,12}", v):
                e[k] = int(v)
            else:
                e[k] = v
        rows.append(e)
    return rows


def _import(
    db: Db,
    table: str,
    key: str,
    version_name: str,
    checked: list[dict[str, Any]],
    history: bool = False,
) -> int:
    keys = [e[key] for e in checked]
    if len(set(keys)) != len(keys):
        dup = next(k for k in keys if keys.count(k) > 1)
        raise LicenceRegistryError(f"{key} {dup!r} appears twice")
    now = time.time()
    rows = [(e[key], json.dumps(e, sort_keys=True, ensure_ascii=False)) for e in checked]
    with write_tx(db):
        version = _version(db, version_name) + 1
        if history:  # what is new or changed, as of this version
            held = dict(db.execute(f"SELECT {key}, entry FROM {table}").fetchall())
            db.executemany(
                "INSERT INTO licence_history(licence, version, entry, imported) "
                "VALUES (?, ?, ?, ?)",
                [(k, version, entry, now) for k, entry in rows if held.get(k) != entry],
            )
        db.executemany(
            f"INSERT INTO {table}({key}, entry, updated) VALUES (?, ?, ?) "
            f"ON CONFLICT({key}) DO UPDATE SET entry = excluded.entry, updated = excluded.updated",
            [(k, entry, now) for k, entry in rows],
        )
        set_meta(db, {version_name: str(version)})
    return version


def import_licences(db: Db, entries: list[object]) -> int:
    """Validate all, then upsert all in one transaction; returns the new registry version."""
    return _import(
        db,
        "licences",
        "licence",
        LICENCE_VERSION,
        [check_licence(i, e) for i, e in enumerate(entries)],
        history=True,
    )


def licence_history(db: Db, licence: str) -> list[dict[str, Any]]:
    """Every version of ``licence`` as imported, oldest first: ``version`` (of the registry,
    as a ``goods.dispatch`` record's ``reg_ver`` names it), ``imported`` (unix time) and the
    ``entry`` then. Empty when the licence was never imported."""
    rows = db.execute(
        "SELECT version, imported, entry FROM licence_history WHERE licence = ? ORDER BY version",
        (licence,),
    ).fetchall()
    return [{"version": int(v), "imported": float(t), "entry": json.loads(e)} for v, t, e in rows]


def licence_at(db: Db, licence: str, version: int) -> dict[str, Any] | None:
    """The licence as on file at registry ``version`` (what a dispatch decided against)."""
    row = db.execute(
        "SELECT entry FROM licence_history WHERE licence = ? AND version <= ? "
        "ORDER BY version DESC LIMIT 1",
        (licence, version),
    ).fetchone()
    return json.loads(row[0]) if row else None


def import_recalls(db: Db, entries: list[object]) -> int:
    """Validate all recalled lots, then upsert all; returns the new recall list version."""
    return _import(
        db,
        "recalled_lots",
        "lot",
        RECALL_VERSION,
        [check_recall(i, e) for i, e in enumerate(entries)],
    )


def _version(db: Db, name: str) -> int:
    row = db.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
    return int(row[0]) if row else 0


def _entries(db: Db, table: str, key: str) -> list[dict[str, Any]]:
    try:
        rows = db.execute(f"SELECT entry FROM {table} ORDER BY {key}").fetchall()
    except sqlite3.OperationalError:
        rows = []
    return [json.loads(r[0]) for r in rows]


def licences_snapshot(db: Db) -> dict[str, Any]:
    """Every licence and the version; :func:`for_site` slices it per site."""
    return {
        "type": "licences",
        "version": _version(db, LICENCE_VERSION),
        "licences": _entries(db, "licences", "licence"),
    }


def for_site(snap: dict[str, Any], site: str) -> dict[str, Any]:
    """The licences that may be presented at ``site`` (its own and the ``*`` ones)."""
    return {
        **snap,
        "licences": [e for e in snap["licences"] if site in e["sites"] or "*" in e["sites"]],
    }


def recalls_snapshot(db: Db) -> dict[str, Any]:
    """Every recalled lot and the version (for every site)."""
    return {
        "type": "recalls",
        "version": _version(db, RECALL_VERSION),
        "lots": _entries(db, "recalled_lots", "lot"),
    }
