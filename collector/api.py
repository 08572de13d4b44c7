"""Query API over HTTP (FastAPI): store summary, device health and gaps, records.

Each request opens the store read-only, so the API never blocks ingest.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI, HTTPException, Query
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse

from collector import api_docs, api_elevators, api_markets, api_metrics, cylinders
from collector.held import ForwardingView, forwarding_view
from collector.settings import CollectorSettings
from collector.store import device_report, site_report, summarize
from hostlib.listen import listen
from hostlib.sqlite import open_ro

NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "Not known here"}}


@dataclass
class MetricsSources:
    """What ``/metrics`` reads (the fields it shares with ApiContext, SPEC11)."""

    store_path: Path
    dead_workers: Callable[[], list[str]] | None = None
    live: Callable[[], dict[str, Any]] | None = None


def make_app(
    store_path: Path,
    on_stop: Callable[[str, str], None] | None = None,
    dead_workers: Callable[[], list[str]] | None = None,
    live: Callable[[], dict[str, Any]] | None = None,
) -> FastAPI:
    """The query API over the store at ``store_path``; ``on_stop`` relays stop orders;
    ``dead_workers`` names the collector's worker threads that died (``/healthz``);
    ``live``: the running service's in-memory counters (``/metrics``)."""
    app = FastAPI(
        title="traceedge collector",
        version="0.1.0",
        description="Trace chains, cylinders, elevators, device health of a traceedge store.",
        docs_url=None,  # served from the bundled Swagger UI: api_docs
        redoc_url=None,
    )
    api_docs.mount_docs(app)
    app.include_router(api_markets.make_router(store_path, on_stop))
    app.include_router(api_elevators.make_router(store_path))
    app.include_router(api_metrics.make_router(MetricsSources(store_path, dead_workers, live)))

    @app.get("/healthz", responses={503: {"description": "A worker thread died"}})
    def healthz() -> JSONResponse:
        """200 while every worker runs; 503 naming the dead ones (the process is exiting)."""
        dead = dead_workers() if dead_workers is not None else []
        if dead:
            return JSONResponse({"status": "dead", "dead_workers": dead}, status_code=503)
        return JSONResponse({"status": "ok"})

    @app.get("/stats")
    def stats() -> dict[str, Any]:
        with open_ro(store_path) as db:
            return summarize(db)

    @app.get(
        "/forwarding",
        response_model=ForwardingView,
        summary="Forwarding to the city platform: counts and the records held back, with why",
    )
    def forwarding(
        limit: int = Query(100, ge=1, le=1000, description="held records listed"),
    ) -> ForwardingView:
        """Records the forwarder could not send (the EPCIS mapper refused them) are held, not
        counted as forwarded; they are retried when a collector starts and on
        ``traceedge collector forward-retry``."""
        with open_ro(store_path) as db:
            return forwarding_view(db, limit)

    @app.get("/devices")
    def devices() -> list[dict[str, Any]]:
        with open_ro(store_path) as db:
            return device_report(db)

    @app.get("/cylinders/{cyl}", responses=NOT_FOUND)
    def cylinder(cyl: str, limit: int = Query(200, ge=1, le=1000)) -> dict[str, Any]:
        """Registry entry, checks and fills of one cylinder (newest first)."""
        with open_ro(store_path) as db:
            out = cylinders.history(db, cyl, limit)
        if out is None:
            raise HTTPException(404, f"cylinder {cyl} is neither registered nor seen")
        return out

    @app.get("/sites")
    def sites() -> list[dict[str, Any]]:
        """What each site's edge agent last reported: backlog, oldest record, alarms."""
        with open_ro(store_path) as db:
            return site_report(db)

    @app.get("/records/{dev}/{seq}", responses=NOT_FOUND)
    def record(dev: str, seq: int = PathParam(ge=1, le=2**53 - 1)) -> dict[str, Any]:
        import json

        with open_ro(store_path) as db:
            row = db.execute(
                "SELECT rec FROM records WHERE dev = ? AND seq = ?", (dev, seq)
            ).fetchone()
        if row is None:
            raise HTTPException(404, f"no record ({dev}, {seq})")
        out: dict[str, Any] = json.loads(row[0])
        return out

    @app.get("/records")
    def records(
        dev: str | None = None,
        kind: str | None = None,
        limit: int = Query(100, ge=1, le=1000),
    ) -> list[dict[str, Any]]:
        import json

        sql, args = "SELECT rec FROM records WHERE 1=1", list[str]()
        if dev:
            sql, args = sql + " AND dev = ?", [*args, dev]
        if kind:
            sql, args = sql + " AND kind = ?", [*args, kind]
        with open_ro(store_path) as db:
            rows = db.execute(sql + " ORDER BY id DESC LIMIT ?", (*args, limit)).fetchall()
        return [json.loads(r[0]) for r in rows]

    return app


class ApiServer:
    """The query API served by uvicorn on a thread. The port is bound when the server is
    made, so a port that cannot be bound stops start-up (StartupError) instead of leaving a
    collector running without its API."""

    def __init__(
        self,
        settings: CollectorSettings,
        host: str,
        port: int,
        dead_workers: Callable[[], list[str]] | None = None,
        live: Callable[[], dict[str, Any]] | None = None,
    ) -> None:
        self.socket = listen(f"{settings.path}: api.port", host, port)
        config = uvicorn.Config(
            make_app(settings.store_path, dead_workers=dead_workers, live=live),
            host=host,
            port=port,
            log_level="warning",
        )
        self.server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.socket]}, name="api", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        self.socket.close()
