"""Moves records from the flash log to the gateway; frees them on the gateway's acks.

Policy (tested in ``tests/firmware/mp/mp_link.py``):

* At most ``window`` records wait for an application ack at a time (the transport may
  limit further with ``room()``).
* A new connection (``channel.epoch`` changed) resends everything unacknowledged, oldest
  first: a publish that "returned" proved nothing.
* When the oldest record in flight has waited ``ack_timeout_ms`` without an ack, all
  unacknowledged records are sent again (the gateway or its disk may have been slow or
  gone; duplicates are acknowledged again and removed by identity downstream).
* An ack (``wire.auth.terminal_ack``) is sealed with the device key; one that does not
  verify under the newest two keys is ignored and counted (``forged_acks``). Its ranges
  ``r`` (committed) and ``bad`` (quarantined) free records, but only up to the highest
  seq published on this boot (``high``; after a reboot nothing counts as sent until it is
  sent again): an ack, even a genuine one replayed or stale, never frees a record the
  agent cannot have had. Acks naming seqs above ``high`` are counted (``unsent_acks``).
  ``wm`` frees nothing: the ranges name every commit, duplicates included, while the
  agent's watermark may step over a record it gave up waiting for, which the log still
  holds and sends again.
"""

from te import hal  # noqa: F401  (platform quirks the wire parsers rely on)
from wire.auth import open_terminal_ack
from wire.envelope import WireError

_TYPING = False
if _TYPING:
    from te.channel import Channel
    from te.flashlog import FlashLog
    from te.hal import Clock


class Sender:
    def __init__(
        self,
        log: "FlashLog",
        channel: "Channel",
        clock: "Clock",
        dev: str,
        keys: "list[bytes]",
        window: int = 8,
        ack_timeout_ms: int = 10000,
    ) -> None:
        self.log = log
        self.channel = channel
        self.clock = clock
        self.dev = dev
        self.keys = keys
        self.window = window
        self.ack_timeout_ms = ack_timeout_ms
        self.epoch = -1
        self.cursor = 0
        self.inflight: "list[list[int]]" = []  # [seq, sent at]
        self.high = 0  # the highest seq published on this boot
        self.sent = 0
        self.resends = 0
        self.acks = 0
        self.forged_acks = 0
        self.unsent_acks = 0
        channel.on_ack = self.on_ack

    def _rewind(self) -> None:
        self.cursor = 0
        self.inflight = []

    def poll(self, now: int) -> None:
        ch = self.channel
        if not ch.up():
            return
        if ch.epoch != self.epoch:
            self.epoch = ch.epoch
            if self.inflight:
                self.resends += 1
            self._rewind()
        elif self.inflight and self.clock.diff(now, self.inflight[0][1]) >= self.ack_timeout_ms:
            self.resends += 1
            self._rewind()
        room = min(self.window - len(self.inflight), ch.room())
        if room <= 0 or self.cursor > self.log.last_seq:
            return
        for seq, payload in self.log.read(self.cursor, room):
            if not ch.send_record(seq, payload):
                break
            self.inflight.append([seq, now])
            self.cursor = seq + 1
            self.sent += 1
            if seq > self.high:
                self.high = seq

    def on_ack(self, payload: bytes) -> None:
        try:
            _wm, ranges, bad = open_terminal_ack(payload, self.dev, self.keys)
        except WireError:
            self.forged_acks += 1
            return
        self.acks += 1
        high = self.high
        sent: "list[list[int]]" = []
        clipped = False
        for lo, hi in ranges:
            if hi > high:
                clipped = True
            if lo <= high:
                sent.append([lo, min(hi, high)])
        sent_bad: "list[int]" = []
        for s in bad:
            if s <= high:
                sent_bad.append(s)
            else:
                clipped = True
        if clipped:
            self.unsent_acks += 1
        self.log.ack(sent, sent_bad)
        self.inflight = [x for x in self.inflight if not self.log.is_acked(x[0])]

    def idle(self) -> bool:
        """Nothing waits in the log: every record is acknowledged."""
        return self.log.pending() == 0
