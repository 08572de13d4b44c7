"""The fleet at a glance: every site and device, seen or only provisioned, red/amber/green.

API (stable; the console builds on it)::

    fleet(db, registry=None, *, now=None, green_s=900, amber_s=7200, sites=None) -> Fleet
    device_detail(db, registry, dev, *, limit=50, now=None, green_s=900, amber_s=7200)
        -> DeviceDetail | None
    device_rows(db, registry=None, ...) -> list[DeviceRow]   # what /devices shows
    site_rows(db, registry=None, ...) -> list[SiteRow]       # what /sites shows
    rag(last_seen, now, green_s, amber_s) -> "green" | "amber" | "red"

``db`` is any connection to a collector store (read-only is fine). ``registry`` is the device
registry (:class:`hostlib.registry.Registry` or its ``devices()`` mapping; None: only the
devices that sent records). ``sites`` limits the answer to those site codes (a principal's
scope: ``access.Principal.site_filter(db)``; None: every site).

State from last seen: green when heard from less than ``green_s`` ago (default 15 min),
amber less than ``amber_s`` (2 h), red otherwise or never seen. A device's last seen is its
newest stored record; a gateway's also its site's latest health report. A site is as bad as
its worst device (devices revoked in the registry do not count: they are retired); a site
without devices goes by its agent's last report. Gaps are counts here (``max_seq - count``
from ``device_state``); :func:`device_detail` lists their ranges. Nothing in the overview
reads the ``records`` table: it costs the same on a store of a million records as on an
empty one.
"""

from __future__ import annotations

import json
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from collector.archive import keys as archive_keys
from hostlib.db import Db
from hostlib.registry import Device, Registry

GREEN, AMBER, RED = "green", "amber", "red"
STATES = (GREEN, AMBER, RED)
DEFAULT_GREEN_S = 15 * 60.0
DEFAULT_AMBER_S = 2 * 3600.0
MAX_GAP_RANGES = 100

Devices = Registry | Mapping[str, Device] | None


def rag(
    last_seen: float | None,
    now: float,
    green_s: float = DEFAULT_GREEN_S,
    amber_s: float = DEFAULT_AMBER_S,
) -> str:
    """``green`` / ``amber`` / ``red`` from how long ago ``last_seen`` was (None: red)."""
    if last_seen is None:
        return RED
    age = now - last_seen
    if age < green_s:
        return GREEN
    if age < amber_s:
        return AMBER
    return RED


def worst(states: Collection[str]) -> str | None:
    """The worst of ``states`` (None for none)."""
    return max(states, key=STATES.index) if states else None


@dataclass(slots=True)
class KeyState:
    """A device's key state from the registry (never the key itself)."""

    key_from_seq: int = 1  # the newest key signs records from this seq on
    keys: int = 1
    rotated: bool = False
    revoked_from: int | None = None


@dataclass(slots=True)
class DeviceRow:
    dev: str
    site: str
    type: str | None  # registry type; None: not in the registry
    registered: bool
    never_seen: bool  # provisioned, no record stored yet
    state: str  # green / amber / red
    last_seen: float | None  # epoch seconds
    silent_s: float | None
    records: int
    max_seq: int
    missing: int  # sequence numbers below max_seq not stored (gaps)
    key: KeyState | None
    agent_backlog: int | None  # records waiting in its site's agent, as last reported
    backlog_age_s: float | None  # age of the oldest of them now (0: nothing waiting)
    agent_reported_s_ago: float | None
    open_alarms: int  # alarms naming the device, not acknowledged


@dataclass(slots=True)
class SiteRow:
    site: str
    name: str | None  # from the sites registry, when it has the site
    district: str | None
    state: str
    never_seen: bool  # no device of it ever sent a record, and no agent report
    devices: int
    by_state: dict[str, int]  # devices per state
    never_seen_devices: int
    last_seen: float | None
    silent_s: float | None
    records: int
    missing: int
    agent_backlog: int | None
    backlog_age_s: float | None
    agent_reported_s_ago: float | None
    open_alarms: int


@dataclass(slots=True)
class Fleet:
    now: float
    green_s: float
    amber_s: float
    sites: list[SiteRow]
    devices: list[DeviceRow]
    sites_by_state: dict[str, int]
    devices_by_state: dict[str, int]


@dataclass(frozen=True)
class RecentRecord:
    seq: int
    kind: str
    ts: int  # capture time, ms since the epoch
    received: float  # stored at, epoch seconds


@dataclass(frozen=True)
class DeviceDetail:
    device: DeviceRow
    gaps: list[tuple[int, int]]  # missing seq ranges (first, last), the first MAX_GAP_RANGES
    gaps_truncated: bool
    watermark: int  # every seq up to this one is stored
    recent: list[RecentRecord]  # newest first
    last_status: dict[str, Any] | None = None  # its site's last agent report
    alarms: list[dict[str, Any]] = field(default_factory=list)  # its newest alarms


# ---------------------------------------------------------------------------------------------


def _registry(registry: Devices) -> Mapping[str, Device]:
    if registry is None:
        return {}
    if isinstance(registry, Registry):
        registry.reload()
        return registry.devices()
    return registry


def _has_table(db: Db, name: str) -> bool:
    row = db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,))
    return row.fetchone() is not None


def key_state(d: Device) -> KeyState:
    history = d.keys or ((1, d.key),)
    return KeyState(
        key_from_seq=history[-1][0],
        keys=len(history),
        rotated=len(history) > 1,
        revoked_from=d.revoked_from,
    )


@dataclass(frozen=True)
class _Agent:
    received: float
    depth: int | None
    oldest_age_s: float | None
    status: dict[str, Any]


def _agents(db: Db) -> dict[str, _Agent]:
    out = {}
    for site, received, text in db.execute("SELECT site, received, status FROM site_status"):
        try:
            st = json.loads(text)
        except ValueError:
            st = {}
        if not isinstance(st, dict):
            st = {}
        depth = st.get("depth")
        oldest = st.get("oldest_age_s")
        out[str(site)] = _Agent(
            float(received),
            int(depth) if isinstance(depth, int | float) else None,
            float(oldest) if isinstance(oldest, int | float) else None,
            st,
        )
    return out


def _open_alarms(db: Db) -> dict[str, int]:
    if _has_table(db, "alarm_acks"):
        sql = (
            "SELECT dev, COUNT(*) FROM alarms AS a WHERE dev IS NOT NULL AND NOT EXISTS "
            "(SELECT 1 FROM alarm_acks AS k WHERE k.alarm_id = a.id) GROUP BY dev"
        )
    else:
        sql = "SELECT dev, COUNT(*) FROM alarms WHERE dev IS NOT NULL GROUP BY dev"
    return {str(d): int(n) for d, n in db.execute(sql)}


def _site_names(db: Db) -> dict[str, tuple[str | None, str | None]]:
    if not _has_table(db, "sites"):
        return {}
    return {str(s): (n, d) for s, n, d in db.execute("SELECT site, name, district FROM sites")}


def _backlog(agent: _Agent | None, now: float) -> tuple[int | None, float | None, float | None]:
    """(records waiting, age of the oldest now, seconds since the report)."""
    if agent is None:
        return None, None, None
    ago = round(now - agent.received, 1)
    if agent.depth is None:
        return None, None, ago
    if not agent.depth:
        return 0, 0.0, ago
    age = None if agent.oldest_age_s is None else round(agent.oldest_age_s + max(0.0, ago), 1)
    return agent.depth, age, ago


def _device_rows(
    db: Db,
    devices: Mapping[str, Device],
    agents: Mapping[str, _Agent],
    now: float,
    green_s: float,
    amber_s: float,
    sites: Collection[str] | None,
    only: str | None = None,
) -> list[DeviceRow]:
    if only is None:
        seen = db.execute(
            "SELECT dev, site, count, max_seq, last_seen FROM device_state"
        ).fetchall()
    else:
        seen = db.execute(
            "SELECT dev, site, count, max_seq, last_seen FROM device_state WHERE dev = ?",
            (only,),
        ).fetchall()
        devices = {only: devices[only]} if only in devices else {}
    alarms = _open_alarms(db) if only is None else _open_alarms_of(db, only)
    state = {str(r[0]): r for r in seen}
    rows = []
    for dev in sorted(set(state) | set(devices)):
        reg = devices.get(dev)
        st = state.get(dev)
        site = str(st[1]) if st is not None else reg.site if reg is not None else ""
        if sites is not None and site not in sites:
            continue
        last_seen = float(st[4]) if st is not None else None
        agent = agents.get(site)
        if reg is not None and reg.type == "gateway" and agent is not None:
            last_seen = agent.received if last_seen is None else max(last_seen, agent.received)
        depth, age, ago = _backlog(agent, now)
        count, max_seq = (int(st[2]), int(st[3])) if st is not None else (0, 0)
        rows.append(
            DeviceRow(
                dev=dev,
                site=site,
                type=reg.type if reg is not None else None,
                registered=reg is not None,
                never_seen=last_seen is None,
                state=rag(last_seen, now, green_s, amber_s),
                last_seen=last_seen,
                silent_s=None if last_seen is None else round(now - last_seen, 1),
                records=count,
                max_seq=max_seq,
                missing=max(0, max_seq - count),
                key=key_state(reg) if reg is not None else None,
                agent_backlog=depth,
                backlog_age_s=age,
                agent_reported_s_ago=ago,
                open_alarms=alarms.get(dev, 0),
            )
        )
    return rows


def _open_alarms_of(db: Db, dev: str) -> dict[str, int]:
    acked = (
        " AND NOT EXISTS (SELECT 1 FROM alarm_acks AS k WHERE k.alarm_id = a.id)"
        if _has_table(db, "alarm_acks")
        else ""
    )
    n = db.execute(f"SELECT COUNT(*) FROM alarms AS a WHERE dev = ?{acked}", (dev,)).fetchone()
    return {dev: int(n[0])}


def _site_rows(
    db: Db,
    devices: list[DeviceRow],
    agents: Mapping[str, _Agent],
    registered_sites: Collection[str],
    now: float,
    green_s: float,
    amber_s: float,
    sites: Collection[str] | None,
) -> list[SiteRow]:
    names = _site_names(db)
    by_site: dict[str, list[DeviceRow]] = {}
    for d in devices:
        by_site.setdefault(d.site, []).append(d)
    codes = set(by_site) | set(agents) | set(names) | set(registered_sites)
    if sites is not None:
        codes &= set(sites)
    out = []
    for site in sorted(codes):
        devs = by_site.get(site, [])
        agent = agents.get(site)
        live = [d for d in devs if d.key is None or d.key.revoked_from is None]
        seen = [d.last_seen for d in devs if d.last_seen is not None]
        if agent is not None:
            seen.append(agent.received)
        last_seen = max(seen) if seen else None
        state = worst([d.state for d in live]) or rag(
            agent.received if agent else None, now, green_s, amber_s
        )
        depth, age, ago = _backlog(agent, now)
        name, district = names.get(site, (None, None))
        counts = {s: sum(1 for d in live if d.state == s) for s in STATES}
        out.append(
            SiteRow(
                site=site,
                name=name,
                district=district,
                state=state,
                never_seen=last_seen is None,
                devices=len(devs),
                by_state=counts,
                never_seen_devices=sum(1 for d in devs if d.never_seen),
                last_seen=last_seen,
                silent_s=None if last_seen is None else round(now - last_seen, 1),
                records=sum(d.records for d in devs),
                missing=sum(d.missing for d in devs),
                agent_backlog=depth,
                backlog_age_s=age,
                agent_reported_s_ago=ago,
                open_alarms=sum(d.open_alarms for d in devs),
            )
        )
    return out


def device_rows(
    db: Db,
    registry: Devices = None,
    *,
    now: float | None = None,
    green_s: float = DEFAULT_GREEN_S,
    amber_s: float = DEFAULT_AMBER_S,
    sites: Collection[str] | None = None,
) -> list[DeviceRow]:
    """Every device, seen or only provisioned, by id."""
    now = time.time() if now is None else now
    devices = _registry(registry)
    return _device_rows(db, devices, _agents(db), now, green_s, amber_s, sites)


def site_rows(
    db: Db,
    registry: Devices = None,
    *,
    now: float | None = None,
    green_s: float = DEFAULT_GREEN_S,
    amber_s: float = DEFAULT_AMBER_S,
    sites: Collection[str] | None = None,
) -> list[SiteRow]:
    """Every site (with devices, an agent's report, or in the sites registry), by code."""
    return fleet(db, registry, now=now, green_s=green_s, amber_s=amber_s, sites=sites).sites


def fleet(
    db: Db,
    registry: Devices = None,
    *,
    now: float | None = None,
    green_s: float = DEFAULT_GREEN_S,
    amber_s: float = DEFAULT_AMBER_S,
    sites: Collection[str] | None = None,
) -> Fleet:
    """Sites and devices on one screen, with counts per state."""
    if not 0 < green_s <= amber_s:
        raise ValueError("thresholds must satisfy 0 < green_s <= amber_s")
    now = time.time() if now is None else now
    devices = _registry(registry)
    agents = _agents(db)
    rows = _device_rows(db, devices, agents, now, green_s, amber_s, sites)
    reg_sites = {d.site for d in devices.values()}
    site_list = _site_rows(db, rows, agents, reg_sites, now, green_s, amber_s, sites)
    return Fleet(
        now=now,
        green_s=green_s,
        amber_s=amber_s,
        sites=site_list,
        devices=rows,
        sites_by_state={s: sum(1 for r in site_list if r.state == s) for s in STATES},
        devices_by_state={s: sum(1 for r in rows if r.state == s) for s in STATES},
    )


_GAPS = (
    "SELECT prev + 1, seq - 1 FROM (SELECT seq, LAG(seq, 1, 0) OVER (ORDER BY seq) AS prev "
    "FROM records WHERE dev = ?) WHERE seq > prev + 1 LIMIT ?"
)
_GAPS_WITH_ARCHIVED = (
    "SELECT prev + 1, seq - 1 FROM (SELECT seq, LAG(seq, 1, 0) OVER (ORDER BY seq) AS prev "
    "FROM (SELECT seq FROM records WHERE dev = ? "
    "UNION ALL SELECT seq FROM archived_keys WHERE dev = ?)) WHERE seq > prev + 1 LIMIT ?"
)


def gap_ranges(
    db: Db, dev: str, max_seq: int, limit: int = MAX_GAP_RANGES
) -> tuple[list[tuple[int, int]], bool]:
    """The first ``limit`` missing seq ranges of ``dev`` below ``max_seq``, and whether
    there are more (reads the device's seqs through the ``(dev, seq)`` index; for a device
    with archived records, their keys too: archiving moves records, it makes no gaps)."""
    if archive_keys.device_horizon(db, dev):
        rows = db.execute(_GAPS_WITH_ARCHIVED, (dev, dev, limit + 1)).fetchall()
    else:
        rows = db.execute(_GAPS, (dev, limit + 1)).fetchall()
    gaps = [(int(a), int(b)) for a, b in rows]
    return gaps[:limit], len(gaps) > limit


def device_detail(
    db: Db,
    registry: Devices,
    dev: str,
    *,
    limit: int = 50,
    now: float | None = None,
    green_s: float = DEFAULT_GREEN_S,
    amber_s: float = DEFAULT_AMBER_S,
) -> DeviceDetail | None:
    """One device: its row, gap ranges, newest ``limit`` records, its site's last agent
    report and its newest alarms; None when neither stored nor provisioned."""
    now = time.time() if now is None else now
    agents = _agents(db)
    rows = _device_rows(db, _registry(registry), agents, now, green_s, amber_s, None, only=dev)
    if not rows:
        return None
    row = rows[0]
    gaps, more = gap_ranges(db, dev, row.max_seq)
    recent = [
        RecentRecord(int(s), str(k), int(t), float(r))
        for s, k, t, r in db.execute(
            "SELECT seq, kind, ts, received FROM records WHERE dev = ? ORDER BY seq DESC LIMIT ?",
            (dev, limit),
        )
    ]
    agent = agents.get(row.site)
    alarms = [
        {"id": int(i), "raised": float(r), "kind": str(k), "seq": s, "detail": str(d)}
        for i, r, k, s, d in db.execute(
            "SELECT id, raised, kind, seq, detail FROM alarms WHERE dev = ? "
            "ORDER BY id DESC LIMIT 20",
            (dev,),
        )
    ]
    return DeviceDetail(
        device=row,
        gaps=gaps,
        gaps_truncated=more,
        watermark=gaps[0][0] - 1 if gaps else row.max_seq,
        recent=recent,
        last_status=dict(agent.status, received=agent.received) if agent else None,
        alarms=alarms,
    )
