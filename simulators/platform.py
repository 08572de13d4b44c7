"""A fake city traceability platform: the HTTP peer the collector's forwarder delivers to.

``POST /records`` takes ``{"records": [...]}`` with an ``Idempotency-Key`` header. A key seen
before is answered ``{"status": "duplicate", "accepted": 0}`` and nothing is stored; otherwise
each record is stored once by identity ``(dev, seq)`` (the first copy wins) and later copies
are counted in ``duplicate_records``, which is how tests prove "forwarded once".

Faults, set at start or at run time through ``POST /faults``: ``error_rate`` (that fraction of
``/records`` calls get 503, nothing stored; drawn from a seeded generator), ``latency_ms``
(every ``/records`` reply is delayed), ``down_for_s`` (503 for that many seconds from now).
A real outage (connection refused) is a stopped :class:`PlatformServer`; start another on
the same port with the same :class:`Platform` or ``db_path`` to bring it back.

``POST /capture`` takes an EPCIS 2.0 capture document (``{"type": "EPCISDocument",
"epcisBody": {"eventList": [...]}, ...}``, docs/epcis.md) with the same ``Idempotency-Key``
rule: a key seen before answers 200 ``{"status": "duplicate", "accepted": 0}``; otherwise
the document must validate against the official GS1 schema (``validate_epcis``, on by
default; 422 with the first violation if not, 500 if the schema cannot be loaded) and every
event must carry an ``eventID``; each event is stored once by ``eventID`` (later copies are
counted in ``duplicate_events``, differing ones also in ``epcis_conflicts``) and the reply is
202 ``{"status": "ok", "accepted", "duplicates"}``. ``GET /events`` lists stored events.
The faults apply to ``/capture`` as to ``/records``; ``requests`` counts both.

Storage is SQLite: ``:memory:`` by default, or a file (``db_path``) that survives restarts.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import random
import signal
import socket
import sqlite3
import threading
import time
from collections.abc import Callable
from signal import SIGINT, SIGTERM
from typing import Annotated, Any, TypedDict, Unpack

import uvicorn
from fastapi import FastAPI, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from simulators.epcis_schema import SchemaUnavailable, schema_errors

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    dev TEXT NOT NULL, seq INTEGER NOT NULL, body TEXT NOT NULL, PRIMARY KEY (dev, seq));
CREATE TABLE IF NOT EXISTS seen_keys (key TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS epcis_events (event_id TEXT PRIMARY KEY, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS epcis_documents (
    key TEXT PRIMARY KEY, events INTEGER NOT NULL, accepted INTEGER NOT NULL);
"""
_INSERT = "INSERT OR IGNORE INTO records VALUES (?, ?, ?)"
_SELECT = "SELECT body FROM records WHERE dev = ? AND seq = ?"
# Counted in memory per process; ``records`` (distinct (dev, seq) stored) comes from the store.
_COUNTERS: tuple[str, ...] = ("batches", "duplicate_batches", "duplicate_records", "conflicts")
_COUNTERS += ("errors_injected", "bad_requests", "requests")
# ``epcis_events`` and ``epcis_documents`` (stored) come from the store as well.
_COUNTERS += ("duplicate_documents", "duplicate_events", "epcis_conflicts")


class PlatformOptions(TypedDict, total=False):
    """Options of :class:`Platform`, also taken by :class:`PlatformServer` and :func:`serve`."""

    db_path: str | os.PathLike[str] | None
    error_rate: float
    latency_ms: int
    down_for_s: float
    seed: int
    validate_epcis: bool


class BadBatch(ValueError):
    """A request body that is not a batch of records; ``status`` is the HTTP code to answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def parse_batch(raw: bytes) -> list[dict[str, Any]]:
    """Decode a ``{"records": [...]}`` body; raise :class:`BadBatch` saying what is wrong."""
    try:
        doc = json.loads(raw)
    except (UnicodeDecodeError, ValueError) as exc:
        raise BadBatch(400, f"body is not JSON: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("records"), list):
        raise BadBatch(422, 'body must be a JSON object {"records": [<record>, ...]}')
    records: list[dict[str, Any]] = doc["records"]
    for i, rec in enumerate(records):
        if not isinstance(rec, dict):
            raise BadBatch(422, f"records[{i}] is not a JSON object")
        dev, seq = rec.get("dev"), rec.get("seq")
        if not isinstance(dev, str) or not dev:
            raise BadBatch(422, f"records[{i}].dev must be a non-empty string")
        if not isinstance(seq, int) or isinstance(seq, bool) or not 0 <= seq < 2**63:
            raise BadBatch(422, f"records[{i}].seq must be an integer in 0..2**63-1")
    return records


def parse_capture(raw: bytes) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Decode an EPCIS capture document; return it and its events, or raise :class:`BadBatch`.

    Checks only what storing needs (the shape and an ``eventID`` on every event); the schema
    check is :meth:`Platform.epcis_errors`.
    """
    try:
        doc = json.loads(raw)
    except (UnicodeDecodeError, ValueError) as exc:
        raise BadBatch(400, f"body is not JSON: {exc}") from None
    if not isinstance(doc, dict) or doc.get("type") != "EPCISDocument":
        raise BadBatch(422, 'body must be an EPCIS 2.0 document {"type": "EPCISDocument", ...}')
    body = doc.get("epcisBody")
    if not isinstance(body, dict) or not isinstance(body.get("eventList"), list):
        raise BadBatch(422, "EPCISDocument needs epcisBody.eventList, a list of events")
    events: list[dict[str, Any]] = body["eventList"]
    for i, ev in enumerate(events):
        if not isinstance(ev, dict):
            raise BadBatch(422, f"epcisBody.eventList[{i}] is not a JSON object")
        eid = ev.get("eventID")
        if not isinstance(eid, str) or not eid:
            raise BadBatch(422, f"epcisBody.eventList[{i}] has no eventID (events are kept by it)")
    return doc, events


class Platform:
    """The platform's state: stored records, seen keys, counters and faults. Thread-safe."""

    def __init__(
        self,
        db_path: str | os.PathLike[str] | None = None,
        *,
        error_rate: float = 0.0,
        latency_ms: int = 0,
        down_for_s: float = 0.0,
        seed: int = 0,
        validate_epcis: bool = True,
    ) -> None:
        self._lock = threading.Lock()
        self.validate_epcis = validate_epcis
        self._db = sqlite3.connect(
            ":memory:" if db_path is None else os.fspath(db_path),
            check_same_thread=False,
            isolation_level=None,
        )
        if db_path is not None:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        (self._n_records,) = self._db.execute("SELECT COUNT(*) FROM records").fetchone()
        (self._n_events,) = self._db.execute("SELECT COUNT(*) FROM epcis_events").fetchone()
        (self._n_documents,) = self._db.execute("SELECT COUNT(*) FROM epcis_documents").fetchone()
        self._counts = dict.fromkeys(_COUNTERS, 0)
        self._rng = random.Random(seed)
        self._error_rate, self._latency_ms, self._down_until = 0.0, 0, 0.0
        self.set_faults(error_rate=error_rate, latency_ms=latency_ms, down_for_s=down_for_s)

    # -- faults ---------------------------------------------------------------------------
    def set_faults(
        self,
        *,
        error_rate: float | None = None,
        latency_ms: int | None = None,
        down_for_s: float | None = None,
        seed: int | None = None,
    ) -> dict[str, float]:
        """Change the given faults (others stay); ``down_for_s=0`` ends a downtime now."""
        if error_rate is not None and not 0.0 <= error_rate <= 1.0:
            raise ValueError("error_rate must be within 0.0..1.0")
        if (latency_ms or 0) < 0 or (down_for_s or 0.0) < 0:
            raise ValueError("latency_ms and down_for_s must not be negative")
        with self._lock:
            if error_rate is not None:
                self._error_rate = error_rate
            if latency_ms is not None:
                self._latency_ms = latency_ms
            if down_for_s is not None:
                self._down_until = time.monotonic() + down_for_s
            if seed is not None:
                self._rng.seed(seed)
        return self.faults()

    def faults(self) -> dict[str, float]:
        """Current faults; ``down_for_s`` is the downtime left."""
        with self._lock:
            left = round(max(0.0, self._down_until - time.monotonic()), 3)
            return dict(error_rate=self._error_rate, latency_ms=self._latency_ms, down_for_s=left)

    def begin_request(self) -> float:
        """Count a ``/records`` or ``/capture`` call; return the latency (s) for its reply."""
        with self._lock:
            self._counts["requests"] += 1
            return self._latency_ms / 1000.0

    def injected_fault(self) -> tuple[str, float] | None:
        """``(reason, retry_after_s)`` if this call must fail with 503, else ``None``."""
        with self._lock:
            left = self._down_until - time.monotonic()
            if left > 0:
                self._counts["errors_injected"] += 1
                return "platform is down (simulated outage)", left
            if self._error_rate > 0 and self._rng.random() < self._error_rate:
                self._counts["errors_injected"] += 1
                return "injected error (error_rate)", 0.0
            return None

    def note_bad_request(self) -> None:
        with self._lock:
            self._counts["bad_requests"] += 1

    # -- storage --------------------------------------------------------------------------
    def ingest(self, key: str, records: list[dict[str, Any]]) -> dict[str, Any]:
        """Store a batch once per key and each record once per (dev, seq), in one commit."""
        with self._lock:
            db = self._db
            if db.execute("SELECT 1 FROM seen_keys WHERE key = ?", (key,)).fetchone():
                self._counts["duplicate_batches"] += 1
                return {"status": "duplicate", "accepted": 0}
            accepted = conflicts = 0
            db.execute("BEGIN IMMEDIATE")
            try:
                for rec in records:
                    body = json.dumps(rec, sort_keys=True, separators=(",", ":"))
                    ident = (rec["dev"], rec["seq"])
                    cur = db.execute(_INSERT, (*ident, body))
                    if cur.rowcount == 1:
                        accepted += 1
                        continue
                    conflicts += db.execute(_SELECT, ident).fetchone()[0] != body
                db.execute("INSERT INTO seen_keys VALUES (?)", (key,))
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            duplicates = len(records) - accepted
            self._n_records += accepted
            self._counts["batches"] += 1
            self._counts["duplicate_records"] += duplicates
            self._counts["conflicts"] += conflicts
            return {"status": "ok", "accepted": accepted, "duplicates": duplicates}

    def epcis_errors(self, doc: object) -> list[str]:
        """Violations of the official EPCIS 2.0 schema (formats checked); ``[]`` when valid or
        when ``validate_epcis`` is off. Raises :class:`SchemaUnavailable` if it cannot check."""
        if not self.validate_epcis:
            return []
        return schema_errors(doc)

    def capture(self, key: str, events: list[dict[str, Any]]) -> dict[str, Any]:
        """Store a capture document once per key and each event once per ``eventID``."""
        with self._lock:
            db = self._db
            if db.execute("SELECT 1 FROM epcis_documents WHERE key = ?", (key,)).fetchone():
                self._counts["duplicate_documents"] += 1
                return {"status": "duplicate", "accepted": 0}
            accepted = conflicts = 0
            db.execute("BEGIN IMMEDIATE")
            try:
                for ev in events:
                    body = json.dumps(ev, sort_keys=True, separators=(",", ":"))
                    eid = ev["eventID"]
                    cur = db.execute(
                        "INSERT OR IGNORE INTO epcis_events VALUES (?, ?)", (eid, body)
                    )
                    if cur.rowcount == 1:
                        accepted += 1
                        continue
                    sql = "SELECT body FROM epcis_events WHERE event_id = ?"
                    conflicts += db.execute(sql, (eid,)).fetchone()[0] != body
                db.execute(
                    "INSERT INTO epcis_documents VALUES (?, ?, ?)", (key, len(events), accepted)
                )
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            duplicates = len(events) - accepted
            self._n_events += accepted
            self._n_documents += 1
            self._counts["duplicate_events"] += duplicates
            self._counts["epcis_conflicts"] += conflicts
            return {"status": "ok", "accepted": accepted, "duplicates": duplicates}

    def events(self, limit: int = 1000) -> list[dict[str, Any]]:
        """Stored EPCIS events in the order they were first stored."""
        with self._lock:
            sql = "SELECT body FROM epcis_events ORDER BY rowid LIMIT ?"
            rows = self._db.execute(sql, (limit,)).fetchall()
        return [json.loads(body) for (body,) in rows]

    def seen_capture_key(self, key: str) -> bool:
        """Whether a capture document was already stored under ``key``."""
        with self._lock:
            sql = "SELECT 1 FROM epcis_documents WHERE key = ?"
            return self._db.execute(sql, (key,)).fetchone() is not None

    def records(self, dev: str | None = None, limit: int = 1000) -> list[dict[str, Any]]:
        """Stored records ordered by (dev, seq), optionally of one device."""
        where, args = ("WHERE dev = ?", [dev]) if dev is not None else ("", [])
        sql = f"SELECT body FROM records {where} ORDER BY dev, seq LIMIT ?"
        with self._lock:
            rows = self._db.execute(sql, (*args, limit)).fetchall()
        return [json.loads(body) for (body,) in rows]

    def stats(self) -> dict[str, int]:
        """Counters since this process opened the store; ``records``, ``epcis_events`` and
        ``epcis_documents`` count everything stored."""
        with self._lock:
            stored = {"epcis_events": self._n_events, "epcis_documents": self._n_documents}
            return {"records": self._n_records, **stored, **self._counts}

    def close(self) -> None:
        with self._lock:
            self._db.close()


class FaultsIn(BaseModel):
    """Body of ``POST /faults``; absent fields keep their value."""

    model_config = ConfigDict(extra="forbid")
    error_rate: float | None = Field(default=None, ge=0.0, le=1.0)
    latency_ms: int | None = Field(default=None, ge=0)
    down_for_s: float | None = Field(default=None, ge=0.0)
    seed: int | None = None


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def create_app(platform: Platform | None = None) -> FastAPI:
    """The FastAPI app over ``platform`` (a fresh in-memory one if not given)."""
    plat = platform if platform is not None else Platform()
    app = FastAPI(title="traceedge fake city platform")
    app.state.platform = plat

    async def delivery_fault() -> JSONResponse | None:
        """Latency, then the injected 503 if this delivery call must fail."""
        latency = plat.begin_request()
        if latency > 0:
            await asyncio.sleep(latency)
        fault = plat.injected_fault()
        if fault is None:
            return None
        reason, retry_after = fault
        headers = {"Retry-After": str(math.ceil(retry_after))} if retry_after else None
        return _error(503, reason, headers)

    @app.post("/records", response_model=None)
    async def post_records(request: Request) -> dict[str, Any] | JSONResponse:
        failed = await delivery_fault()
        if failed is not None:
            return failed
        key = request.headers.get("Idempotency-Key", "").strip()
        try:
            if not key:
                raise BadBatch(400, "the Idempotency-Key header is required")
            records = parse_batch(await request.body())
        except BadBatch as exc:
            plat.note_bad_request()
            return _error(exc.status, str(exc))
        return plat.ingest(key, records)

    @app.post("/capture", response_model=None)
    async def post_capture(request: Request) -> JSONResponse:
        failed = await delivery_fault()
        if failed is not None:
            return failed
        key = request.headers.get("Idempotency-Key", "").strip()
        try:
            if not key:
                raise BadBatch(400, "the Idempotency-Key header is required")
            doc, events = parse_capture(await request.body())
        except BadBatch as exc:
            plat.note_bad_request()
            return _error(exc.status, str(exc))
        if plat.seen_capture_key(key):
            return JSONResponse(plat.capture(key, events), status_code=200)
        try:
            errors = await asyncio.to_thread(plat.epcis_errors, doc)
        except SchemaUnavailable as exc:
            return _error(500, f"cannot check EPCIS documents: {exc}")
        if errors:
            plat.note_bad_request()
            more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
            return _error(422, f"not a valid EPCIS 2.0 document: {errors[0]}{more}")
        reply = plat.capture(key, events)
        return JSONResponse(reply, status_code=202 if reply["status"] == "ok" else 200)

    @app.get("/events")
    async def get_events(limit: Annotated[int, Query(ge=1)] = 1000) -> dict[str, Any]:
        events = plat.events(limit)
        return {"count": len(events), "events": events}

    @app.get("/records")
    async def get_records(
        dev: str | None = None, limit: Annotated[int, Query(ge=1)] = 1000
    ) -> dict[str, Any]:
        recs = plat.records(dev, limit)
        return {"count": len(recs), "records": recs}

    @app.get("/faults")
    async def get_faults() -> dict[str, Any]:
        return plat.faults()

    @app.post("/faults")
    async def post_faults(faults: FaultsIn) -> dict[str, Any]:
        return plat.set_faults(**faults.model_dump())

    @app.get("/stats")
    async def stats() -> dict[str, int]:
        return plat.stats()

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        return {"status": "ok", "down": plat.faults()["down_for_s"] > 0}

    return app


def _url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _bind(host: str, port: int) -> socket.socket:
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only then (else ~40 ms per reply).
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    return sock


def _server(platform: Platform) -> uvicorn.Server:
    config = uvicorn.Config(
        create_app(platform),
        log_config=None,
        log_level="warning",
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=5,
    )
    return uvicorn.Server(config)


class PlatformServer:
    """Runs the platform with uvicorn in a background thread; single use (start, stop).

    Pass an existing ``platform`` to keep its state across a stop/start of the HTTP side
    (the caller then closes it), or the :class:`Platform` options to have one made and
    closed here.
    """

    def __init__(
        self,
        *,
        port: int = 0,
        host: str = "127.0.0.1",
        platform: Platform | None = None,
        **platform_options: Unpack[PlatformOptions],
    ) -> None:
        if platform is not None and platform_options:
            raise TypeError("pass either platform or Platform options, not both")
        self._owns_platform = platform is None
        self.platform = platform if platform is not None else Platform(**platform_options)
        self.host, self.port = host, port
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return _url(self.host, self.port)

    def start(self) -> PlatformServer:
        if self._server is not None:
            raise RuntimeError("a PlatformServer starts once; make a new one to restart")
        self._server = server = _server(self.platform)
        try:
            sock = _bind(self.host, self.port)
        except OSError:
            self.stop()
            raise
        self.port = sock.getsockname()[1]
        self._thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name=f"platform-{self.port}", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10.0
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                sock.close()
                raise RuntimeError(f"fake platform did not start on {self.url}")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        """Stop serving (finishing replies in flight), join the thread, close an owned store."""
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)
            if self._thread.is_alive():
                self._server.force_exit = True
                self._thread.join()
            self._thread = None
        if self._owns_platform:
            self._owns_platform = False
            self.platform.close()

    def __enter__(self) -> PlatformServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def serve(
    host: str = "127.0.0.1",
    port: int = 8090,
    *,
    on_start: Callable[[str], None] | None = None,
    **platform_options: Unpack[PlatformOptions],
) -> None:
    """Serve until SIGINT/SIGTERM, then return; ``on_start(url)`` once listening. Main thread."""
    platform = Platform(**platform_options)
    server = _server(platform)
    # Until uvicorn takes these over, a stop (systemd's SIGTERM right after start) asks the
    # server to exit as soon as it runs, not lost; after its graceful shutdown uvicorn
    # re-raises the signal, which then only asks again.
    previous = {
        sig: signal.signal(sig, lambda *_: setattr(server, "should_exit", True))
        for sig in (SIGINT, SIGTERM)
    }
    try:
        sock = _bind(host, port)
        if on_start is not None:
            on_start(_url(host, sock.getsockname()[1]))
        server.run(sockets=[sock])
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        platform.close()
