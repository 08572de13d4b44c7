"""Market pages: batches and stock, a batch with its stop and lift forms, and a batch's
recall reach (page and CSV).

Stop and lift go through :mod:`collector.orders` (the order and its audit entry in one
transaction, then relayed to the sites at once); the batch page then says whether the relay
went out. A batch outside the principal's markets is "not found", like an unknown one."""

from __future__ import annotations

import re
from urllib.parse import urlencode

from fastapi import APIRouter, HTTPException
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from collector import markets, orders
from collector.access import Principal
from collector.console import queries
from collector.console.i18n import Translator, pick_lang
from collector.console.render import page
from collector.console.routing import console_router
from collector.console.web import READ_MARKET, WRITE_STOP, Console, not_found
from collector.markets import chain as chains
from collector.markets import recall as reach

BATCH_RE = re.compile(r"^[0-9A-Za-z]{1,20}$")
SALES_SHOWN = 200
RECALL_SHOWN = 500
# what the batch page says after a stop or lift (?done=…), by outcome
DONE = {
    "stopped": "batch.stopped_ok",
    "already": "batch.already_stopped",
    "lifted": "batch.lifted_ok",
}


def _batch_url(batch_id: str, **query: str) -> str:
    url = f"/console/markets/batches/{batch_id}"
    return url + ("?" + urlencode(query) if query else "")


def _valid_batch(batch_id: str) -> str:
    if not BATCH_RE.match(batch_id):
        raise not_found()
    return batch_id


def make_router(con: Console) -> APIRouter:
    router = console_router()

    @router.get("/console/markets", response_class=HTMLResponse, summary="Console: batches")
    def batches(
        request: Request, q: str = "", stopped: str = "", p: Principal = READ_MARKET
    ) -> Response:
        q = re.sub(r"[^0-9A-Za-z]", "", q)[:20]
        with con.ro() as db:
            allowed = queries.visible_markets(db, p)
            if len(q) == 20 and markets.batch_known(db, q) and orders.in_scope(db, p, q):
                return RedirectResponse(_batch_url(q), status_code=303)
            rows = queries.latest_batches(db, allowed, q, stopped_only=bool(stopped))
            in_force = [s for s in markets.stops(db) if orders.in_scope(db, p, s.batch_id)]
        tr = Translator(pick_lang(request)[0])
        return page(
            request,
            "markets.html",
            p,
            csrf=con.csrf(request),
            title=tr("markets.title"),
            rows=rows,
            stops=in_force,
            q=q,
            stopped=bool(stopped),
        )

    @router.get(
        "/console/markets/batches/{batch_id}",
        response_class=HTMLResponse,
        summary="Console: a batch, its stock, stop and sales",
    )
    def batch(request: Request, batch_id: str, p: Principal = READ_MARKET) -> HTMLResponse:
        _valid_batch(batch_id)
        with con.ro() as db:
            view = markets.batch_view(db, batch_id, SALES_SHOWN)
            if view is None or not orders.in_scope(db, p, batch_id):
                raise not_found()
        tr = Translator(pick_lang(request)[0])
        done = request.query_params.get("done", "")
        notice = ""
        if done in DONE:
            notice = tr(DONE[done])
            relayed = request.query_params.get("relayed") == "1"
            notice += " " + tr("batch.relayed" if relayed else "batch.not_relayed")
        problem = {
            "reason": tr("batch.reason_missing"),
            "not_stopped": tr("batch.not_stopped"),
            "csrf": tr("login.csrf"),
        }
        return page(
            request,
            "batch.html",
            p,
            csrf=con.csrf(request),
            title=tr("batch.title", batch=batch_id),
            v=view,
            notice=notice,
            problem=problem.get(request.query_params.get("problem", ""), ""),
            may_stop=p.can("write:stop"),
        )

    async def _form(request: Request) -> str | None:
        """The reason given, or None when the form's token is not this session's."""
        form = await request.form()
        try:
            con.check_form(request, dict(form))
        except HTTPException:
            return None
        return str(form.get("reason") or "")[:500]

    @router.post("/console/markets/batches/{batch_id}/stop", summary="Console: stop a batch")
    async def stop(request: Request, batch_id: str, p: Principal = WRITE_STOP) -> Response:
        _valid_batch(batch_id)
        reason = await _form(request)
        if reason is None:
            return RedirectResponse(_batch_url(batch_id, problem="csrf"), status_code=303)
        if not reason.strip():
            return RedirectResponse(_batch_url(batch_id, problem="reason"), status_code=303)
        try:
            out = await run_in_threadpool(orders.issue_stop, con.ctx, p, batch_id, reason)
        except markets.UnknownBatch:
            raise not_found() from None
        done = "stopped" if out.result.issued else "already"
        url = _batch_url(batch_id, done=done, relayed=str(int(out.relayed)))
        return RedirectResponse(url, status_code=303)

    @router.post("/console/markets/batches/{batch_id}/lift", summary="Console: lift a stop")
    async def lift(request: Request, batch_id: str, p: Principal = WRITE_STOP) -> Response:
        _valid_batch(batch_id)
        reason = await _form(request)
        if reason is None:
            return RedirectResponse(_batch_url(batch_id, problem="csrf"), status_code=303)
        if not reason.strip():
            return RedirectResponse(_batch_url(batch_id, problem="reason"), status_code=303)
        try:
            out = await run_in_threadpool(orders.lift, con.ctx, p, batch_id, reason)
        except markets.NotStopped:
            return RedirectResponse(_batch_url(batch_id, problem="not_stopped"), status_code=303)
        url = _batch_url(batch_id, done="lifted", relayed=str(int(out.relayed)))
        return RedirectResponse(url, status_code=303)

    @router.get("/console/recall", response_class=HTMLResponse, summary="Console: recall")
    def recall_pick(request: Request, batch: str = "", p: Principal = READ_MARKET) -> Response:
        batch = re.sub(r"[^0-9A-Za-z]", "", batch)[:20]
        if batch:
            return RedirectResponse(f"/console/recall/{batch}", status_code=303)
        with con.ro() as db:
            stopped = queries.latest_batches(db, queries.visible_markets(db, p), stopped_only=True)
            flags = [f for f in chains.flags(db, None, 200) if orders.in_scope(db, p, f.batch_id)]
        tr = Translator(pick_lang(request)[0])
        return page(
            request,
            "recall_pick.html",
            p,
            csrf=con.csrf(request),
            title=tr("nav.recall"),
            stopped=stopped,
            chain_flags=flags,
        )

    def _reach(batch_id: str, p: Principal, limit: int | None) -> reach.Recall:
        _valid_batch(batch_id)
        with con.ro() as db:
            r = reach.recall(db, batch_id, market_ok=lambda m: p.may_market(db, m), limit=limit)
        if r is None:
            raise not_found()
        return r

    @router.get("/console/recall/{batch_id}.csv", summary="Console: recall reach as CSV")
    def recall_csv(request: Request, batch_id: str, p: Principal = READ_MARKET) -> Response:
        r = _reach(batch_id, p, None)
        lang = pick_lang(request)[0]
        text = reach.recall_csv(r, lang="zh-en" if lang == "zh" else "en")
        return Response(
            text.encode("utf-8"),
            media_type="text/csv; charset=utf-8",
            headers={
                "Content-Disposition": f'attachment; filename="recall-{batch_id}.csv"',
                "Cache-Control": "no-store",
            },
        )

    @router.get(
        "/console/recall/{batch_id}", response_class=HTMLResponse, summary="Console: recall reach"
    )
    def recall_page(request: Request, batch_id: str, p: Principal = READ_MARKET) -> HTMLResponse:
        r = _reach(batch_id, p, RECALL_SHOWN)
        with con.ro() as db:  # the chain flags of the batches it reached
            flags = [
                f
                for b in [batch_id, *(h.batch_id for h in r.downstream)]
                for f in chains.flags(db, b)
            ]
        tr = Translator(pick_lang(request)[0])
        return page(
            request,
            "recall.html",
            p,
            csrf=con.csrf(request),
            title=tr("recall.title", batch=batch_id),
            r=r,
            chain_flags=flags,
        )

    return router
