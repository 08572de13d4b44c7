"""Serial link to the gateway: frames through the drivers' StreamDecoder, and the link
layer over a noisy line (corrupted and lost bytes): every record arrives exactly once and
is freed only by the gateway's ack."""

import json

import tesim

tesim.install()

from te import slink  # noqa: E402
from te.flashlog import FlashLog  # noqa: E402
from te.sender import Sender  # noqa: E402
from tesim.memfs import MemFS  # noqa: E402
from tesim.world import new_world  # noqa: E402

from drivers.codecs import slink as dl  # noqa: E402
from drivers.codecs.stream import BadFrame  # noqa: E402
from wire import auth  # noqa: E402

DEV = "ELV-S1-01"
KEY = b"\x5a" * 32


def test_frames_roundtrip_and_every_chunking() -> None:
    frames = [
        slink.Frame(slink.REC, 1, b'{"seq":1}'),
        slink.Frame(slink.LACK, 1),
        slink.Frame(slink.ACK, 9, b'{"r":[[1,1]],"bad":[]}'),
        slink.Frame(slink.HELLO, 0),
    ]
    stream = b"".join(slink.encode(f.type, f.num, f.payload) for f in frames)
    assert slink.Decoder().feed(stream) == frames
    for cut in range(1, len(stream)):
        d = slink.Decoder()
        assert d.feed(stream[:cut]) + d.feed(stream[cut:]) == frames, cut


def test_corrupt_frame_costs_only_itself() -> None:
    a = slink.encode(slink.REC, 1, b"first")
    b = slink.encode(slink.REC, 2, b"second")
    for i in range(len(a)):
        bad = bytearray(a)
        bad[i] ^= 0x10
        out = slink.Decoder().feed(b"\x00garbage" + bytes(bad) + b)
        good = [f for f in out if isinstance(f, slink.Frame)]
        assert good[-1] == slink.Frame(slink.REC, 2, b"second"), (i, out)
        assert slink.Frame(slink.REC, 1, b"first") not in good
        assert any(isinstance(f, BadFrame) for f in out) or len(good) == 1


class Rng:
    """xorshift32: deterministic noise (MicroPython's random has no Random class)."""

    def __init__(self, seed: int) -> None:
        self.x = seed * 2654435761 % (1 << 32) or 1

    def random(self) -> float:
        x = self.x
        x ^= (x << 13) & 0xFFFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFFFFFF
        self.x = x
        return x / 4294967296


class Line:
    """One direction of a UART cable: corrupts and drops bytes on the way."""

    def __init__(self, rng: Rng, flip: float, drop: float) -> None:
        self.rng = rng
        self.flip = flip
        self.drop = drop
        self.peer: Line | None = None
        self.buf = b""

    def write(self, data: bytes) -> int:
        out = bytearray()
        for x in data:
            r = self.rng.random()
            if r < self.drop:
                continue
            out.append(x ^ 0x04 if r < self.drop + self.flip else x)
        assert self.peer is not None
        self.peer.buf += bytes(out)
        return len(data)

    def read(self) -> "bytes | None":
        out, self.buf = self.buf, b""
        return out or None


def _pair(seed: int, flip: float, drop: float) -> "tuple[Line, Line]":
    rng = Rng(seed + 1)
    t, g = Line(rng, flip, drop), Line(rng, flip, drop)
    t.peer, g.peer = g, t  # what the terminal writes lands in the gateway's buffer
    return t, g


def _gateway(uart: Line, clock: "object") -> "tuple[slink.SerialEndpoint, dict[int, bytes]]":
    stored: dict[int, bytes] = {}
    ep: list[slink.SerialEndpoint] = []

    def deliver(ftype: int, payload: bytes) -> None:
        if ftype == slink.REC:
            seq = json.loads(payload)["seq"]
            assert stored.setdefault(seq, payload) == payload
            ep[0].send(slink.ACK, auth.terminal_ack(DEV, 0, [(seq, seq)], [], KEY))
        elif ftype == slink.GATE:
            req = json.loads(payload)
            ep[0].send(slink.CMD, auth.gate_answer(DEV, req["id"], req["n"], "allow", [], 1, KEY))
        elif ftype == slink.DISPATCH:
            req = json.loads(payload)
            assert auth.check_dispatch_request(req, DEV, [KEY])
            ep[0].send(
                slink.CMD,
                auth.gate_answer(DEV, req["id"], req["n"], "deny", ["no_licence"], 1, KEY),
            )

    ep.append(slink.SerialEndpoint(uart, clock, deliver, rto_ms=200))
    return ep[0], stored


def _run(noise: "tuple[float, float]", seed: int) -> None:
    w = new_world()
    t_line, g_line = _pair(seed, *noise)
    ch = slink.SerialChannel(t_line, w.clock, rto_ms=200)  # type: ignore[arg-type]
    gw, stored = _gateway(g_line, w.clock)
    log = FlashLog(MemFS(), "/log", 2000, 100000, 0)
    log.open()
    want = {}
    for s in range(1, 31):
        p = json.dumps({"seq": s, "pad": "p" * (s * 7 % 50)}).encode()
        log.append(s, p)
        want[s] = p
    snd = Sender(log, ch, w.clock, DEV, [KEY], window=4, ack_timeout_ms=5000)
    cmds: list[bytes] = []
    ch.on_cmd = cmds.append
    for _ in range(12000):
        w.advance(10)
        now = w.clock.ticks_ms()
        ch.poll(now)
        snd.poll(now)
        gw.poll(now)
        if log.pending() == 0:
            break
    assert stored == want, sorted(set(want) - set(stored))
    assert log.pending() == 0, log.pending()
    ch.send_gate(b'{"id": 5, "n": "00112233445566778899aabbccddeeff"}')
    for _ in range(6000):  # the sealed answer is long: on the noisiest line most tries fail
        w.advance(10)
        now = w.clock.ticks_ms()
        ch.poll(now)
        gw.poll(now)
        if cmds:
            break
    assert json.loads(cmds[0])["id"] == 5
    req = {"id": 6, "n": "ffeeddccbbaa99887766554433221100", "items": ["x"]}
    assert ch.send_dispatch(auth.dispatch_request(DEV, req, KEY))
    for _ in range(6000):
        w.advance(10)
        now = w.clock.ticks_ms()
        ch.poll(now)
        gw.poll(now)
        if len(cmds) > 1:
            break
    assert json.loads(cmds[1])["id"] == 6 and json.loads(cmds[1])["reasons"] == ["no_licence"]
    print(
        f"serial link noise={noise}: {ch.ep.retransmits + gw.retransmits} retransmits, "
        f"{gw.bad_frames} bad frames at the gateway, {ch.ep.bad_frames} at the terminal"
    )


def test_clean_line() -> None:
    _run((0.0, 0.0), 1)


def test_noisy_line_every_record_once() -> None:
    for seed in range(5):
        _run((0.002, 0.001), seed)
    _run((0.01, 0.005), 99)


# -- RS-485 bus: one master (the gateway), several addressed terminals -----------------------


class Bus:
    """A half-duplex pair: what one station writes every other station hears (through the
    same noise); nobody hears their own bytes."""

    def __init__(self, rng: Rng, flip: float, drop: float) -> None:
        self.rng = rng
        self.flip = flip
        self.drop = drop
        self.ends: list[BusEnd] = []

    def end(self) -> "BusEnd":
        e = BusEnd(self)
        self.ends.append(e)
        return e


class BusEnd:
    def __init__(self, bus: Bus) -> None:
        self.bus = bus
        self.buf = b""

    def write(self, data: bytes) -> int:
        b = self.bus
        out = bytearray()
        for x in data:
            r = b.rng.random()
            if r < b.drop:
                continue
            out.append(x ^ 0x04 if r < b.drop + b.flip else x)
        for e in b.ends:
            if e is not self:
                e.buf += bytes(out)
        return len(data)

    def read(self) -> "bytes | None":
        out, self.buf = self.buf, b""
        return out or None


def test_bus_frames_carry_address_and_direction() -> None:
    f = slink.Frame(slink.REC, 3, b"x", 7, True)
    raw = slink.encode(slink.REC, 3, b"x", 7, True)
    assert raw[1] == slink.REC | 0x40 | 0x80 and raw[2] == 7
    assert slink.decode(raw) == f
    mixed = slink.encode(slink.ACK, 1, b"a") + raw
    assert slink.Decoder().feed(mixed) == [slink.Frame(slink.ACK, 1, b"a"), f]


def _bus_run(noise: "tuple[float, float]", seed: int, n_terms: int = 3, n_recs: int = 12) -> None:
    w = new_world()
    bus = Bus(Rng(seed + 7), *noise)
    gw_end = bus.end()
    stored: dict[tuple[int, int], bytes] = {}
    hellos: list[int] = []
    master: list[dl.BusMaster] = []

    def deliver(addr: int, ftype: int, payload: bytes) -> None:
        if ftype == slink.HELLO:
            hellos.append(addr)
            return
        seq = json.loads(payload)["seq"]
        assert stored.setdefault((addr, seq), payload) == payload
        master[0].send(addr, slink.ACK, auth.terminal_ack(DEV, 0, [(seq, seq)], [], KEY))

    addrs = [3 + 5 * i for i in range(n_terms)]
    master.append(dl.BusMaster(gw_end, w.clock, deliver, addrs, rto_ms=60))
    gw = master[0]
    terms = []
    want: dict[tuple[int, int], bytes] = {}
    for a in addrs:
        ch = slink.SerialChannel(bus.end(), w.clock, addr=a)  # type: ignore[arg-type]
        log = FlashLog(MemFS(), "/log%d" % a, 2000, 100000, 0)
        log.open()
        for s in range(1, n_recs + 1):
            p = json.dumps({"seq": s, "addr": a, "pad": "q" * (s * 5 % 40)}).encode()
            log.append(s, p)
            want[(a, s)] = p
        snd = Sender(log, ch, w.clock, DEV, [KEY], window=2, ack_timeout_ms=5000)
        terms.append((ch, snd, log))
    for _ in range(20000):
        w.advance(5)
        now = w.clock.ticks_ms()
        gw.poll(now)
        for ch, snd, _ in terms:
            ch.poll(now)
            snd.poll(now)
        if all(log.pending() == 0 for _, _, log in terms):
            break
    assert stored == want, sorted(set(want) - set(stored))
    assert all(log.pending() == 0 for _, _, log in terms)
    assert sorted(set(hellos)) == addrs
    print(
        f"bus noise={noise} terminals={n_terms}: {gw.retransmits} master retransmits, "
        f"{sum(ch.ep.retransmits for ch, _, _ in terms)} terminal retransmits, "
        f"{gw.timeouts} timeouts, {gw.bad_frames} bad frames at the master"
    )


def test_bus_clean() -> None:
    _bus_run((0.0, 0.0), 1)


def test_bus_noisy_every_record_once() -> None:
    for seed in range(3):
        _bus_run((0.002, 0.001), seed)


def test_bus_terminal_goes_down_when_not_polled_and_comes_back() -> None:
    w = new_world()
    bus = Bus(Rng(5), 0.0, 0.0)
    gw_end = bus.end()
    got: list[tuple[int, int]] = []
    gw = dl.BusMaster(gw_end, w.clock, lambda a, t, p: got.append((a, t)), [9], rto_ms=60)
    ch = slink.SerialChannel(bus.end(), w.clock, addr=9, silence_ms=1000)  # type: ignore[arg-type]
    for _ in range(50):
        w.advance(5)
        gw.poll(w.clock.ticks_ms())
        ch.poll(w.clock.ticks_ms())
    assert ch.up() and got == [(9, slink.HELLO)]
    epoch = ch.epoch
    for _ in range(300):  # the gateway stops polling
        w.advance(5)
        ch.poll(w.clock.ticks_ms())
    assert not ch.up()
    for _ in range(50):
        w.advance(5)
        gw.poll(w.clock.ticks_ms())
        ch.poll(w.clock.ticks_ms())
    assert ch.up() and ch.epoch == epoch + 1
    assert got == [(9, slink.HELLO), (9, slink.HELLO)]  # the master learns it is back


def test_bus_terminal_ignores_other_addresses_and_echoes() -> None:
    w = new_world()
    bus = Bus(Rng(5), 0.0, 0.0)
    spy = bus.end()
    ch = slink.SerialChannel(bus.end(), w.clock, addr=4)  # type: ignore[arg-type]
    spy.write(slink.encode(dl.POLL, 0, b"", 5))  # another terminal's poll
    spy.write(slink.encode(slink.REC, 1, b"x", 4, True))  # a frame *from* address 4
    ch.poll(w.clock.ticks_ms())
    assert spy.read() is None  # not spoken to: silent
    spy.write(slink.encode(dl.POLL, 0, b"", 4))
    ch.poll(w.clock.ticks_ms())
    assert slink.Decoder().feed(spy.read() or b"") == [slink.Frame(slink.HELLO, 0, b"", 4, True)]


def test_link_config_selects_bus_mode() -> None:
    from te.config import ConfigError, Link, Section

    lk = Link(Section({"kind": "serial", "uart": "rs485", "bus_addr": 12, "rto_ms": 80}, "c:"))
    assert (lk.kind, lk.uart, lk.bus_addr, lk.rto_ms) == ("serial", "rs485", 12, 80)
    assert Link(Section({"kind": "serial"}, "c:")).bus_addr == 0  # point-to-point
    try:
        Link(Section({"kind": "serial", "bus_addr": 255}, "c:"))
    except ConfigError as exc:
        assert "bus_addr" in str(exc)
    else:
        raise AssertionError("bus address 255 accepted")
    w = new_world()
    ch = slink.SerialChannel(Line(Rng(1), 0, 0), w.clock, lk.rto_ms, lk.bus_addr)  # type: ignore[arg-type]
    assert isinstance(ch.ep, slink.BusTerminal) and ch.ep.addr == 12


def test_gateway_restart_makes_the_terminal_resend_at_once() -> None:
    """The agent killed mid-exchange: a new gateway endpoint says HELLO; the terminal
    resends what is unacked without waiting for its ack timeout."""
    w = new_world()
    t_line, g_line = _pair(3, 0.0, 0.0)
    ch = slink.SerialChannel(t_line, w.clock, rto_ms=200)  # type: ignore[arg-type]
    log = FlashLog(MemFS(), "/log", 2000, 100000, 0)
    log.open()
    for s in range(1, 9):
        log.append(s, json.dumps({"seq": s}).encode())
    snd = Sender(log, ch, w.clock, DEV, [KEY], window=4, ack_timeout_ms=60000)
    dead = slink.SerialEndpoint(g_line, w.clock, lambda t, p: None, rto_ms=200)  # acks nothing
    for _ in range(100):
        w.advance(10)
        now = w.clock.ticks_ms()
        ch.poll(now)
        snd.poll(now)
        dead.poll(now)
    assert log.pending() == 8
    epoch = ch.epoch
    t0 = w.clock.ticks_ms()
    gw, stored = _gateway(g_line, w.clock)  # the restarted agent
    for _ in range(300):
        w.advance(10)
        now = w.clock.ticks_ms()
        ch.poll(now)
        snd.poll(now)
        gw.poll(now)
        if log.pending() == 0:
            break
    assert log.pending() == 0 and sorted(stored) == list(range(1, 9)), sorted(stored)
    assert ch.epoch == epoch + 1, (ch.epoch, epoch)
    assert w.clock.diff(w.clock.ticks_ms(), t0) < 5000  # not the 60 s ack timeout


def test_rs485_driver_enable_only_while_writing() -> None:
    from te import hal

    w = new_world()
    seen: list[tuple[bytes, int]] = []

    class Transceiver:
        def attached(self, world: "object", uid: int) -> None:
            pass

        def receive(self, world: "object", data: bytes) -> None:
            seen.append((data, w.read_pin(21)))  # the driver level while the bytes go out

    w.attach_uart(2, Transceiver())
    b = hal.Board({"uart": {"gateway": {"id": 2, "baud": 115200, "de": 21}}}, w.clock)
    u = b.link_uart("gateway")
    assert isinstance(u, hal.HalfDuplex) and w.read_pin(21) == 0
    ch = slink.SerialChannel(u, w.clock, addr=3)
    w.rx[2].append((w.now, slink.encode(dl.POLL, 0, b"", 3)))
    ch.poll(w.clock.ticks_ms())
    assert seen == [(slink.encode(slink.HELLO, 0, b"", 3, True), 1)] and w.read_pin(21) == 0
    assert [lv for _, lv in w.output_on(21)][-2:] == [1, 0]
    plain = hal.Board({"uart": {"gateway": {"id": 2}}}, w.clock).link_uart("gateway")
    assert not isinstance(plain, hal.HalfDuplex)
