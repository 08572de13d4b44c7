"""Fill permission from the edge agent: request on ``t/{dev}/gate``, answer on
``t/{dev}/cmd`` as ``{"type": "gate", "id", "decision", "reasons", "reg_ver"}``.

A request waits at most ``timeout_ms`` (it is (re)sent while the link is down, until the
deadline). No answer means *no filling*: the cylinder must be verified first. An answer
that arrives after the deadline, or for another id, is ignored, so a late ``allow`` can
never open a valve.
"""

import json

_TYPING = False
if _TYPING:
    from typing import Any

    from te.channel import Channel
    from te.hal import Clock

PENDING = 0
ANSWERED = 1
TIMED_OUT = 2


class GateRequest:
    __slots__ = ("id", "payload", "deadline", "sent", "state", "answer")

    def __init__(self, rid: int, payload: bytes, deadline: int) -> None:
        self.id = rid
        self.payload = payload
        self.deadline = deadline
        self.sent = False
        self.state = PENDING
        self.answer: "dict[str, Any] | None" = None

    @property
    def allowed(self) -> bool:
        a = self.answer
        return self.state == ANSWERED and a is not None and a.get("decision") == "allow"


class GateClient:
    def __init__(self, channel: "Channel", clock: "Clock", boot: int) -> None:
        self.channel = channel
        self.clock = clock
        # ids unique across reboots: boot in the high bits
        self.next_id = (boot & 0xFFFFF) << 16
        self.req: "GateRequest | None" = None
        self.timeouts = 0
        self.late = 0

    def ask(self, body: "dict[str, Any]", timeout_ms: int) -> GateRequest:
        self.next_id += 1
        body["id"] = self.next_id
        now = self.clock.ticks_ms()
        deadline = self.clock.add(now, timeout_ms)
        self.req = GateRequest(self.next_id, json.dumps(body).encode(), deadline)
        self.poll(now)
        return self.req

    def poll(self, now: int) -> None:
        r = self.req
        if r is None or r.state != PENDING:
            return
        if self.clock.diff(now, r.deadline) >= 0:
            r.state = TIMED_OUT
            self.timeouts += 1
            return
        if not r.sent and self.channel.up():
            r.sent = self.channel.send_gate(r.payload)

    def on_answer(self, msg: "dict[str, Any]") -> bool:
        """Take a ``type: gate`` command; True if it answered the pending request."""
        r = self.req
        if r is None or r.state != PENDING or msg.get("id") != r.id:
            self.late += 1
            return False
        if self.clock.diff(self.clock.ticks_ms(), r.deadline) >= 0:
            r.state = TIMED_OUT
            self.timeouts += 1
            self.late += 1
            return False
        d = msg.get("decision")
        reasons = msg.get("reasons")
        if d not in ("allow", "deny") or not isinstance(reasons, list):
            return False
        r.answer = msg
        r.state = ANSWERED
        return True
