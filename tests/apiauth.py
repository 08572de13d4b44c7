"""API tokens for tests: made in the store the way `traceedge collector token create` makes
them, so tests talk to the API as a real client does."""

from __future__ import annotations

from pathlib import Path

from collector.audit import Actor
from collector.store import SqliteStore
from collector.tokens import TokenStore

TEST_ACTOR = Actor("test-setup", "admin", "local")


def make_token(store_path: Path | str, role: str = "admin", scope: str = "all") -> str:
    """A new token of ``role`` and ``scope`` in the store at ``store_path`` (created if new)."""
    st = SqliteStore(store_path)
    try:
        _, text = TokenStore(st.db).create(role, scope, f"test {role} {scope}", TEST_ACTOR)
    finally:
        st.close()
    return text


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def admin_headers(store_path: Path | str) -> dict[str, str]:
    return bearer(make_token(store_path))
