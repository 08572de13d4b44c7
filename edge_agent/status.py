"""``traceedge agent status``: read an agent's outbox (read-only; works while it runs)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from edge_agent.outbox import ROW_OVERHEAD
from hostlib.errors import ConfigError
from hostlib.sqlite import open_ro
from hostlib.timefmt import duration, when

# what this agent refused to obey: forged or unusable acks and commands (DESIGN.md "Trust")
REFUSED = ("forged_acks", "bad_acks", "unknown_acks", "commands_rejected", "commands_applied")


def read_status(outbox_path: Path) -> dict[str, Any]:
    if not outbox_path.exists():
        raise ConfigError(str(outbox_path), "", "no outbox here: has the agent ever run?")
    with open_ro(outbox_path) as db:
        n, size, oldest = db.execute(
            "SELECT COUNT(*), COALESCE(SUM(size), 0), MIN(received) FROM outbox"
        ).fetchone()
        counters = dict(db.execute("SELECT name, value FROM counters").fetchall())
        meta = dict(db.execute("SELECT name, value FROM meta").fetchall())
        by_kind = dict(db.execute("SELECT kind, COUNT(*) FROM outbox GROUP BY kind").fetchall())
        quarantine = dict(
            db.execute("SELECT reason, COUNT(*) FROM quarantine GROUP BY reason").fetchall()
        )
    live = json.loads(meta.get("status", "{}"))
    now = time.time()
    alarms = []
    if live.get("registry_problem"):
        alarms.append("device registry: the file on disk is broken or gone; last good in force")
    if live.get("waiting_for_db"):
        alarms.append(f"waiting for the database: {live['waiting_for_db']} (nothing is acked)")
    if quarantine.get("internal_error"):
        alarms.append(
            f"{quarantine['internal_error']} messages made the intake fail; quarantined "
            "as internal_error (a bug: report it)"
        )
    if meta.get("alarm_outbox_full") == "1":
        alarms.append("outbox_full: only protected records remain; intake is being refused")
    updated = live.get("updated_at")
    running = updated is not None and now - float(updated) < 5.0
    return {
        "running": running,
        "updated_at": updated,
        "site": live.get("site"),
        "depth": int(n),
        "bytes": int(size) + ROW_OVERHEAD * int(n),
        "max_bytes": live.get("max_bytes"),
        "oldest_age_s": round(now - oldest, 1) if oldest is not None else None,
        "waiting_by_kind": by_kind,
        "last_ack_at": live.get("last_ack_at"),
        "last_ack_age_s": round(now - live["last_ack_at"], 1) if live.get("last_ack_at") else None,
        "intake_per_s": live.get("intake_per_s", 0.0),
        "uplink_per_s": live.get("uplink_per_s", 0.0),
        "uplink_connected": bool(live.get("uplink_connected")) and running,
        # batches sent again: after an ack timeout or a reconnect, and (of those) at once
        # because a collector announced itself after a broker restart
        "resends": int(live.get("resends", 0)),
        "collector_resends": int(live.get("collector_resends", 0)),
        "local_connected": bool(live.get("local_connected")) and running,
        "uplink_error": live.get("uplink_error", ""),
        "counters": counters,
        "cylinder_registry_version": live.get("cylinder_registry_version", 0),
        "cylinders_known": live.get("cylinders_known", 0),
        "refused": {
            k: v for k, v in live.items() if k in REFUSED or k.startswith("commands_rejected_")
        },
        "gate": {k: live.get(f"gate_{k}", 0) for k in ("allow", "deny", "errors", "refused")},
        "dispatch": {
            k: live.get(f"dispatch_{k}", 0) for k in ("allow", "deny", "errors", "refused")
        },
        "licence_registry_version": live.get("licence_registry_version", 0),
        "licences_known": live.get("licences_known", 0),
        "recall_list_version": live.get("recall_list_version", 0),
        "licence_use_version": live.get("licence_use_version", 0),
        "quarantine_by_reason": quarantine,
        "sources": live.get("sources", []),
        "alarms": alarms,
    }


def format_status(st: dict[str, Any], now: float | None = None) -> str:
    """:func:`read_status` for a person: times as local time and how long ago."""
    now = time.time() if now is None else now
    if st["running"]:
        state = "running"
    elif st["updated_at"] is not None:
        state = f"NOT RUNNING (its last status: {when(st['updated_at'], now)})"
    else:
        state = "NOT RUNNING (it has written no status yet)"
    oldest = st["oldest_age_s"]
    lines = [
        f"agent for site {st['site'] or '?'}: {state}",
        f"  outbox      {st['depth']} records, {st['bytes']} bytes"
        + (f" of {st['max_bytes']}" if st["max_bytes"] else ""),
        f"  oldest      {'-' if oldest is None else duration(oldest)}",
        f"  last ack    {when(st['last_ack_at'], now)}",
        f"  rates       intake {st['intake_per_s']}/s, uplink {st['uplink_per_s']}/s",
        f"  links       terminals {'up' if st['local_connected'] else 'DOWN'}, "
        f"central {'up' if st['uplink_connected'] else 'DOWN'}"
        + (f" ({st['uplink_error']})" if st["uplink_error"] else ""),
        "  counters    " + ", ".join(f"{k} {v}" for k, v in sorted(st["counters"].items())),
    ]
    lines.append(
        f"  fill gate   registry v{st['cylinder_registry_version']}, "
        + ", ".join(f"{k} {v}" for k, v in st["gate"].items())
    )
    if st["licence_registry_version"] or any(st["dispatch"].values()):
        lines.append(
            f"  dispatch    licences v{st['licence_registry_version']} "
            f"({st['licences_known']}), use elsewhere v{st['licence_use_version']}, "
            f"recalls v{st['recall_list_version']}, "
            + ", ".join(f"{k} {v}" for k, v in st["dispatch"].items())
        )
    if any(st["refused"].values()):
        r = ", ".join(f"{k} {v}" for k, v in sorted(st["refused"].items()) if v)
        lines.append(f"  refused     {r}")
    if st["quarantine_by_reason"]:
        q = ", ".join(f"{k} {v}" for k, v in sorted(st["quarantine_by_reason"].items()))
        lines.append(f"  quarantine  {q}")
    for src in st["sources"]:
        lines.append("  " + source_line(src, now, st["running"]))
    for a in st["alarms"]:
        lines.append(f"  ALARM       {a}")
    return "\n".join(lines)


def source_line(src: dict[str, Any], now: float, running: bool) -> str:
    """One source for a person: its state since when, why it is down, its counters."""
    state = str(src.get("state", "?"))
    shown = state.upper() if state == "down" else state
    if not running:
        shown = f"{shown} (when the agent last ran)"
    since = when(src.get("since"), now)
    line = f"source      {src.get('name')} ({src.get('kind')}): {shown} since {since}"
    if src.get("error"):
        line += f": {src['error']}"
    counters = src.get("counters") or {}
    if counters:
        line += "; " + ", ".join(f"{k} {v}" for k, v in sorted(counters.items()))
    return line
