"""``traceedge collector status`` for a person: :func:`collector.store.summarize` (plus the
held records and, if asked, the device report) as text, times as local time and how long
ago. ``--json`` prints the summary itself, raw epochs and all."""

from __future__ import annotations

from typing import Any

from collector.held import HeldRecord
from hostlib.timefmt import duration, when

SHOWN_APART = ("processes", "quarantine_by_reason", "device_report", "forward_held_records")
"""Summary keys with a layout of their own; every other key is a number on its own line."""


def running(summary: dict[str, Any]) -> bool:
    """Whether any collector process on this store has written a heartbeat lately."""
    return any(p["running"] for p in summary["processes"].values())


def format_status(summary: dict[str, Any], held: list[HeldRecord], now: float) -> str:
    """The summary, ``held`` (the first of the held records) and the device report if the
    summary carries one."""
    procs = summary["processes"]
    if running(summary):
        live = sum(p["running"] for p in procs.values())
        state = f"running ({live} of {len(procs)} processes)"
    elif procs:
        state = "NOT RUNNING (no process has written a heartbeat in the last 5 s)"
    else:
        state = "NOT RUNNING (no collector process has run on this store)"
    lines = [f"collector: {state}"]
    for name, p in sorted(procs.items()):
        lines.append(f"  {name:20} {_process(p, now)}")
    lines += [f"{k:20} {v}" for k, v in summary.items() if k not in SHOWN_APART]
    if summary["quarantine_by_reason"]:
        reasons = sorted(summary["quarantine_by_reason"].items())
        lines.append("quarantined by reason: " + ", ".join(f"{k} {v}" for k, v in reasons))
    if held:
        lines.append("held back from the platform, not forwarded (tried again when a collector")
        lines.append("starts and on `traceedge collector forward-retry`):")
    for h in held:
        lines.append(f"  {h.dev}/{h.seq} {h.kind}: {h.reason} (attempts {h.attempts})")
    if summary["forward_held"] > len(held):
        more = summary["forward_held"] - len(held)
        lines.append(f"  ... and {more} more (GET /forwarding lists them)")
    if "device_report" in summary:
        lines.append("devices:")
    for d in summary.get("device_report", []):
        if d.get("never_seen"):
            lines.append(
                f"  {d['dev']:24} NEVER SEEN (provisioned {d.get('type') or ''} at {d['site']})"
            )
            continue
        lines.append(
            f"  {d['dev']:24} records {d['records']:7} watermark {d['watermark']:7} "
            f"missing {d['missing']}  last seen {when(d['last_seen'], now)}"
        )
    return "\n".join(lines)


def _process(p: dict[str, Any], now: float) -> str:
    """One collector process's heartbeat: up or not, its links, when it was last heard."""
    if not p["running"]:
        return f"STOPPED, last heartbeat {when(p['at'], now)}"
    dead = p.get("dead_workers") or []  # heartbeats of older versions lack it
    if dead:
        return f"WORKER DEAD ({', '.join(dead)}): exiting for a restart"
    broker = "broker up" if p["connected"] else f"broker DOWN ({p['broker_error'] or '?'})"
    platform = f", platform error: {p['platform_error']}" if p["platform_error"] else ""
    return (
        f"running, {broker}{platform}, {p['batches']} batches, queue {p['queue']}, "
        + (f"{p['poisoned']} messages failed (quarantined), " if p.get("poisoned") else "")
        + f"heartbeat {duration(now - p['at'])} ago"
    )
