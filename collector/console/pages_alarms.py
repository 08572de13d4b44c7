"""Alarms and quarantine: filtered lists (kind or reason, site, open / acknowledged), newest
first, paged, and "acknowledge with a comment" (audited, :mod:`collector.alarms`)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, HTTPException, Query
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from collector import alarms
from collector.access import Principal
from collector.console.i18n import Translator, pick_lang
from collector.console.render import page
from collector.console.routing import console_router
from collector.console.web import ACK_ALARM, READ_FLEET, Console, not_found, safe_next

PAGE = 100
SHOW = {"open": False, "acked": True, "all": None}


def _list_url(what: str, **query: Any) -> str:
    q = {k: v for k, v in query.items() if v not in ("", None)}
    return f"/console/{what}" + ("?" + urlencode(q) if q else "")


def make_router(con: Console) -> APIRouter:
    router = console_router()

    def listing(
        request: Request, p: Principal, what: str, kind: str, site: str, show: str, offset: int
    ) -> HTMLResponse:
        show = show if show in SHOW else "open"
        with con.ro() as db:
            scope = p.site_filter(db)
            common: dict[str, Any] = {
                "site": site or None,
                "acknowledged": SHOW[show],
                "limit": PAGE,
                "offset": offset,
                "sites": scope,
            }
            if what == "alarms":
                kinds = [r[0] for r in db.execute("SELECT DISTINCT kind FROM alarms ORDER BY 1")]
                pg: Any = alarms.list_alarms(
                    db, kind=kind or None, registry=con.devices(), **common
                )
            else:
                kinds = [
                    r[0] for r in db.execute("SELECT DISTINCT reason FROM quarantine ORDER BY 1")
                ]
                pg = alarms.list_quarantine(db, reason=kind or None, **common)
        tr = Translator(pick_lang(request)[0])
        here = dict(kind=kind, site=site, show=show)
        older = newer = ""
        if offset + len(pg.items) < pg.total:
            older = _list_url(what, **here, offset=offset + PAGE)
        if offset > 0:
            newer = _list_url(what, **here, offset=max(0, offset - PAGE) or None)
        return page(
            request,
            "alarms.html",
            p,
            csrf=con.csrf(request),
            title=tr(f"{what}.title"),
            what=what,
            kind_label="alarms.kind" if what == "alarms" else "col.reason",
            none_key=f"{what}.none",
            kinds=kinds,
            kind=kind,
            site=site,
            show=show,
            pg=pg,
            may_ack=p.can("ack:alarm"),
            back=_list_url(what, **here, offset=offset or None),
            older=older,
            newer=newer,
            notice=tr("alarms.acked_ok") if request.query_params.get("done") else "",
            problem=_problem(tr, request.query_params.get("problem", "")),
        )

    @router.get("/console/alarms", response_class=HTMLResponse, summary="Console: alarms")
    def alarm_list(
        request: Request,
        kind: str = "",
        site: str = "",
        show: str = "open",
        offset: int = Query(0, ge=0, le=10**9),
        p: Principal = READ_FLEET,
    ) -> HTMLResponse:
        return listing(request, p, "alarms", kind, site, show, offset)

    @router.get("/console/quarantine", response_class=HTMLResponse, summary="Console: quarantine")
    def quarantine_list(
        request: Request,
        kind: str = "",
        site: str = "",
        show: str = "open",
        offset: int = Query(0, ge=0, le=10**9),
        p: Principal = READ_FLEET,
    ) -> HTMLResponse:
        return listing(request, p, "quarantine", kind, site, show, offset)

    async def ack(request: Request, p: Principal, what: str, item: int) -> Response:
        form = await request.form()
        back = safe_next(str(form.get("back") or f"/console/{what}"))
        sep = "&" if "?" in back else "?"
        try:
            con.check_form(request, dict(form))
        except HTTPException:  # not this session's form: nothing done, say so
            return RedirectResponse(f"{back}{sep}problem=csrf", status_code=303)
        comment = str(form.get("comment") or "")
        try:
            await run_in_threadpool(_acknowledge, con, p, what, item, comment)
        except alarms.UnknownAlarm:
            raise not_found() from None
        except alarms.AlreadyAcknowledged:
            return RedirectResponse(f"{back}{sep}problem=already", status_code=303)
        except ValueError:
            return RedirectResponse(f"{back}{sep}problem=comment", status_code=303)
        return RedirectResponse(f"{back}{sep}done=acked", status_code=303)

    @router.post("/console/alarms/{id}/ack", summary="Console: acknowledge an alarm")
    async def ack_alarm(request: Request, id: int, p: Principal = ACK_ALARM) -> Response:
        return await ack(request, p, "alarms", id)

    @router.post("/console/quarantine/{entry_id}/ack", summary="Console: acknowledge quarantine")
    async def ack_quarantine(request: Request, entry_id: int, p: Principal = ACK_ALARM) -> Response:
        return await ack(request, p, "quarantine", entry_id)

    return router


def _problem(tr: Translator, code: str) -> str:
    problems = {
        "already": tr("alarms.already"),
        "comment": tr("alarms.comment_missing"),
        "csrf": tr("login.csrf"),
    }
    return problems.get(code, "")


def _acknowledge(con: Console, p: Principal, what: str, item: int, comment: str) -> None:
    with con.rw() as db:
        key = con.ctx.audit_key
        if what == "alarms":
            alarms.acknowledge(
                db,
                item,
                p.actor(),
                comment,
                may_site=lambda s: p.may_site(db, s),
                signing_key=key,
                registry=con.devices(),
            )
        else:
            alarms.acknowledge_quarantine(
                db, item, p.actor(), comment, may_site=lambda s: p.may_site(db, s), signing_key=key
            )
