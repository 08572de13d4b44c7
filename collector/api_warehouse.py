"""Warehouse routes of the query API (:mod:`collector.whviews`, docs/warehouse.md).

GET  /warehouse/stock          read:records  stock per site, class, product, unit, with lots
GET  /warehouse/movements      read:records  goods.in/out/pack/count, newest first, paged
GET  /warehouse/report         read:records  controlled-chemical sales to report (5 days)
GET  /warehouse/report.csv     read:records  the same as CSV for Excel (UTF-8 with BOM)
POST /warehouse/report/marked  ack:alarm     mark sales reported to public security (audited)
GET  /warehouse/licences       read:records  licences with their use per site, overdrawn flagged
GET  /warehouse/licences/{licence}/history
                               read:records  every version of a licence as imported

Buyers, handlers and ID numbers are personal data: served here, on the regulator's
listener, never on the public one. A token scoped to sites sees those sites only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Response
from pydantic import BaseModel, Field

from collector import access, licence_use, licences, whviews
from collector.access import Principal
from collector.api_models import ErrorOut
from collector.store import SqliteStore

if TYPE_CHECKING:
    from collector.api import ApiContext

RECORDS = Depends(access.require("read:records"))
MARK = Depends(access.require("ack:alarm"))
MAX_MS = 4_102_444_800_000

SiteQ = Annotated[str | None, Query(max_length=32, description="one site only")]


class LicenceVersion(BaseModel):
    version: int = Field(description="licence registry version that brought this entry")
    imported: float = Field(description="unix time of the import")
    entry: dict[str, object] = Field(description="the licence as imported")


class SaleKey(BaseModel):
    dev: str = Field(min_length=1, max_length=40)
    seq: int = Field(ge=0, le=2**53)  # exact in JSON numbers; sequence numbers stay far below


class MarkRequest(BaseModel):
    sales: list[SaleKey] = Field(min_length=1, max_length=whviews.MAX_MARK)
    note: str = Field(
        min_length=1,
        max_length=500,
        description="how it was reported, e.g. the public-security receipt number",
    )


def make_router(ctx: ApiContext) -> APIRouter:
    if not ctx.store.postgres:  # PostgreSQL: `traceedge collector migrate` made them
        SqliteStore(ctx.store_path).close()  # its schema has goods_reported

    router = APIRouter(tags=["warehouse"])

    @router.get(
        "/warehouse/stock",
        response_model=list[whviews.StockLine],
        summary="Stock per site and product: quantity received minus sent out, lots left",
    )
    def stock(
        site: SiteQ = None,
        product_class: Annotated[str | None, Query(max_length=32)] = None,
        product: Annotated[str | None, Query(max_length=64, description="code or name")] = None,
        p: Principal = RECORDS,
    ) -> list[whviews.StockLine]:
        with ctx.store.read() as db:
            return whviews.stock(
                db, p.site_filter(db), site=site, product_class=product_class, product=product
            )

    @router.get(
        "/warehouse/movements",
        response_model=list[whviews.Movement],
        summary="Goods in, out, packed and counted, newest first",
    )
    def movements(
        site: SiteQ = None,
        kind: Annotated[
            Literal["goods.in", "goods.out", "goods.pack", "goods.count"] | None, Query()
        ] = None,
        since: Annotated[
            int | None, Query(ge=0, le=MAX_MS, description="ms since the epoch")
        ] = None,
        until: Annotated[int | None, Query(ge=0, le=MAX_MS, description="before, ms")] = None,
        product: Annotated[str | None, Query(max_length=64, description="code or name")] = None,
        item: Annotated[
            str | None, Query(min_length=1, max_length=200, description="one item id")
        ] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
        p: Principal = RECORDS,
    ) -> list[whviews.Movement]:
        with ctx.store.read() as db:
            return whviews.movements(
                db,
                p.site_filter(db),
                site=site,
                kinds=[kind] if kind else whviews.MOVEMENT_KINDS,
                since_ms=since,
                until_ms=until,
                product=product,
                item=item,
                limit=limit,
                offset=offset,
            )

    @router.get(
        "/warehouse/report",
        response_model=list[whviews.Sale],
        summary="Sales of highly toxic and precursor chemicals not yet reported to public "
        "security, oldest first, with days left of the 5",
    )
    def report(site: SiteQ = None, p: Principal = RECORDS) -> list[whviews.Sale]:
        with ctx.store.read() as db:
            return whviews.to_report(db, p.site_filter(db), site=site)

    @router.get(
        "/warehouse/licences",
        response_model=list[licence_use.LicenceLine],
        summary="Purchase licences that may be presented in scope, with what left against "
        "each at each site and in total; overdrawn: the sites together went over its quantity",
    )
    def licences_(
        overdrawn: Annotated[bool, Query(description="overdrawn licences only")] = False,
        p: Principal = RECORDS,
    ) -> list[licence_use.LicenceLine]:
        with ctx.store.read() as db:
            return licence_use.licence_lines(db, p.site_filter(db), only_overdrawn=overdrawn)

    @router.get(
        "/warehouse/licences/{licence}/history",
        response_model=list[LicenceVersion],
        responses={404: {"model": ErrorOut, "description": "no such licence in scope"}},
        summary="Every version of a licence as imported (the copies a seller keeps; a "
        "goods.dispatch record's reg_ver names the version it was decided against)",
    )
    def licence_history(
        licence: Annotated[str, Path(max_length=40)], p: Principal = RECORDS
    ) -> list[LicenceVersion]:
        with ctx.store.read() as db:
            versions = licences.licence_history(db, licence)
            sites = p.site_filter(db)
        if sites is not None:
            versions = [
                v
                for v in versions
                if "*" in v["entry"]["sites"] or sites & set(v["entry"]["sites"])
            ]
        if not versions:
            raise HTTPException(404, f"no licence {licence!r} on file for your sites")
        return [LicenceVersion(**v) for v in versions]

    @router.get(
        "/warehouse/report.csv",
        response_class=Response,
        responses={200: {"content": {"text/csv": {}}, "description": "CSV"}},
        summary="The reporting list as CSV for Excel (UTF-8 with BOM)",
    )
    def report_csv(site: SiteQ = None, p: Principal = RECORDS) -> Response:
        with ctx.store.read() as db:
            sales = whviews.to_report(db, p.site_filter(db), site=site)
        return Response(
            whviews.report_csv(sales).encode("utf-8"),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="report-public-security.csv"'},
        )

    @router.post(
        "/warehouse/report/marked",
        response_model=None,
        responses={404: {"model": ErrorOut, "description": "a sale is unknown or not in scope"}},
        summary="Mark sales reported to public security (who, when, note; audited)",
    )
    def mark(req: MarkRequest, p: Principal = MARK) -> dict[str, list[str]]:
        return mark_sales(ctx, p, [(s.dev, s.seq) for s in req.sales], req.note)

    return router


def mark_sales(
    ctx: ApiContext, p: Principal, keys: list[tuple[str, int]], note: str
) -> dict[str, list[str]]:
    """Used by the API and the console."""
    db = ctx.store.connect()
    try:
        res = whviews.mark_reported(
            db, keys, p.actor(), note, p.site_filter(db), signing_key=ctx.audit_key
        )
    except whviews.UnknownSale as exc:
        raise HTTPException(404, str(exc)) from None
    finally:
        db.close()
    return {"marked": res.marked, "already": res.already}
