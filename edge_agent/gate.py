"""Answers fill-gate requests from cylinder readers, offline, and records each decision.

Each decision becomes a ``cylinder.check`` record of the gateway's own identity, committed
to the outbox (its sequence advanced in the same transaction) *before* the answer goes
out: no filling is ever allowed without its record. Without an identity, or with the
outbox refusing, the answer is ``deny`` with the error.

Answers are sealed with the requesting device's key and bound to the request's nonce
(:func:`wire.auth.gate_answer`): a reader acts only on an answer it can verify, so
whoever else can publish on ``t/{dev}/cmd`` cannot allow a fill. The key is the one valid
for the reader's newest committed record (its newest key if none is known here): during
a rotation that is a key the reader holds, before and after it is flashed with the new
one. A request that cannot
be answered that way is *refused*, counted and quarantined, and never allowed: from a
device not in the registry (no answer at all: there is no key to seal one with), from a
revoked device or without a valid nonce (a sealed ``deny`` with the error).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from edge_agent.fillgate import (
    MAX_REQUEST_BYTES,
    GateRequestError,
    NonceError,
    check_body,
    decide,
    parse_request,
    request_id,
    request_nonce,
)
from edge_agent.outbox import Incoming, Outbox
from edge_agent.registry_cache import RegistryCache
from hostlib.registry import Device, Registry
from wire import auth, topics
from wire.canonical import canonical
from wire.envelope import WireError, make_record
from wire.limits import loads
from wire.tracecode import CST_OFFSET_MIN, local_day

log = logging.getLogger(__name__)

OWN_SEQ = "own_seq"
OWN_BOOT = "own_boot"


class FillGate:
    def __init__(
        self,
        outbox: Outbox,
        cache: RegistryCache,
        registry: Registry,
        identity: Device | None,
        station: str,
        answer: Callable[[str, bytes], bool],
        prefix: str = "",
        utc_offset_minutes: int = CST_OFFSET_MIN,
    ) -> None:
        self.outbox = outbox
        self.cache = cache
        self.registry = registry
        self.identity = identity
        self.station = station
        self.answer = answer
        self.prefix = prefix
        self.offset_min = utc_offset_minutes
        # each request counts once: allowed, denied, answered with an error, or refused
        self.decisions = {"allow": 0, "deny": 0, "error": 0, "refused": 0}
        self.boot = 0
        if identity is not None:
            self.boot = int(outbox.get_meta(OWN_BOOT) or 0) + 1
            outbox.set_meta({OWN_BOOT: str(self.boot)})

    def today(self) -> str:
        """The station's local date, ``YYYY-MM-DD`` like the registry's inspection dates."""
        return local_day(int(time.time() * 1000), self.offset_min)

    def handle(self, topic: str, payload: bytes) -> None:
        ver = self.cache.version
        call = open_call(
            topic, payload, self.prefix, self.registry, self.outbox, ver, MAX_REQUEST_BYTES,
            self.answer, self._refuse,
        )  # fmt: skip
        if call is None:
            return
        dev, obj, reply = call.dev, call.obj, call.reply
        try:
            req = parse_request(obj)
        except NonceError as exc:
            self._refuse(topic, payload, "gate_nonce", str(exc))
            reply("deny", [], None, f"refused: {exc}")
            return
        except GateRequestError as exc:
            self.decisions["error"] += 1
            reply("deny", [], None, f"bad request: {exc}")
            return
        entry = self.cache.get(req.cyl)
        reasons = decide(entry, req, self.station, self.today())
        if self.identity is None:
            log.error("fill gate: no gateway identity configured; cannot record, denying")
            self.decisions["error"] += 1
            reply("deny", reasons, None, "gate has no identity")
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
            self.decisions["error"] += 1
            reply("deny", reasons, None, "outbox full: not recorded")
            return
        decision = "deny" if reasons else "allow"
        self.decisions[decision] += 1
        reply(decision, reasons, res.stored[0].seq, None)
        # a fill is a record already; a refusal is worth a line at INFO, an allow only at DEBUG
        log.log(
            logging.INFO if reasons else logging.DEBUG,
            "fill gate: %s %s for %s (%s)",
            decision,
            req.cyl,
            dev,
            ",".join(reasons) or "ok",
        )

    def _refuse(self, topic: str, payload: bytes, reason: str, detail: str) -> None:
        self.decisions["refused"] += 1
        self.outbox.quarantine([(topic, reason, detail, payload)])
        log.warning("fill gate: refused a request on %s: %s", topic, detail)


Reply = Callable[[str, list[str], "int | None", "str | None"], None]
"""``reply(decision, reasons, seq, error)``: the sealed answer to the requesting terminal."""


@dataclass(frozen=True)
class GateCall:
    """A gate request from a registered device that is not revoked, and how to answer it."""

    dev: str
    device: Device
    obj: object  # the request as JSON (None: not JSON, too large or too deep)
    rid: int | None
    nonce: str
    reply: Reply


def open_call(
    topic: str,
    payload: bytes,
    prefix: str,
    registry: Registry,
    outbox: Outbox,
    version: int,
    max_bytes: int,
    answer: Callable[[str, bytes], bool],
    refuse: Callable[[str, bytes, str, str], None],
) -> GateCall | None:
    """What the fill gate and the dispatch gate do first with a request on ``t/{dev}/...``:
    an unknown device is refused unanswered (quarantined); a revoked one is refused and
    answered "deny"; else the request and a ``reply`` sealed with the key of the device's
    newest seq the agent holds (the key the terminal uses), echoing its id and nonce."""
    parts = topics.split(topic, prefix)
    dev = parts[1] if len(parts) == 3 else ""
    device = registry.get(dev) if dev else None
    if device is None:
        refuse(topic, payload, "gate_unknown_device", f"{dev!r} is not registered")
        return None
    try:
        obj: object = loads(payload, max_bytes)
    except WireError:  # too large, too deep, not JSON: answered as a bad request
        obj = None
    reply_to = topics.terminal_cmd(dev, prefix)
    rid, nonce = request_id(obj), request_nonce(obj) or ""
    seen = outbox.watermark(dev)
    key = device.key_for(seen) if seen else device.key

    def reply(decision: str, reasons: list[str], seq: int | None, error: str | None) -> None:
        answer(
            reply_to,
            auth.gate_answer(dev, rid, nonce, decision, reasons, version, key, seq, error),
        )

    if device.revoked_from is not None:
        refuse(topic, payload, "gate_revoked", f"{dev} is revoked")
        reply("deny", [], None, "device revoked")
        return None
    return GateCall(dev, device, obj, rid, nonce, reply)
