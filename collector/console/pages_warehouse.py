"""Warehouse pages (:mod:`collector.whviews`): stock per site and product, movements, and the
5-day list of controlled-chemical sales to report to public security, with its CSV and a
form marking the ticked sales reported (audited). Within the principal's sites."""

from __future__ import annotations

import re
from urllib.parse import urlencode

from fastapi import APIRouter, Query
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from collector import licences, whviews
from collector.access import Principal
from collector.console.i18n import Translator, pick_lang
from collector.console.render import page
from collector.console.routing import console_router
from collector.console.web import ACK_ALARM, READ_RECORDS, Console

PAGE = 100
MOVEMENT_KINDS = ("", *whviews.MOVEMENT_KINDS)


def make_router(con: Console) -> APIRouter:
    router = console_router()

    @router.get("/console/warehouse", response_class=HTMLResponse, summary="Console: stock")
    def stock(
        request: Request,
        site: str = Query("", max_length=32),
        product_class: str = Query("", max_length=32),
        p: Principal = READ_RECORDS,
    ) -> HTMLResponse:
        with con.ro() as db:
            rows = whviews.stock(
                db, p.site_filter(db), site=site or None, product_class=product_class or None
            )
        tr = Translator(pick_lang(request)[0])
        return page(
            request,
            "warehouse.html",
            p,
            csrf=con.csrf(request),
            title=tr("warehouse.title"),
            rows=rows,
            site=site,
            product_class=product_class,
            classes=licences.CLASSES,
        )

    @router.get(
        "/console/warehouse/movements", response_class=HTMLResponse, summary="Console: movements"
    )
    def movements(
        request: Request,
        site: str = Query("", max_length=32),
        kind: str = Query("", max_length=16),
        item: str = Query("", max_length=200),
        offset: int = Query(0, ge=0, le=1_000_000),
        p: Principal = READ_RECORDS,
    ) -> HTMLResponse:
        kind = kind if kind in MOVEMENT_KINDS else ""
        with con.ro() as db:
            rows = whviews.movements(
                db,
                p.site_filter(db),
                site=site or None,
                kinds=[kind] if kind else whviews.MOVEMENT_KINDS,
                item=item.strip() or None,
                limit=PAGE + 1,
                offset=offset,
            )
        tr = Translator(pick_lang(request)[0])
        more = len(rows) > PAGE
        return page(
            request,
            "movements.html",
            p,
            csrf=con.csrf(request),
            title=tr("movements.title"),
            rows=rows[:PAGE],
            site=site,
            kind=kind,
            item=item,
            kinds=whviews.MOVEMENT_KINDS,
            older=(
                "?" + urlencode({"site": site, "kind": kind, "item": item, "offset": offset + PAGE})
                if more
                else ""
            ),
        )

    @router.get(
        "/console/warehouse/report", response_class=HTMLResponse, summary="Console: sales to report"
    )
    def report(
        request: Request,
        site: str = Query("", max_length=32),
        done: str = "",
        problem: str = "",
        p: Principal = READ_RECORDS,
    ) -> HTMLResponse:
        with con.ro() as db:
            rows = whviews.to_report(db, p.site_filter(db), site=site or None)
        tr = Translator(pick_lang(request)[0])
        return page(
            request,
            "report.html",
            p,
            csrf=con.csrf(request),
            title=tr("report.title"),
            rows=rows,
            site=site,
            may_mark=p.can("ack:alarm"),
            notice=tr("report.marked", n=done) if re.fullmatch(r"[0-9]{1,4}", done) else "",
            problem={
                "csrf": tr("login.csrf"),
                "none": tr("report.none_ticked"),
                "note": tr("report.note_missing"),
                "unknown": tr("report.unknown"),
            }.get(problem, ""),
        )

    @router.get("/console/warehouse/report.csv", summary="Console: sales to report as CSV")
    def report_csv(site: str = Query("", max_length=32), p: Principal = READ_RECORDS) -> Response:
        with con.ro() as db:
            rows = whviews.to_report(db, p.site_filter(db), site=site or None)
        return Response(
            whviews.report_csv(rows).encode("utf-8"),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="report-public-security.csv"'},
        )

    @router.post("/console/warehouse/report/marked", summary="Console: mark sales reported")
    async def mark(request: Request, p: Principal = ACK_ALARM) -> Response:
        form = await request.form()
        back = "/console/warehouse/report"
        try:
            con.check_form(request, dict(form))
        except Exception:  # not this session's form: nothing done, say so
            return RedirectResponse(f"{back}?problem=csrf", status_code=303)
        note = str(form.get("note") or "").strip()[:500]
        keys: list[tuple[str, int]] = []
        for v in form.getlist("sale"):
            dev, _, seq = str(v).rpartition("/")
            if dev and re.fullmatch(r"[0-9]{1,18}", seq) and len(keys) < whviews.MAX_MARK:
                keys.append((dev, int(seq)))
        if not keys:
            return RedirectResponse(f"{back}?problem=none", status_code=303)
        if not note:
            return RedirectResponse(f"{back}?problem=note", status_code=303)

        def run() -> whviews.Marked:
            with con.rw() as db:
                return whviews.mark_reported(
                    db, keys, p.actor(), note, p.site_filter(db), signing_key=con.ctx.audit_key
                )

        try:
            res = await run_in_threadpool(run)
        except whviews.UnknownSale:
            return RedirectResponse(f"{back}?problem=unknown", status_code=303)
        return RedirectResponse(f"{back}?done={len(res.marked)}", status_code=303)

    return router
