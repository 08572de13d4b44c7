"""A stub gateway behind the ``Channel`` seam, for app scenarios where the edge agent is
not what is under test: it stores each record once, acknowledges after "commit"
(``ack_delay_ms``; ``acking = False`` withholds acks), and answers fill-gate requests
with ``gate`` (a function of the request, returning the answer's fields or ``None`` for
silence). Like the agent it seals acks, gate answers and stop lists with the device's key
(``wire.auth``); ``push_cmd`` hands over any bytes, sealed or not. ``online = False``
takes the link down."""

import json

from te.channel import Channel
from wire import auth

_TYPING = False
if _TYPING:
    from typing import Any, Callable

    from te.hal import Clock


class LoopChannel(Channel):
    def __init__(self, clock: "Clock", dev: str, key: bytes) -> None:
        super().__init__()
        self.clock = clock
        self.dev = dev
        self.key = key
        self.online = True
        self.acking = True
        self.ack_delay_ms = 20
        self.gate_delay_ms = 50
        self.gate: "Callable[[dict[str, Any]], dict[str, Any] | None] | None" = None
        self.records: "dict[int, bytes]" = {}
        self.order: "list[int]" = []
        self.received = 0
        self.gate_requests: "list[dict[str, Any]]" = []
        # warehouse dispatch gate: answers like ``gate``; requests kept once verified
        self.dispatch: "Callable[[dict[str, Any]], dict[str, Any] | None] | None" = None
        self.dispatch_requests: "list[dict[str, Any]]" = []
        self.dispatch_unsealed = 0
        self._due: "list[tuple[int, int, bytes]]" = []  # (at, 0 ack / 1 cmd, payload)
        self._was = False

    def up(self) -> bool:
        return self.online

    def room(self) -> int:
        return 8 if self.online else 0

    def send_record(self, seq: int, payload: bytes) -> bool:
        if not self.online:
            return False
        self.received += 1
        if seq in self.records:
            assert self.records[seq] == payload, "same seq, different content"
        else:
            self.records[seq] = payload
            self.order.append(seq)
        if self.acking:
            ack = auth.terminal_ack(self.dev, 0, [(seq, seq)], [], self.key)
            self._due.append((self.clock.add(self.clock.ticks_ms(), self.ack_delay_ms), 0, ack))
        return True

    def send_gate(self, payload: bytes) -> bool:
        if not self.online:
            return False
        req = json.loads(payload)
        self.gate_requests.append(req)
        self._answer(req, self.gate(req) if self.gate is not None else None)
        return True

    def send_dispatch(self, payload: bytes) -> bool:
        """Like the agent: only a request sealed with the device key is decided."""
        if not self.online:
            return False
        req = json.loads(payload)
        if not auth.check_dispatch_request(req, self.dev, [self.key]):
            self.dispatch_unsealed += 1
            return True
        self.dispatch_requests.append(req)
        self._answer(req, self.dispatch(req) if self.dispatch is not None else None)
        return True

    def _answer(self, req: "dict[str, Any]", ans: "dict[str, Any] | None") -> None:
        if ans is not None:
            sealed = auth.gate_answer(
                self.dev,
                req["id"],
                req["n"],
                ans["decision"],
                ans["reasons"],
                ans.get("reg_ver", 0),
                self.key,
                ans.get("seq"),
                ans.get("error"),
            )
            self._due.append((self.clock.add(self.clock.ticks_ms(), self.gate_delay_ms), 1,
                              sealed))

    def push_cmd(self, payload: bytes) -> None:
        self._due.append((self.clock.ticks_ms(), 1, payload))

    def push_ack(self, payload: bytes) -> None:
        self._due.append((self.clock.ticks_ms(), 0, payload))

    def stop_list(self, version: int, batches: "list[Any]") -> None:
        """Relay a stop list as the agent does: sealed with the device key."""
        self.push_cmd(auth.stop_list(self.dev, version, batches, self.key))

    def poll(self, now: int) -> None:
        if self.online and not self._was:
            self.epoch += 1
        self._was = self.online
        if not self.online:
            return
        keep = []
        for item in self._due:
            if self.clock.diff(now, item[0]) >= 0:
                if item[1] == 0:
                    self._ack(item[2])
                else:
                    self._cmd(item[2])
            else:
                keep.append(item)
        self._due = keep

    def stored(self) -> "list[dict[str, Any]]":
        """The records received, once each, in first-arrival order."""
        return [json.loads(self.records[s]) for s in self.order]
