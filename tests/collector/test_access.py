"""API tokens, scopes and the audit log's chain, on SQLite and PostgreSQL (tests/stores.py)."""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from collector import audit, sites
from collector.storedb import StoreDb
from collector.tokens import POLICY, ROLES, AccessError, TokenStore, check_scope
from hostlib.db import Db, dialect
from tests.stores import StoreUnderTest

ACTOR = audit.Actor("tester", "admin", "127.0.0.1")
DOCS = Path(__file__).resolve().parents[2] / "docs" / "access.md"


@pytest.fixture
def db(any_store: StoreUnderTest) -> Iterator[Db]:
    """An autocommit connection, as the CLI and the API's writes use one."""
    store = StoreDb(any_store.path, any_store.url)
    conn = store.connect()
    yield conn
    conn.close()
    store.close()


def _store_text(db: Db, path: Path) -> bytes:
    """Everything the store holds, as bytes to search."""
    if dialect(db) == "sqlite":
        return path.read_bytes() + path.with_name(path.name + "-wal").read_bytes()
    tables = db.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
    ).fetchall()
    rows = [r[0] for (t,) in tables for r in db.execute(f'SELECT t::text FROM "{t}" AS t')]
    return "\n".join(rows).encode()


# ---------------------------------------------------------------------------------------------
# tokens


def test_a_token_checks_until_revoked_and_only_its_hash_is_kept(
    db: Db, any_store: StoreUnderTest
) -> None:
    tokens = TokenStore(db)
    info, text = tokens.create("inspector", "district:310101", "Zhang Wei", ACTOR)
    assert re.fullmatch(r"te_[0-9a-f]{8}_[A-Za-z0-9_-]{43}", text)
    got = tokens.check(text)
    assert got is not None and (got.role, got.scope, got.name) == (
        "inspector",
        "district:310101",
        "Zhang Wei",
    )
    secret = text.split("_", 2)[2]
    raw = _store_text(db, any_store.path)
    assert info.id.encode() in raw  # what it holds is searched…
    assert secret.encode() not in raw  # the secret is nowhere in the store
    # a wrong secret, a malformed token, an unknown id
    assert tokens.check(text[:-1] + ("A" if text[-1] != "A" else "B")) is None
    assert tokens.check("te_zz") is None and tokens.check("") is None
    assert tokens.check("te_00000000_" + secret) is None
    tokens.revoke(info.id, ACTOR)
    assert tokens.check(text) is None
    assert [t.revoked is not None for t in tokens.list()] == [True]


def test_an_expired_token_is_refused(db: Db) -> None:
    tokens = TokenStore(db)
    info, text = tokens.create("admin", "all", "short", ACTOR, expires_s=0.2)
    assert tokens.check(text) is not None
    time.sleep(0.3)
    assert tokens.check(text) is None
    assert not info.active(time.time())


@pytest.mark.parametrize(
    ("role", "scope"),
    [
        ("operator", "all"),  # an operator needs its market
        ("operator", "district:3101"),
        ("admin", "market:M1"),
        ("inspector", "market:M1"),
        ("inspector", "district:ABC"),
        ("inspector", "site:"),
        ("inspector", "all:x"),
        ("inspector", "galaxy:1"),
        ("root", "all"),
        ("inspector", "site:" + "x" * 33),
    ],
)
def test_a_scope_a_role_cannot_hold_is_refused(role: str, scope: str) -> None:
    with pytest.raises(AccessError):
        check_scope(role, scope)


def test_token_creation_and_revocation_are_audited(db: Db) -> None:
    tokens = TokenStore(db)
    info, _ = tokens.create("operator", "market:M330106001", "market office", ACTOR)
    tokens.revoke(info.id, ACTOR)
    tokens.revoke(info.id, ACTOR)
    got = [(e.action, e.target, e.result) for e in reversed(audit.entries(db))]
    assert got == [
        ("token.create", info.id, "ok"),
        ("token.revoke", info.id, "ok"),
        ("token.revoke", info.id, "already revoked"),
    ]
    assert audit.verify(db).ok


def test_the_role_table_in_the_docs_is_the_one_in_force() -> None:
    text = DOCS.read_text(encoding="utf-8")
    section = text.split("## Actions", 1)[1].split("##", 1)[0]
    table: dict[str, set[str]] = {}
    for row in section.splitlines():
        cells = [c.strip() for c in row.strip().strip("|").split("|")]
        if cells[0] in POLICY:  # Action | inspector | operator | admin | monitor | What
            table[cells[0]] = {r for r, c in zip(ROLES, cells[1:5], strict=True) if c == "yes"}
    assert table == {a: set(r) for a, r in POLICY.items()}


# ---------------------------------------------------------------------------------------------
# scopes


def test_scopes_follow_the_sites_registry(db: Db) -> None:
    from collector.access import Principal

    sites.import_sites(
        db,
        [
            {
                "site": "S1",
                "name": "黄浦一",
                "district": "310101",
                "kind": "market",
                "market": "M1",
            },
            {"site": "S2", "name": "黄浦二", "district": "310101", "market": "M2"},
            {"site": "S3", "name": "徐汇", "district": "310104", "market": "M3"},
            {"site": "S4", "name": "杭州", "district": "330106"},
        ],
    )
    district = Principal("t", "n", "inspector", "district:310101", "a")
    city = Principal("t", "n", "inspector", "district:3101", "a")
    market = Principal("t", "n", "operator", "market:M2", "a")
    everything = Principal("t", "n", "admin", "all", "a")
    assert district.site_filter(db) == {"S1", "S2"}
    assert city.site_filter(db) == {"S1", "S2", "S3"}
    assert market.site_filter(db) == {"S2"}
    assert everything.site_filter(db) is None
    assert district.may_market(db, "M1") and not district.may_market(db, "M3")
    assert market.may_market(db, "M2") and not market.may_market(db, "M1")
    assert not market.may_site(db, "S1") and market.may_site(db, "S2")


def test_a_bad_site_row_imports_nothing(db: Db) -> None:
    good = {"site": "S1", "name": "ok"}
    for bad, field in (
        ({"site": "S 2", "name": "x"}, "site"),
        ({"site": "S2"}, "name"),
        ({"site": "S2", "name": "x", "district": "31-01"}, "district"),
        ({"site": "S2", "name": "x", "phone": "call me"}, "phone"),
        ({"site": "S2", "name": "x", "kind": "castle"}, "kind"),
        ({"site": "S2", "name": "x", "colour": "red"}, "colour"),
    ):
        with pytest.raises(ValueError, match=f"site row 1: .*{field}"):
            sites.import_sites(db, [good, bad])
    assert sites.all_sites(db) == []


# ---------------------------------------------------------------------------------------------
# the audit chain


def _fill(db: Db, n: int, key: Ed25519PrivateKey | None = None) -> None:
    for i in range(n):
        audit.record(db, ACTOR, "batch.stop", f"B{i:03d}", {"reason": f"r{i}"}, signing_key=key)


def _unlock(db: Db) -> None:
    """What someone editing the store by other means would do first."""
    if dialect(db) == "sqlite":
        db.execute("DROP TRIGGER audit_log_no_update")
        db.execute("DROP TRIGGER audit_log_no_delete")
    else:
        db.execute("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only")


def test_an_intact_chain_verifies_with_and_without_the_key(db: Db) -> None:
    key = Ed25519PrivateKey.generate()
    _fill(db, 20, key)
    check = audit.verify(db, key.public_key())
    assert check.ok and check.entries == 20 and check.signed
    assert audit.verify(db).ok
    assert audit.verify(db, Ed25519PrivateKey.generate().public_key()).ok is False


def test_the_log_refuses_update_and_delete(db: Db) -> None:
    _fill(db, 3)
    refused = (sqlite3.IntegrityError, psycopg.errors.RaiseException)
    with pytest.raises(refused, match="append-only"):
        db.execute("UPDATE audit_log SET result = 'x' WHERE id = 2")
    with pytest.raises(refused, match="append-only"):
        db.execute("DELETE FROM audit_log WHERE id = 3")
    if dialect(db) == "postgres":
        with pytest.raises(refused, match="append-only"):
            db.execute("TRUNCATE audit_log")
    assert audit.verify(db).ok


def test_an_edited_entry_is_found(db: Db) -> None:
    _fill(db, 10)
    _unlock(db)
    db.execute('UPDATE audit_log SET detail = \'{"reason":"nothing"}\' WHERE id = 6')
    check = audit.verify(db)
    assert not check.ok and check.bad_id == 6 and "changed" in check.problem


def test_a_deleted_entry_is_found(db: Db) -> None:
    _fill(db, 10)
    _unlock(db)
    db.execute("DELETE FROM audit_log WHERE id = 4")
    check = audit.verify(db)
    assert not check.ok and check.bad_id == 4 and "missing" in check.problem


def test_entries_cut_from_the_end_are_found(db: Db) -> None:
    _fill(db, 10)
    _unlock(db)
    db.execute("DELETE FROM audit_log WHERE id > 7")
    check = audit.verify(db)
    assert not check.ok and "deleted from the end" in check.problem


def test_reordered_entries_are_found(db: Db) -> None:
    _fill(db, 10)
    _unlock(db)
    rows = {r[0]: r[1:] for r in db.execute("SELECT * FROM audit_log WHERE id IN (3, 4)")}
    cols = "at, actor, role, address, action, target, detail, result, prev, hash"
    for id_, other in ((3, 4), (4, 3)):
        db.execute(
            f"UPDATE audit_log SET ({cols}) = (?,?,?,?,?,?,?,?,?,?) WHERE id = ?",
            (*rows[other], id_),
        )
    check = audit.verify(db)
    assert not check.ok and check.bad_id == 3


def test_a_rewritten_chain_is_caught_by_the_signed_head(db: Db) -> None:
    key = Ed25519PrivateKey.generate()
    _fill(db, 5, key)
    _unlock(db)
    # rewrite entry 2 and recompute every hash after it, and the head: the chain is whole
    prev = db.execute("SELECT hash FROM audit_log WHERE id = 1").fetchone()[0]
    for (id_,) in db.execute("SELECT id FROM audit_log WHERE id >= 2 ORDER BY id").fetchall():
        row = db.execute("SELECT * FROM audit_log WHERE id = ?", (id_,)).fetchone()
        detail = '{"reason":"harmless"}' if id_ == 2 else row[7]
        h = audit.entry_hash(id_, row[1], *row[2:7], detail, row[8], prev)
        db.execute(
            "UPDATE audit_log SET detail = ?, prev = ?, hash = ? WHERE id = ?",
            (detail, prev, h, id_),
        )
        prev = h
    db.execute("UPDATE meta SET value = ? WHERE name = 'audit_head'", (prev,))
    assert audit.verify(db).ok  # without the key the rewrite looks whole…
    check = audit.verify(db, key.public_key())
    assert not check.ok and "signature" in check.problem  # …with it, it does not


# ---------------------------------------------------------------------------------------------
# admin writes through the API


def test_revoke_and_import_through_the_api_are_audited(
    tmp_path: Path, any_store: StoreUnderTest
) -> None:
    import json as _json

    from fastapi.testclient import TestClient

    from collector.api import make_app
    from hostlib.registry import Registry

    reg = tmp_path / "devices.json"
    reg.write_text(
        _json.dumps(
            {
                "devices": {
                    "CYL-S1-000001": {
                        "key": "00" * 32,
                        "type": "cylinder-reader",
                        "site": "S1",
                        "provisioned": 1,
                    }
                }
            }
        )
    )
    key = Ed25519PrivateKey.generate()
    api = TestClient(
        make_app(any_store.ctx(registry_path=reg, audit_key=key)),
        headers=any_store.admin_headers(),
    )
    r = api.post("/devices/CYL-S1-000001/revoke", json={"reason": "reader stolen"})
    assert r.status_code == 200 and r.json() == {"dev": "CYL-S1-000001", "from_seq": 1}
    assert Registry(reg).get("CYL-S1-000001").revoked_from == 1  # type: ignore[union-attr]
    assert api.post("/devices/CYL-S1-000001/revoke", json={"reason": "x"}).status_code == 409
    assert api.post("/devices/NOPE/revoke", json={"reason": "x"}).status_code == 404
    bad = api.post("/registry/sites", json=[{"site": "S1", "name": "ok"}, {"site": "S 2"}])
    assert bad.status_code == 422 and "site row 1" in bad.json()["detail"]
    good = api.post("/registry/sites", json=[{"site": "S1", "name": "一号市场"}])
    assert good.status_code == 200 and good.json()["rows"] == 1
    log = api.get("/audit").json()
    got = [(e["action"], e["result"][:7]) for e in reversed(log)]
    assert got == [
        ("token.create", "ok"),
        ("device.revoke", "ok"),
        ("device.revoke", "refused"),
        ("device.revoke", "refused"),
        ("import.sites", "refused"),
        ("import.sites", "ok"),
    ]
    check = api.get("/audit/verify").json()
    assert check["ok"] is True and check["signed"] is True and check["entries"] == 6
