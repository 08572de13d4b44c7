"""The audit log: who did what, when, from where, with which result — append-only and
tamper-evident.

Every write made through the API, the console or the collector's command line (stop and lift
orders, alarm acknowledgements, token creation and revocation, registry imports, device
revocation, failed console logins) appends one entry in the same transaction as the change.

Each entry carries the hash of the one before it (``prev``) and its own hash over its fields
and ``prev``, so an entry edited, deleted or moved breaks the chain at that point. The head
(number of entries and last hash) is also kept in ``meta`` and, when the collector holds the
centre's command key, signed with it (Ed25519): deleting entries from the end, or rewriting
the whole chain with recomputed hashes, is caught by :func:`verify` against the signed head.
SQLite triggers refuse ``UPDATE`` and ``DELETE`` on the table, so only someone editing the
file by other means can change it — and then :func:`verify` says where.

API: ``Actor``; ``ensure_schema(db)``; ``record(db, actor, action, target, detail, result)``
(call inside the change's write transaction); ``entries(db, limit, before_id, action)``;
``verify(db, public_key)`` → ``AuditCheck``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import sqlite3
import time
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from hostlib.db import Db
from hostlib.sqlite import get_meta, set_meta, write_tx

GENESIS = "0" * 64

SCHEMA = """
CREATE TABLE IF NOT EXISTS audit_log (
    id INTEGER PRIMARY KEY,
    at REAL NOT NULL,
    actor TEXT NOT NULL,
    role TEXT NOT NULL,
    address TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    detail TEXT NOT NULL,
    result TEXT NOT NULL,
    prev TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_log_action ON audit_log(action, id);
CREATE TRIGGER IF NOT EXISTS audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
"""


@dataclass(frozen=True)
class Actor:
    """Who acts: a token's name (``cli:<user>`` on the command line), its role, and the
    address the request came from (``local`` on the command line)."""

    name: str
    role: str
    address: str


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: float
    actor: str
    role: str
    address: str
    action: str
    target: str
    detail: dict[str, Any]
    result: str
    prev: str
    hash: str


@dataclass(frozen=True)
class AuditCheck:
    """What :func:`verify` found: ``ok``, how many entries it checked, and the first problem
    (the entry id where the chain breaks, and why)."""

    ok: bool
    entries: int
    head: str
    bad_id: int | None = None
    problem: str = ""
    signed: bool = False


def ensure_schema(db: sqlite3.Connection) -> None:
    db.executescript(SCHEMA)


def entry_hash(
    id_: int,
    at: float,
    actor: str,
    role: str,
    address: str,
    action: str,
    target: str,
    detail: str,
    result: str,
    prev: str,
) -> str:
    """SHA-256 over the entry's fields in a fixed order (canonical JSON) and the previous hash."""
    body = json.dumps(
        [id_, repr(float(at)), actor, role, address, action, target, detail, result, prev],
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(body.encode("utf-8", "surrogatepass")).hexdigest()


def _head_message(n: int, head: str) -> bytes:
    return f"traceedge-audit-head:{n}:{head}".encode()


def record(
    db: Db,
    actor: Actor,
    action: str,
    target: str,
    detail: dict[str, Any] | None = None,
    result: str = "ok",
    signing_key: Ed25519PrivateKey | None = None,
) -> int:
    """Append one entry (inside the caller's write transaction, or its own); returns its id.

    ``signing_key``: the centre's command key, to sign the new head."""
    detail_text = json.dumps(detail or {}, ensure_ascii=False, sort_keys=True, default=str)
    with write_tx(db):
        row = db.execute("SELECT id, hash FROM audit_log ORDER BY id DESC LIMIT 1").fetchone()
        id_, prev = (int(row[0]) + 1, str(row[1])) if row else (1, GENESIS)
        at = time.time()
        fields = (actor.name, actor.role, actor.address, action, target, detail_text, result)
        h = entry_hash(id_, at, *fields, prev)
        db.execute(
            "INSERT INTO audit_log(id, at, actor, role, address, action, target, detail, result,"
            " prev, hash) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (id_, at, *fields, prev, h),
        )
        head = {"audit_entries": str(id_), "audit_head": h}
        if signing_key is not None:
            sig = signing_key.sign(_head_message(id_, h))
            head["audit_head_sig"] = base64.b64encode(sig).decode()
        else:  # an unsigned head: verify() with the key says so rather than "rewritten"
            db.execute("DELETE FROM meta WHERE name = 'audit_head_sig'")
        set_meta(db, head)
    return id_


def _entry(row: tuple[Any, ...]) -> AuditEntry:
    try:
        detail = json.loads(row[7])
    except ValueError:
        detail = {"unreadable": row[7]}
    return AuditEntry(
        id=int(row[0]),
        at=float(row[1]),
        actor=str(row[2]),
        role=str(row[3]),
        address=str(row[4]),
        action=str(row[5]),
        target=str(row[6]),
        detail=detail if isinstance(detail, dict) else {"value": detail},
        result=str(row[8]),
        prev=str(row[9]),
        hash=str(row[10]),
    )


_COLUMNS = "id, at, actor, role, address, action, target, detail, result, prev, hash"


def entries(
    db: Db,
    limit: int = 100,
    before_id: int | None = None,
    action: str | None = None,
) -> list[AuditEntry]:
    """Newest first; ``before_id`` pages back; ``action`` filters (exact, or a prefix ending
    in ``.``: ``batch.`` gives stops and lifts)."""
    sql, args = f"SELECT {_COLUMNS} FROM audit_log WHERE 1=1", list[Any]()
    if before_id is not None:
        sql, args = sql + " AND id < ?", [*args, before_id]
    if action:
        if action.endswith("."):
            sql, args = sql + " AND action >= ? AND action < ?", [*args, action, action + "\uffff"]
        else:
            sql, args = sql + " AND action = ?", [*args, action]
    rows = db.execute(sql + " ORDER BY id DESC LIMIT ?", (*args, limit)).fetchall()
    return [_entry(r) for r in rows]


def verify(db: Db, public_key: Ed25519PublicKey | None = None) -> AuditCheck:
    """Walk the whole chain: ids contiguous from 1, each ``prev`` the hash before it, each
    hash recomputed; then the head in ``meta`` (count and hash) and, with ``public_key``, its
    signature."""
    prev, n, expect_id = GENESIS, 0, 1
    for row in db.execute(f"SELECT {_COLUMNS} FROM audit_log ORDER BY id"):
        id_ = int(row[0])
        if id_ != expect_id:
            what = "missing" if id_ > expect_id else "out of order"
            return AuditCheck(False, n, prev, expect_id, f"entry {expect_id} is {what}")
        if row[9] != prev:
            return AuditCheck(False, n, prev, id_, f"entry {id_} does not follow entry {id_ - 1}")
        h = entry_hash(id_, float(row[1]), *(str(v) for v in row[2:10]))
        if h != row[10]:
            return AuditCheck(False, n, prev, id_, f"entry {id_} was changed after it was written")
        prev, n, expect_id = h, n + 1, expect_id + 1
    stored_n = int(get_meta(db, "audit_entries") or 0)
    stored_head = get_meta(db, "audit_head") or GENESIS
    if stored_n != n or stored_head != prev:
        return AuditCheck(
            False,
            n,
            prev,
            min(n, stored_n) + 1,
            f"the log ends at entry {n} but its recorded head is entry {stored_n}"
            + (" (entries were deleted from the end)" if stored_n > n else ""),
        )
    signed = False
    if public_key is not None and n:
        sig = get_meta(db, "audit_head_sig")
        if sig is None:
            return AuditCheck(False, n, prev, n, "the head is not signed")
        try:
            public_key.verify(base64.b64decode(sig), _head_message(n, prev))
        except (InvalidSignature, ValueError):
            return AuditCheck(
                False, n, prev, n, "the head's signature does not verify (the chain was rewritten)"
            )
        signed = True
    return AuditCheck(True, n, prev, signed=signed)
