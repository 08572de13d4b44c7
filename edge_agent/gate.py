"""Answers fill-gate requests from cylinder readers, offline, and records each decision.

Each decision becomes a ``cylinder.check`` record of the gateway's own identity, committed
to the outbox (its sequence advanced in the same transaction) *before* the answer goes
out: no filling is ever allowed without its record. Without an identity, or with the
outbox refusing, the answer is ``deny`` with the error.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable

from edge_agent.fillgate import GateRequestError, check_body, decide, parse_request
from edge_agent.outbox import Incoming, Outbox
from edge_agent.registry_cache import RegistryCache
from hostlib.registry import Device
from wire import topics
from wire.canonical import canonical
from wire.envelope import make_record
from wire.tracecode import CST_OFFSET_MIN, local_day

log = logging.getLogger(__name__)

OWN_SEQ = "own_seq"
OWN_BOOT = "own_boot"


class FillGate:
    def __init__(
        self,
        outbox: Outbox,
        cache: RegistryCache,
        identity: Device | None,
        station: str,
        answer: Callable[[str, bytes], bool],
        prefix: str = "",
        utc_offset_minutes: int = CST_OFFSET_MIN,
    ) -> None:
        self.outbox = outbox
        self.cache = cache
        self.identity = identity
        self.station = station
        self.answer = answer
        self.prefix = prefix
        self.offset_min = utc_offset_minutes
        self.decisions = {"allow": 0, "deny": 0, "error": 0}
        self.boot = 0
        if identity is not None:
            self.boot = int(outbox.get_meta(OWN_BOOT) or 0) + 1
            outbox.set_meta({OWN_BOOT: str(self.boot)})

    def today(self) -> str:
        """The station's local date, ``YYYY-MM-DD`` like the registry's inspection dates."""
        return local_day(int(time.time() * 1000), self.offset_min)

    def handle(self, topic: str, payload: bytes) -> None:
        parts = topics.split(topic, self.prefix)
        dev = parts[1]
        reply_to = topics.terminal_cmd(dev, self.prefix)
        rid: object = None
        try:
            obj = json.loads(payload)
            rid = obj.get("id") if isinstance(obj, dict) else None
            req = parse_request(obj)
        except (ValueError, GateRequestError) as exc:
            self._reply(reply_to, rid, "deny", [], 0, None, f"bad request: {exc}")
            return
        entry = self.cache.get(req.cyl)
        reasons = decide(entry, req, self.station, self.today())
        ver = self.cache.version
        if self.identity is None:
            log.error("fill gate: no gateway identity configured; cannot record, denying")
            self._reply(reply_to, req.id, "deny", reasons, ver, None, "gate has no identity")
            return
        body = check_body(req, self.station, reasons, ver, entry)
        ident = self.identity

        def build(seq: int) -> Incoming:
            rec = make_record(
                ident.dev,
                seq,
                self.boot,
                "cylinder.check",
                int(time.time() * 1000),
                "ntp",
                body,
                ident.key,
            )
            return Incoming(ident.dev, seq, "cylinder.check", canonical(rec))

        res = self.outbox.add_own(OWN_SEQ, build)
        if not res.stored:
            self._reply(reply_to, req.id, "deny", reasons, ver, None, "outbox full: not recorded")
            return
        decision = "deny" if reasons else "allow"
        self._reply(reply_to, req.id, decision, reasons, ver, res.stored[0].seq, None)
        log.info("fill gate: %s %s for %s (%s)", decision, req.cyl, dev, ",".join(reasons) or "ok")

    def _reply(
        self,
        topic: str,
        rid: object,
        decision: str,
        reasons: list[str],
        ver: int,
        seq: int | None,
        error: str | None,
    ) -> None:
        msg: dict[str, object] = {
            "type": "gate",
            "id": rid,
            "decision": decision,
            "reasons": reasons,
            "reg_ver": ver,
        }
        if seq is not None:
            msg["seq"] = seq
        if error:
            msg["error"] = error
            self.decisions["error"] += 1
        else:
            self.decisions[decision] += 1
        self.answer(topic, json.dumps(msg).encode())
