"""Records held back from the city platform: what ``GET /forwarding`` and ``traceedge
collector status`` list.

A record is held when the forwarder cannot send it (with ``format = "epcis"``, the EPCIS
mapper refuses it; docs/epcis.md). It stays in the store with the reason, an alarm raised
and counted, and is not counted as forwarded until a retry (each forwarder start, or
``traceedge collector forward-retry``) delivers it.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from collector.store import summarize
from hostlib.db import Db


class HeldRecord(BaseModel):
    dev: str
    seq: int
    kind: str
    reason: str = Field(description="why the forwarder could not send it (the mapper's error)")
    first_seen: float = Field(description="when it was first held, seconds since the epoch")
    last_tried: float = Field(description="the latest attempt, seconds since the epoch")
    attempts: int = Field(description="attempts to express it so far")
    retry_due: bool = Field(description="a retry was asked for and has not been made yet")


class ForwardingView(BaseModel):
    forwarded: int = Field(description="records the platform has accepted")
    backlog: int = Field(description="records waiting to be sent")
    held: int = Field(description="records held back (all of them, whatever the limit)")
    records: list[HeldRecord] = Field(description="held records, oldest first, up to the limit")


def forwarding_view(db: Db, limit: int = 100) -> ForwardingView:
    """Forwarding counts and the first ``limit`` held records (any connection)."""
    s = summarize(db)
    return ForwardingView(
        forwarded=s["forwarded"],
        backlog=s["forward_backlog"],
        held=s["forward_held"],
        records=held_records(db, limit),
    )


def held_records(db: Db, limit: int) -> list[HeldRecord]:
    """The first ``limit`` held records, oldest first (any connection)."""
    rows = db.execute(
        "SELECT h.dev, h.seq, r.kind, h.reason, h.first_seen, h.last_tried, h.attempts, h.due "
        "FROM forward_held h JOIN records r ON r.id = h.record_id "
        "ORDER BY h.record_id LIMIT ?",
        (limit,),
    ).fetchall()
    return [
        HeldRecord(
            dev=dev,
            seq=seq,
            kind=kind,
            reason=reason,
            first_seen=first,
            last_tried=last,
            attempts=attempts,
            retry_due=bool(due),
        )
        for dev, seq, kind, reason, first, last, attempts, due in rows
    ]
