"""The regulator's API over HTTP (FastAPI): store summary, device health and gaps, records,
markets, elevators — every route behind a token and a role (:mod:`collector.access`).

Each request opens the store read-only, so the API never blocks ingest. Every router factory
takes the same :class:`ApiContext`.
"""

from __future__ import annotations

import json
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import uvicorn
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import Depends, FastAPI, HTTPException, Query
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse

from collector import (
    access,
    api_audit,
    api_docs,
    api_elevators,
    api_fleet,
    api_markets,
    api_metrics,
    api_warehouse,
    console,
    cylinders,
)
from collector.access import Principal
from collector.api_archive import ARCHIVE_DAMAGED, archive_call
from collector.held import ForwardingView, forwarding_view
from collector.settings import ApiTls
from collector.store import device_report, site_report, summarize
from collector.storedb import StoreDb
from hostlib.errors import StartupError
from hostlib.listen import listen

if TYPE_CHECKING:
    from collector.archive.lookup import ArchiveReader

NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "Not known here"}}


@dataclass
class ApiContext:
    """What every router of the API needs: the store, the device registry, a way to publish
    the pushed-down state now (``relay``: True when it went out), the collector's worker
    health and live counters, and the centre's key that signs the audit log's head."""

    store_path: Path
    registry_path: Path | None = None
    store_url: str | None = None  # [store] url: the PostgreSQL store instead of the file
    relay: Callable[[], bool] | None = None
    dead_workers: Callable[[], list[str]] | None = None
    live: Callable[[], dict[str, Any]] | None = None
    audit_key: Ed25519PrivateKey | None = None
    green_s: float = 900.0  # fleet state: green when heard from within green_s,
    amber_s: float = 7200.0  # amber within amber_s, red after ([api] green_s / amber_s)
    archive_dir: Path | None = None  # [retention] dir; None: <store's folder>/archive
    _archive: ArchiveReader | None = field(default=None, init=False, repr=False)

    def archive(self) -> ArchiveReader:
        """The reader of the archive (one per context: it caches which files it checked)."""
        if self._archive is None:
            from collector.archive.lookup import ArchiveReader

            root = self.archive_dir or self.store_path.parent / "archive"
            self._archive = ArchiveReader(root)
        return self._archive

    def __post_init__(self) -> None:
        self.store = StoreDb(self.store_path, self.store_url)


FLEET = Depends(access.require("read:fleet"))
RECORDS = Depends(access.require("read:records"))


def make_app(ctx: ApiContext | Path) -> FastAPI:
    """The regulator's API over ``ctx`` (a bare store path: no relay, no registry)."""
    if not isinstance(ctx, ApiContext):
        ctx = ApiContext(Path(ctx))
    dead_workers = ctx.dead_workers
    app = FastAPI(
        title="traceedge collector",
        version="0.1.0",
        description="Trace chains, cylinders, elevators, device health of a traceedge store. "
        "Every route but /healthz needs an API token (`Authorization: Bearer te_…`, made by "
        "`traceedge collector token create`); docs/access.md has the role table.",
        docs_url=None,  # served from the bundled Swagger UI: api_docs
        redoc_url=None,
    )
    app.state.ctx = ctx
    # first: its /elevators/faults and /cylinders/refused before /elevators/{reg}, /cylinders/{cyl}
    app.include_router(api_fleet.make_router(ctx))
    app.include_router(api_markets.make_router(ctx))
    app.include_router(api_elevators.make_router(ctx))
    app.include_router(api_warehouse.make_router(ctx))
    app.include_router(api_audit.make_router(ctx))
    app.include_router(console.make_router(ctx))
    app.include_router(api_metrics.make_router(ctx))
    api_docs.mount_docs(app)

    @app.get("/healthz", responses={503: {"description": "A worker thread died"}})
    def healthz() -> JSONResponse:
        """200 while every worker runs; 503 naming the dead ones (the process is exiting)."""
        dead = dead_workers() if dead_workers is not None else []
        if dead:
            return JSONResponse({"status": "dead", "dead_workers": dead}, status_code=503)
        return JSONResponse({"status": "ok"})

    @app.get("/stats", dependencies=[FLEET])
    def stats() -> dict[str, Any]:
        """The store's counters; ``archive_read_errors``: lookups by this process that met a
        damaged or missing archive file (logged, and named in their 503 answers)."""
        with ctx.store.read() as db:
            out = summarize(db)
        out["archive_read_errors"] = ctx._archive.errors if ctx._archive is not None else 0
        return out

    @app.get(
        "/forwarding",
        response_model=ForwardingView,
        summary="Forwarding to the city platform: counts and the records held back, with why",
        dependencies=[FLEET],
    )
    def forwarding(
        limit: int = Query(100, ge=1, le=1000, description="held records listed"),
    ) -> ForwardingView:
        """Records the forwarder could not send (the EPCIS mapper refused them) are held, not
        counted as forwarded; they are retried when a collector starts and on
        ``traceedge collector forward-retry``."""
        with ctx.store.read() as db:
            return forwarding_view(db, limit)

    @app.get("/devices")
    def devices(p: Principal = FLEET) -> list[dict[str, Any]]:
        """Every device: records, gaps, last seen; provisioned ones never heard from too
        (``never_seen``)."""
        reg = api_fleet.registry_devices(ctx)
        with ctx.store.read() as db:
            allowed = p.site_filter(db)
            return [d for d in device_report(db, reg) if allowed is None or d["site"] in allowed]

    @app.get("/cylinders/{cyl}", responses=NOT_FOUND, dependencies=[RECORDS])
    def cylinder(cyl: str, limit: int = Query(200, ge=1, le=1000)) -> dict[str, Any]:
        """Registry entry, checks and fills of one cylinder (newest first)."""
        with ctx.store.read() as db:
            out = cylinders.history(db, cyl, limit)
        if out is None:
            raise HTTPException(404, f"cylinder {cyl} is neither registered nor seen")
        return out

    @app.get("/sites")
    def sites(p: Principal = FLEET) -> list[dict[str, Any]]:
        """What each site's edge agent last reported: backlog, oldest record, alarms; a site
        of provisioned devices whose agent never reported is listed ``never_seen``."""
        reg = api_fleet.registry_devices(ctx)
        with ctx.store.read() as db:
            allowed = p.site_filter(db)
            return [s for s in site_report(db, reg) if allowed is None or s["site"] in allowed]

    @app.get("/records/{dev}/{seq}", responses={**NOT_FOUND, **ARCHIVE_DAMAGED})
    def record(
        dev: str, seq: int = PathParam(ge=1, le=2**53 - 1), p: Principal = RECORDS
    ) -> dict[str, Any]:
        """One record as stored; one past retention is read from the archive."""
        with ctx.store.read() as db:
            row = db.execute(
                "SELECT rec, site FROM records WHERE dev = ? AND seq = ?", (dev, seq)
            ).fetchone()
            if row is None:
                archived = archive_call(lambda: ctx.archive().record(dev, seq))
                row = None if archived is None else (archived["rec"], archived["site"])
            if row is None or not p.may_site(db, row[1]):
                raise HTTPException(404, f"no record ({dev}, {seq})")
        out: dict[str, Any] = json.loads(row[0])
        return out

    @app.get("/records")
    def records(
        dev: str | None = None,
        kind: str | None = None,
        limit: int = Query(100, ge=1, le=1000),
        p: Principal = RECORDS,
    ) -> list[dict[str, Any]]:
        sql, args = "SELECT rec FROM records WHERE 1=1", list[str]()
        if dev:
            sql, args = sql + " AND dev = ?", [*args, dev]
        if kind:
            sql, args = sql + " AND kind = ?", [*args, kind]
        with ctx.store.read() as db:
            allowed = p.site_filter(db)
            if allowed is not None:
                sql = sql + " AND site IN (SELECT value FROM json_each(?))"
                args = [*args, json.dumps(sorted(allowed))]
            rows = db.execute(sql + " ORDER BY id DESC LIMIT ?", (*args, limit)).fetchall()
        return [json.loads(r[0]) for r in rows]

    document_refusals(app)
    return app


def document_refusals(app: FastAPI) -> None:
    """Every operation that needs a token can answer 401 and 403, and every one with a body
    400 for bytes that cannot be parsed: say so in the OpenAPI document (operations behind
    the bearer scheme are the guarded ones)."""
    plain = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = plain()
            for ops in schema.get("paths", {}).values():
                for op in ops.values():
                    if not isinstance(op, dict):
                        continue
                    responses = op.setdefault("responses", {})
                    if op.get("security"):
                        for code, r in access.AUTH_RESPONSES.items():
                            responses.setdefault(str(code), dict(r))
                    if op.get("requestBody"):  # bytes that are not UTF-8 JSON at all
                        responses.setdefault("400", {"description": "the body cannot be read"})
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


class ApiServer:
    """An app (the regulator's API, the public listener) served by uvicorn on a thread. The
    port is bound when the server is made, so a port that cannot be bound stops start-up
    (StartupError naming ``what``, the setting) instead of leaving a collector running
    without that listener."""

    def __init__(
        self,
        app: FastAPI,
        what: str,
        host: str,
        port: int,
        tls: ApiTls | None = None,
        name: str = "api",
    ) -> None:
        """``what`` names the config section in messages (``<file>: api``)."""
        self.socket = listen(f"{what}.port", host, port)
        opts: dict[str, Any] = {}
        if tls is not None:
            opts = {"ssl_certfile": str(tls.cert), "ssl_keyfile": str(tls.key)}
            if tls.client_ca is not None:
                opts.update(ssl_ca_certs=str(tls.client_ca), ssl_cert_reqs=ssl.CERT_REQUIRED)
        # log_config None: uvicorn's lines go through our handler (text or JSON), not its own
        config = uvicorn.Config(
            app, **opts, host=host, port=port, log_level="warning", log_config=None
        )
        try:
            config.load()  # the app, and the TLS context: a bad certificate stops start-up
        except (ssl.SSLError, OSError, ValueError) as exc:
            self.socket.close()
            raise StartupError(f"{what}: cannot use the TLS files: {exc}") from exc
        self.server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.socket]}, name=name, daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        self.socket.close()
