"""Signing in and out of the console.

The user pastes an API token (``te_<id>_<secret>``, made by ``traceedge collector token
create``); a valid one is kept in the cookie ``te_token`` (HttpOnly, SameSite=Strict, Secure
when the request came over https), which :mod:`collector.access` reads like a bearer token.
A refused token is audited as ``login.failed`` (its id only, never the secret) and answered
only after :data:`FAIL_DELAY_S`, so guessing is slow. A sign-in posted from another site's
page is refused (:func:`cross_site`): the anonymous form has no session to bind a form token
to, so the browser's own ``Sec-Fetch-Site`` / ``Origin`` say where the post came from.
"""

from __future__ import annotations

import asyncio
import re
from urllib.parse import urlsplit

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from collector import access, audit
from collector.console.i18n import Translator, pick_lang
from collector.console.render import page
from collector.console.routing import console_router
from collector.console.web import LOGIN, PREFIX, Console, safe_next
from hostlib.sqlite import write_tx

TOKEN_COOKIE = "te_token"
FAIL_DELAY_S = 1.0
MAX_TOKEN_CHARS = 200
TOKEN_ID = re.compile(r"^te_([0-9A-Za-z]{1,40})_")


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def make_router(con: Console) -> APIRouter:
    router = console_router()

    def login_page(
        request: Request, next_url: str, status: int = 200, problem: str = ""
    ) -> HTMLResponse:
        tr = Translator(pick_lang(request)[0])
        return page(
            request,
            "login.html",
            None,
            status_code=status,
            csrf=con.csrf(request),
            title=tr("login.title"),
            next_url=safe_next(next_url),
            problem=problem,
            notice=tr("login.logged_out") if request.query_params.get("out") else "",
        )

    @router.get(LOGIN, response_class=HTMLResponse, summary="Console: sign-in form")
    def login_form(request: Request, next: str = "") -> HTMLResponse:
        return login_page(request, next)

    @router.post(LOGIN, response_class=HTMLResponse, summary="Console: sign in with a token")
    async def login(request: Request) -> Response:
        form = await request.form()
        tr = Translator(pick_lang(request)[0])
        next_url = str(form.get("next") or "")
        if cross_site(request):
            return login_page(request, next_url, 400, tr("login.cross_site"))
        token = str(form.get("token") or "").strip()
        if not await run_in_threadpool(_valid, con, token):
            await run_in_threadpool(_failed, con, request, token)
            await asyncio.sleep(FAIL_DELAY_S)  # slows this client, blocks no other
            # the form again with the reason (200: a page, not a challenge to the client)
            return login_page(request, next_url, 200, tr("login.failed"))
        resp = RedirectResponse(safe_next(next_url), status_code=303)
        resp.set_cookie(
            TOKEN_COOKIE,
            token,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            path="/",
        )
        return resp

    @router.post(PREFIX + "/logout", summary="Console: sign out")
    def logout(request: Request) -> Response:
        # never refused (no form token needed): the cookie goes either way
        resp = RedirectResponse(LOGIN + "?out=1", status_code=303)
        resp.delete_cookie(TOKEN_COOKIE, path="/", httponly=True, samesite="strict")
        return resp

    return router


def cross_site(request: Request) -> bool:
    """A sign-in posted from another site's page (login CSRF): the browser says so in
    ``Sec-Fetch-Site`` or an ``Origin`` that is not this host. A client that sends neither
    (curl, a test) is not a browser on another site."""
    if request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
        return True
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin == "null"
    return urlsplit(origin).netloc != request.headers.get("host", "")


def _valid(con: Console, token: str) -> bool:
    if not 0 < len(token) <= MAX_TOKEN_CHARS:
        return False
    with con.ro() as db:
        return access.TokenStore(db).check(token) is not None


def _failed(con: Console, request: Request, token: str) -> None:
    """Audit a refused sign-in: the token's id if it has the shape of one, never its secret."""
    m = TOKEN_ID.match(token)
    target = f"token:{m.group(1)}" if m else "token:?"
    actor = audit.Actor("anonymous", "public", _client(request))
    with con.rw() as db, write_tx(db):
        audit.record(db, actor, "login.failed", target, {"chars": len(token)}, "refused")
