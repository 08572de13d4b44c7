"""The MQTT link's written policy (te/mqttlink.py), against a scripted in-process broker:
back-off doubles to its cap and resets, silent links are dropped, QoS 1 both ways,
everything unacknowledged is resent on the next connection and freed only by acks."""


import tesim

tesim.install()

from te import mqtt  # noqa: E402
from te.mqttlink import UP, MqttChannel  # noqa: E402
from te.transport import CLOSED, CONNECTING, OPEN, Transport  # noqa: E402
from tesim.world import World, new_world  # noqa: E402

from wire import auth  # noqa: E402

DEV = "ELV-S1-01"
KEY = b"\x5a" * 32

_TYPING = False
if _TYPING:
    from typing import Any


class FakeBroker(Transport):
    """A broker behind the transport seam. ``mode``: ``ok``, ``refuse`` (TCP refused),
    ``silent`` (accepts TCP, never answers), ``mute_after_connect`` (answers CONNECT and
    SUBSCRIBE, then nothing: a frozen peer behind a live socket)."""

    def __init__(self) -> None:
        self.mode = "ok"
        self._state = CLOSED
        self.rx = b""
        self.dec = mqtt.Decoder()
        self.opens = 0
        self.published: list[tuple[str, bytes]] = []
        self.pings = 0
        self.pubacks_in: list[int] = []
        self.subscribed: list[tuple[str, int]] = []
        self.hold_puback = False

    def open(self, host: str, port: int) -> None:
        self.opens += 1
        self.dec = mqtt.Decoder()
        self.rx = b""
        self._state = CLOSED if self.mode == "refuse" else CONNECTING

    def state(self) -> int:
        if self._state == CONNECTING:
            self._state = OPEN
        return self._state

    def read(self) -> "bytes | None":
        if self._state == CLOSED:
            return None
        out, self.rx = self.rx, b""
        return out

    def drop(self) -> None:
        self._state = CLOSED

    def send(self, data: bytes) -> None:
        self.rx += data

    def write(self, data: bytes) -> None:
        if self._state != OPEN:
            raise OSError(104)
        for p in self.dec.feed(data):
            if self.mode == "silent":
                continue
            if p.type == mqtt.CONNECT:
                self.send(mqtt.connack(0))
            elif p.type == mqtt.SUBSCRIBE:
                self.subscribed = mqtt.decode_subscribe(p)
                self.send(mqtt.suback(p.pid, [1] * len(self.subscribed)))
            elif self.mode == "mute_after_connect":
                continue
            elif p.type == mqtt.PUBLISH:
                self.published.append((p.topic, p.payload))
                if not self.hold_puback:
                    self.send(mqtt.puback(p.pid))
            elif p.type == mqtt.PINGREQ:
                self.pings += 1
                self.send(mqtt.pingresp())
            elif p.type == mqtt.PUBACK:
                self.pubacks_in.append(p.pid)

    def close(self) -> None:
        self._state = CLOSED


def _link(w: World, b: FakeBroker, **kw: Any) -> MqttChannel:
    return MqttChannel(b, w.clock, "ELV-S1-01", "gw", 1883, prefix="site7", keepalive_s=10, **kw)


def _run(w: World, ch: MqttChannel, ms: int) -> None:
    end = w.now + ms
    while w.now < end:
        w.advance(10)
        ch.poll(w.clock.ticks_ms())


def test_connects_subscribes_and_publishes_qos1() -> None:
    w = new_world()
    b = FakeBroker()
    ch = _link(w, b)
    _run(w, ch, 50)
    assert ch.state == UP and ch.epoch == 1
    assert b.subscribed == [("site7/t/ELV-S1-01/ack", 1), ("site7/t/ELV-S1-01/cmd", 1)]
    assert ch.send_record(1, b"rec1") and ch.send_gate(b'{"id":1}')
    _run(w, ch, 30)
    assert b.published == [
        ("site7/t/ELV-S1-01/rec", b"rec1"),
        ("site7/t/ELV-S1-01/gate", b'{"id":1}'),
    ]
    assert ch.inflight == {}, "PUBACKs clear the in-flight window"
    acks: list[bytes] = []
    cmds: list[bytes] = []
    ch.on_ack = acks.append
    ch.on_cmd = cmds.append
    b.send(mqtt.publish("site7/t/ELV-S1-01/ack", b'{"r":[[1,1]]}', 1, 77))
    b.send(mqtt.publish("site7/t/ELV-S1-01/cmd", b'{"type":"x"}', 0))
    _run(w, ch, 20)
    assert acks == [b'{"r":[[1,1]]}'] and cmds == [b'{"type":"x"}']
    assert b.pubacks_in == [77]


def test_backoff_doubles_to_the_cap_with_jitter_and_resets() -> None:
    w = new_world()
    b = FakeBroker()
    b.mode = "refuse"
    ch = _link(w, b, backoff_min_ms=500, backoff_max_ms=4000)
    _run(w, ch, 30000)
    nominal = [500, 1000, 2000, 4000, 4000, 4000]
    assert len(ch.waits) >= len(nominal)
    for wait, nom in zip(ch.waits[:6], nominal):  # noqa: B905
        assert nom // 2 <= wait <= nom, (wait, nom)
    assert max(ch.waits) <= 4000, "capped"
    attempts = b.opens
    b.mode = "ok"
    _run(w, ch, 4100)
    assert ch.state == UP and b.opens == attempts + 1
    assert ch.backoff == 500, "a connection that came up resets the back-off"


def test_silent_broker_is_dropped_and_retried() -> None:
    w = new_world()
    b = FakeBroker()
    b.mode = "silent"
    ch = _link(w, b, reply_ms=2000)
    _run(w, ch, 2500)
    assert ch.state != UP and "CONNACK" in ch.last_error and ch.failures == 1


def test_frozen_peer_behind_a_live_socket() -> None:
    """Half-open link: the socket accepts writes, nothing comes back. A publish that
    'returned' proves nothing: the missing PUBACK drops the connection in reply_ms, and
    the keepalive catches a link with nothing in flight."""
    w = new_world()
    b = FakeBroker()
    ch = _link(w, b, reply_ms=3000)
    _run(w, ch, 50)
    assert ch.state == UP
    b.mode = "mute_after_connect"
    ch.send_record(1, b"r1")
    _run(w, ch, 3100)
    assert ch.state != UP and "PUBACK" in ch.last_error
    _run(w, ch, 1100)  # reconnects (the broker still answers CONNECT)
    assert ch.state == UP
    up_at = w.now
    _run(w, ch, 15100)  # nothing to send: pings unanswered, dropped at 1.5 x keepalive
    assert ch.failures == 2 and "keepalive" in ch.last_error and b.pings == 0
    assert w.now - up_at >= 15000


def test_keepalive_pings_when_idle() -> None:
    w = new_world()
    b = FakeBroker()
    ch = _link(w, b)
    _run(w, ch, 30000)
    assert ch.state == UP and 5 <= b.pings <= 7 and ch.failures == 0


def test_sender_resends_unacked_after_reconnect() -> None:
    """Broker restart with persistence off: what was in flight is gone; the terminal
    resends everything the gateway did not acknowledge, and frees only on acks."""
    from te.flashlog import FlashLog
    from te.sender import Sender
    from tesim.memfs import MemFS

    w = new_world()
    b = FakeBroker()
    ch = _link(w, b)
    log = FlashLog(MemFS(), "/log", 1000, 100000, 0)
    log.open()
    for s in range(1, 7):
        log.append(s, b"rec%d" % s)
    snd = Sender(log, ch, w.clock, DEV, [KEY], window=4, ack_timeout_ms=60000)

    def run(ms: int) -> None:
        end = w.now + ms
        while w.now < end:
            w.advance(10)
            now = w.clock.ticks_ms()
            ch.poll(now)
            snd.poll(now)

    run(100)
    assert [p for _, p in b.published] == [b"rec1", b"rec2", b"rec3", b"rec4"]
    ack_topic = "site7/t/ELV-S1-01/ack"
    b.send(mqtt.publish(ack_topic, auth.terminal_ack(DEV, 0, [(1, 2)], [], KEY), 1, 5))
    run(50)
    assert [p for _, p in b.published][4:] == [b"rec5", b"rec6"]
    b.drop()  # broker restarted: 3..6 were never acknowledged
    b.published = []
    run(2000)
    assert ch.state == UP and ch.epoch == 2
    assert [p for _, p in b.published] == [b"rec3", b"rec4", b"rec5", b"rec6"]
    b.send(mqtt.publish(ack_topic, auth.terminal_ack(DEV, 6, [(3, 6)], [], KEY), 1, 6))
    run(50)
    assert log.pending() == 0 and not log.segs
