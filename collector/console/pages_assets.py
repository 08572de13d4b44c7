"""Elevators and cylinders across the fleet: elevators with open faults and trapped-passenger
events (:func:`collector.elevators.fleet_faults`), cylinders held at their station and the
fill gate's refusals (:mod:`collector.cylinders`), each within the principal's scope."""

from __future__ import annotations

import time

from fastapi import APIRouter, Query
from starlette.requests import Request
from starlette.responses import HTMLResponse

from collector import cylinders, elevators
from collector.access import Principal
from collector.console.i18n import Translator, pick_lang
from collector.console.render import page
from collector.console.routing import console_router
from collector.console.web import READ_RECORDS, Console

DAY_MS = 86_400_000
REFUSALS_SHOWN = 100
ELEVATORS_SHOWN = 50  # the most urgent: trapped passengers first, then the newest fault


def make_router(con: Console) -> APIRouter:
    router = console_router()

    @router.get("/console/elevators", response_class=HTMLResponse, summary="Console: elevators")
    def elevator_faults(
        request: Request, days: int = Query(7, ge=1, le=366), p: Principal = READ_RECORDS
    ) -> HTMLResponse:
        since = int(time.time() * 1000) - days * DAY_MS
        with con.ro() as db:
            rows = elevators.fleet_faults(
                db, since_ms=since, sites=p.site_filter(db), limit=ELEVATORS_SHOWN + 1
            )
        tr = Translator(pick_lang(request)[0])
        return page(
            request,
            "elevators.html",
            p,
            csrf=con.csrf(request),
            title=tr("elevators.title"),
            rows=[r for r in rows[:ELEVATORS_SHOWN] if r.open_faults],
            trapped=[(r, e) for r in rows[:ELEVATORS_SHOWN] for e in r.trapped_events],
            more=len(rows) > ELEVATORS_SHOWN,
            shown=ELEVATORS_SHOWN,
            days=days,
        )

    @router.get("/console/cylinders", response_class=HTMLResponse, summary="Console: cylinders")
    def cylinder_issues(
        request: Request,
        days: int = Query(7, ge=1, le=366),
        stage: str = "",
        p: Principal = READ_RECORDS,
    ) -> HTMLResponse:
        since = int(time.time() * 1000) - days * DAY_MS
        stage = stage if stage in ("pre", "post") else ""
        with con.ro() as db:
            scope = p.site_filter(db)
            held = cylinders.held(db, sites=scope)
            refused = cylinders.refusals(
                db, since_ms=since, stage=stage or None, limit=REFUSALS_SHOWN, sites=scope
            )
        tr = Translator(pick_lang(request)[0])
        return page(
            request,
            "cylinders.html",
            p,
            csrf=con.csrf(request),
            title=tr("cylinders.title"),
            held=held,
            refused=refused,
            days=days,
            stage=stage,
            shown=REFUSALS_SHOWN,
        )

    return router
