"""The sites registry: what each site code stands for — its name, district, kind, the market it
hosts, address and complaint line.

The console and the shopper's page show names beside codes; a token scoped to a district
sees the sites of that district; a market operator's token names a market, found here.
Rows come from ``traceedge collector import-sites`` (all or nothing).

API: ``SiteInfo``; ``ensure_schema(db)``; ``import_sites(db, rows)``; ``get(db, site)``;
``by_market(db, market)``; ``all_sites(db)``; ``in_district(db, district)``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from hostlib.db import Db
from hostlib.sqlite import write_tx
from wire import topics

KINDS = ("market", "filling-station", "elevator", "warehouse", "other")

SCHEMA = """
CREATE TABLE IF NOT EXISTS sites (
    site TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    district TEXT,
    kind TEXT NOT NULL,
    market TEXT,
    address TEXT,
    phone TEXT
);
CREATE INDEX IF NOT EXISTS sites_district ON sites(district);
CREATE INDEX IF NOT EXISTS sites_market ON sites(market);
"""


@dataclass(frozen=True)
class SiteInfo:
    site: str
    name: str
    district: str | None
    kind: str
    market: str | None
    address: str | None
    phone: str | None


def ensure_schema(db: sqlite3.Connection) -> None:
    db.executescript(SCHEMA)


def _text(row: Mapping[str, object], key: str, max_len: int, required: bool = False) -> str | None:
    value = row.get(key)
    if value is None or value == "":
        if required:
            raise ValueError(f"{key} is required")
        return None
    if not isinstance(value, str) or len(value) > max_len or not value.isprintable():
        raise ValueError(f"{key} must be printable text of at most {max_len} characters")
    return value


_PHONE = frozenset("0123456789+-() ")


def _check(row: object) -> SiteInfo:
    if not isinstance(row, Mapping):
        raise ValueError("not an object")
    unknown = set(row) - {"site", "name", "district", "kind", "market", "address", "phone"}
    if unknown:
        raise ValueError(f"unknown field {sorted(unknown)[0]!r}")
    site = _text(row, "site", topics.MAX_SITE_LEN, required=True)
    assert site is not None
    try:
        topics.check_site(site)
    except ValueError as exc:
        raise ValueError(f"site: {exc}") from None
    kind = _text(row, "kind", 20) or "other"
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}")
    phone = _text(row, "phone", 32)
    if phone is not None and not set(phone) <= _PHONE:
        raise ValueError("phone may hold only digits, spaces, + - ( )")
    district = _text(row, "district", 12)
    if district is not None and not (district.isascii() and district.isdigit()):
        raise ValueError("district must be an administrative division code (digits)")
    return SiteInfo(
        site=site,
        name=_text(row, "name", 64, required=True) or "",
        district=district,
        kind=kind,
        market=_text(row, "market", 32),
        address=_text(row, "address", 200),
        phone=phone,
    )


def import_sites(db: Db, rows: Iterable[object]) -> int:
    """Insert or replace sites; returns how many. Each row: ``site`` (site code) and ``name``
    (64) required; ``district`` (division code, digits, e.g. ``310101``), ``kind`` (one of
    :data:`KINDS`), ``market`` (the market code its terminals record, 32), ``address`` (200),
    ``phone`` (the complaint line) optional. All or nothing: a bad row raises ``ValueError``
    naming its index and field."""
    clean = []
    for i, row in enumerate(rows):
        try:
            clean.append(_check(row))
        except ValueError as exc:
            raise ValueError(f"site row {i}: {exc}") from exc
    with write_tx(db):
        db.executemany(
            "INSERT INTO sites(site, name, district, kind, market, address, phone) "
            "VALUES (?,?,?,?,?,?,?) ON CONFLICT(site) DO UPDATE SET name = excluded.name, "
            "district = excluded.district, kind = excluded.kind, market = excluded.market, "
            "address = excluded.address, phone = excluded.phone",
            [(s.site, s.name, s.district, s.kind, s.market, s.address, s.phone) for s in clean],
        )
    return len(clean)


_COLS = "site, name, district, kind, market, address, phone"


def _has_table(db: Db) -> bool:
    row = db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sites'")
    return row.fetchone() is not None


def get(db: Db, site: str) -> SiteInfo | None:
    if not _has_table(db):
        return None
    row = db.execute(f"SELECT {_COLS} FROM sites WHERE site = ?", (site,)).fetchone()
    return SiteInfo(*row) if row else None


def by_market(db: Db, market: str) -> SiteInfo | None:
    """The site hosting ``market`` (the first by code when several name it)."""
    if not _has_table(db):
        return None
    row = db.execute(
        f"SELECT {_COLS} FROM sites WHERE market = ? ORDER BY site LIMIT 1", (market,)
    ).fetchone()
    return SiteInfo(*row) if row else None


def all_sites(db: Db) -> list[SiteInfo]:
    if not _has_table(db):
        return []
    return [SiteInfo(*r) for r in db.execute(f"SELECT {_COLS} FROM sites ORDER BY site")]


def in_district(db: Db, district: str) -> frozenset[str]:
    """Site codes of ``district`` and of the divisions under it (a code prefix: ``3101``
    covers ``310101`` and ``310104``)."""
    if not _has_table(db):
        return frozenset()
    rows = db.execute(
        "SELECT site FROM sites WHERE district >= ? AND district < ?",
        (district, district + ":"),
    )
    return frozenset(str(r[0]) for r in rows)


def markets_in(db: Db, sites: frozenset[str]) -> frozenset[str]:
    """Market codes hosted by ``sites``."""
    if not _has_table(db) or not sites:
        return frozenset()
    return frozenset(
        str(m)
        for (s, m) in db.execute("SELECT site, market FROM sites WHERE market IS NOT NULL")
        if s in sites
    )
