"""Admin routes: the audit log, its chain check, and the API tokens (never their secrets).

``make_router(ctx)``; every route needs the ``admin`` action.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, Query

from collector import access, audit
from collector.tokens import TokenStore
from hostlib.sqlite import open_ro

if TYPE_CHECKING:
    from collector.api import ApiContext

ADMIN = Depends(access.require("admin"))


def make_router(ctx: ApiContext) -> APIRouter:
    router = APIRouter(tags=["admin"], dependencies=[ADMIN])

    @router.get("/audit", summary="The audit log, newest first (who, role, when, what, result)")
    def audit_log(
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        before: Annotated[int | None, Query(ge=1, description="entries before this id")] = None,
        action: Annotated[
            str | None, Query(max_length=40, description="an action, or a prefix ending in '.'")
        ] = None,
    ) -> list[dict[str, Any]]:
        with open_ro(ctx.store_path) as db:
            return [dataclasses.asdict(e) for e in audit.entries(db, limit, before, action)]

    @router.get("/audit/verify", summary="Check the audit log's hash chain and signed head")
    def audit_verify() -> dict[str, Any]:
        key = ctx.audit_key.public_key() if ctx.audit_key is not None else None
        with open_ro(ctx.store_path) as db:
            return dataclasses.asdict(audit.verify(db, key))

    @router.get("/tokens", summary="API tokens: holder, role, scope, expiry, revocation")
    def tokens() -> list[dict[str, Any]]:
        with open_ro(ctx.store_path) as db:
            return [dataclasses.asdict(t) for t in TokenStore(db).list()]

    return router
