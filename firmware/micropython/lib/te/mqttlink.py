"""The terminal's MQTT link to the gateway broker (QoS 1, clean session), polled.

States: down -> connecting (TCP) -> CONNECT sent -> SUBSCRIBE sent -> up. Written policy,
tested in ``tests/firmware/mp/mp_link.py``:

* Reconnect forever. After a failure the next attempt waits a back-off that starts at
  ``backoff_min_ms``, doubles per failed attempt up to ``backoff_max_ms`` (capped so that
  draining starts within seconds of the network's return), with jitter (50-100 % of the
  value); a connection that reaches "up" resets it.
* A silent link is detected, not trusted: nothing received for 1.5 x keepalive, no
  CONNACK / SUBACK within ``reply_ms``, or a PUBACK missing for ``reply_ms`` drops the
  connection. Pings are sent when nothing was sent for keepalive / 2.
* Clean session: in-flight QoS 1 publishes are *not* resumed by the broker; the sender
  resends every unacknowledged record from the flash log on the next connection
  (``epoch`` goes up). At most ``max_inflight`` publishes wait for PUBACK.
* Incoming QoS 1 messages are PUBACKed after they were handed over.
"""

import random

from te import mqtt
from te.channel import Channel
from te.transport import CLOSED, OPEN
from wire import topics

_TYPING = False
if _TYPING:
    from te.hal import Clock
    from te.transport import Transport

DOWN = 0
TCP = 1
WAIT_CONNACK = 2
WAIT_SUBACK = 3
UP = 4


class MqttChannel(Channel):
    def __init__(
        self,
        transport: "Transport",
        clock: "Clock",
        dev: str,
        host: str,
        port: int,
        prefix: str = "",
        keepalive_s: int = 30,
        client_id: str = "",
        user: "str | None" = None,
        password: "str | None" = None,
        backoff_min_ms: int = 500,
        backoff_max_ms: int = 15000,
        reply_ms: int = 10000,
        max_inflight: int = 8,
    ) -> None:
        super().__init__()
        self.t = transport
        self.clock = clock
        self.host = host
        self.port = port
        self.keepalive_s = keepalive_s
        self.client_id = client_id or dev
        self.user = user
        self.password = password
        self.backoff_min_ms = backoff_min_ms
        self.backoff_max_ms = backoff_max_ms
        self.reply_ms = reply_ms
        self.max_inflight = max_inflight
        self.t_rec = topics.terminal_rec(dev, prefix)
        self.t_gate = topics.terminal_gate(dev, prefix)
        self.t_dispatch = topics.terminal_dispatch(dev, prefix)
        self.t_ack = topics.terminal_ack(dev, prefix)
        self.t_cmd = topics.terminal_cmd(dev, prefix)
        self.state = DOWN
        self.backoff = backoff_min_ms
        self.retry_at = clock.ticks_ms()
        self.since = 0
        self.last_rx = 0
        self.last_tx = 0
        self.pid = 0
        self.inflight: "dict[int, int]" = {}  # pid -> sent at
        self.dec = mqtt.Decoder()
        self.connects = 0
        self.failures = 0
        self.waits: "list[int]" = []  # back-off waits chosen, for tests and status

    # -- Channel -------------------------------------------------------------------
    def up(self) -> bool:
        return self.state == UP

    def room(self) -> int:
        return self.max_inflight - len(self.inflight) if self.state == UP else 0

    def send_record(self, seq: int, payload: bytes) -> bool:
        return self._publish(self.t_rec, payload)

    def send_gate(self, payload: bytes) -> bool:
        return self._publish(self.t_gate, payload)

    def send_dispatch(self, payload: bytes) -> bool:
        return self._publish(self.t_dispatch, payload)

    # -- internals -----------------------------------------------------------------
    def _next_pid(self) -> int:
        self.pid = self.pid % 65535 + 1
        return self.pid

    def _write(self, data: bytes) -> bool:
        try:
            self.t.write(data)
        except OSError as exc:
            self._fail("write: %s" % exc)
            return False
        self.last_tx = self.clock.ticks_ms()
        return True

    def _publish(self, topic: str, payload: bytes) -> bool:
        if self.state != UP or len(self.inflight) >= self.max_inflight:
            return False
        pid = self._next_pid()
        if not self._write(mqtt.publish(topic, payload, 1, pid)):
            return False
        self.inflight[pid] = self.last_tx
        return True

    def _fail(self, why: str) -> None:
        self.last_error = why
        self.failures += 1
        try:
            self.t.close()
        except OSError:
            pass
        self.state = DOWN
        self.inflight = {}
        self.dec = mqtt.Decoder()
        wait = self.backoff // 2 + random.getrandbits(16) % (self.backoff // 2 + 1)
        self.waits.append(wait)
        if len(self.waits) > 16:
            self.waits.pop(0)
        self.retry_at = self.clock.add(self.clock.ticks_ms(), wait)
        self.backoff = min(self.backoff * 2, self.backoff_max_ms)

    def close(self) -> None:
        if self.state >= WAIT_CONNACK:
            self._write(mqtt.disconnect())
        self.t.close()
        self.state = DOWN

    def poll(self, now: int) -> None:
        c = self.clock
        if self.state == DOWN:
            if c.diff(now, self.retry_at) >= 0:
                self.state = TCP
                self.since = now
                self.t.open(self.host, self.port)
            return
        if self.state == TCP:
            st = self.t.state()
            if st == OPEN:
                self.state = WAIT_CONNACK
                self.since = now
                self.last_rx = now
                self._write(mqtt.connect(self.client_id, self.keepalive_s, self.user,
                                         self.password))
            elif st == CLOSED:
                self._fail("connect refused or unreachable")
            elif c.diff(now, self.since) > self.reply_ms:
                self._fail("connect timed out")
            return
        data = self.t.read()
        if data is None:
            self._fail("connection closed")
            return
        if data:
            self.last_rx = now
            try:
                for p in self.dec.feed(data):
                    self._handle(p, now)
                    if self.state == DOWN:
                        return
            except mqtt.MqttError as exc:
                self._fail("protocol: %s" % exc)
                return
        if self.state in (WAIT_CONNACK, WAIT_SUBACK):
            if c.diff(now, self.since) > self.reply_ms:
                self._fail("no CONNACK/SUBACK")
            return
        ka = self.keepalive_s * 1000
        if c.diff(now, self.last_rx) > ka + ka // 2:
            self._fail("silent link: nothing received for 1.5 x keepalive")
            return
        for t in self.inflight.values():
            if c.diff(now, t) > self.reply_ms:
                self._fail("silent link: PUBACK missing")
                return
        if c.diff(now, self.last_tx) >= ka // 2:
            self._write(mqtt.pingreq())

    def _handle(self, p: "mqtt.Packet", now: int) -> None:
        if p.type == mqtt.CONNACK:
            if self.state != WAIT_CONNACK:
                raise mqtt.MqttError("unexpected CONNACK")
            if p.payload[1] != 0:
                self._fail("broker refused the connection (rc %d)" % p.payload[1])
                return
            self.state = WAIT_SUBACK
            self.since = now
            self._write(mqtt.subscribe(self._next_pid(), [(self.t_ack, 1), (self.t_cmd, 1)]))
        elif p.type == mqtt.SUBACK:
            if self.state != WAIT_SUBACK:
                return
            for code in p.payload:
                if code & 0x80:
                    self._fail("subscription refused")
                    return
            self.state = UP
            self.epoch += 1
            self.connects += 1
            self.backoff = self.backoff_min_ms
        elif p.type == mqtt.PUBACK:
            self.inflight.pop(p.pid, None)
        elif p.type == mqtt.PUBLISH:
            if p.topic == self.t_ack:
                self._ack(p.payload)
            elif p.topic == self.t_cmd:
                self._cmd(p.payload)
            if p.qos == 1:
                self._write(mqtt.puback(p.pid))
        # PINGRESP: last_rx already moved
