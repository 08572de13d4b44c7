"""The audit log (admins only): newest first, filtered by action, paged back by id, with the
result of checking the whole hash chain."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter, Query
from starlette.requests import Request
from starlette.responses import HTMLResponse

from collector import audit
from collector.access import Principal
from collector.console.i18n import Translator, pick_lang
from collector.console.render import page
from collector.console.routing import console_router
from collector.console.web import ADMIN, Console

PAGE = 100
ACTIONS = (
    "batch.",
    "batch.stop",
    "batch.lift",
    "alarm.ack",
    "quarantine.ack",
    "token.",
    "import.",
    "device.revoke",
    "login.failed",
)


def make_router(con: Console) -> APIRouter:
    router = console_router()

    @router.get("/console/audit", response_class=HTMLResponse, summary="Console: audit log")
    def audit_log(
        request: Request,
        action: str = "",
        before: int | None = Query(None, ge=1),
        p: Principal = ADMIN,
    ) -> HTMLResponse:
        action = action if action in ACTIONS else ""
        with con.ro() as db:
            rows = audit.entries(db, limit=PAGE, before_id=before, action=action or None)
            key = con.ctx.audit_key
            check = audit.verify(db, key.public_key() if key is not None else None)
        older = ""
        if len(rows) == PAGE:
            older = "/console/audit?" + urlencode(
                {"before": rows[-1].id, **({"action": action} if action else {})}
            )
        tr = Translator(pick_lang(request)[0])
        return page(
            request,
            "audit.html",
            p,
            csrf=con.csrf(request),
            title=tr("audit.title"),
            rows=rows,
            check=check,
            actions=ACTIONS,
            action=action,
            older=older,
        )

    return router
