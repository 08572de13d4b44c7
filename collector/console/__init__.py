"""The regulator's console: server-rendered pages over the collector's store.

``make_router(ctx)`` returns one router with every page under ``/console/`` and the
stylesheet and script under ``/static/console/`` (served by the collector itself: the
console works without the internet). Pages are Jinja2 templates (autoescaped) in
``templates/``, every string in :mod:`collector.console.i18n` (Chinese by default, English
with ``?lang=en``). Each page asks :mod:`collector.access` for the action it needs and shows
only what the principal's scope covers; anonymous visitors are sent to the sign-in page.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import APIRouter, HTTPException
from starlette.responses import FileResponse

from collector.console import (
    auth,
    pages_admin,
    pages_alarms,
    pages_assets,
    pages_fleet,
    pages_licences,
    pages_markets,
    pages_warehouse,
)
from collector.console.render import STATIC_DIR, STATIC_URL
from collector.console.routing import ConsoleRoute
from collector.console.web import Console

if TYPE_CHECKING:
    from collector.api import ApiContext

STATIC_FILES = {"console.css": "text/css", "console.js": "text/javascript"}


def make_router(ctx: ApiContext) -> APIRouter:
    """Every console page and its static files (the red/amber/green thresholds are
    ``ctx.green_s`` and ``ctx.amber_s``)."""
    con = Console(ctx)
    router = APIRouter(tags=["console"], include_in_schema=False, route_class=ConsoleRoute)
    for part in (
        auth,
        pages_fleet,
        pages_alarms,
        pages_assets,
        pages_markets,
        pages_warehouse,
        pages_licences,
        pages_admin,
    ):
        router.include_router(part.make_router(con))

    @router.get(STATIC_URL + "/{name}")
    def static(name: str) -> FileResponse:
        if name not in STATIC_FILES:
            raise HTTPException(404, "no such file")
        return FileResponse(
            STATIC_DIR / name,
            media_type=STATIC_FILES[name],
            headers={"Cache-Control": "public, max-age=3600"},
        )

    return router


__all__ = ["make_router"]
