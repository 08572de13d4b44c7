"""Signing in and out of the console.

The user pastes an API token (``te_<id>_<secret>``, made by ``traceedge collector token
create``); a valid one is kept in the cookie ``te_token`` (HttpOnly, SameSite=Strict, Secure
when the request came over https), which :mod:`collector.access` reads like a bearer token.
A refused token is audited as ``login.failed`` (its id only, never the secret) and answered
only after a delay that doubles with each failure from the same address (1 s, 2 s, 4 s … at
most 30 s, counted over 15 minutes), so guessing is slow. A sign-in posted from another site's
page is refused (:func:`cross_site`): the anonymous form has no session to bind a form token
to, so the browser's own ``Sec-Fetch-Site`` / ``Origin`` say where the post came from.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections import deque
from urllib.parse import urlsplit

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from collector import access, audit
from collector.console.i18n import Translator, pick_lang
from collector.console.render import NAV, page
from collector.console.routing import console_router
from collector.console.web import LOGIN, PREFIX, Console, safe_next
from hostlib.sqlite import write_tx

TOKEN_COOKIE = "te_token"
FAIL_DELAY_S = 1.0
MAX_FAIL_DELAY_S = 30.0
FAIL_WINDOW_S = 900.0
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
        if not token:  # nothing pasted: not a guess, nothing to audit
            return login_page(request, next_url, 200, tr("login.empty"))
        role = await run_in_threadpool(_role, con, token)
        if role is None:
            await run_in_threadpool(_failed, con, request, token)
            # slows this address, more with each failure; blocks no other client
            await asyncio.sleep(failures.delay(_client(request)))
            # the form again with the reason (200: a page, not a challenge to the client)
            return login_page(request, next_url, 200, tr("login.failed"))
        resp = RedirectResponse(safe_next(next_url or landing(role)), status_code=303)
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


def landing(role: str) -> str:
    """The first page a role may open (an operator has no overview)."""
    for path, _, action in NAV:
        if role in access.POLICY.get(action, frozenset()):
            return PREFIX + path
    return PREFIX + "/"


class Failures:
    """Failed sign-ins per client address in the last :data:`FAIL_WINDOW_S`: the answer to
    the n-th waits ``FAIL_DELAY_S * 2**(n-1)`` seconds, at most :data:`MAX_FAIL_DELAY_S`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: dict[str, deque[float]] = {}

    def delay(self, address: str, now: float | None = None) -> float:
        now = time.monotonic() if now is None else now
        with self._lock:
            if len(self._seen) > 10_000:  # bounded: forget addresses quiet for the window
                for a in [a for a, q in self._seen.items() if now - q[-1] > FAIL_WINDOW_S]:
                    del self._seen[a]
            q = self._seen.setdefault(address, deque(maxlen=64))
            while q and now - q[0] > FAIL_WINDOW_S:
                q.popleft()
            q.append(now)
            n = len(q)
        return float(min(FAIL_DELAY_S * 2 ** min(n - 1, 10), MAX_FAIL_DELAY_S))


failures = Failures()


def _role(con: Console, token: str) -> str | None:
    """The role of a valid token; None for anything else."""
    if not 0 < len(token) <= MAX_TOKEN_CHARS:
        return None
    with con.ro() as db:
        info = access.TokenStore(db).check(token)
    return None if info is None else info.role


def _failed(con: Console, request: Request, token: str) -> None:
    """Audit a refused sign-in: the token's id if it has the shape of one, never its secret."""
    m = TOKEN_ID.match(token)
    target = f"token:{m.group(1)}" if m else "token:?"
    actor = audit.Actor("anonymous", "public", _client(request))
    with con.rw() as db, write_tx(db):
        audit.record(
            db,
            actor,
            "login.failed",
            target,
            {"chars": len(token)},
            "refused",
            signing_key=con.ctx.audit_key,
        )
