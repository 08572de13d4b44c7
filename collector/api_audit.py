"""Admin routes: the audit log, its chain check, the API tokens (never their secrets),
registry imports and device revocation — each write an audit entry.

``make_router(ctx)``; every route needs the ``admin`` action.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, HTTPException, Query
from fastapi import Path as PathParam
from pydantic import BaseModel, Field

from collector import access, audit, cylinders, elevators, markets, sites
from collector.access import Principal
from collector.tokens import TokenStore
from hostlib import registry
from hostlib.errors import TraceedgeError
from hostlib.sqlite import write_tx

if TYPE_CHECKING:
    from collector.api import ApiContext

ADMIN = Depends(access.require("admin"))


IMPORTERS: dict[str, Callable[[Any, list[Any]], int]] = {
    "cylinders": lambda db, rows: (cylinders.import_cylinders(db, rows), len(rows))[1],
    "traders": markets.import_traders,
    "elevators": elevators.import_elevators,
    "sites": sites.import_sites,
}


class RevokeRequest(BaseModel):
    reason: str = Field(min_length=1, max_length=200, pattern=r"\S", description="why")
    from_seq: int | None = Field(
        None, ge=1, le=2**53 - 1, description="first seq refused (default: the next one)"
    )


class RevokeOut(BaseModel):
    dev: str
    from_seq: int


class ImportOut(BaseModel):
    kind: str
    rows: int


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
        with ctx.store.read() as db:
            return [dataclasses.asdict(e) for e in audit.entries(db, limit, before, action)]

    @router.get("/audit/verify", summary="Check the audit log's hash chain and signed head")
    def audit_verify() -> dict[str, Any]:
        key = ctx.audit_key.public_key() if ctx.audit_key is not None else None
        with ctx.store.read() as db:
            return dataclasses.asdict(audit.verify(db, key))

    @router.get("/tokens", summary="API tokens: holder, role, scope, expiry, revocation")
    def tokens() -> list[dict[str, Any]]:
        with ctx.store.read() as db:
            return [dataclasses.asdict(t) for t in TokenStore(db).list()]

    @router.post(
        "/registry/{kind}",
        response_model=ImportOut,
        responses={422: {"description": "a bad row (named); nothing imported"}},
        summary="Import a registry (a JSON list, all or nothing), as the import-* commands do",
    )
    def import_registry(
        kind: Literal["cylinders", "traders", "elevators", "sites"],
        rows: Annotated[list[Any], Body(max_length=200_000)],
        p: Principal = ADMIN,
    ) -> ImportOut:
        digest = hashlib.sha256(json.dumps(rows, sort_keys=True, default=str).encode()).hexdigest()
        db = ctx.store.connect()
        try:
            try:
                with write_tx(db):
                    n = IMPORTERS[kind](db, rows)
                    detail = {"rows": n, "sha256": digest}
                    audit.record(
                        db, p.actor(), f"import.{kind}", "api", detail, "ok", ctx.audit_key
                    )
            except ValueError as exc:
                audit.record(
                    db,
                    p.actor(),
                    f"import.{kind}",
                    "api",
                    {"sha256": digest},
                    f"refused: {exc}",
                    ctx.audit_key,
                )
                raise HTTPException(422, f"{exc}; nothing imported") from None
        finally:
            db.close()
        return ImportOut(kind=kind, rows=n)

    @router.post(
        "/devices/{dev}/revoke",
        response_model=RevokeOut,
        responses={
            404: {"description": "no such device in the registry"},
            409: {"description": "the device is revoked already"},
            503: {"description": "this API has no device registry"},
        },
        summary="Refuse a device's records from a sequence number on (a stolen reader)",
    )
    def revoke(
        dev: Annotated[str, PathParam(max_length=64)], req: RevokeRequest, p: Principal = ADMIN
    ) -> RevokeOut:
        if ctx.registry_path is None:
            raise HTTPException(503, "this API has no device registry")
        with ctx.store.read() as db:
            row = db.execute("SELECT max_seq FROM device_state WHERE dev = ?", (dev,)).fetchone()
        start = req.from_seq or (int(row[0]) + 1 if row else 1)
        db = ctx.store.connect()
        try:
            try:
                registry.revoke(ctx.registry_path, dev, start, int(time.time()), req.reason)
                result = "ok"
            except TraceedgeError as exc:
                result = f"refused: {exc}"
            detail = {"reason": req.reason, "from_seq": start}
            audit.record(db, p.actor(), "device.revoke", dev, detail, result, ctx.audit_key)
        finally:
            db.close()
        if result != "ok":
            code = 404 if "no such device" in result else 409
            raise HTTPException(code, result.removeprefix("refused: "))
        return RevokeOut(dev=dev, from_seq=start)

    return router
