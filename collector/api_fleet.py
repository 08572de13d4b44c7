"""Fleet routes of the regulator's API: the fleet at a glance, a device's page, alarms and
quarantine (with acknowledgement), a batch's recall reach (JSON and CSV), cylinders refused
or held, elevators with open faults.

``make_router(ctx) -> APIRouter`` (mount it before the elevator and cylinder routes, whose
``/elevators/{reg}`` would take ``/elevators/faults``). Every route needs a token whose role
holds the action (:mod:`collector.access`) and answers only within its scope: lists are
filtered, a single object outside it is 404.

=====================================  ============  ==========================================
route                                  action        returns
=====================================  ============  ==========================================
GET  /fleet                            read:fleet    :class:`collector.fleet.Fleet`
GET  /fleet/devices/{dev}              read:fleet    :class:`collector.fleet.DeviceDetail`
GET  /alarms                           read:fleet    :class:`collector.alarms.AlarmPage`
POST /alarms/{id}/ack  {comment}       ack:alarm     :class:`collector.alarms.Ack` (audited)
GET  /quarantine                       read:fleet    :class:`collector.alarms.QuarantinePage`
POST /quarantine/{id}/ack  {comment}   ack:alarm     :class:`collector.alarms.Ack` (audited)
GET  /markets/batches/{id}/recall      read:market   :class:`collector.markets.recall.Recall`
GET  /markets/batches/{id}/recall.csv  read:market   CSV for Excel (UTF-8 with BOM)
GET  /cylinders/refused                read:records  held cylinders and fill-gate refusals
GET  /elevators/faults                 read:records  elevators with open faults / trapped
=====================================  ============  ==========================================

:func:`registry_devices` gives the device registry of the context (cached, reloaded when the
file changes) for other routes (``/devices``, ``/sites``) and the console.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi import Path as PathParam
from fastapi.responses import Response
from pydantic import BaseModel, Field, TypeAdapter

from collector import access, alarms, cylinders, elevators, fleet
from collector.access import Principal
from collector.api_markets import BatchIdParam
from collector.elevators import ElevatorFaults
from collector.markets import recall as recalls
from hostlib.db import Db
from hostlib.errors import ConfigError
from hostlib.registry import Device, Registry

if TYPE_CHECKING:
    from collector.api import ApiContext

log = logging.getLogger(__name__)

FLEET = Depends(access.require("read:fleet"))
ACK = Depends(access.require("ack:alarm"))
MARKET = Depends(access.require("read:market"))
RECORDS = Depends(access.require("read:records"))

WEEK_MS = 7 * 86_400_000
MAX_MS = 4_102_444_800_000

_registries: dict[Path, Registry] = {}
_lock = threading.Lock()


@functools.cache
def _adapter(tp: Any) -> TypeAdapter[Any]:
    return TypeAdapter(tp)


def json_response(tp: Any, value: Any) -> Response:
    """``value`` (a dataclass of type ``tp``) as JSON, serialised once by pydantic-core: a
    thousand-row fleet costs a fraction of FastAPI's generic path. The route keeps
    ``response_model=tp`` for its documentation."""
    return Response(_adapter(tp).dump_json(value), media_type="application/json")


def registry_devices(ctx: ApiContext) -> Mapping[str, Device] | None:
    """The registry's devices (reloaded when the file changed); None without a registry or
    when it cannot be read (logged)."""
    path = ctx.registry_path
    if path is None:
        return None
    with _lock:
        reg = _registries.get(path)
        if reg is None:
            try:
                reg = Registry(path)
            except ConfigError as exc:
                log.warning("fleet: device registry not read: %s", exc)
                return None
            _registries[path] = reg
    reg.reload()
    return reg.devices()


class AckRequest(BaseModel):
    comment: str = Field(
        min_length=1,
        max_length=alarms.MAX_COMMENT,
        pattern=r"\S",
        description="what was found or done (not only spaces)",
    )


@dataclass(frozen=True)
class CylinderAlerts:
    held: list[cylinders.HeldCylinder]  # must not leave their station
    refused: list[cylinders.Refusal]  # fill-gate denials, newest first


ERRORS: dict[int | str, dict[str, str]] = {404: {"description": "not known here (or not in scope)"}}
ACK_ERRORS: dict[int | str, dict[str, str]] = {
    **ERRORS,
    409: {"description": "acknowledged already (the detail says by whom)"},
}

Limit = Annotated[int, Query(ge=1, le=alarms.MAX_LIMIT, description="items per page")]
Offset = Annotated[int, Query(ge=0, le=10_000_000, description="items skipped")]
Since = Annotated[
    float | None, Query(ge=0, le=MAX_MS / 1000, description="at or after, epoch seconds")
]
SinceMs = Annotated[
    int | None, Query(ge=0, le=MAX_MS, description="at or after, ms since the epoch")
]
Code = Annotated[str | None, Query(min_length=1, max_length=64)]
IdParam = Annotated[int, PathParam(alias="id", ge=1, le=2**53 - 1)]


def make_router(ctx: ApiContext) -> APIRouter:
    router = APIRouter(tags=["fleet"])

    @router.get(
        "/fleet",
        response_model=fleet.Fleet,
        summary="Every site and device, never-seen ones included, red/amber/green",
    )
    def fleet_view(
        green_min: Annotated[float, Query(gt=0, le=10_080, description="green below (min)")] = 15,
        amber_min: Annotated[float, Query(gt=0, le=10_080, description="amber below (min)")] = 120,
        devices: Annotated[bool, Query(description="false: sites and counts only")] = True,
        p: Principal = FLEET,
    ) -> Response:
        amber_min = max(amber_min, green_min)  # amber below green: no amber band
        reg = registry_devices(ctx)
        with ctx.store.read() as db:
            f = fleet.fleet(
                db, reg, green_s=green_min * 60, amber_s=amber_min * 60, sites=p.site_filter(db)
            )
        if not devices:
            f.devices = []
        return json_response(fleet.Fleet, f)

    @router.get(
        "/fleet/devices/{dev}",
        responses=ERRORS,
        summary="A device: state, gaps, key state, recent records, its agent's last report",
    )
    def device(
        dev: Annotated[str, PathParam(min_length=1, max_length=64)],
        limit: Annotated[int, Query(ge=1, le=1000, description="recent records")] = 50,
        p: Principal = FLEET,
    ) -> fleet.DeviceDetail:
        reg = registry_devices(ctx)
        with ctx.store.read() as db:
            d = fleet.device_detail(db, reg, dev, limit=limit)
            if d is None or not p.may_site(db, d.device.site):
                raise HTTPException(404, f"no device {dev}")
        return d

    @router.get("/alarms", summary="Alarms, newest first, filtered and paged")
    def alarm_list(
        kind: Code = None,
        site: Code = None,
        dev: Code = None,
        since: Since = None,
        acknowledged: bool | None = None,
        limit: Limit = 100,
        offset: Offset = 0,
        p: Principal = FLEET,
    ) -> alarms.AlarmPage:
        reg = registry_devices(ctx)
        with ctx.store.read() as db:
            return alarms.list_alarms(
                db,
                kind=kind,
                site=site,
                dev=dev,
                since=since,
                acknowledged=acknowledged,
                limit=limit,
                offset=offset,
                sites=p.site_filter(db),
                registry=reg,
            )

    def _ack(kind: str, item_id: int, req: AckRequest, p: Principal) -> alarms.Ack:
        db = ctx.store.connect()
        try:
            may = functools.partial(p.may_site, db)
            if kind == "alarm":
                return alarms.acknowledge(
                    db,
                    item_id,
                    p.actor(),
                    req.comment,
                    may_site=may,
                    signing_key=ctx.audit_key,
                    registry=registry_devices(ctx),
                )
            return alarms.acknowledge_quarantine(
                db, item_id, p.actor(), req.comment, may_site=may, signing_key=ctx.audit_key
            )
        except alarms.UnknownAlarm:
            raise HTTPException(404, f"no {kind} {item_id}") from None
        except alarms.AlreadyAcknowledged as exc:
            a = exc.ack
            raise HTTPException(409, f"acknowledged already by {a.by} at {a.at:.0f}") from None
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from None
        finally:
            db.close()

    @router.post(
        "/alarms/{id}/ack",
        responses=ACK_ERRORS,
        summary="Acknowledge an alarm with a comment (audited)",
    )
    def alarm_ack(alarm_id: IdParam, req: AckRequest, p: Principal = ACK) -> alarms.Ack:
        """The alarm stays listed, with its acknowledgement; 409 if it has one already."""
        return _ack("alarm", alarm_id, req, p)

    @router.get("/quarantine", summary="Quarantined messages, newest first, filtered and paged")
    def quarantine_list(
        reason: Code = None,
        site: Code = None,
        since: Since = None,
        acknowledged: bool | None = None,
        limit: Limit = 100,
        offset: Offset = 0,
        p: Principal = FLEET,
    ) -> alarms.QuarantinePage:
        with ctx.store.read() as db:
            return alarms.list_quarantine(
                db,
                reason=reason,
                site=site,
                since=since,
                acknowledged=acknowledged,
                limit=limit,
                offset=offset,
                sites=p.site_filter(db),
            )

    @router.post(
        "/quarantine/{id}/ack",
        responses=ACK_ERRORS,
        summary="Acknowledge a quarantine entry (all the records it holds) with a comment",
    )
    def quarantine_ack(entry_id: IdParam, req: AckRequest, p: Principal = ACK) -> alarms.Ack:
        return _ack("quarantine", entry_id, req, p)

    def _recall(db: Db, batch_id: str, p: Principal, limit: int | None) -> recalls.Recall:
        ok = functools.lru_cache(maxsize=None)(functools.partial(p.may_market, db))
        reach = recalls.recall(db, batch_id, market_ok=ok, limit=limit)
        if reach is None:
            raise HTTPException(404, f"no batch {batch_id}")
        return reach

    @router.get(
        "/markets/batches/{batch_id}/recall",
        response_model=recalls.Recall,
        responses=ERRORS,
        summary="Recall reach of a batch: every sale, buyer where known, terminals, time span",
    )
    def recall(
        batch_id: BatchIdParam,
        limit: Annotated[int, Query(ge=1, le=100_000, description="lines listed")] = 10_000,
        p: Principal = MARKET,
    ) -> Response:
        with ctx.store.read() as db:
            reach = _recall(db, batch_id, p, limit)
        return json_response(recalls.Recall, reach)

    @router.get(
        "/markets/batches/{batch_id}/recall.csv",
        responses={**ERRORS, 200: {"content": {"text/csv": {}}, "description": "CSV"}},
        response_class=Response,
        summary="Recall reach as CSV for Excel (UTF-8 with BOM)",
    )
    def recall_csv(
        batch_id: BatchIdParam,
        lang: Literal["zh-en", "zh", "en"] = "zh-en",
        p: Principal = MARKET,
    ) -> Response:
        with ctx.store.read() as db:
            reach = _recall(db, batch_id, p, None)
        return Response(
            recalls.recall_csv(reach, lang=lang).encode("utf-8"),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="recall-{batch_id}.csv"'},
        )

    @router.get(
        "/cylinders/refused", summary="Cylinders held after filling, and fill-gate refusals"
    )
    def cylinders_refused(
        since_ms: SinceMs = None,
        site: Code = None,
        stage: Literal["pre", "post"] | None = None,
        reason: Code = None,
        limit: Limit = 100,
        offset: Offset = 0,
        p: Principal = RECORDS,
    ) -> CylinderAlerts:
        with ctx.store.read() as db:
            scope = p.site_filter(db)
            return CylinderAlerts(
                held=cylinders.held(db, sites=scope),
                refused=cylinders.refusals(
                    db,
                    since_ms=since_ms,
                    site=site,
                    stage=stage,
                    reason=reason,
                    limit=limit,
                    offset=offset,
                    sites=scope,
                ),
            )

    @router.get(
        "/elevators/faults",
        response_model=list[ElevatorFaults],
        summary="Elevators with open faults, or trapped passengers since a time (default 7 days)",
    )
    def elevator_faults(
        since_ms: SinceMs = None,
        limit: Annotated[int, Query(ge=1, le=1000, description="elevators listed")] = 100,
        p: Principal = RECORDS,
    ) -> list[ElevatorFaults]:
        since = int(time.time() * 1000) - WEEK_MS if since_ms is None else since_ms
        with ctx.store.read() as db:
            return elevators.fleet_faults(db, since_ms=since, sites=p.site_filter(db), limit=limit)

    return router
