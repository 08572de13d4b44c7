"""Elevators at the collector: registry, status, faults and alarms, maintenance visits.

Computed when asked from the stored ``elevator.*`` records (an expression index on the body's
``reg`` keeps that cheap), so every reader needs only a read-only connection:

* **Fault episodes** from ``elevator.fault`` events in capture order (``ts``, then device
  and sequence): a ``raised`` fault is open until a ``cleared`` of the same fault; raising
  an open fault again does not open a second one (it counts ``raises``); a ``cleared``
  with nothing open is kept as a closed episode whose start is the body's ``raised_ts``.
  Trapped passengers and the car alarm button are *alarms*; the rest are faults.
* **Maintenance visits** from ``elevator.maintenance`` sign-in / sign-out: a sign-out pairs
  with the sign-in of the same worker and ``time_in`` (else the latest unpaired sign-in of
  that worker in the 24 h before the sign-out); duration = ``time_out - time_in``. A sign-in
  without sign-out is a visit in progress.
* **Overdue maintenance**: the last completed visit of a maintenance plan (half-monthly,
  quarterly, half-yearly, yearly, or no plan given; repairs and rescues do not count) ended
  more than ``days`` (default 15) before ``now``, or there is none on record.

Across the fleet, :func:`fleet_faults` lists the elevators with an open fault or alarm, or a
trapped-passenger episode since a given time, from ``elevator_fault_last``: each fault's
latest event, kept by a trigger as fault records are stored.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, Field

from hostlib.db import Db, dialect
from hostlib.sqlite import write_tx

DEFAULT_OVERDUE_DAYS = 15
DAY_MS = 86_400_000
PAIR_WINDOW_MS = DAY_MS
ALARM_FAULTS = ("trapped_in_zone", "trapped_out_of_zone", "alarm_button")
TRAPPED_FAULTS = ("trapped_in_zone", "trapped_out_of_zone")
# Visits that count as maintenance (TSG T5002 plans); repair and rescue visits do not.
MAINTENANCE_PLANS = ("half_month", "quarter", "half_year", "year")

# Queries name an elevator by json_extract(rec, '$.body.reg'), spelled exactly as in the
# index below: SQLite uses an expression index only for the same expression.
SCHEMA = """
CREATE TABLE IF NOT EXISTS elevators (
    reg TEXT PRIMARY KEY,
    address TEXT NOT NULL,
    company TEXT,
    site TEXT
);
CREATE INDEX IF NOT EXISTS records_elevator_reg
    ON records(json_extract(rec, '$.body.reg'), kind, ts)
    WHERE json_extract(rec, '$.body.reg') IS NOT NULL;
DROP INDEX IF EXISTS records_elevator_fault;

-- The latest event (capture order: ts, dev, seq) of each fault of each elevator, kept by a
-- trigger as fault records are stored (a fault is open while its latest event is a raise):
-- the fleet's open faults without reading the fault history.
CREATE TABLE IF NOT EXISTS elevator_fault_last (
    reg TEXT NOT NULL,
    fault TEXT NOT NULL,
    ts INTEGER NOT NULL,
    dev TEXT NOT NULL,
    seq INTEGER NOT NULL,
    state TEXT NOT NULL,
    site TEXT NOT NULL,
    PRIMARY KEY (reg, fault)
);
CREATE TRIGGER IF NOT EXISTS elevator_fault_last_feed AFTER INSERT ON records
WHEN NEW.kind = 'elevator.fault'
BEGIN
    INSERT INTO elevator_fault_last(reg, fault, ts, dev, seq, state, site)
    SELECT json_extract(NEW.rec, '$.body.reg'), json_extract(NEW.rec, '$.body.fault'),
           NEW.ts, NEW.dev, NEW.seq, json_extract(NEW.rec, '$.body.state'), NEW.site
    WHERE json_extract(NEW.rec, '$.body.reg') IS NOT NULL
      AND json_extract(NEW.rec, '$.body.fault') IS NOT NULL
    ON CONFLICT(reg, fault) DO UPDATE SET ts = excluded.ts, dev = excluded.dev,
        seq = excluded.seq, state = excluded.state, site = excluded.site
    WHERE (excluded.ts, excluded.dev, excluded.seq)
        > (elevator_fault_last.ts, elevator_fault_last.dev, elevator_fault_last.seq);
END;
"""

# Fault records stored before the table existed, once, when it is made.
_BACKFILL = """
INSERT INTO elevator_fault_last(reg, fault, ts, dev, seq, state, site)
SELECT json_extract(rec, '$.body.reg'), json_extract(rec, '$.body.fault'), ts, dev, seq,
       json_extract(rec, '$.body.state'), site
FROM records
WHERE kind = 'elevator.fault' AND json_extract(rec, '$.body.reg') IS NOT NULL
  AND json_extract(rec, '$.body.fault') IS NOT NULL
ORDER BY ts, dev, seq
ON CONFLICT(reg, fault) DO UPDATE SET ts = excluded.ts, dev = excluded.dev,
    seq = excluded.seq, state = excluded.state, site = excluded.site
WHERE (excluded.ts, excluded.dev, excluded.seq)
    > (elevator_fault_last.ts, elevator_fault_last.dev, elevator_fault_last.seq);
"""


def ensure_schema(db: sqlite3.Connection) -> None:
    """Create the registry table, the index and the fault-state table with its trigger on a
    store, filling that table from the fault records already stored when it is new
    (idempotent; outside a transaction)."""
    if db.in_transaction:
        db.execute("COMMIT")
    fresh = (
        db.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'elevator_fault_last'"
        ).fetchone()
        is None
    )
    db.executescript("BEGIN IMMEDIATE;\n" + SCHEMA + (_BACKFILL if fresh else "") + "COMMIT;")


def valid_reg(reg: object) -> bool:
    """A registration code: 20 of ``0-9 A-Z``."""
    return (
        isinstance(reg, str)
        and len(reg) == 20
        and all(ch in "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ" for ch in reg)
    )


def import_elevators(db: Db, rows: Iterable[object]) -> int:
    """Insert or replace registry rows; returns how many were imported.

    Each row is an object with ``reg`` (registration code, 20 of ``0-9 A-Z``) and
    ``address`` (1-200 characters), both required, and optionally ``company`` (the
    maintenance company) and ``site`` (at most 64 characters each). Importing a ``reg``
    again replaces its row. All or nothing: a bad row raises ``ValueError`` naming its index
    and field, and nothing is imported.
    """
    clean: list[tuple[str, str, str | None, str | None]] = []
    for i, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise ValueError(f"elevator row {i}: not an object")
        reg, address = row.get("reg"), row.get("address")
        if not isinstance(reg, str) or not valid_reg(reg):
            raise ValueError(f"elevator row {i}: reg must be 20 of 0-9 A-Z")
        if not isinstance(address, str) or not address or len(address) > 200:
            raise ValueError(f"elevator row {i}: address must be text of 1-200 characters")
        optional: list[str | None] = []
        for name in ("company", "site"):
            val = row.get(name) or None
            if val is not None and (not isinstance(val, str) or len(val) > 64):
                raise ValueError(f"elevator row {i}: {name} must be text of at most 64 characters")
            optional.append(val)
        clean.append((reg, address, optional[0], optional[1]))
    with write_tx(db):
        db.executemany(
            "INSERT INTO elevators(reg, address, company, site) VALUES (?, ?, ?, ?) "
            "ON CONFLICT(reg) DO UPDATE SET address = excluded.address, "
            "company = excluded.company, site = excluded.site",
            clean,
        )
    return len(clean)


# ---------------------------------------------------------------------------------------------
# Read models


class Registration(BaseModel):
    reg: str = Field(description="registration code (20 characters)")
    address: str
    company: str | None = Field(default=None, description="maintenance company")
    site: str | None = None


class StatusSample(BaseModel):
    dev: str
    seq: int
    ts: int = Field(description="capture time, ms since the epoch (UTC)")
    dir: str = Field(description="stopped, up, down")
    floor: int
    door: str
    door_zone: bool
    people: bool | None = Field(None, description="absent: no sensor in the car")
    inspection: bool
    maintenance: bool
    faults: list[str] = Field(description="faults active in this sample")
    runs: int | None = None
    door_cycles: int | None = None
    run_hours: int | None = None


class FaultEvent(BaseModel):
    dev: str
    seq: int
    ts: int
    fault: str
    state: str = Field(description="raised or cleared")
    floor: int
    door: str | None = None
    people: bool | None = None
    speed_mm_s: int | None = None
    raised_ts: int | None = None
    detail: str | None = None


class FaultEpisode(BaseModel):
    fault: str
    alarm: bool = Field(description="trapped passengers or the car's alarm button")
    open: bool
    raised_ts: int | None = Field(description="first raise (null: raise not on record)")
    last_raised_ts: int | None
    cleared_ts: int | None
    duration_ms: int | None = Field(description="cleared - raised, when both are known")
    raises: int = Field(description="raise events collapsed into this episode")
    floor: int
    people: bool | None = None
    detail: str | None = None


class MaintenanceEvent(BaseModel):
    dev: str
    seq: int
    ts: int
    event: str = Field(description="sign_in or sign_out")
    worker: str
    card: str
    company: str
    plan: str | None = None
    time_in: int
    time_out: int | None = None
    items: list[str] | None = None


class Visit(BaseModel):
    worker: str
    card: str
    company: str
    plan: str | None
    time_in: int
    time_out: int | None = Field(description="null: signed in, not (yet) out")
    duration_ms: int | None
    duration_min: int | None = Field(description="whole minutes, rounded down")
    items: list[str]
    signed_in: bool = Field(description="a sign-in record is stored for this visit")
    signed_out: bool
    counts_as_maintenance: bool = Field(description="a completed visit of a maintenance plan")


class HistoryEntry(BaseModel):
    kind: str
    dev: str
    seq: int
    ts: int
    status: StatusSample | None = None
    fault: FaultEvent | None = None
    maintenance: MaintenanceEvent | None = None


class ElevatorView(BaseModel):
    reg: str
    registered: bool
    registration: Registration | None
    last_status: StatusSample | None
    open_faults: list[FaultEpisode] = Field(description="open faults and alarms, oldest first")
    trapped_passengers: bool = Field(description="a trapped-passenger alarm is open")
    recent_faults: list[FaultEpisode] = Field(description="latest episodes, newest first")
    visits: list[Visit] = Field(description="latest maintenance visits, newest first")
    last_maintenance_ms: int | None = Field(description="end of the last completed visit")
    overdue: bool
    overdue_days: int = Field(description="the interval the overdue flag was computed for")
    now_ms: int


class ElevatorFaults(BaseModel):
    """An elevator with open faults or trapped-passenger events: one row of the fleet list."""

    reg: str
    site: str | None = Field(description="registry site, else the site its faults came from")
    registration: Registration | None
    open_faults: list[FaultEpisode] = Field(description="open faults and alarms, oldest first")
    trapped_passengers: bool = Field(description="a trapped-passenger alarm is open")
    trapped_events: list[FaultEpisode] = Field(
        description="trapped-passenger episodes raised since the reference time, newest first"
    )
    last_fault_ts: int = Field(description="capture time of its newest fault event")


class OverdueElevator(BaseModel):
    reg: str
    registration: Registration | None
    last_maintenance_ms: int | None = Field(description="null: no completed visit on record")
    days_since: int | None = Field(description="whole days since the last visit")


# ---------------------------------------------------------------------------------------------
# Pure parts


def _order(e: FaultEvent | MaintenanceEvent) -> tuple[int, str, int]:
    return (e.ts, e.dev, e.seq)


def fault_episodes(events: Iterable[FaultEvent]) -> list[FaultEpisode]:
    """Episodes from raised / cleared events (any order in, capture order applied)."""
    out: list[FaultEpisode] = []
    open_: dict[str, int] = {}
    for ev in sorted(events, key=_order):
        idx = open_.get(ev.fault)
        if ev.state == "raised":
            if idx is not None:
                ep = out[idx]
                out[idx] = ep.model_copy(update={"raises": ep.raises + 1, "last_raised_ts": ev.ts})
                continue
            open_[ev.fault] = len(out)
            out.append(
                FaultEpisode(
                    fault=ev.fault,
                    alarm=ev.fault in ALARM_FAULTS,
                    open=True,
                    raised_ts=ev.ts,
                    last_raised_ts=ev.ts,
                    cleared_ts=None,
                    duration_ms=None,
                    raises=1,
                    floor=ev.floor,
                    people=ev.people,
                    detail=ev.detail,
                )
            )
        elif idx is not None:
            ep = out[idx]
            del open_[ev.fault]
            start = ep.raised_ts
            out[idx] = ep.model_copy(
                update={
                    "open": False,
                    "cleared_ts": ev.ts,
                    "duration_ms": None if start is None else max(0, ev.ts - start),
                }
            )
        else:
            start = ev.raised_ts
            out.append(
                FaultEpisode(
                    fault=ev.fault,
                    alarm=ev.fault in ALARM_FAULTS,
                    open=False,
                    raised_ts=start,
                    last_raised_ts=start,
                    cleared_ts=ev.ts,
                    duration_ms=None if start is None else max(0, ev.ts - start),
                    raises=0,
                    floor=ev.floor,
                    people=ev.people,
                    detail=ev.detail,
                )
            )
    return out


def _counts(plan: str | None, time_out: int | None) -> bool:
    return time_out is not None and (plan is None or plan in MAINTENANCE_PLANS)


def pair_visits(events: Iterable[MaintenanceEvent]) -> list[Visit]:
    """Visits from sign-in / sign-out events (any order in), oldest first."""
    evs = sorted(events, key=_order)
    ins = [e for e in evs if e.event == "sign_in"]
    used: set[int] = set()
    visits: list[Visit] = []
    for out in sorted((e for e in evs if e.event == "sign_out"), key=lambda e: e.time_out or 0):
        t_out = out.time_out if out.time_out is not None else out.ts
        match = next(
            (
                i
                for i, e in enumerate(ins)
                if i not in used and e.worker == out.worker and e.time_in == out.time_in
            ),
            None,
        )
        if match is None:
            cands = [
                i
                for i, e in enumerate(ins)
                if i not in used
                and e.worker == out.worker
                and t_out - PAIR_WINDOW_MS <= e.time_in <= t_out
            ]
            match = max(cands, key=lambda i: ins[i].time_in) if cands else None
        if match is not None:
            used.add(match)
        dur = max(0, t_out - out.time_in)
        plan = (
            out.plan if out.plan is not None else (ins[match].plan if match is not None else None)
        )
        visits.append(
            Visit(
                worker=out.worker,
                card=out.card,
                company=out.company,
                plan=plan,
                time_in=out.time_in,
                time_out=t_out,
                duration_ms=dur,
                duration_min=dur // 60_000,
                items=list(out.items or []),
                signed_in=match is not None,
                signed_out=True,
                counts_as_maintenance=_counts(plan, t_out),
            )
        )
    for i, e in enumerate(ins):
        if i not in used:
            visits.append(
                Visit(
                    worker=e.worker,
                    card=e.card,
                    company=e.company,
                    plan=e.plan,
                    time_in=e.time_in,
                    time_out=None,
                    duration_ms=None,
                    duration_min=None,
                    items=[],
                    signed_in=True,
                    signed_out=False,
                    counts_as_maintenance=False,
                )
            )
    visits.sort(key=lambda v: (v.time_in, v.time_out or 0))
    return visits


def is_overdue(last_ms: int | None, now_ms: int, days: int = DEFAULT_OVERDUE_DAYS) -> bool:
    """No completed maintenance visit, or the last one ended more than ``days`` before now."""
    return last_ms is None or now_ms - last_ms > days * DAY_MS


# ---------------------------------------------------------------------------------------------
# Readers


@dataclass(frozen=True)
class _Row:
    dev: str
    seq: int
    kind: str
    ts: int
    body: dict[str, Any]


# An elevator's records of one kind, oldest or newest first (no limit: NO_LIMIT, as SQLite's
# LIMIT -1 is refused by PostgreSQL).
NO_LIMIT = 2**62
_ROWS = {
    False: "SELECT dev, seq, kind, ts, rec FROM records "
    "WHERE json_extract(rec, '$.body.reg') = ? AND kind = ? ORDER BY ts ASC, id ASC LIMIT ?",
    True: "SELECT dev, seq, kind, ts, rec FROM records "
    "WHERE json_extract(rec, '$.body.reg') = ? AND kind = ? ORDER BY ts DESC, id DESC LIMIT ?",
}


def _rows(
    db: Db,
    reg: str,
    kind: str,
    limit: int | None = None,
    newest_first: bool = False,
) -> list[_Row]:
    rows = db.execute(_ROWS[newest_first], (reg, kind, NO_LIMIT if limit is None else limit))
    return [_Row(str(d), int(s), str(k), int(t), json.loads(r)["body"]) for d, s, k, t, r in rows]


def _status(r: _Row) -> StatusSample:
    c = r.body.get("counters") or {}
    return StatusSample(
        dev=r.dev,
        seq=r.seq,
        ts=r.ts,
        dir=r.body["dir"],
        floor=r.body["floor"],
        door=r.body["door"],
        door_zone=r.body["door_zone"],
        people=r.body.get("people"),
        inspection=r.body["inspection"],
        maintenance=r.body["maintenance"],
        faults=list(r.body["faults"]),
        runs=c.get("runs"),
        door_cycles=c.get("door_cycles"),
        run_hours=c.get("run_hours"),
    )


def _fault(r: _Row) -> FaultEvent:
    b = r.body
    return FaultEvent(
        dev=r.dev,
        seq=r.seq,
        ts=r.ts,
        fault=b["fault"],
        state=b["state"],
        floor=b["floor"],
        door=b.get("door"),
        people=b.get("people"),
        speed_mm_s=b.get("speed_mm_s"),
        raised_ts=b.get("raised_ts"),
        detail=b.get("detail"),
    )


def _maintenance(r: _Row) -> MaintenanceEvent:
    b = r.body
    return MaintenanceEvent(
        dev=r.dev,
        seq=r.seq,
        ts=r.ts,
        event=b["event"],
        worker=b["worker"],
        card=b["card"],
        company=b["company"],
        plan=b.get("plan"),
        time_in=b["time_in"],
        time_out=b.get("time_out"),
        items=b.get("items"),
    )


def registration(db: Db, reg: str) -> Registration | None:
    row = db.execute(
        "SELECT reg, address, company, site FROM elevators WHERE reg = ?", (reg,)
    ).fetchone()
    if row is None:
        return None
    return Registration(reg=row[0], address=row[1], company=row[2], site=row[3])


def known(db: Db, reg: str) -> bool:
    """Registered, or named by at least one stored record."""
    if registration(db, reg) is not None:
        return True
    return (
        db.execute(
            "SELECT 1 FROM records WHERE json_extract(rec, '$.body.reg') = ? LIMIT 1", (reg,)
        ).fetchone()
        is not None
    )


def last_status(db: Db, reg: str) -> StatusSample | None:
    rows = _rows(db, reg, "elevator.status", 1, newest_first=True)
    return _status(rows[0]) if rows else None


def faults(db: Db, reg: str) -> list[FaultEpisode]:
    """Every fault episode of an elevator, oldest first."""
    return fault_episodes(_fault(r) for r in _rows(db, reg, "elevator.fault"))


def open_faults(db: Db, reg: str) -> list[FaultEpisode]:
    return [e for e in faults(db, reg) if e.open]


def visits(db: Db, reg: str) -> list[Visit]:
    """Every maintenance visit of an elevator, oldest first."""
    return pair_visits(_maintenance(r) for r in _rows(db, reg, "elevator.maintenance"))


def history(db: Db, reg: str, limit: int = 100) -> list[HistoryEntry]:
    """The latest ``limit`` records of an elevator (status, faults, maintenance), newest first."""
    rows: list[_Row] = []
    for kind in ("elevator.status", "elevator.fault", "elevator.maintenance"):
        rows += _rows(db, reg, kind, limit, newest_first=True)
    rows.sort(key=lambda r: (r.ts, r.dev, r.seq), reverse=True)
    out: list[HistoryEntry] = []
    for r in rows[:limit]:
        entry = HistoryEntry(kind=r.kind, dev=r.dev, seq=r.seq, ts=r.ts)
        if r.kind == "elevator.status":
            entry.status = _status(r)
        elif r.kind == "elevator.fault":
            entry.fault = _fault(r)
        else:
            entry.maintenance = _maintenance(r)
        out.append(entry)
    return out


def _last_maintenance(vs: Sequence[Visit]) -> int | None:
    ends = [v.time_out for v in vs if v.counts_as_maintenance and v.time_out is not None]
    return max(ends) if ends else None


def elevator_view(
    db: Db,
    reg: str,
    now_ms: int,
    days: int = DEFAULT_OVERDUE_DAYS,
    recent: int = 20,
) -> ElevatorView | None:
    """Registry, last status, open and recent faults, visits, overdue flag; None if unknown."""
    if not known(db, reg):
        return None
    reg_row = registration(db, reg)
    episodes = faults(db, reg)
    vs = visits(db, reg)
    last = _last_maintenance(vs)
    open_eps = [e for e in episodes if e.open]
    return ElevatorView(
        reg=reg,
        registered=reg_row is not None,
        registration=reg_row,
        last_status=last_status(db, reg),
        open_faults=open_eps,
        trapped_passengers=any(e.fault in TRAPPED_FAULTS for e in open_eps),
        recent_faults=list(reversed(episodes[-recent:])),
        visits=list(reversed(vs[-recent:])),
        last_maintenance_ms=last,
        overdue=is_overdue(last, now_ms, days),
        overdue_days=days,
        now_ms=now_ms,
    )


# Every reg named by a record. SQLite reads them off records_elevator_reg alone; PostgreSQL
# cannot take an expression's value from an index, so DISTINCT would parse every record:
# there the index is walked one reg at a time (one probe per elevator).
_RECORD_REGS = {
    "sqlite": "SELECT DISTINCT json_extract(rec, '$.body.reg') FROM records "
    "WHERE json_extract(rec, '$.body.reg') IS NOT NULL",
    "postgres": "WITH RECURSIVE r(reg) AS ("
    "SELECT MIN(json_extract(rec, '$.body.reg')) FROM records "
    "WHERE json_extract(rec, '$.body.reg') IS NOT NULL "
    "UNION ALL SELECT (SELECT MIN(json_extract(rec, '$.body.reg')) FROM records "
    "WHERE json_extract(rec, '$.body.reg') > r.reg) FROM r WHERE r.reg IS NOT NULL) "
    "SELECT reg FROM r WHERE reg IS NOT NULL",
}


def overdue(db: Db, now_ms: int, days: int = DEFAULT_OVERDUE_DAYS) -> list[OverdueElevator]:
    """Elevators (registered or seen in records) whose maintenance is overdue, by reg."""
    regs = {r for (r,) in db.execute("SELECT reg FROM elevators")}
    regs |= {r for (r,) in db.execute(_RECORD_REGS[dialect(db)]) if isinstance(r, str)}
    out: list[OverdueElevator] = []
    for reg in sorted(regs):
        ms = _last_maintenance(visits(db, reg))
        if not is_overdue(ms, now_ms, days):
            continue
        out.append(
            OverdueElevator(
                reg=reg,
                registration=registration(db, reg),
                last_maintenance_ms=ms,
                days_since=None if ms is None else (now_ms - ms) // DAY_MS,
            )
        )
    return out


def fleet_faults(
    db: Db,
    *,
    since_ms: int | None = None,
    sites: Collection[str] | None = None,
    limit: int | None = None,
) -> list[ElevatorFaults]:
    """Every elevator with an open fault or alarm, or a trapped-passenger episode raised at
    or after ``since_ms`` (None: any), trapped ones first, then newest fault first; the first
    ``limit`` of them. ``sites``: only elevators of these sites (a principal's scope; None:
    all).

    The candidates come from ``elevator_fault_last`` (each fault's latest event; a trapped
    event since ``since_ms`` leaves its latest one at or after it), so the cost does not grow
    with the fault history; episodes are then read, as on the elevator's own page
    (:func:`faults`), only for the elevators listed."""
    regs = {
        str(r[0]): Registration(reg=r[0], address=r[1], company=r[2], site=r[3])
        for r in db.execute("SELECT reg, address, company, site FROM elevators")
    }
    newest: dict[str, tuple[tuple[int, bytes, int], str]] = {}  # capture order, site
    open_now: dict[str, set[str]] = {}
    trapped_since: set[str] = set()
    for reg, fault, ts, dev, seq, state, site in db.execute(
        "SELECT reg, fault, ts, dev, seq, state, site FROM elevator_fault_last"
    ):
        reg, ts = str(reg), int(ts)
        order = (ts, str(dev).encode(), int(seq))  # the trigger's order: dev bytewise
        if reg not in newest or order > newest[reg][0]:
            newest[reg] = (order, str(site))
        if state == "raised":
            open_now.setdefault(reg, set()).add(str(fault))
        if fault in TRAPPED_FAULTS and (since_ms is None or ts >= since_ms):
            trapped_since.add(reg)
    picked: list[tuple[bool, int, str, str]] = []
    for reg in set(open_now) | trapped_since:
        reg_row = regs.get(reg)
        site = reg_row.site if reg_row is not None and reg_row.site else newest[reg][1]
        if sites is not None and site not in sites:
            continue
        trapped_now = bool(open_now.get(reg, set()) & set(TRAPPED_FAULTS))
        picked.append((not trapped_now, -newest[reg][0][0], reg, site))
    picked.sort()
    out: list[ElevatorFaults] = []
    for _, neg_ts, reg, site in picked:
        if limit is not None and len(out) >= limit:
            break
        episodes = faults(db, reg)
        open_eps = [e for e in episodes if e.open]
        trapped = [
            e
            for e in episodes
            if e.fault in TRAPPED_FAULTS
            and (e.open or since_ms is None or (e.raised_ts or e.cleared_ts or 0) >= since_ms)
        ]
        if not open_eps and not trapped:  # its trapped episode began before since_ms
            continue
        out.append(
            ElevatorFaults(
                reg=reg,
                site=site,
                registration=regs.get(reg),
                open_faults=open_eps,
                trapped_passengers=any(e.fault in TRAPPED_FAULTS for e in open_eps),
                trapped_events=list(reversed(trapped)),
                last_fault_ts=-neg_ts,
            )
        )
    return out
