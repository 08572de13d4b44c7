"""Stop and lift orders as the API and the console issue them: scope checked, written with
their audit entry in one transaction, then relayed to the sites at once.

``issue_stop(ctx, who, batch_id, reason)`` and ``lift(ctx, who, batch_id, reason)`` return
what happened and whether the new stop list went out to the sites' agents (``relayed``);
they raise :class:`markets.UnknownBatch` (also for a batch outside ``who``'s scope, so a
market operator cannot learn what other markets hold), :class:`markets.NotStopped` and
``ValueError`` (no reason). Refusals are audited too.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from collector import audit, markets
from collector.markets import StopOrder, StopResult
from hostlib.db import Db
from hostlib.sqlite import write_tx

if TYPE_CHECKING:
    from collector.access import Principal
    from collector.api import ApiContext

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StopOutcome:
    result: StopResult
    relayed: bool
    audit_id: int


@dataclass(frozen=True)
class LiftOutcome:
    lifted: StopOrder
    relayed: bool
    audit_id: int


def in_scope(db: Db, who: Principal, batch_id: str) -> bool:
    """``who`` sees ``batch_id``: it entered or was sold in a market of its scope."""
    if who.scope_kind == "all":
        return True
    return any(who.may_market(db, m) for m in markets.batch_markets(db, batch_id))


def relay(ctx: ApiContext) -> bool:
    """Publish the pushed-down state now; False (logged) when there is no link or it failed."""
    if ctx.relay is None:
        return False
    try:
        return bool(ctx.relay())
    except Exception:
        log.exception("relaying the stop list to the sites failed")
        return False


def _refuse(
    ctx: ApiContext, who: Principal, action: str, batch_id: str, reason: str, why: str
) -> None:
    db = ctx.store.connect()
    try:
        audit.record(
            db, who.actor(), action, batch_id, {"reason": reason}, why, signing_key=ctx.audit_key
        )
    finally:
        db.close()


def issue_stop(ctx: ApiContext, who: Principal, batch_id: str, reason: str) -> StopOutcome:
    reason = reason.strip()
    if not reason:
        raise ValueError("a stop order needs a reason")
    db = ctx.store.connect()
    try:
        with write_tx(db):
            while markets.project(db):  # entries and sales stored a moment ago count too
                pass
            known = markets.batch_known(db, batch_id) and in_scope(db, who, batch_id)
            if known:
                res = markets.stop_trading(db, batch_id, reason)
                detail = {"reason": reason, "issued": res.issued, "flagged": res.flagged}
                result = "ok" if res.issued else "already stopped"
                aid = audit.record(
                    db, who.actor(), "batch.stop", batch_id, detail, result, ctx.audit_key
                )
    finally:
        db.close()
    if not known:
        _refuse(ctx, who, "batch.stop", batch_id, reason, "refused: unknown batch")
        raise markets.UnknownBatch(batch_id)
    return StopOutcome(res, relay(ctx), aid)


def lift(ctx: ApiContext, who: Principal, batch_id: str, reason: str) -> LiftOutcome:
    reason = reason.strip()
    if not reason:
        raise ValueError("lifting a stop order needs a reason")
    db = ctx.store.connect()
    order: StopOrder | None = None
    try:
        with write_tx(db):
            if in_scope(db, who, batch_id) and markets.stop_order(db, batch_id) is not None:
                order = markets.lift_stop(db, batch_id, reason)
                detail = {"reason": reason, "stop_reason": order.reason}
                aid = audit.record(
                    db, who.actor(), "batch.lift", batch_id, detail, "ok", ctx.audit_key
                )
    finally:
        db.close()
    if order is None:
        _refuse(ctx, who, "batch.lift", batch_id, reason, "refused: no stop order in force")
        raise markets.NotStopped(batch_id)
    return LiftOutcome(order, relay(ctx), aid)
