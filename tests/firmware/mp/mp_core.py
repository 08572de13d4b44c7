"""Core: time quality, records and counters, sender policy, sealed acks and gate answers,
key rotation, watchdog, config errors, HAL peripherals, debouncing."""

import json

import tesim

tesim.install()

from te import hal  # noqa: E402
from te.config import ConfigError, Identity, Keys, Section, load  # noqa: E402
from drivers.codecs.elevator_rules import CLEARED, RAISED, Condition  # noqa: E402
from te.debounce import Button  # noqa: E402
from te.flashlog import FlashLog  # noqa: E402
from te.gate import ANSWERED, TIMED_OUT, GateClient  # noqa: E402
from te.recorder import Ids, Recorder, Refused  # noqa: E402
from te.runtime import App  # noqa: E402
from te.sender import Sender  # noqa: E402
from te.timekeeper import TimeKeeper  # noqa: E402
from tesim import harness  # noqa: E402
from tesim.gateway import LoopChannel  # noqa: E402
from tesim.memfs import MemFS  # noqa: E402
from tesim.world import PERIOD, WALL0, WatchdogReset, World, new_world  # noqa: E402

from wire import auth  # noqa: E402
from wire.envelope import decode_record, verify_mac  # noqa: E402
from wire.mac import unhexlify  # noqa: E402

_TYPING = False
if _TYPING:
    from typing import Any

KEY = unhexlify(harness.KEY_HEX)
OTHER = b"\x11" * 32


def _recorder(fs: MemFS, w: World, max_bytes: int = 100000, reserve: int = 0) -> Recorder:
    fs.mkdir("/state")
    log = FlashLog(fs, "/log", 2000, max_bytes, reserve)
    log.open()
    return Recorder("DEV-1", Keys([(1, KEY)]), log, Ids(fs, "/state/ids.json"), TimeKeeper(w.clock))


def test_ticks_wrap_in_the_virtual_clock() -> None:
    w = new_world()
    c = w.clock
    t0 = c.ticks_ms()
    assert t0 == PERIOD - 5000
    w.advance(6000)
    t1 = c.ticks_ms()
    assert t1 < t0 and c.diff(t1, t0) == 6000 and c.diff(t0, t1) == -6000
    assert c.add(t0, 6000) == t1


def test_time_quality() -> None:
    w = new_world(wall_ms=946684800000 + 5000)  # RTC never set: year 2000
    tk = TimeKeeper(w.clock, ntp_valid_ms=60000)
    assert tk.now() == (946684805000, "unsynced")
    tk.synced(WALL0)
    assert tk.now() == (WALL0, "ntp")
    w.advance(60001)
    assert tk.now() == (WALL0 + 60001, "rtc")
    w2 = new_world()  # a battery-backed RTC that kept a plausible date
    assert TimeKeeper(w2.clock).quality() == "rtc"


def test_records_are_signed_numbered_and_stored() -> None:
    w = new_world()
    fs = MemFS()
    r = _recorder(fs, w)
    assert (r.boot, r.seq) == (1, 0)
    body = {"reg": "31103301062015000123", "fault": "power_loss", "state": "raised", "floor": 3}
    rec = r.record("elevator.fault", body)
    assert rec is not None and rec["seq"] == 1 and rec["boot"] == 1 and rec["tq"] == "rtc"
    assert verify_mac(rec, KEY)
    ((seq, payload),) = r.log.read(0, 10)
    assert seq == 1 and decode_record(payload) == rec
    r.record("elevator.fault", body)
    r.log.close()
    # reboot: boot counter up, seq continues
    r2 = _recorder(fs, w)
    assert (r2.boot, r2.seq) == (2, 2)
    # everything acked and freed, then reboot: seq still continues (the saved floor)
    r2.log.ack([[1, 2]], [])
    assert r2.log.pending() == 0 and not r2.log.segs
    r3 = _recorder(fs, w)
    assert (r3.boot, r3.seq) == (3, 2)
    assert r3.record("elevator.fault", body)["seq"] == 3  # type: ignore[index]


def test_full_log_thins_status_and_refuses_protected() -> None:
    w = new_world()
    r = _recorder(MemFS(), w, max_bytes=4000, reserve=1500)
    status = {
        "reg": "31103301062015000123",
        "dir": "stopped",
        "floor": 1,
        "door": "closed",
        "door_zone": True,
        "people": False,
        "inspection": False,
        "maintenance": False,
        "faults": [],
    }
    n = 0
    while r.record("elevator.status", status) is not None:
        n += 1
    assert r.dropped == 1 and n > 3
    seq_before = r.seq
    fault = {"reg": "31103301062015000123", "fault": "power_loss", "state": "raised", "floor": 1}
    while True:
        try:
            r.record("elevator.fault", fault)
        except Refused:
            break
    assert r.seq > seq_before, "the reserve takes protected records"
    assert [s for s, _ in r.log.read(0, 1000)] == list(range(1, r.seq + 1)), "no gaps"


def test_sender_window_resend_and_free() -> None:
    w = new_world()
    fs = MemFS()
    r = _recorder(fs, w)
    ch = LoopChannel(w.clock, "DEV-1", KEY)
    ch.acking = False
    s = Sender(r.log, ch, w.clock, "DEV-1", [KEY], window=3, ack_timeout_ms=1000)
    body = {"reg": "31103301062015000123", "fault": "alarm_button", "state": "raised", "floor": 1}
    for _ in range(5):
        r.record("elevator.fault", body)
    now = w.clock.ticks_ms()
    ch.poll(now)
    s.poll(now)
    assert ch.received == 3 and [x[0] for x in s.inflight] == [1, 2, 3]
    ch.poll(now)
    s.poll(now)
    assert ch.received == 3, "window full"
    # an ack for 1..2 frees room
    ch._ack(auth.terminal_ack("DEV-1", 2, [(1, 2)], [], KEY))
    s.poll(now)
    assert [x[0] for x in s.inflight] == [3, 4, 5] and ch.received == 5
    # no ack within the timeout: everything unacknowledged again
    w.advance(1000)
    now = w.clock.ticks_ms()
    s.poll(now)
    assert s.resends == 1 and ch.received == 8
    # reconnect (new epoch): resend from the oldest unacknowledged
    ch.online = False
    ch.poll(now)
    ch.online = True
    ch.poll(now)
    s.poll(now)
    assert s.resends == 2 and ch.received == 11 and ch.order == [1, 2, 3, 4, 5]
    ch._ack(auth.terminal_ack("DEV-1", 4, [(3, 4)], [5], KEY))
    assert r.log.pending() == 0 and s.idle() and not s.inflight
    ch._ack(b"not json")
    ch._ack(b'{"r": 5}')
    assert s.forged_acks == 2 and s.acks == 2


def _answer(req: "Any", decision: str = "allow", key: bytes = KEY, **over: "Any") -> "Any":
    """The agent's sealed answer to ``req``, parsed as the runtime hands it over."""
    args: dict[str, Any] = {"dev": "CYL-1", "rid": req.id, "nonce": req.nonce}
    args.update(over)
    return json.loads(
        auth.gate_answer(args["dev"], args["rid"], args["nonce"], decision, [], 4, key)
    )


def test_gate_client_timeout_and_late_answers() -> None:
    w = new_world()
    ch = LoopChannel(w.clock, "CYL-1", KEY)
    g = GateClient(ch, w.clock, 7, "CYL-1", [KEY])
    ch.online = False
    req = g.ask({"stage": "pre", "cyl": "3301062312345"}, 1000)
    assert req.id == (7 << 16) + 1 and not req.sent
    w.advance(500)
    ch.online = True
    g.poll(w.clock.ticks_ms())
    assert req.sent and ch.gate_requests[0]["id"] == req.id
    assert ch.gate_requests[0]["n"] == req.nonce
    assert not g.on_answer(_answer(req, rid=req.id + 1))
    w.advance(600)
    g.poll(w.clock.ticks_ms())
    assert req.state == TIMED_OUT and not req.allowed
    assert not g.on_answer(_answer(req))
    assert req.state == TIMED_OUT and not req.allowed, "a late allow never opens a valve"
    req2 = g.ask({"stage": "pre", "cyl": "3301062312345"}, 1000)
    assert g.on_answer(_answer(req2))
    assert req2.state == ANSWERED and req2.allowed
    assert g.late == 2 and g.forged == 0


def test_gate_answers_are_bound_to_the_device_key_and_nonce() -> None:
    """Whoever can publish on t/{dev}/cmd sees the request (id and nonce) but cannot allow
    a fill: only the agent's seal over this device and this nonce is taken, and an old
    genuine answer cannot be replayed for a new request."""
    w = new_world()
    ch = LoopChannel(w.clock, "CYL-1", KEY)
    g = GateClient(ch, w.clock, 1, "CYL-1", [KEY, OTHER])
    req = g.ask({"stage": "pre", "cyl": "3301062312345"}, 5000)
    assert len(req.nonce) == 32 and int(req.nonce, 16) >= 0
    unsealed = {"type": "gate", "id": req.id, "decision": "allow", "reasons": [], "reg_ver": 1}
    assert not g.on_answer(unsealed)  # the format before sealing
    forged = _answer(req)
    forged["mac"] = "0" * 64
    assert not g.on_answer(forged)
    assert not g.on_answer(_answer(req, key=b"\x22" * 32))  # not this device's key
    assert not g.on_answer(_answer(req, dev="CYL-2"))  # sealed for another device
    assert not g.on_answer(_answer(req, nonce="0" * 32))  # another request's nonce
    assert not g.on_answer(_answer(req, nonce=""))  # no nonce at all
    tampered = _answer(req, "deny")
    tampered["decision"] = "allow"
    assert not g.on_answer(tampered)
    assert req.state == 0 and g.forged == 7 and g.late == 0
    assert g.on_answer(_answer(req, "deny", key=OTHER))  # the previous key, mid-rotation
    assert req.state == ANSWERED and not req.allowed
    old = _answer(req, "allow")
    req2 = g.ask({"stage": "pre", "cyl": "3301062312345"}, 5000)
    assert req2.nonce != req.nonce
    old["id"] = req2.id  # a replay re-addressed to the new request: the seal breaks
    assert not g.on_answer(old) and req2.state == 0
    assert not g.on_answer(_answer(req2, nonce=req.nonce))  # sealed, but the old nonce
    assert g.forged == 9 and not req2.allowed


def _sender(n: int = 6) -> "Any":
    """A recorder with ``n`` records in its log, a silent stub gateway, a sender."""
    w = new_world()
    fs = MemFS()
    r = _recorder(fs, w)
    body = {"reg": "31103301062015000123", "fault": "alarm_button", "state": "raised", "floor": 1}
    for _ in range(n):
        r.record("elevator.fault", body)
    ch = LoopChannel(w.clock, "DEV-1", KEY)
    ch.acking = False
    return w, fs, r, ch, Sender(r.log, ch, w.clock, "DEV-1", [KEY], window=3)


def test_acks_free_only_verified_seqs_this_boot_has_sent() -> None:
    """A1/A2 at the terminal: a forged ack (any format, any range) frees nothing and is
    counted; a genuine ack, even one covering every seq, frees only what was published
    on this boot; after a reboot the same ack frees nothing until records are resent."""
    w, fs, r, ch, s = _sender()
    everything = auth.terminal_ack("DEV-1", 2**40, [(1, 2**40)], [1, 2, 3, 4, 5, 6], KEY)
    forged = json.loads(everything)
    forged["mac"] = "0" * 64
    for junk in (
        b'{"wm": 1099511627776, "r": [[1, 1099511627776]], "bad": []}',  # wire version 1
        json.dumps(forged).encode(),
        auth.terminal_ack("DEV-1", 2**40, [(1, 2**40)], [], OTHER),  # another key
        auth.terminal_ack("DEV-2", 2**40, [(1, 2**40)], [], KEY),  # another device's
        b"\xff\x00 not json",
        b"[" * 5000 + b"]" * 5000,
        b"",
    ):
        ch._ack(junk)
    assert s.forged_acks == 7 and s.acks == 0 and r.log.pending() == 6
    ch._ack(everything)  # genuine, but nothing was sent yet
    assert r.log.pending() == 6 and s.unsent_acks == 1
    now = w.clock.ticks_ms()
    ch.poll(now)
    s.poll(now)  # the window: 1..3 published
    assert s.high == 3 and ch.received == 3
    ch._ack(everything)
    assert r.log.pending() == 3 and s.unsent_acks == 2
    assert [seq for seq, _ in r.log.read(0, 10)] == [4, 5, 6]
    r.log.close()
    # reboot: nothing counts as sent until it is sent again
    r2 = _recorder(fs, w)
    ch2 = LoopChannel(w.clock, "DEV-1", KEY)
    ch2.acking = False
    s2 = Sender(r2.log, ch2, w.clock, "DEV-1", [KEY], window=3)
    ch2._ack(everything)  # acks were in RAM: all six wait again, none sent yet
    assert r2.log.pending() == 6 and s2.high == 0
    now = w.clock.ticks_ms()
    ch2.poll(now)
    s2.poll(now)
    ch2._ack(everything)
    assert r2.log.pending() == 3 and s2.high == 3
    s2.poll(now)
    ch2._ack(everything)
    assert r2.log.pending() == 0 and s2.idle() and s2.high == 6


def test_bad_for_an_unsent_seq_is_ignored() -> None:
    """An agent's "bad" (even genuine) for a seq not yet published cannot drop it."""
    w, _, r, ch, s = _sender(n=5)
    now = w.clock.ticks_ms()
    ch.poll(now)
    s.poll(now)
    ch._ack(auth.terminal_ack("DEV-1", 0, [(1, 2)], [3, 4, 5], KEY))
    assert [seq for seq, _ in r.log.read(0, 10)] == [4, 5] and s.unsent_acks == 1


def test_keys_rotate_by_seq() -> None:
    """A rotated key signs records from its from_seq on; acks verify under the newest two
    keys; the config without ``keys`` still works; bad key lists are config errors."""
    k1, k2, k3 = b"\x01" * 32, b"\x02" * 32, b"\x03" * 32
    cfg: dict[str, Any] = {
        "dev": "ELV-1",
        "key": k3.hex(),
        "keys": [[1, k1.hex()], [4, k2.hex()], [6, k3.hex()]],
        "type": "elevator-box",
        "site": "S1",
        "link": {"host": "10.0.0.1"},
    }
    ident = Identity(Section(cfg, "/config.json:"))
    assert ident.key == k3 and ident.keys.recent == [k3, k2]
    assert [ident.keys.for_seq(s) for s in (0, 1, 3, 4, 5, 6, 99)] == [k1, k1, k1, k2, k2, k3, k3]
    w = new_world()
    fs = MemFS()
    fs.mkdir("/state")
    log = FlashLog(fs, "/log", 2000, 100000, 0)
    log.open()
    r = Recorder("ELV-1", ident.keys, log, Ids(fs, "/state/ids.json"), TimeKeeper(w.clock))
    body = {"reg": "31103301062015000123", "fault": "power_loss", "state": "raised", "floor": 1}
    recs: list[Any] = [r.record("elevator.fault", body) for _ in range(7)]
    assert [verify_mac(x, ident.keys.for_seq(x["seq"])) for x in recs] == [True] * 7
    assert not verify_mac(recs[4], k1) and verify_mac(recs[4], k2)
    ch = LoopChannel(w.clock, "ELV-1", k2)
    s = Sender(log, ch, w.clock, "ELV-1", ident.keys.recent, window=8)
    now = w.clock.ticks_ms()
    ch.poll(now)
    s.poll(now)
    ch._ack(auth.terminal_ack("ELV-1", 0, [(1, 2)], [], k1))  # the oldest key: too old
    ch._ack(auth.terminal_ack("ELV-1", 0, [(1, 5)], [], k2))
    ch._ack(auth.terminal_ack("ELV-1", 0, [(6, 7)], [], k3))
    assert s.forged_acks == 1 and log.pending() == 0
    old = dict(cfg)
    del old["keys"]
    old["key"] = k1.hex()
    plain = Identity(Section(old, "/config.json:"))
    assert plain.keys.recent == [k1] and plain.keys.for_seq(10**6) == k1
    for bad, why in (
        ({"keys": [[4, k2.hex()], [1, k3.hex()]]}, "keys must be"),
        ({"keys": [[0, k3.hex()]]}, "keys must be"),
        ({"keys": [[1, "zz" * 32]]}, "keys must be 64 hex"),
        ({"keys": [[1, k1.hex()], [5, k2.hex()]]}, "newest of keys"),
        ({"keys": []}, "newest of keys"),
    ):
        c = dict(cfg)
        c.update(bad)
        try:
            Identity(Section(c, "/config.json:"))
        except ConfigError as exc:
            assert why in str(exc) and "/config.json:" in str(exc), exc
        else:
            raise AssertionError(f"accepted {bad!r}")


class _Crashy(App):
    crash_at = 3000

    def poll(self, now: int) -> None:
        if self.rt.clock.diff(now, self.rt.health.last) >= 0 and (
            self.rt.board.clock.wall_ms() - WALL0 > self.crash_at
        ):
            raise RuntimeError("stuck driver")


def test_watchdog_fed_only_while_healthy() -> None:
    w = new_world()
    cfg = {"app": "crashy", "hw": {}, "health": {"wdt_ms": 2000, "stale_ms": 1000}}
    rt = harness.runtime(
        w, _Crashy, cfg, harness.identity("DEV-1"), MemFS(), LoopChannel(w.clock, "DEV-1", KEY)
    )
    try:
        w.run(20000, rt.poll)
    except WatchdogReset:
        pass
    else:
        raise AssertionError("the watchdog must bite")
    # crash at 3.0 s; the app beat goes stale after 1 s; last feed before 4.0 s; +2 s
    assert 5000 <= w.now <= 6100, w.now
    assert rt.health.failing == "stale:app" and rt.errors["app"] > 10
    assert rt.health.fed >= 3


def test_watchdog_not_fed_on_flash_failure_but_fine_offline() -> None:
    w = new_world()
    cfg = {"app": "x", "hw": {}, "health": {"wdt_ms": 2000}}
    ch = LoopChannel(w.clock, "DEV-1", KEY)
    ch.online = False  # a week without the gateway is not a reason to reset
    rt = harness.runtime(w, App, cfg, harness.identity("DEV-1"), MemFS(), ch)
    w.run(30000, rt.poll)
    assert rt.health.fed >= 29 and w.resets == 0
    rt.rec.io_errors = 3
    try:
        w.run(40000, rt.poll)
    except WatchdogReset:
        assert rt.health.failing == "flash"
    else:
        raise AssertionError("a failing flash must stop the feed")


def test_config_errors_name_file_and_key() -> None:
    fs = MemFS()
    fs.files["/config.json"] = bytearray(b'{"dev": "CYL 1", "key": "00"}')
    try:
        Identity(load(fs, "/config.json"))
    except ConfigError as exc:
        assert "/config.json:.dev" in str(exc), exc
    else:
        raise AssertionError("bad dev accepted")
    good = {
        "dev": "CYL-1",
        "key": "ab" * 32,
        "type": "cylinder-reader",
        "site": "S1",
        "link": {"host": "10.0.0.1", "port": 99999},
    }
    try:
        Identity(Section(good, "/config.json:"))
    except ConfigError as exc:
        assert "/config.json:.link.port" in str(exc), exc
    else:
        raise AssertionError("bad port accepted")
    good["link"] = {"host": "10.0.0.1"}
    ident = Identity(Section(good, "/config.json:"))
    assert ident.key == b"\xab" * 32 and ident.link.port == 1883 and ident.link.kind == "mqtt"
    try:
        load(fs, "/missing.json")
    except ConfigError as exc:
        assert "not found" in str(exc)
    fs.files["/bad.json"] = bytearray(b"{nope")
    try:
        load(fs, "/bad.json")
    except ConfigError as exc:
        assert "not JSON" in str(exc)


def test_hal_board_pins_and_analog() -> None:
    w = new_world()
    b = hal.Board(
        {
            "pins": {
                "door": 4,
                "btn": {"pin": 5, "active_low": True, "pull": "up"},
                "relay": {"pin": 6, "active_low": True},
            },
            "adc": {"p": {"pin": 34, "zero": 1000, "full": 11000, "full_units": 2500}},
        },
        w.clock,
    )
    door = b.input("door")
    btn = b.input("btn")
    assert not door.on() and not btn.on()  # pull-up: released button reads 1
    w.set_pin(4, 1)
    w.set_pin(5, 0)
    assert door.on() and btn.on()
    relay = b.output("relay")
    assert w.outputs[6] == 1  # active low: off = high
    relay.set(True)
    assert w.outputs[6] == 0
    a = b.analog("p")
    w.adc[34] = 6000
    assert a.read() == 1250
    w.adc[34] = 500
    assert a.read() == 0
    try:
        b.input("nope")
    except hal.HalError as exc:
        assert "hw.pins.nope" in str(exc)
    else:
        raise AssertionError("missing pin accepted")


def test_debounce() -> None:
    w = new_world()
    c = w.clock
    cond = Condition("x", c, raise_ms=100, clear_ms=50)
    evs = []
    for t in range(0, 400, 10):
        bad = 20 <= t < 200 and t != 60
        evs.append((t, cond.update(c.ticks_ms(), bad, not bad)))
        w.advance(10)
    ups = [t for t, e in evs if e == RAISED]
    downs = [t for t, e in evs if e == CLEARED]
    assert ups == [170] and downs == [250], (ups, downs)  # the glitch at 60 restarted it
    w.set_pin(9, 0)
    b = Button(hal.In(__import__("machine").Pin(9), True), c, 50)
    pressed = 0
    for _ in range(30):
        pressed += b.poll(c.ticks_ms())
        w.advance(10)
    assert pressed == 1
