"""Rendering console pages: the Jinja2 environment (autoescaped), the formatting filters, and
:func:`page`, which wraps a template in the layout with the language, the signed-in user,
the navigation their role may use and the form token."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from jinja2 import (
    Environment,
    FileSystemLoader,
    StrictUndefined,
    pass_context,
    select_autoescape,
)
from jinja2.runtime import Context
from starlette.requests import Request
from starlette.responses import HTMLResponse

from collector import amounts
from collector.console.i18n import LANG_COOKIE, Translator, pick_lang
from wire import tracecode

HERE = Path(__file__).resolve().parent
STATIC_DIR = HERE / "static"
STATIC_URL = "/static/console"
PREFIX = "/console"

NAV: tuple[tuple[str, str, str], ...] = (
    # (path under /console, catalogue key, action required)
    ("/", "nav.overview", "read:fleet"),
    ("/alarms", "nav.alarms", "read:fleet"),
    ("/quarantine", "nav.quarantine", "read:fleet"),
    ("/elevators", "nav.elevators", "read:records"),
    ("/cylinders", "nav.cylinders", "read:records"),
    ("/markets", "nav.markets", "read:market"),
    ("/recall", "nav.recall", "read:market"),
    ("/warehouse", "nav.warehouse", "read:records"),
    ("/audit", "nav.audit", "admin"),
)

UNITS = {
    "zh": ("{n} 秒", "{n} 分钟", "{n} 小时", "{n} 天"),
    "en": ("{n} s", "{n} min", "{n} h", "{n} d"),
}


def duration(seconds: float, lang: str) -> str:
    """Seconds below 2 minutes, minutes below 2 hours, hours below 2 days, days beyond."""
    s, u = abs(seconds), UNITS[lang]
    if s < 120:
        return u[0].format(n=f"{s:.0f}")
    if s < 7200:
        return u[1].format(n=f"{s / 60:.0f}")
    if s < 172800:
        return u[2].format(n=f"{s / 3600:.0f}")
    return u[3].format(n=f"{s / 86400:.0f}")


def local_time(epoch: float | None) -> str:
    """China Standard Time, as on the receipts and the shopper's page, whatever the
    server's own time zone."""
    if epoch is None:
        return "-"
    return tracecode.local_datetime(int(epoch * 1000))


def local_time_ms(ms: int | None) -> str:
    return "-" if ms is None else local_time(ms / 1000)


def kg(grams: int | None) -> str:
    return "-" if grams is None else amounts.kg(grams) + " kg"


def yuan(fen: int | None) -> str:
    return amounts.yuan(fen, "-")


@pass_context
def _term(ctx: Context, code: str | None) -> str:
    """``codes|map("term")``: a code in the page's language."""
    return str(ctx["term"](code))


def _env() -> Environment:
    env = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(["html"], default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(when=local_time, when_ms=local_time_ms, kg=kg, yuan=yuan, term=_term)
    return env


ENV = _env()


def _with_lang(request: Request, lang: str) -> str:
    """This page (a path, never an absolute URL) in the other language."""
    query = [(k, v) for k, v in request.query_params.multi_items() if k != "lang"]
    return request.url.path + "?" + urlencode([*query, ("lang", lang)])


def page(
    request: Request,
    template: str,
    principal: Any | None,
    status_code: int = 200,
    csrf: str = "",
    **values: Any,
) -> HTMLResponse:
    """``template`` rendered in the layout. ``principal`` (a :class:`collector.access.Principal`
    or None on the login page) decides the navigation shown."""
    lang, remember = pick_lang(request)
    tr = Translator(lang)
    nav = [
        (PREFIX + path.rstrip("/") if path != "/" else PREFIX + "/", key)
        for path, key, action in NAV
        if principal is not None and principal.can(action)
    ]
    other = "en" if lang == "zh" else "zh"
    values.setdefault("notice", "")
    values.setdefault("problem", "")
    html = ENV.get_template(template).render(
        _=tr,
        lang=lang,
        html_lang=tr.html_lang,
        switch_url=_with_lang(request, other),
        path=request.url.path,
        principal=principal,
        nav=nav,
        csrf=csrf,
        static=STATIC_URL,
        prefix=PREFIX,
        now=time.time(),
        ago=lambda seconds: tr("common.ago", d=duration(seconds, lang)),
        dur=lambda seconds: duration(seconds, lang),
        term=tr.term,
        labels=lambda *keys: {k: tr(k) for k in keys},
        **values,
    )
    resp = HTMLResponse(html, status_code=status_code)
    resp.headers["Cache-Control"] = "no-store"
    resp.headers["Content-Security-Policy"] = (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    )
    resp.headers["X-Content-Type-Options"] = "nosniff"
    resp.headers["Referrer-Policy"] = "same-origin"
    if remember:
        resp.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, samesite="strict", path="/")
    return resp
