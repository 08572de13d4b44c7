"""The console's route class: a refusal (403) or an object outside the principal's scope
(404) raised by a page is answered with an HTML page in the user's language, not JSON."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, HTTPException
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from collector.console.i18n import Translator, pick_lang
from collector.console.render import page

LOGIN = "/console/login"

PAGES = {
    403: ("error.forbidden", "error.forbidden_text"),
    404: ("error.not_found", "error.not_found_text"),
}


def _browser(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "")


def _login_url(request: Request) -> str:
    """The sign-in page, coming back to this page (a GET) after it."""
    if request.method != "GET":
        return LOGIN
    back = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return f"{LOGIN}?next={quote(back, safe='/')}"


class ConsoleRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except HTTPException as exc:
                if exc.status_code == 401 and _browser(request):
                    # anonymous, or the token expired or was revoked: to the sign-in page;
                    # an API client gets the 401 and its WWW-Authenticate: Bearer
                    return RedirectResponse(_login_url(request), status_code=303)
                if exc.status_code not in PAGES:
                    raise
                tr = Translator(pick_lang(request)[0])
                title, text = PAGES[exc.status_code]
                return page(
                    request, "message.html", None, exc.status_code, title=tr(title), text=tr(text)
                )

        return route


def console_router() -> APIRouter:
    """A router whose pages answer refusals with HTML."""
    return APIRouter(route_class=ConsoleRoute)
