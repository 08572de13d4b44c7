"""Market routes of the query API: trace chains, the shopper's trace page, batches, stop orders.

``make_router(ctx)`` returns an ``APIRouter`` to mount on the collector's app. Reads open the
store read-only per request and need ``read:market`` (a market operator sees its own
market's batches and sales only); stop and lift need ``write:stop`` and go through
:mod:`collector.orders` (audited, relayed to the sites at once).
"""

from __future__ import annotations

import html
import logging
from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse

from collector import access, markets, orders
from collector.access import Principal
from collector.api_models import (
    BatchView,
    ErrorOut,
    LiftOut,
    StopOrder,
    StopOut,
    StopRequest,
    TraceChain,
)
from collector.store import SqliteStore
from hostlib.sqlite import open_ro
from wire import tracecode

if TYPE_CHECKING:
    from collector.api import ApiContext

log = logging.getLogger(__name__)

TRACE_CODE_PATTERN = r"^[0-9]{20}$"
BATCH_ID_PATTERN = r"^[0-9A-Za-z]{20}$"

TraceCodeParam = Annotated[
    str,
    PathParam(
        pattern=TRACE_CODE_PATTERN,
        description="trace code on the receipt: 20 digits, GS1 mod-10 check digit last",
    ),
]
BatchIdParam = Annotated[
    str, PathParam(pattern=BATCH_ID_PATTERN, description="batch code (20 characters)")
]


MARKET = Depends(access.require("read:market"))
STOP = Depends(access.require("write:stop"))


def _bad_code(code: str) -> RequestValidationError:
    return RequestValidationError(
        [
            {
                "loc": ("path", "trace_code"),
                "msg": "not a trace code: its check digit does not match",
                "type": "check_digit",
                "input": code,
            }
        ]
    )


# ---------------------------------------------------------------------------------------------
# The shopper's page


def _yuan(fen: int | None) -> str:
    if fen is None:
        return ""
    sign = "-" if fen < 0 else ""
    fen = abs(fen)
    return f"{sign}{fen // 100}.{fen % 100:02d}"


def _kg(grams: int | None) -> str:
    if grams is None:
        return ""
    sign = "-" if grams < 0 else ""
    grams = abs(grams)
    return f"{sign}{grams // 1000}.{grams % 1000:03d}"


_STYLE = (
    "body{font-family:sans-serif;max-width:40em;margin:1em auto;padding:0 1em;color:#222}"
    "h1{font-size:1.3em}h2{font-size:1.1em;margin-top:1.5em}"
    "table{border-collapse:collapse;width:100%}td,th{text-align:left;padding:.3em;"
    "border-bottom:1px solid #ddd;vertical-align:top}th{width:8em;color:#555;font-weight:normal}"
    ".warn{background:#fde8e8;color:#a00;padding:.5em;border-radius:4px}"
)


def _page(title: str, body: str) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="zh-CN"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body>{body}</body></html>\n"
    )


def _rows(pairs: list[tuple[str, str]]) -> str:
    cells = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in pairs if v
    )
    return f"<table>{cells}</table>"


def render_trace_page(chain: markets.TraceChain) -> str:
    """What a shopper sees after scanning the receipt's QR code. Every value is escaped."""
    sale = chain.sale
    seller = sale.seller
    parts = [f"<h1>肉菜流通追溯 · 追溯码 {html.escape(chain.trace_code)}</h1>"]
    warnings = {
        "sold_after_stop": "该批次已被中止交易，本次销售发生在中止交易之后。",
        "batch_overdrawn": "该批次销售量超过进场登记数量，已报警核查。",
        "unknown_batch": "部分商品未找到进场登记。",
        "seller_unregistered": "经营户未在市场实名登记。",
        "seller_card_mismatch": "经营户卡号与登记不符。",
        "trace_code_reused": "该追溯码被多笔交易使用，已报警核查。",
    }
    for flag in chain.flags:
        if flag in warnings:
            parts.append(f'<p class="warn">{html.escape(warnings[flag])}</p>')
    parts.append("<h2>交易信息</h2>")
    parts.append(
        _rows(
            [
                ("市场", sale.market),
                ("经营户", seller.name or seller.trader),
                ("摊位", seller.stall or ""),
                ("交易时间", tracecode.local_datetime(sale.record.ts)),
                ("交易凭证号", sale.tran_id),
                ("合计金额", f"{_yuan(sale.total_fen)} 元"),
            ]
        )
    )
    for ln in sale.lines:
        parts.append(f"<h2>商品：{html.escape(ln.goods_name)}</h2>")
        if ln.mode == "weighed":
            qty = [
                ("重量", f"{_kg(ln.weight_g)} 公斤"),
                ("单价", f"{_yuan(ln.price_fen_per_kg)} 元/公斤"),
            ]
        else:
            qty = [
                ("数量", f"{ln.pieces} 件" if ln.pieces is not None else ""),
                ("单价", f"{_yuan(ln.price_fen_per_piece)} 元/件"),
            ]
        entry = ln.batch.entry
        origin: list[tuple[str, str]] = [("批次号", ln.batch_id)]
        if entry is None:
            origin.append(("进场登记", "未找到"))
        else:
            origin += [
                ("产地", entry.origin),
                ("检疫/产地证号", entry.cert_no),
                ("进场日期", entry.date),
                ("进场经营户", entry.seller.name or entry.seller.trader),
            ]
        if ln.batch.upstream is not None:
            origin.append(("上游追溯码", ln.batch.upstream.trace_id))
        if ln.batch.stop is not None:
            origin.append(("中止交易", ln.batch.stop.reason))
        parts.append(_rows([*qty, ("金额", f"{_yuan(ln.amount_fen)} 元"), *origin]))
    return _page(f"追溯码 {chain.trace_code}", "".join(parts))


def _message_page(status: int, title: str, text: str) -> HTMLResponse:
    body = f"<h1>{html.escape(title)}</h1><p>{html.escape(text)}</p>"
    return HTMLResponse(_page(title, body), status_code=status)


# ---------------------------------------------------------------------------------------------


def make_router(ctx: ApiContext) -> APIRouter:
    """Routes over the context's store (its market tables are created if missing).

    After a stop or a lift the stop list is published to the sites at once (``ctx.relay``);
    ``relayed`` says whether it went out (a failure is logged, never a server error).
    """
    store_path = ctx.store_path
    st = SqliteStore(store_path)
    try:
        markets.ensure_schema(st.db)
    finally:
        st.close()

    router = APIRouter(tags=["markets"])

    @router.get(
        "/trace/{trace_code}",
        response_model=TraceChain,
        responses={404: {"model": ErrorOut, "description": "no sale with this trace code"}},
        summary="Trace chain: sale → batch(es) → origin",
    )
    def trace(trace_code: TraceCodeParam, p: Principal = MARKET) -> TraceChain:
        if not tracecode.valid(trace_code):
            raise _bad_code(trace_code)
        with open_ro(store_path) as db:
            chain = markets.trace_chain(db, trace_code)
            if chain is not None and not p.may_market(db, chain.sale.market):
                chain = None
        if chain is None:
            raise HTTPException(404, f"no sale with trace code {trace_code}")
        return TraceChain.model_validate(chain)

    @router.get(
        "/trace/{trace_code}/page",
        response_class=HTMLResponse,
        responses={
            200: {"content": {"text/html": {}}, "description": "the trace page"},
            404: {"content": {"text/html": {}}, "description": "no sale with this trace code"},
            422: {"content": {"text/html": {}}, "description": "not a trace code"},
        },
        summary="Trace page for shoppers (HTML)",
        dependencies=[MARKET],
    )
    def trace_page(trace_code: str) -> HTMLResponse:
        if not tracecode.valid(trace_code):
            return _message_page(422, "追溯码无效", "请核对小票上的追溯码（20 位数字）。")
        with open_ro(store_path) as db:
            chain = markets.trace_chain(db, trace_code)
        if chain is None:
            return _message_page(404, "未找到追溯信息", f"没有追溯码为 {trace_code} 的交易。")
        return HTMLResponse(render_trace_page(chain))

    @router.get(
        "/markets/batches/{batch_id}",
        response_model=BatchView,
        responses={404: {"model": ErrorOut, "description": "no entry or sale names this batch"}},
        summary="A batch: entry, stock, stop order, sales with running balance",
    )
    def batch(
        batch_id: BatchIdParam,
        limit: Annotated[int, Query(ge=1, le=10000, description="sales listed")] = 1000,
        p: Principal = MARKET,
    ) -> BatchView:
        with open_ro(store_path) as db:
            view = markets.batch_view(db, batch_id, limit)
            if view is not None and not orders.in_scope(db, p, batch_id):
                view = None
        if view is None:
            raise HTTPException(404, f"no batch {batch_id}")
        return BatchView.model_validate(view)

    @router.get(
        "/markets/stops",
        response_model=list[StopOrder],
        summary="Every stop-trading order in force",
    )
    def stop_orders(p: Principal = MARKET) -> list[StopOrder]:
        with open_ro(store_path) as db:
            return [
                StopOrder.model_validate(o)
                for o in markets.stops(db)
                if orders.in_scope(db, p, o.batch_id)
            ]

    @router.post(
        "/markets/batches/{batch_id}/stop",
        response_model=StopOut,
        responses={
            400: {"model": ErrorOut, "description": "the body is not JSON"},
            404: {"model": ErrorOut, "description": "no entry or sale names this batch"},
        },
        summary="Issue a stop-trading order for a batch (中止交易)",
    )
    def stop(batch_id: BatchIdParam, req: StopRequest, p: Principal = STOP) -> StopOut:
        try:
            out = orders.issue_stop(ctx, p, batch_id, req.reason)
        except markets.UnknownBatch:
            raise HTTPException(404, f"no batch {batch_id}") from None
        res = out.result
        return StopOut(
            stop=StopOrder.model_validate(res.stop),
            issued=res.issued,
            flagged=res.flagged,
            relayed=out.relayed,
        )

    @router.post(
        "/markets/batches/{batch_id}/lift",
        response_model=LiftOut,
        responses={
            400: {"model": ErrorOut, "description": "the body is not JSON"},
            404: {"model": ErrorOut, "description": "this batch has no stop order in force"},
        },
        summary="Lift the stop-trading order of a batch (解除中止交易)",
    )
    def lift(batch_id: BatchIdParam, req: StopRequest, p: Principal = STOP) -> LiftOut:
        try:
            out = orders.lift(ctx, p, batch_id, req.reason)
        except markets.NotStopped:
            raise HTTPException(404, f"batch {batch_id} has no stop order in force") from None
        return LiftOut(
            lifted=StopOrder.model_validate(out.lifted), reason=req.reason, relayed=out.relayed
        )

    return router
