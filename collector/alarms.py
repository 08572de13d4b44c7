"""Alarms and quarantine entries for the regulator: filtered, paged lists, and acknowledging
one with a comment (audited).

API (stable; the console builds on it)::

    list_alarms(db, *, kind=None, site=None, dev=None, since=None, acknowledged=None,
                limit=100, offset=0, sites=None, registry=None) -> AlarmPage
    get_alarm(db, alarm_id, registry=None) -> Alarm | None
    open_counts(db, *, sites=None, registry=None) -> dict[str, int]   # unacknowledged by kind
    acknowledge(db, alarm_id, actor, comment, *, may_site=None, signing_key=None) -> Ack
    list_quarantine(db, *, reason=None, site=None, since=None, acknowledged=None,
                    limit=100, offset=0, sites=None) -> QuarantinePage
    get_quarantine(db, entry_id) -> QuarantineEntry | None
    acknowledge_quarantine(db, entry_id, actor, comment, *, may_site=None, signing_key=None)
        -> Ack
    ensure_schema(db)   # the ack tables and the indexes (SqliteStore calls it)

Lists are newest first; ``since`` is epoch seconds (raised / received at or after it);
``acknowledged`` True / False keeps only those with / without an ack; ``sites`` is the
principal's scope (``Principal.site_filter(db)``; None: every site).

An alarm has no site of its own: it is its device's (``device_state``, else the ``registry``);
an alarm without a device (a message the collector could not take) names its site at the
start of its detail (``S1: …``). A quarantine row can stand for many records of one batch:
``counts`` has them by reason, ``records`` their sum.

Acknowledging writes the ack and its audit entry (``alarm.ack`` / ``quarantine.ack``,
:func:`collector.audit.record`) in one transaction. A refusal (unknown, outside ``may_site``,
already acknowledged) is audited too, then raised: :class:`UnknownAlarm`,
:class:`AlreadyAcknowledged`; an empty or over-long comment is a ``ValueError``.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from collector import audit
from hostlib.db import Db
from hostlib.registry import Device
from hostlib.sqlite import write_tx

MAX_COMMENT = 1000
MAX_LIMIT = 1000

SCHEMA = """
CREATE TABLE IF NOT EXISTS alarm_acks (
    alarm_id INTEGER PRIMARY KEY,
    at REAL NOT NULL,
    "by" TEXT NOT NULL,
    role TEXT NOT NULL,
    comment TEXT NOT NULL,
    audit_id INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS quarantine_acks (
    quarantine_id INTEGER PRIMARY KEY,
    at REAL NOT NULL,
    "by" TEXT NOT NULL,
    role TEXT NOT NULL,
    comment TEXT NOT NULL,
    audit_id INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS alarms_kind ON alarms(kind, id);
CREATE INDEX IF NOT EXISTS alarms_dev ON alarms(dev, id);
CREATE INDEX IF NOT EXISTS alarms_raised ON alarms(raised);
CREATE INDEX IF NOT EXISTS quarantine_site ON quarantine(site, id);
CREATE INDEX IF NOT EXISTS quarantine_received ON quarantine(received);
"""


class UnknownAlarm(LookupError):
    """No such alarm or quarantine entry (or none the caller may see)."""


class AlreadyAcknowledged(Exception):
    """The alarm or entry was acknowledged before; ``ack`` is that acknowledgement."""

    def __init__(self, ack: Ack) -> None:
        super().__init__(f"acknowledged already by {ack.by} at {ack.at}")
        self.ack = ack


@dataclass(frozen=True)
class Ack:
    at: float
    by: str
    role: str
    comment: str
    audit_id: int


@dataclass(frozen=True)
class Alarm:
    id: int
    raised: float
    kind: str
    dev: str | None
    seq: int | None
    site: str | None
    detail: str
    ack: Ack | None


@dataclass(frozen=True)
class AlarmPage:
    total: int  # alarms matching the filters, all pages
    offset: int
    limit: int
    items: list[Alarm]


@dataclass(frozen=True)
class QuarantineEntry:
    id: int
    received: float
    site: str | None
    batch: str | None
    reason: str  # "mixed" when the row holds records refused for several reasons
    detail: str
    dev: str | None
    seq: int | None
    counts: dict[str, int]  # records by reason
    records: int
    payload_bytes: int
    ack: Ack | None


@dataclass(frozen=True)
class QuarantinePage:
    total: int
    offset: int
    limit: int
    items: list[QuarantineEntry]


def ensure_schema(db: sqlite3.Connection) -> None:
    """The ack tables and the list indexes (idempotent; the store's tables must exist)."""
    db.executescript(SCHEMA)


ACK_COLUMNS = 'k.at, k."by", k.role, k.comment, k.audit_id'


def _acks_table(db: Db, table: str, key: str) -> str:
    """``table``, or an empty stand-in on a store made before acks existed (read-only)."""
    row = db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table,))
    if row.fetchone() is not None:
        return table
    return (
        f'(SELECT NULL AS {key}, NULL AS at, NULL AS "by", NULL AS role, NULL AS comment, '
        "NULL AS audit_id WHERE 0)"
    )


def _ack(row: tuple[Any, ...]) -> Ack | None:
    if row[0] is None:
        return None
    return Ack(float(row[0]), str(row[1]), str(row[2]), str(row[3]), int(row[4]))


def _page(limit: int, offset: int) -> tuple[int, int]:
    if not 1 <= limit <= MAX_LIMIT or offset < 0:
        raise ValueError(f"limit must be 1..{MAX_LIMIT} and offset >= 0")
    return limit, offset


# ---------------------------------------------------------------------------------------------
# Alarms

# The site of an alarm: its device's, else the registry's, else "SITE: " at the start of the
# detail of an alarm without a device.
_ALARM_SITE = (
    "COALESCE(d.site, json_extract(:reg, '$.' || json_quote(a.dev)), "
    "CASE WHEN a.dev IS NULL AND instr(a.detail, ': ') > 1 "
    "AND substr(a.detail, 1, 1) != '?' "
    "THEN substr(a.detail, 1, instr(a.detail, ': ') - 1) END)"
)


def _alarm_query(
    db: Db,
    where: list[str],
    args: dict[str, Any],
    registry: Mapping[str, Device] | None,
) -> tuple[str, dict[str, Any]]:
    acks = _acks_table(db, "alarm_acks", "alarm_id")
    args = dict(args, reg=json.dumps({d: v.site for d, v in (registry or {}).items()}))
    sql = (
        f"SELECT a.id, a.raised, a.kind, a.dev, a.seq, {_ALARM_SITE} AS site, a.detail, "
        f"{ACK_COLUMNS} FROM alarms AS a LEFT JOIN device_state AS d ON d.dev = a.dev "
        f"LEFT JOIN {acks} AS k ON k.alarm_id = a.id "
        + ("WHERE " + " AND ".join(where) if where else "")
    )
    return sql, args


def _alarm(row: tuple[Any, ...]) -> Alarm:
    return Alarm(
        id=int(row[0]),
        raised=float(row[1]),
        kind=str(row[2]),
        dev=row[3],
        seq=row[4],
        site=row[5],
        detail=str(row[6]),
        ack=_ack(row[7:12]),
    )


def list_alarms(
    db: Db,
    *,
    kind: str | None = None,
    site: str | None = None,
    dev: str | None = None,
    since: float | None = None,
    acknowledged: bool | None = None,
    limit: int = 100,
    offset: int = 0,
    sites: Collection[str] | None = None,
    registry: Mapping[str, Device] | None = None,
) -> AlarmPage:
    """Alarms matching every filter given, newest first, one page."""
    limit, offset = _page(limit, offset)
    where: list[str] = []
    args: dict[str, Any] = {}
    if kind is not None:
        where.append("a.kind = :kind")
        args["kind"] = kind
    if dev is not None:
        where.append("a.dev = :dev")
        args["dev"] = dev
    if since is not None:
        where.append("a.raised >= :since")
        args["since"] = since
    if acknowledged is not None:
        where.append("k.alarm_id IS NOT NULL" if acknowledged else "k.alarm_id IS NULL")
    if site is not None:
        where.append(f"{_ALARM_SITE} = :site")
        args["site"] = site
    if sites is not None:
        where.append(f"{_ALARM_SITE} IN (SELECT value FROM json_each(:sites))")
        args["sites"] = json.dumps(sorted(sites))
    sql, args = _alarm_query(db, where, args, registry)
    total = db.execute(f"SELECT COUNT(*) FROM ({sql})", args).fetchone()[0]
    rows = db.execute(
        sql + " ORDER BY a.id DESC LIMIT :limit OFFSET :offset",
        dict(args, limit=limit, offset=offset),
    ).fetchall()
    return AlarmPage(int(total), offset, limit, [_alarm(r) for r in rows])


def open_counts(
    db: Db,
    *,
    sites: Collection[str] | None = None,
    registry: Mapping[str, Device] | None = None,
) -> dict[str, int]:
    """Alarms not acknowledged yet, by kind (a console's badges), within ``sites``."""
    where = ["k.alarm_id IS NULL"]
    args: dict[str, Any] = {}
    if sites is not None:
        where.append(f"{_ALARM_SITE} IN (SELECT value FROM json_each(:sites))")
        args["sites"] = json.dumps(sorted(sites))
    sql, args = _alarm_query(db, where, args, registry)
    rows = db.execute(f"SELECT kind, COUNT(*) FROM ({sql}) GROUP BY kind ORDER BY kind", args)
    return {str(k): int(n) for k, n in rows}


def get_alarm(db: Db, alarm_id: int, registry: Mapping[str, Device] | None = None) -> Alarm | None:
    sql, args = _alarm_query(db, ["a.id = :id"], {"id": alarm_id}, registry)
    row = db.execute(sql, args).fetchone()
    return None if row is None else _alarm(row)


def _check_comment(comment: str) -> str:
    comment = comment.strip()
    if not comment:
        raise ValueError("an acknowledgement needs a comment")
    if len(comment) > MAX_COMMENT:
        raise ValueError(f"a comment has at most {MAX_COMMENT} characters")
    return comment


def _acknowledge(
    db: Db,
    *,
    what: str,
    target: str,
    found: tuple[str | None, dict[str, Any]] | None,
    existing: Ack | None,
    insert: str,
    key_id: int,
    actor: audit.Actor,
    comment: str,
    may_site: Callable[[str | None], bool] | None,
    signing_key: Ed25519PrivateKey | None,
) -> Ack:
    """Write the ack and its audit entry, or audit the refusal; in the caller's transaction."""
    action = f"{what}.ack"
    if found is None or (may_site is not None and not may_site(found[0])):
        audit.record(
            db, actor, action, target, {"comment": comment}, f"refused: unknown {what}", signing_key
        )
        raise UnknownAlarm(target)
    site, detail = found
    if existing is not None:
        audit.record(
            db,
            actor,
            action,
            target,
            {"comment": comment, "site": site},
            "refused: already acknowledged",
            signing_key,
        )
        raise AlreadyAcknowledged(existing)
    audit_id = audit.record(
        db, actor, action, target, dict(detail, comment=comment, site=site), "ok", signing_key
    )
    at = time.time()
    db.execute(insert, (key_id, at, actor.name, actor.role, comment, audit_id))
    return Ack(at, actor.name, actor.role, comment, audit_id)


def _run(db: Db, body: Callable[[], Ack]) -> Ack:
    refused: Exception | None = None
    with write_tx(db):
        try:
            ack = body()
        except (UnknownAlarm, AlreadyAcknowledged) as exc:
            refused = exc  # the refusal's audit entry commits with this transaction
    if refused is not None:
        raise refused
    return ack


def acknowledge(
    db: Db,
    alarm_id: int,
    actor: audit.Actor,
    comment: str,
    *,
    may_site: Callable[[str | None], bool] | None = None,
    signing_key: Ed25519PrivateKey | None = None,
    registry: Mapping[str, Device] | None = None,
) -> Ack:
    """Acknowledge alarm ``alarm_id`` with ``comment`` as ``actor`` (one transaction with
    the audit entry). ``may_site``: whether the actor may see the alarm's site (one it may
    not is unknown to it)."""
    comment = _check_comment(comment)

    def body() -> Ack:
        a = get_alarm(db, alarm_id, registry)
        found = None
        if a is not None:
            found = (a.site, {"kind": a.kind, "dev": a.dev, "seq": a.seq})
        return _acknowledge(
            db,
            what="alarm",
            target=f"alarm:{alarm_id}",
            found=found,
            existing=a.ack if a is not None else None,
            insert='INSERT INTO alarm_acks(alarm_id, at, "by", role, comment, audit_id) '
            "VALUES (?, ?, ?, ?, ?, ?)",
            key_id=alarm_id,
            actor=actor,
            comment=comment,
            may_site=may_site,
            signing_key=signing_key,
        )

    return _run(db, body)


# ---------------------------------------------------------------------------------------------
# Quarantine


def _quarantine_query(db: Db, where: list[str]) -> str:
    acks = _acks_table(db, "quarantine_acks", "quarantine_id")
    return (
        "SELECT q.id, q.received, q.site, q.batch, q.reason, q.detail, q.dev, q.seq, q.counts, "
        f"length(q.payload), {ACK_COLUMNS} FROM quarantine AS q "
        f"LEFT JOIN {acks} AS k ON k.quarantine_id = q.id "
        + ("WHERE " + " AND ".join(where) if where else "")
    )


def _quarantine(row: tuple[Any, ...]) -> QuarantineEntry:
    counts: dict[str, int] = {}
    if row[8]:
        try:
            raw = json.loads(row[8])
            counts = {str(k): int(v) for k, v in raw.items()} if isinstance(raw, dict) else {}
        except (ValueError, TypeError):
            counts = {}
    if not counts:
        counts = {str(row[4]): 1}
    return QuarantineEntry(
        id=int(row[0]),
        received=float(row[1]),
        site=row[2],
        batch=row[3],
        reason=str(row[4]),
        detail=str(row[5]),
        dev=row[6],
        seq=row[7],
        counts=counts,
        records=sum(counts.values()),
        payload_bytes=int(row[9] or 0),
        ack=_ack(row[10:15]),
    )


def list_quarantine(
    db: Db,
    *,
    reason: str | None = None,
    site: str | None = None,
    since: float | None = None,
    acknowledged: bool | None = None,
    limit: int = 100,
    offset: int = 0,
    sites: Collection[str] | None = None,
) -> QuarantinePage:
    """Quarantine rows matching every filter, newest first, one page. ``reason`` also finds
    the rows of mixed batches that hold records refused for it."""
    limit, offset = _page(limit, offset)
    where: list[str] = []
    args: dict[str, Any] = {}
    if reason is not None:
        where.append(
            "(q.reason = :reason OR (q.counts IS NOT NULL AND json_valid(q.counts) "
            "AND json_extract(q.counts, '$.' || json_quote(:reason)) IS NOT NULL))"
        )
        args["reason"] = reason
    if site is not None:
        where.append("q.site = :site")
        args["site"] = site
    if since is not None:
        where.append("q.received >= :since")
        args["since"] = since
    if acknowledged is not None:
        where.append("k.quarantine_id IS NOT NULL" if acknowledged else "k.quarantine_id IS NULL")
    if sites is not None:
        where.append("q.site IN (SELECT value FROM json_each(:sites))")
        args["sites"] = json.dumps(sorted(sites))
    sql = _quarantine_query(db, where)
    total = db.execute(f"SELECT COUNT(*) FROM ({sql})", args).fetchone()[0]
    rows = db.execute(
        sql + " ORDER BY q.id DESC LIMIT :limit OFFSET :offset",
        dict(args, limit=limit, offset=offset),
    ).fetchall()
    return QuarantinePage(int(total), offset, limit, [_quarantine(r) for r in rows])


def get_quarantine(db: Db, entry_id: int) -> QuarantineEntry | None:
    row = db.execute(_quarantine_query(db, ["q.id = :id"]), {"id": entry_id}).fetchone()
    return None if row is None else _quarantine(row)


def acknowledge_quarantine(
    db: Db,
    entry_id: int,
    actor: audit.Actor,
    comment: str,
    *,
    may_site: Callable[[str | None], bool] | None = None,
    signing_key: Ed25519PrivateKey | None = None,
) -> Ack:
    """Acknowledge quarantine row ``entry_id`` (all the records it stands for)."""
    comment = _check_comment(comment)

    def body() -> Ack:
        q = get_quarantine(db, entry_id)
        found = None
        if q is not None:
            found = (q.site, {"reason": q.reason, "records": q.records, "batch": q.batch})
        return _acknowledge(
            db,
            what="quarantine",
            target=f"quarantine:{entry_id}",
            found=found,
            existing=q.ack if q is not None else None,
            insert='INSERT INTO quarantine_acks(quarantine_id, at, "by", role, comment, '
            "audit_id) VALUES (?, ?, ?, ?, ?, ?)",
            key_id=entry_id,
            actor=actor,
            comment=comment,
            may_site=may_site,
            signing_key=signing_key,
        )

    return _run(db, body)
