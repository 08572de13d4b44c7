"""``/docs`` without the internet: Swagger UI from a Python package, served by the collector.

FastAPI's own ``/docs`` loads Swagger UI from a CDN, a blank page on a supervision
office's closed network. Here the page names only assets under ``/docs/static/`` (the
Swagger UI 5 build shipped in the ``fastapi-offline`` wheel), the spec is the app's own
``/openapi.json`` and the online validator badge is off. Make the app with
``docs_url=None, redoc_url=None`` and call :func:`mount_docs` on it.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

DOCS = "/docs"
STATIC = "/docs/static"
ASSETS = ("swagger-ui-bundle.js", "swagger-ui.css", "favicon.png")
"""What the page loads; each must be in the bundle (checked when the app is made)."""


def asset_dir() -> Path:
    """Where the bundled Swagger UI files are (inside the installed fastapi-offline)."""
    return Path(str(files("fastapi_offline") / "static"))


def mount_docs(app: FastAPI) -> None:
    """Serve ``/docs`` (Swagger UI) and ``/docs/static/*`` (its assets) from ``app``."""
    if app.docs_url is not None:
        raise ValueError("make the app with docs_url=None: mount_docs serves /docs itself")
    assets = asset_dir()
    missing = [a for a in ASSETS if not (assets / a).is_file()]
    if missing:  # a broken install: say so at start-up, not as a blank page later
        raise RuntimeError(
            f"Swagger UI assets {missing} not found in {assets}: reinstall fastapi-offline"
        )
    openapi_url = app.openapi_url or "/openapi.json"

    @app.get(DOCS, include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{app.title} - API",
            swagger_js_url=f"{STATIC}/swagger-ui-bundle.js",
            swagger_css_url=f"{STATIC}/swagger-ui.css",
            swagger_favicon_url=f"{STATIC}/favicon.png",
            swagger_ui_parameters={"validatorUrl": None},  # no call to validator.swagger.io
        )

    app.mount(STATIC, StaticFiles(directory=assets), name="docs-static")
