"""Licence pages of the warehouse console: the purchase licences that may be presented at a
site in scope with their use per site against their quantity (overdrawn flagged, a filter
for those only), and one licence's versions, use and sales with their dispatch decisions
(:mod:`collector.licence_use`, :mod:`collector.licence_sales`). Holders and buyers are
personal data: the console is on the regulator's listener only."""

from __future__ import annotations

import time
from dataclasses import dataclass
from urllib.parse import urlencode

from fastapi import APIRouter, Path, Query
from starlette.requests import Request
from starlette.responses import HTMLResponse

from collector import licence_sales, licence_use, licences
from collector.access import Principal
from collector.console.i18n import Translator, pick_lang
from collector.console.render import page
from collector.console.routing import console_router
from collector.console.web import READ_RECORDS, Console, not_found
from wire import tracecode

SALES_PAGE = 50


@dataclass
class Shown:
    """A licence line with what the page works out from it."""

    line: licence_use.LicenceLine
    remaining: int  # quantity minus use at all its sites; below 0 when overdrawn
    expired: bool
    not_yet: bool


def _shown(line: licence_use.LicenceLine, today: str) -> Shown:
    return Shown(
        line,
        line.quantity - line.used_total,
        line.valid_until < today,
        line.valid_from > today,
    )


def kind_labels(tr: Translator) -> dict[str, str]:
    return {k: tr("licences.kind_" + k) for k in licences.KINDS}


def make_router(con: Console) -> APIRouter:
    router = console_router()

    @router.get(
        "/console/warehouse/licences", response_class=HTMLResponse, summary="Console: licences"
    )
    def licences_page(
        request: Request, overdrawn: str = Query("", max_length=8), p: Principal = READ_RECORDS
    ) -> HTMLResponse:
        only = overdrawn in ("1", "on", "true")
        with con.ro() as db:
            lines = licence_use.licence_lines(db, p.site_filter(db), only_overdrawn=only)
        today = tracecode.local_day(int(time.time() * 1000))
        tr = Translator(pick_lang(request)[0])
        return page(
            request,
            "licences.html",
            p,
            title=tr("licences.title"),
            rows=[_shown(x, today) for x in lines],
            only_overdrawn=only,
            kinds=kind_labels(tr),
        )

    @router.get(
        "/console/warehouse/licences/{licence:path}",
        response_class=HTMLResponse,
        summary="Console: one licence",
    )
    def licence_page(
        request: Request,
        licence: str = Path(max_length=40),
        offset: int = Query(0, ge=0, le=1_000_000),
        p: Principal = READ_RECORDS,
    ) -> HTMLResponse:
        with con.ro() as db:
            sites = p.site_filter(db)
            versions = licence_sales.versions(db, licence, sites)
            if not versions:  # never imported, or never valid at a site in scope
                raise not_found()
            current = [
                x for x in licence_use.licence_lines(db, sites) if x.licence == licence
            ]  # none when it is no longer valid in scope: its history and sales still are
            sales = licence_sales.sales(db, licence, sites, limit=SALES_PAGE + 1, offset=offset)
        today = tracecode.local_day(int(time.time() * 1000))
        tr = Translator(pick_lang(request)[0])
        more = len(sales) > SALES_PAGE
        return page(
            request,
            "licence.html",
            p,
            title=tr("licence.title", licence=licence),
            licence=licence,
            versions=versions,
            current=_shown(current[0], today) if current else None,
            sales=sales[:SALES_PAGE],
            kinds=kind_labels(tr),
            fields={f: tr("licence.field_" + f) for f in licence_sales.COMPARED},
            older="?" + urlencode({"offset": offset + SALES_PAGE}) if more else "",
        )

    return router
