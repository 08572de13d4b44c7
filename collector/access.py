"""Who may see and do what on the collector's API and console.

A person or machine holds an **API token** (``te_<id>_<secret>``), made by ``traceedge
collector token create --role … --scope …``. Only a SHA-256 of the secret is stored (the
secret is 256 random bits, so a slow hash adds nothing); a token can expire and be revoked.
The token names a **role** — which actions it may take (:data:`POLICY`) — and a **scope** —
which sites and markets it sees:

========== ====================================================================
scope      sees
========== ====================================================================
all        every site
district:C the sites whose district code starts with C (sites registry)
site:S     site S only
market:M   the market M and the site hosting it (market operators)
========== ====================================================================

Requests carry the token as ``Authorization: Bearer …`` or, from the console, in the
``te_token`` cookie (HttpOnly, SameSite=Strict); console forms also carry a CSRF token
derived from it. Anything not listed as anonymous answers 401 without a valid token and 403
when the role lacks the action; a single object outside the scope answers 404.

The role table and the token store are :mod:`collector.tokens` (re-exported here).

API: ``ROLES``, ``POLICY``, ``SCOPE_RULES``; ``Principal``; ``TokenStore``;
``authenticate(request)``; ``require(action)`` (a FastAPI dependency); ``csrf_token`` /
``check_csrf``; ``check_scope(role, scope)``.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from collector import audit, sites
from collector.tokens import (
    ACTION_TEXT,
    POLICY,
    ROLE_TEXT,
    ROLES,
    SCOPE_RULES,
    AccessError,
    TokenInfo,
    TokenStore,
    check_scope,
)
from hostlib.db import Db, is_db_error

if TYPE_CHECKING:
    from collector.api import ApiContext

COOKIE = "te_token"

__all__ = [
    "ACTION_TEXT",
    "POLICY",
    "ROLES",
    "ROLE_TEXT",
    "SCOPE_RULES",
    "AccessError",
    "Principal",
    "TokenInfo",
    "TokenStore",
    "check_scope",
    "require",
]


@dataclass(frozen=True)
class Principal:
    """Who is asking: the token's id, holder's name, role and scope, and the client address."""

    token_id: str
    name: str
    role: str
    scope: str
    address: str

    def can(self, action: str) -> bool:
        return self.role in POLICY.get(action, frozenset())

    @property
    def scope_kind(self) -> str:
        return self.scope.partition(":")[0]

    @property
    def scope_value(self) -> str:
        return self.scope.partition(":")[2]

    def site_filter(self, db: Db) -> frozenset[str] | None:
        """None: every site; otherwise the site codes this principal sees."""
        kind, value = self.scope_kind, self.scope_value
        if kind == "all":
            return None
        if kind == "site":
            return frozenset({value})
        if kind == "district":
            return sites.in_district(db, value)
        if kind == "market":
            info = sites.by_market(db, value)
            return frozenset({info.site}) if info else frozenset()
        return frozenset()

    def may_site(self, db: Db, site: str | None) -> bool:
        allowed = self.site_filter(db)
        return allowed is None or (site is not None and site in allowed)

    def may_market(self, db: Db, market: str | None) -> bool:
        kind, value = self.scope_kind, self.scope_value
        if kind == "all":
            return True
        if market is None:
            return False
        if kind == "market":
            return market == value
        return market in sites.markets_in(db, self.site_filter(db) or frozenset())

    def actor(self) -> audit.Actor:
        return audit.Actor(f"{self.name} [{self.token_id}]", self.role, self.address)


def token_text(request: Request) -> str | None:
    """The token a request carries (header first, then the console's cookie)."""
    header = request.headers.get("authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip()
    return request.cookies.get(COOKIE)


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def authenticate(request: Request) -> Principal | None:
    """The principal of a request, or None when it carries no valid token."""
    text = token_text(request)
    if not text:
        return None
    ctx: ApiContext = request.app.state.ctx
    try:
        with ctx.store.read() as db:
            info = TokenStore(db).check(text)
    except Exception as exc:
        if not is_db_error(exc):
            raise
        return None
    if info is None:
        return None
    return Principal(info.id, info.name, info.role, info.scope, client_address(request))


# declares the scheme in the OpenAPI document (Swagger's "Authorize"); the check is ours
_BEARER = HTTPBearer(auto_error=False, description="an API token: te_<id>_<secret>")

AUTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "no valid API token"},
    403: {"description": "the token's role may not do this"},
}


class Requirement:
    """The FastAPI dependency of :func:`require`; ``action`` is what the route needs (read by
    the authorisation tests and the route table in the docs)."""

    def __init__(self, action: str) -> None:
        if action not in POLICY:
            raise ValueError(f"unknown action {action!r}")
        self.action = action

    def __call__(
        self,
        request: Request,
        _: HTTPAuthorizationCredentials | None = Depends(_BEARER),  # noqa: B008 (OpenAPI)
    ) -> Principal:
        p = authenticate(request)
        if p is None:
            raise HTTPException(
                401,
                "an API token is needed: Authorization: Bearer te_… "
                "(traceedge collector token create)",
                headers={"WWW-Authenticate": "Bearer"},
            )
        if not p.can(self.action):
            raise HTTPException(403, f"role {p.role} may not {self.action}")
        return p


@functools.cache
def require(action: str) -> Requirement:
    """The dependency for routes that need ``action``:
    ``p: Principal = Depends(access.require("read:fleet"))``."""
    return Requirement(action)


def csrf_token(request: Request) -> str:
    """The CSRF token for console forms: bound to the session's API token."""
    text = token_text(request) or ""
    key = hashlib.sha256(("csrf:" + text).encode()).digest()
    return hmac.new(key, b"traceedge-console-form", "sha256").hexdigest()[:32]


def check_csrf(request: Request, value: str | None) -> None:
    if not value or not hmac.compare_digest(value, csrf_token(request)):
        raise HTTPException(403, "the form has expired: reload the page and try again")
