"""The public listener: the shopper's pages and the GS1 Digital Link resolver, nothing else.

``make_public_app(ctx, rate_per_min, burst)`` is a FastAPI app of its own, served on the
``[public]`` listener apart from the regulator's API. No token, so nothing personal: every
answer is built from :mod:`collector.public_view`. Routes:

* ``/`` a form for the trace code; ``/t?code=…`` goes to its page;
* ``/t/{trace_code}`` the shopper's page of the receipt's trace code (also the older
  ``/trace/{trace_code}/page``); ``/t/{trace_code}.json`` the same as JSON;
* ``/01/{gtin}/10/{lot}`` (optionally ``/22/{cpv}`` before the lot, ``/21/{serial}`` after
  it; query parameters ignored) the batch a product's GS1 Digital Link names; a serial that
  is the trace code of a sale of that batch opens that sale. HTML, or JSON when the client's
  ``Accept`` prefers ``application/json``. A bad GTIN check digit or lot is a 400 page, an
  unknown batch a 404 page;
* ``/assets/shopper.css`` the pages' one stylesheet.

Every response carries a Content-Security-Policy (``default-src 'self'``, no framing),
``X-Content-Type-Options: nosniff`` and ``Referrer-Policy: no-referrer``. Each client
address (IPv6: its /64) gets ``burst`` requests at once, then ``rate_per_min`` a minute
(:mod:`collector.ratelimit`); beyond that 429 with ``Retry-After`` and a page saying so.
There is no ``/docs`` and no ``/openapi.json`` here. Reads open the store read-only per
request, like the regulator API.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from collector import public_view, shopper_page
from collector.api import ApiContext
from collector.ratelimit import RateLimiter, client_key, retry_after
from drivers.codecs import gs1
from wire import tracecode

log = logging.getLogger(__name__)

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
# A stop order must show at once: pages are revalidated, never served stale from a cache.
NO_CACHE = {"Cache-Control": "no-cache", "Vary": "Accept"}
READ = ["GET", "HEAD"]  # link checkers and messaging apps ask HEAD first


def wants_json(request: Request) -> bool:
    """True when the client's ``Accept`` prefers ``application/json`` over ``text/html``."""
    best = {"application/json": 0.0, "text/html": 0.0}
    for item in request.headers.get("accept", "").split(","):
        kind, *params = (p.strip() for p in item.split(";"))
        if kind.lower() not in best:
            continue
        q = 1.0
        for p in params:
            name, _, value = p.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        best[kind.lower()] = max(best[kind.lower()], q)
    return best["application/json"] > best["text/html"]


def _json(value: Any, status: int = 200) -> JSONResponse:
    is_instance = dataclasses.is_dataclass(value) and not isinstance(value, type)
    body = dataclasses.asdict(value) if is_instance else value
    return JSONResponse(body, status_code=status, headers=NO_CACHE)


def _html(text: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(text, status_code=status, headers=NO_CACHE)


def _problem(
    request: Request, lang: str, status: int, title: str, text: str, **values: object
) -> Response:
    """An error as the client wants it: a page in its language, or JSON."""
    if wants_json(request) or request.url.path.endswith(".json"):
        detail = shopper_page.STRINGS[lang][text].format(**values)
        return _json({"detail": detail}, status)
    return _html(shopper_page.message_page(lang, title, text, **values), status)


def make_public_app(ctx: ApiContext, rate_per_min: int = 60, burst: int = 20) -> FastAPI:
    """The public app over ``ctx.store_path`` (see the module's description)."""
    app = FastAPI(
        title="traceedge public trace",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        swagger_ui_oauth2_redirect_url=None,
    )
    app.state.ctx = ctx
    limiter = RateLimiter(rate_per_min, burst)
    app.state.limiter = limiter

    @app.middleware("http")
    async def guard(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        wait = limiter.take(client_key(request.client.host if request.client else None))
        if wait > 0:
            lang = shopper_page.lang_of(request.query_params.get("lang"))
            seconds = retry_after(wait)
            response = _problem(request, lang, 429, "too_many_title", "too_many", seconds=seconds)
            response.headers["Retry-After"] = seconds
        else:
            try:
                response = await call_next(request)
            except Exception:  # a bug: a page saying so, with the headers all the same
                log.exception("public: %s failed", request.url.path)
                response = _json({"detail": "internal error"}, 500)
        response.headers.update(SECURITY_HEADERS)
        return response

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        lang = shopper_page.lang_of(request.query_params.get("lang"))
        if exc.status_code == 404:
            return _problem(request, lang, 404, "not_found_title", "not_found")
        response = _json({"detail": exc.detail}, exc.status_code)
        response.headers.update(exc.headers or {})  # 405: Allow
        return response

    def trace_answer(code: str, lang: str, as_json: bool) -> Response:
        if not tracecode.valid(code):
            if as_json:
                return _json({"detail": shopper_page.STRINGS[lang]["bad_code"]}, 422)
            return _html(shopper_page.message_page(lang, "bad_code_title", "bad_code"), 422)
        with ctx.store.read() as db:
            view = public_view.trace_view(db, code)
        if view is None:
            if as_json:
                detail = shopper_page.STRINGS[lang]["no_sale"].format(code=code)
                return _json({"detail": detail}, 404)
            return _html(
                shopper_page.message_page(lang, "no_sale_title", "no_sale", code=code), 404
            )
        if as_json:
            return _json(view)
        return _html(shopper_page.trace_page(view, lang))

    @app.api_route("/", methods=READ)
    def start(lang: str | None = None) -> Response:
        return _html(shopper_page.lookup_page(shopper_page.lang_of(lang)))

    @app.api_route("/assets/shopper.css", methods=READ)
    def stylesheet() -> Response:
        return Response(
            shopper_page.STYLESHEET,
            media_type="text/css; charset=utf-8",
            headers={"Cache-Control": "public, max-age=3600"},
        )

    @app.api_route("/t", methods=READ)
    def lookup(request: Request, code: str = "", lang: str | None = None) -> Response:
        """The start page's form: on to the page of the code typed in."""
        lg = shopper_page.lang_of(lang)
        code = "".join(code.split())
        if not tracecode.valid(code):
            return _html(shopper_page.message_page(lg, "bad_code_title", "bad_code"), 422)
        suffix = "?lang=en" if lg == "en" else ""
        return RedirectResponse(f"/t/{code}{suffix}", status_code=303)

    @app.api_route("/t/{trace_code}.json", methods=READ)
    def trace_json(request: Request, trace_code: str, lang: str | None = None) -> Response:
        return trace_answer(trace_code, shopper_page.lang_of(lang), True)

    @app.api_route("/t/{trace_code}", methods=READ)
    def trace_html(request: Request, trace_code: str, lang: str | None = None) -> Response:
        return trace_answer(trace_code, shopper_page.lang_of(lang), wants_json(request))

    @app.api_route("/trace/{trace_code}/page", methods=READ)
    def trace_page_old(request: Request, trace_code: str, lang: str | None = None) -> Response:
        """The page's address before the public listener existed (printed receipts keep it)."""
        return trace_answer(trace_code, shopper_page.lang_of(lang), False)

    def resolve(request: Request, gtin: str, lot: str | None, serial: str | None) -> Response:
        lang = shopper_page.lang_of(request.query_params.get("lang"))
        g14 = public_view.gtin14(gtin)
        if g14 is None:
            problem = shopper_page.STRINGS[lang]["bad_gtin"]
            return _problem(request, lang, 400, "bad_link_title", "bad_link", problem=problem)
        if lot is None:
            return _problem(request, lang, 404, "no_lot_title", "no_lot")
        if gs1.value_problem("10", lot):
            problem = shopper_page.STRINGS[lang]["bad_lot"]
            return _problem(request, lang, 400, "bad_link_title", "bad_link", problem=problem)
        with ctx.store.read() as db:
            sale = None
            if serial is not None:
                sale = public_view.sale_of_batch(db, serial, g14, lot)
            answer = None if sale is not None else public_view.batch_by_link(db, g14, lot)
        if sale is not None:
            if wants_json(request):
                return _json(sale)
            return _html(shopper_page.trace_page(sale, lang))
        if answer is None:
            return _problem(request, lang, 404, "no_batch_title", "no_batch", gtin=g14, lot=lot)
        if wants_json(request):
            return _json(answer)
        return _html(shopper_page.batch_page(answer, request.url.path, lang))

    @app.api_route("/01/{gtin}", methods=READ)
    def link_gtin(request: Request, gtin: str) -> Response:
        return resolve(request, gtin, None, None)

    @app.api_route("/01/{gtin}/10/{lot}", methods=READ)
    def link_lot(request: Request, gtin: str, lot: str) -> Response:
        return resolve(request, gtin, lot, None)

    @app.api_route("/01/{gtin}/10/{lot}/21/{serial}", methods=READ)
    def link_serial(request: Request, gtin: str, lot: str, serial: str) -> Response:
        return resolve(request, gtin, lot, serial)

    @app.api_route("/01/{gtin}/22/{cpv}/10/{lot}", methods=READ)
    def link_cpv_lot(request: Request, gtin: str, cpv: str, lot: str) -> Response:
        return resolve(request, gtin, lot, None)

    @app.api_route("/01/{gtin}/22/{cpv}/10/{lot}/21/{serial}", methods=READ)
    def link_cpv_serial(request: Request, gtin: str, cpv: str, lot: str, serial: str) -> Response:
        return resolve(request, gtin, lot, serial)

    return app
