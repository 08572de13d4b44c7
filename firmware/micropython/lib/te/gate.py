"""Fill permission from the edge agent: request on ``t/{dev}/gate``, answer on
``t/{dev}/cmd`` (``wire.auth.gate_answer``: ``t: gate``, sealed with the device key).

Each request carries a fresh random nonce ``n`` (``hal.random_hex``); only an answer
for the pending request's id that ``wire.auth.check_gate_answer`` verifies (this device,
this nonce, the newest two keys) is taken. Anything else is ignored and counted: an
answer for no pending request or another id (``late``), one that does not verify
(``forged``). Whoever can publish on the broker therefore cannot allow a fill, nor replay
an old answer.

A request waits at most ``timeout_ms`` (it is (re)sent while the link is down, until the
deadline). No valid answer means *no filling*: the cylinder must be verified first. An
answer that arrives after the deadline is ignored, so a late ``allow`` can never open a
valve.
"""

import json

from te import hal
from wire.auth import check_gate_answer, dispatch_request

_TYPING = False
if _TYPING:
    from typing import Any

    from te.channel import Channel
    from te.hal import Clock

PENDING = 0
ANSWERED = 1
TIMED_OUT = 2
NONCE_BYTES = 16


class GateRequest:
    __slots__ = ("id", "nonce", "payload", "deadline", "sent", "state", "answer", "dispatch")

    def __init__(self, rid: int, nonce: str, payload: bytes, deadline: int,
                 dispatch: bool = False) -> None:
        self.dispatch = dispatch
        self.id = rid
        self.nonce = nonce
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
    def __init__(
        self, channel: "Channel", clock: "Clock", boot: int, dev: str, keys: "list[bytes]"
    ) -> None:
        self.channel = channel
        self.clock = clock
        self.dev = dev
        self.keys = keys
        # ids unique across reboots: boot in the high bits
        self.next_id = (boot & 0xFFFFF) << 16
        self.req: "GateRequest | None" = None
        self.timeouts = 0
        self.late = 0
        self.forged = 0

    def ask(self, body: "dict[str, Any]", timeout_ms: int, dispatch: bool = False) -> GateRequest:
        """A fill-gate request; with ``dispatch`` a warehouse dispatch request instead,
        sealed with the newest key (``wire.auth.dispatch_request``) and sent on
        ``t/{dev}/dispatch``. Both are answered by a sealed ``t: gate`` answer."""
        self.next_id += 1
        nonce = hal.random_hex(NONCE_BYTES)
        body["id"] = self.next_id
        body["n"] = nonce
        now = self.clock.ticks_ms()
        deadline = self.clock.add(now, timeout_ms)
        if dispatch:
            payload = dispatch_request(self.dev, body, self.keys[0])
        else:
            payload = json.dumps(body).encode()
        self.req = GateRequest(self.next_id, nonce, payload, deadline, dispatch)
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
            if r.dispatch:
                r.sent = self.channel.send_dispatch(r.payload)
            else:
                r.sent = self.channel.send_gate(r.payload)

    def on_answer(self, msg: "dict[str, Any]") -> bool:
        """Take a parsed ``t: gate`` message; True if it answered the pending request."""
        r = self.req
        if r is None or r.state != PENDING or msg.get("id") != r.id:
            self.late += 1
            return False
        if not check_gate_answer(msg, self.dev, r.nonce, self.keys):
            self.forged += 1
            return False
        if self.clock.diff(self.clock.ticks_ms(), r.deadline) >= 0:
            r.state = TIMED_OUT
            self.timeouts += 1
            self.late += 1
            return False
        if not isinstance(msg.get("reasons"), list):
            return False  # sealed, yet not a decision the app can record
        r.answer = msg
        r.state = ANSWERED
        return True
