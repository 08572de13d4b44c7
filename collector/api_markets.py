"""Market routes of the query API: trace chains (every hop back, docs/chain.md), batches,
stop orders, the chain flags (``GET /markets/chain/flags``).

The shopper's trace page is not here: it is on the public listener (:mod:`collector.public`).

``make_router(ctx)`` returns an ``APIRouter`` to mount on the collector's app. Reads open the
store read-only per request and need ``read:market`` (a market operator sees its own
market's batches and sales only); stop and lift need ``write:stop`` and go through
:mod:`collector.orders` (audited, relayed to the sites at once).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError

from collector import access, markets, orders
from collector.access import Principal
from collector.api_archive import archive_call
from collector.api_models import (
    BatchView,
    ChainFlag,
    ErrorOut,
    LiftOut,
    StopOrder,
    StopOut,
    StopRequest,
    TraceChain,
)
from collector.markets import chain as chains
from collector.store import SqliteStore
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


def make_router(ctx: ApiContext) -> APIRouter:
    """Routes over the context's store (its market tables are created if missing).

    After a stop or a lift the stop list is published to the sites at once (``ctx.relay``);
    ``relayed`` says whether it went out (a failure is logged, never a server error).
    """
    if not ctx.store.postgres:  # PostgreSQL: `traceedge collector migrate` made them
        st = SqliteStore(ctx.store_path)
        try:
            markets.ensure_schema(st.db)
        finally:
            st.close()

    router = APIRouter(tags=["markets"])

    @router.get(
        "/trace/{trace_code}",
        response_model=TraceChain,
        responses={
            404: {"model": ErrorOut, "description": "no sale with this trace code"},
            503: {"model": ErrorOut, "description": "an archive file it may be in is damaged"},
        },
        summary="Trace chain: sale → batch(es) → origin",
    )
    def trace(trace_code: TraceCodeParam, p: Principal = MARKET) -> TraceChain:
        if not tracecode.valid(trace_code):
            raise _bad_code(trace_code)
        with ctx.store.read() as db:
            # the archive is asked for what the store no longer has (collector.archive)
            chain = archive_call(lambda: markets.trace_chain(db, trace_code, ctx.archive()))
            if chain is not None and not p.may_market(db, chain.sale.market):
                chain = None
        if chain is None:
            raise HTTPException(404, f"no sale with trace code {trace_code}")
        return TraceChain.model_validate(chain)

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
        with ctx.store.read() as db:
            view = markets.batch_view(db, batch_id, limit)
            if view is not None and not orders.in_scope(db, p, batch_id):
                view = None
        if view is None:
            raise HTTPException(404, f"no batch {batch_id}")
        return BatchView.model_validate(view)

    @router.get(
        "/markets/chain/flags",
        response_model=list[ChainFlag],
        summary="Chain flags in force: entries naming an unknown upstream sale, or more goods "
        "than it sold (卡单同行)",
    )
    def chain_flags(
        batch: Annotated[str | None, Query(max_length=20, description="one batch only")] = None,
        p: Principal = MARKET,
    ) -> list[ChainFlag]:
        with ctx.store.read() as db:
            return [
                ChainFlag.model_validate(f)
                for f in chains.flags(db, batch)
                if orders.in_scope(db, p, f.batch_id)
            ]

    @router.get(
        "/markets/stops",
        response_model=list[StopOrder],
        summary="Every stop-trading order in force",
    )
    def stop_orders(p: Principal = MARKET) -> list[StopOrder]:
        with ctx.store.read() as db:
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
