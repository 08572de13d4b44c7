"""A stub gateway behind the ``Channel`` seam, for app scenarios where the edge agent is
not what is under test: it stores each record once, acknowledges after "commit"
(``ack_delay_ms``; ``acking = False`` withholds acks), and answers fill-gate requests
with ``gate`` (a function of the request, returning the answer dict or ``None`` for
silence). ``online = False`` takes the link down."""

import json

from te.channel import Channel

_TYPING = False
if _TYPING:
    from typing import Any, Callable

    from te.hal import Clock


class LoopChannel(Channel):
    def __init__(self, clock: "Clock") -> None:
        super().__init__()
        self.clock = clock
        self.online = True
        self.acking = True
        self.ack_delay_ms = 20
        self.gate_delay_ms = 50
        self.gate: "Callable[[dict[str, Any]], dict[str, Any] | None] | None" = None
        self.records: "dict[int, bytes]" = {}
        self.order: "list[int]" = []
        self.received = 0
        self.gate_requests: "list[dict[str, Any]]" = []
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
            ack = json.dumps({"r": [[seq, seq]], "bad": []}).encode()
            self._due.append((self.clock.add(self.clock.ticks_ms(), self.ack_delay_ms), 0, ack))
        return True

    def send_gate(self, payload: bytes) -> bool:
        if not self.online:
            return False
        req = json.loads(payload)
        self.gate_requests.append(req)
        ans = self.gate(req) if self.gate is not None else None
        if ans is not None:
            ans["type"] = "gate"
            ans["id"] = req["id"]
            self._due.append((self.clock.add(self.clock.ticks_ms(), self.gate_delay_ms), 1,
                              json.dumps(ans).encode()))
        return True

    def push_cmd(self, msg: "dict[str, Any]") -> None:
        self._due.append((self.clock.ticks_ms(), 1, json.dumps(msg).encode()))

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
