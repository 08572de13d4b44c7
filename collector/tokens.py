"""API tokens and the role table: who holds which token, what each role may do, which
scopes it may be given. Plain SQLite, no web framework (the CLI and the store use it; the
FastAPI side is :mod:`collector.access`).

API: ``ROLES``, ``POLICY``, ``ROLE_TEXT``, ``ACTION_TEXT``, ``SCOPE_RULES``;
``check_scope(role, scope)``; ``TokenInfo``; ``TokenStore(db)`` with ``create``, ``revoke``,
``get``, ``list``, ``check``; ``ensure_schema(db)``; ``AccessError``.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import sqlite3
import time
from dataclasses import dataclass
from typing import Any

from collector import audit
from hostlib.db import Db
from hostlib.errors import TraceedgeError
from hostlib.sqlite import write_tx

ROLES = ("inspector", "operator", "admin", "monitor")

ROLE_TEXT = {
    "inspector": "market-supervision inspector: reads everything in scope, acknowledges alarms",
    "operator": "market operator: reads and stops or lifts the batches of its own market",
    "admin": "administrator: everything, audit log, tokens, registry imports, device revocation",
    "monitor": "monitoring system: /metrics only",
}

POLICY: dict[str, frozenset[str]] = {
    "read:fleet": frozenset({"inspector", "admin"}),
    "read:records": frozenset({"inspector", "admin"}),
    "read:market": frozenset({"inspector", "operator", "admin"}),
    "ack:alarm": frozenset({"inspector", "admin"}),
    "write:stop": frozenset({"operator", "admin"}),
    "admin": frozenset({"admin"}),
    "metrics": frozenset({"monitor", "admin"}),
}

ACTION_TEXT = {
    "read:fleet": "sites, devices, stats, forwarding, alarms, quarantine",
    "read:records": "records, cylinders, elevators, full trace answers",
    "read:market": "batches, stock, stop orders, recall reach",
    "ack:alarm": "acknowledge an alarm or quarantined message with a comment",
    "write:stop": "stop and lift trading of a batch",
    "admin": "audit log, tokens, registry imports, device revocation",
    "metrics": "Prometheus metrics",
}

# which scopes each role may be given
SCOPE_RULES: dict[str, tuple[str, ...]] = {
    "inspector": ("all", "district", "site"),
    "operator": ("market",),
    "admin": ("all",),
    "monitor": ("all",),
}

TOKEN_RE = re.compile(r"^te_([0-9a-f]{8})_([A-Za-z0-9_-]{43})$")
_SCOPE_VALUE = re.compile(r"^[0-9A-Za-z._-]{1,32}$")


class AccessError(TraceedgeError):
    """A token or scope that cannot be made or used."""


SCHEMA = """
CREATE TABLE IF NOT EXISTS api_tokens (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    scope TEXT NOT NULL,
    hash TEXT NOT NULL,
    created REAL NOT NULL,
    expires REAL,
    revoked REAL
);
"""


def ensure_schema(db: sqlite3.Connection) -> None:
    db.executescript(SCHEMA)


def check_scope(role: str, scope: str) -> str:
    """``scope`` if ``role`` may hold it; ``AccessError`` saying what is allowed otherwise."""
    if role not in ROLES:
        raise AccessError(f"unknown role {role!r}: one of {', '.join(ROLES)}")
    kind, _, value = scope.partition(":")
    allowed = SCOPE_RULES[role]
    if kind not in allowed:
        shown = ", ".join(a if a == "all" else f"{a}:CODE" for a in allowed)
        raise AccessError(f"role {role} takes scope {shown} (got {scope!r})")
    if kind == "all":
        if value:
            raise AccessError("scope 'all' takes no code")
    elif not _SCOPE_VALUE.match(value):
        raise AccessError(
            f"scope {kind}: needs a code of 1-32 of A-Z a-z 0-9 . _ - (got {value!r})"
        )
    elif kind == "district" and not value.isdigit():
        raise AccessError(f"a district is a division code of digits (got {value!r})")
    return scope


@dataclass(frozen=True)
class TokenInfo:
    id: str
    name: str
    role: str
    scope: str
    created: float
    expires: float | None
    revoked: float | None

    def active(self, now: float | None = None) -> bool:
        now = time.time() if now is None else now
        return self.revoked is None and (self.expires is None or now < self.expires)


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class TokenStore:
    """API tokens in the collector's store (table ``api_tokens``)."""

    def __init__(self, db: Db) -> None:
        self.db = db

    def create(
        self,
        role: str,
        scope: str,
        name: str,
        actor: audit.Actor,
        expires_s: float | None = None,
        signing_key: Any = None,
    ) -> tuple[TokenInfo, str]:
        """A new token; returns its info and the token text, shown once and never stored."""
        check_scope(role, scope)
        if not name or len(name) > 100 or not name.isprintable():
            raise AccessError("a token's name (who holds it) is 1-100 printable characters")
        if expires_s is not None and expires_s <= 0:
            raise AccessError("expiry must be in the future")
        secret = secrets.token_urlsafe(32)
        now = time.time()
        with write_tx(self.db):
            while True:
                tid = secrets.token_hex(4)
                if not self.db.execute("SELECT 1 FROM api_tokens WHERE id = ?", (tid,)).fetchone():
                    break
            expires = now + expires_s if expires_s is not None else None
            self.db.execute(
                "INSERT INTO api_tokens(id, name, role, scope, hash, created, expires) "
                "VALUES (?,?,?,?,?,?,?)",
                (tid, name, role, scope, _digest(secret), now, expires),
            )
            audit.record(
                self.db,
                actor,
                "token.create",
                tid,
                {"name": name, "role": role, "scope": scope, "expires": expires},
                signing_key=signing_key,
            )
        return TokenInfo(tid, name, role, scope, now, expires, None), f"te_{tid}_{secret}"

    def revoke(self, token_id: str, actor: audit.Actor, signing_key: Any = None) -> TokenInfo:
        with write_tx(self.db):
            info = self.get(token_id)
            if info is None:
                raise AccessError(f"no token {token_id!r}")
            if info.revoked is None:
                self.db.execute(
                    "UPDATE api_tokens SET revoked = ? WHERE id = ?", (time.time(), token_id)
                )
            audit.record(
                self.db,
                actor,
                "token.revoke",
                token_id,
                {"name": info.name, "role": info.role, "scope": info.scope},
                "ok" if info.revoked is None else "already revoked",
                signing_key=signing_key,
            )
        out = self.get(token_id)
        assert out is not None
        return out

    def get(self, token_id: str) -> TokenInfo | None:
        row = self.db.execute(
            "SELECT id, name, role, scope, created, expires, revoked FROM api_tokens WHERE id = ?",
            (token_id,),
        ).fetchone()
        return TokenInfo(*row) if row else None

    def list(self) -> list[TokenInfo]:
        rows = self.db.execute(
            "SELECT id, name, role, scope, created, expires, revoked FROM api_tokens "
            "ORDER BY created"
        )
        return [TokenInfo(*r) for r in rows]

    def check(self, token: str) -> TokenInfo | None:
        """The active token ``token`` stands for, or None (malformed, unknown, wrong secret,
        expired, revoked)."""
        m = TOKEN_RE.match(token)
        if m is None:
            return None
        try:
            row = self.db.execute(
                "SELECT id, name, role, scope, created, expires, revoked, hash FROM api_tokens "
                "WHERE id = ?",
                (m.group(1),),
            ).fetchone()
        except sqlite3.OperationalError:  # a store without tokens yet
            return None
        if row is None or not hmac.compare_digest(str(row[7]), _digest(m.group(2))):
            return None
        info = TokenInfo(*row[:7])
        return info if info.active() and info.role in ROLES else None
