"""Elevator routes of the query API: registry, status, open faults and alarms, maintenance.

``make_router(ctx)`` returns an ``APIRouter`` to mount on the collector's app; every
request opens the store read-only and needs ``read:records``. A token scoped to some sites
sees the elevators whose registry entry names one of them.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi import Path as PathParam

from collector import access, elevators
from collector.access import Principal
from collector.api_models import ErrorOut
from collector.elevators import ElevatorView, HistoryEntry, OverdueElevator
from collector.store import SqliteStore
from hostlib.db import Db

if TYPE_CHECKING:
    from collector.api import ApiContext

REG_PATTERN = r"^[0-9A-Z]{20}$"
MAX_MS = 4_102_444_800_000

RegParam = Annotated[
    str, PathParam(pattern=REG_PATTERN, description="registration code (20 of 0-9 A-Z)")
]
DaysParam = Annotated[int, Query(ge=1, le=3650, description="maintenance interval in days")]
NowParam = Annotated[
    int | None,
    Query(ge=0, le=MAX_MS, description="reference time, ms since the epoch (default: now)"),
]


RECORDS = Depends(access.require("read:records"))


def _in_scope(db: Db, p: Principal, reg: str) -> bool:
    if p.site_filter(db) is None:
        return True
    entry = elevators.registration(db, reg)
    return entry is not None and p.may_site(db, entry.site)


def make_router(ctx: ApiContext) -> APIRouter:
    """Routes over the context's store (its elevator table and index created if missing)."""
    if not ctx.store.postgres:  # PostgreSQL: `traceedge collector migrate` made them
        st = SqliteStore(ctx.store_path)
        try:
            elevators.ensure_schema(st.db)
        finally:
            st.close()

    router = APIRouter(tags=["elevators"])

    def _now(now_ms: int | None) -> int:
        return int(time.time() * 1000) if now_ms is None else now_ms

    # Before /elevators/{reg}, so that "overdue" is never taken for a registration code.
    @router.get(
        "/elevators/overdue",
        response_model=list[OverdueElevator],
        summary="Elevators whose last maintenance visit is older than the interval",
    )
    def overdue(
        days: DaysParam = elevators.DEFAULT_OVERDUE_DAYS,
        now_ms: NowParam = None,
        p: Principal = RECORDS,
    ) -> list[OverdueElevator]:
        with ctx.store.read() as db:
            out = elevators.overdue(db, _now(now_ms), days)
            return [e for e in out if _in_scope(db, p, e.reg)]

    @router.get(
        "/elevators/{reg}",
        response_model=ElevatorView,
        responses={404: {"model": ErrorOut, "description": "unknown elevator"}},
        summary="An elevator: registry, last status, open faults and alarms, maintenance",
    )
    def elevator(
        reg: RegParam,
        days: DaysParam = elevators.DEFAULT_OVERDUE_DAYS,
        now_ms: NowParam = None,
        recent: Annotated[int, Query(ge=1, le=500, description="recent items listed")] = 20,
        p: Principal = RECORDS,
    ) -> ElevatorView:
        with ctx.store.read() as db:
            view = elevators.elevator_view(db, reg, _now(now_ms), days, recent)
            if view is not None and not _in_scope(db, p, reg):
                view = None
        if view is None:
            raise HTTPException(404, f"no elevator {reg}")
        return view

    @router.get(
        "/elevators/{reg}/history",
        response_model=list[HistoryEntry],
        responses={404: {"model": ErrorOut, "description": "unknown elevator"}},
        summary="An elevator's latest records (status, faults, maintenance), newest first",
    )
    def history(
        reg: RegParam,
        limit: Annotated[int, Query(ge=1, le=1000, description="records listed")] = 100,
        p: Principal = RECORDS,
    ) -> list[HistoryEntry]:
        with ctx.store.read() as db:
            if not elevators.known(db, reg) or not _in_scope(db, p, reg):
                raise HTTPException(404, f"no elevator {reg}")
            return elevators.history(db, reg, limit)

    return router
