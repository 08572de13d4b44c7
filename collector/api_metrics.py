"""``GET /metrics``: the collector in the Prometheus text format.

Each scrape reads the store read-only (:func:`hostlib.sqlite.open_ro`), so a scrape never
blocks ingest, and touches only small tables and indexes (``counters``,
``quarantine_reasons``, ``device_state``, ``site_status``, ``forward_*``, ``meta``, the
``records`` primary key): its cost does not grow with the number of records stored. Beside
the store it reports this process's own state: dead worker threads and the in-memory
counters of the running service (:meth:`collector.service.Collector.live`).

Counters are typed ``counter`` (names ending ``_total``), everything else ``gauge``; every
metric has ``# HELP``; per-site series carry a ``site`` label. docs/metrics.md lists them
all, with the alert rules in ``config/alerts.yml`` built on them.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

from fastapi import APIRouter, Depends, Response
from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from collector import access, licence_use, sites
from collector.storedb import StoreDb
from hostlib.db import POSTGRES, Db, dialect, is_db_error

log = logging.getLogger(__name__)

P = "traceedge_collector_"

STORE_COUNTERS = {
    "batches": ("batches", "Batches committed to the store (all collector processes)"),
    "stored": ("stored_records", "Records stored, each (dev, seq) once"),
    "duplicates": ("duplicate_records", "Records received again and dropped as duplicates"),
    "conflicts": ("conflicting_records", "Records with a known (dev, seq) but other content"),
    "forwarded": ("forwarded_records", "Records the city platform has accepted"),
    "forward_batches": ("forward_deliveries", "Documents the city platform has accepted"),
    "forward_failures": ("forward_failures", "Deliveries the city platform did not take"),
    "forward_holds": ("forward_holds", "Records ever held back from the platform"),
    "quarantine_evicted": ("quarantine_evicted", "Quarantine rows evicted past the byte bound"),
}
"""``counters`` table row → (metric name without prefix and ``_total``, HELP)."""

LIVE_COUNTERS = {
    "batches": ("process_batches", "Batches this process handled since it started"),
    "poisoned": (
        "process_poisoned_messages",
        "Messages that made this process fail unexpectedly (quarantined as internal_error)",
    ),
}
LIVE_GAUGES = {
    "queue": ("process_queue_messages", "Messages waiting in this process's intake queue"),
    "broker_connected": ("process_broker_connected", "1 while this process is on the broker"),
    "platform_ok": (
        "process_platform_ok",
        "1 unless this process's last delivery to the city platform failed",
    ),
}
"""Keys of :meth:`collector.service.Collector.live` and their metrics; ``status_refused``
(reason → count) is a labelled counter. Keys not listed here are not exported."""


class MetricsContext(Protocol):
    """What ``/metrics`` needs of :class:`collector.api.ApiContext`."""

    @property
    def store_path(self) -> Path: ...

    @property
    def store(self) -> StoreDb: ...

    @property
    def dead_workers(self) -> Callable[[], list[str]] | None: ...

    @property
    def live(self) -> Callable[[], dict[str, Any]] | None: ...


class CollectorMetrics:
    """A prometheus_client collector: everything is read when a scrape asks."""

    def __init__(self, ctx: MetricsContext, clock: Callable[[], float] = time.time) -> None:
        self.ctx = ctx
        self.clock = clock

    def collect(self) -> Iterator[Metric]:
        yield from process_families(self.ctx)
        up = 1
        try:
            if not self.ctx.store.exists():  # not made yet: store_up 0, not an error
                raise FileNotFoundError(self.ctx.store_path)
            with self.ctx.store.read() as db:
                families = list(store_families(db, self.clock()))
        except OSError as exc:
            log.warning("metrics: cannot read the store %s: %s", self.ctx.store_path, exc)
            up, families = 0, []
        except Exception as exc:
            if not is_db_error(exc):
                raise
            log.warning("metrics: cannot read the store %s: %s", self.ctx.store_path, exc)
            up, families = 0, []
        yield from families
        yield GaugeMetricFamily(
            P + "store_up",
            "1 if this scrape could read the store (else its series are missing)",
            up,
        )


def render(ctx: MetricsContext, clock: Callable[[], float] = time.time) -> bytes:
    """One scrape of ``ctx`` in the Prometheus text format (0.0.4)."""
    return generate_latest(CollectorMetrics(ctx, clock))


def make_router(ctx: MetricsContext) -> APIRouter:
    """``GET /metrics`` for a token whose role holds ``metrics`` (monitor, admin)."""
    router = APIRouter(tags=["metrics"])

    @router.get(
        "/metrics",
        dependencies=[Depends(access.require("metrics"))],
        response_class=Response,
        responses={200: {"content": {CONTENT_TYPE_PLAIN_0_0_4: {}}}},
        summary="Prometheus metrics: ingest, quarantine, forwarding, sites, workers",
    )
    def metrics() -> Response:
        """The Prometheus text format; docs/metrics.md lists every metric. Prometheus sends
        the token with ``authorization: {credentials_file: …}`` in its scrape config."""
        return Response(render(ctx), media_type=CONTENT_TYPE_PLAIN_0_0_4)

    return router


def process_families(ctx: MetricsContext) -> Iterator[Metric]:
    """This process: its dead workers and the service's in-memory counters."""
    dead = ctx.dead_workers() if ctx.dead_workers is not None else []
    yield GaugeMetricFamily(
        P + "dead_workers", "Worker threads of this process that died (it exits)", len(dead)
    )
    per = GaugeMetricFamily(
        P + "worker_dead", "1 for each dead worker thread of this process", labels=["worker"]
    )
    for name in dead:
        per.add_metric([name], 1)
    yield per
    live = ctx.live() if ctx.live is not None else {}
    for key, (name, text) in LIVE_COUNTERS.items():
        if key in live:
            yield CounterMetricFamily(P + name, text, float(live[key]))
    for key, (name, text) in LIVE_GAUGES.items():
        if key in live:
            yield GaugeMetricFamily(P + name, text, float(live[key]))
    if "status_refused" in live:
        refused = CounterMetricFamily(
            P + "process_status_refused",
            "Site status reports this process refused, by reason",
            labels=["reason"],
        )
        for reason, n in sorted(live["status_refused"].items()):
            refused.add_metric([reason], n)
        yield refused


def store_families(db: Db, now: float) -> list[Metric]:
    """The store's metrics (any connection; read-only is enough)."""
    out: list[Metric] = []
    counters = dict(db.execute("SELECT name, value FROM counters").fetchall())
    for key, (name, text) in STORE_COUNTERS.items():
        out.append(CounterMetricFamily(P + name, text, counters.get(key, 0)))
    out += _quarantine(db, int(counters.get("quarantined", 0)))
    out += _forwarding(db, counters, now)
    out += _sites(db, now)
    out.append(
        GaugeMetricFamily(
            P + "alarms",
            "Alarms raised and kept in the store",
            db.execute("SELECT COUNT(*) FROM alarms").fetchone()[0],
        )
    )
    out.append(
        GaugeMetricFamily(
            P + "licences_overdrawn",
            "Licences whose use across their sites went above their quantity (alarmed)",
            len(licence_use.overdrawn(db)),
        )
    )
    beats = GaugeMetricFamily(
        P + "process_heartbeat_age_seconds",
        "Seconds since each collector process on this store last wrote its heartbeat",
        labels=["process"],
    )
    for name, value in db.execute("SELECT name, value FROM meta WHERE name LIKE 'process:%'"):
        beats.add_metric([name[len("process:") :]], max(0.0, now - float(json.loads(value)["at"])))
    out.append(beats)
    return out


def _quarantine(db: Db, total: int) -> list[Metric]:
    fam = CounterMetricFamily(
        P + "quarantined_records",
        "Records (and messages) quarantined, by reason; 'unknown': quarantined before the "
        "store counted reasons and evicted since",
        labels=["reason"],
    )
    try:
        rows = db.execute("SELECT reason, records FROM quarantine_reasons ORDER BY reason")
        reasons = {str(r): int(n) for r, n in rows}
    except sqlite3.OperationalError:  # a store no collector of this version has opened yet
        reasons = {}
    if total > sum(reasons.values()):
        reasons["unknown"] = reasons.get("unknown", 0) + total - sum(reasons.values())
    for reason, n in sorted(reasons.items()):
        fam.add_metric([reason], n)
    row = db.execute("SELECT value FROM meta WHERE name = 'quarantine_bytes'").fetchone()
    return [
        fam,
        GaugeMetricFamily(
            P + "quarantine_bytes",
            "Bytes the quarantine keeps (payloads and details), against its bound",
            int(row[0]) if row else 0,
        ),
    ]


def _forwarding(db: Db, counters: dict[str, int], now: float) -> list[Metric]:
    """Backlog, held records and lag, without counting records: every record stored is
    forwarded, held or waiting, so the backlog is ``stored - forwarded - held``; the lag is
    the age of the first record of the oldest pending batch, else of the first one after
    the forward cursor (both found by row id; on PostgreSQL the oldest id queued or in a
    pending batch)."""
    held = int(db.execute("SELECT COUNT(*) FROM forward_held").fetchone()[0])
    backlog = int(counters.get("stored", 0)) - int(counters.get("forwarded", 0)) - held
    if dialect(db) == POSTGRES:  # no cursor: what waits is in forward_queue or a batch's ids
        first = db.execute(
            "SELECT LEAST((SELECT MIN(id) FROM forward_queue), "
            "(SELECT MIN(i) FROM forward_batches, unnest(ids) AS i))"
        ).fetchone()[0]
        got = None
        if first is not None:
            got = db.execute("SELECT received FROM records WHERE id = ?", (first,)).fetchone()
        lag = max(0.0, now - float(got[0])) if got and backlog > 0 else 0.0
        return _forwarding_families(backlog, held, lag)
    row = db.execute("SELECT value FROM meta WHERE name = 'forward_cursor'").fetchone()
    cursor = int(row[0]) if row else 0
    first_pending = db.execute("SELECT MIN(lo) FROM forward_batches").fetchone()[0]
    if first_pending is not None:
        got = db.execute(
            "SELECT received FROM records WHERE id >= ? ORDER BY id LIMIT 1", (first_pending,)
        ).fetchone()
    else:
        got = db.execute(
            "SELECT received FROM records WHERE id > ? ORDER BY id LIMIT 1", (cursor,)
        ).fetchone()
    lag = max(0.0, now - float(got[0])) if got and backlog > 0 else 0.0
    return _forwarding_families(backlog, held, lag)


def _forwarding_families(backlog: int, held: int, lag: float) -> list[Metric]:
    return [
        GaugeMetricFamily(
            P + "forward_backlog_records",
            "Records waiting to be sent to the city platform (held ones not included)",
            max(0, backlog),
        ),
        GaugeMetricFamily(
            P + "forward_held_records",
            "Records held back from the platform (the mapper refused them; GET /forwarding)",
            held,
        ),
        GaugeMetricFamily(
            P + "forward_lag_seconds",
            "Age of the oldest record not yet forwarded (0 when nothing waits)",
            lag,
        ),
    ]


SITE_GAUGES = (
    ("site_last_seen_age_seconds", "Seconds since the site last sent a record or a status"),
    ("site_last_record_age_seconds", "Seconds since a record of the site was last stored"),
    ("site_last_status_age_seconds", "Seconds since the site's agent last reported its status"),
    ("site_agent_backlog_records", "Records waiting in the site agent's outbox (last report)"),
    (
        "site_agent_backlog_age_seconds",
        "Age of the oldest record in the site agent's outbox, now (last report plus its age)",
    ),
    ("site_agent_outbox_full", "1 while the site agent's outbox refuses intake (last report)"),
    (
        "site_agent_sources_down",
        "Device links of the site agent's own (serial link, Modbus) not up (last report)",
    ),
    ("site_missing_records", "Records missing at the collector (gaps in sequences), by site"),
    ("site_devices", "Devices of the site that have sent records"),
    (
        "site_never_seen",
        "1 for a site of the sites registry that never sent a record or a status, else 0",
    ),
)


def _sites(db: Db, now: float) -> list[Metric]:
    """Per site, from ``device_state`` (one row per device), ``site_status`` and the sites
    registry."""
    fams = {name: GaugeMetricFamily(P + name, text, labels=["site"]) for name, text in SITE_GAUGES}
    stored = CounterMetricFamily(
        P + "site_stored_records", "Records stored, by site", labels=["site"]
    )
    seen: dict[str, float] = {}
    for site, records, missing, last, devices in db.execute(
        "SELECT site, SUM(count), SUM(max_seq - count), MAX(last_seen), COUNT(*) "
        "FROM device_state GROUP BY site ORDER BY site"
    ):
        stored.add_metric([site], records)
        fams["site_missing_records"].add_metric([site], missing)
        fams["site_devices"].add_metric([site], devices)
        fams["site_last_record_age_seconds"].add_metric([site], max(0.0, now - last))
        seen[site] = last
    for site, received, text in db.execute(
        "SELECT site, received, status FROM site_status ORDER BY site"
    ):
        age = max(0.0, now - received)
        fams["site_last_status_age_seconds"].add_metric([site], age)
        seen[site] = max(seen.get(site, received), received)
        try:
            st = json.loads(text)
            depth = int(st.get("depth") or 0)
            oldest = float(st.get("oldest_age_s") or 0)
            full = int(st.get("alarm_outbox_full") or 0)
            down = int(st.get("sources_down") or 0)
        except (ValueError, TypeError, AttributeError):
            continue  # kept sealed and checked, so this is a bug; the scrape goes on
        fams["site_agent_backlog_records"].add_metric([site], depth)
        fams["site_agent_backlog_age_seconds"].add_metric([site], oldest + age if depth else 0)
        fams["site_agent_outbox_full"].add_metric([site], full)
        fams["site_agent_sources_down"].add_metric([site], down)
    for site, last in sorted(seen.items()):
        fams["site_last_seen_age_seconds"].add_metric([site], max(0.0, now - last))
    for info in sites.all_sites(db):  # registered (traceedge collector import-sites)
        fams["site_never_seen"].add_metric([info.site], 0 if info.site in seen else 1)
    return [stored, *fams.values()]
