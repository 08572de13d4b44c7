"""The serial link's frames (point-to-point and RS-485 bus) on the host: every way of
feeding, corruption, properties; the link layer between two endpoints in-process (the
same module the firmware runs, tests/firmware/mp/mp_slink.py runs it under MicroPython)."""

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.codecs import ChecksumError, FrameError, slink
from drivers.codecs.slink import (
    BUS,
    DISPATCH,
    HELLO,
    LACK,
    POLL,
    REC,
    UP,
    Decoder,
    Frame,
    decode,
    encode,
)

from .feeding import check_all_ways, check_recovers, kinds
from .props import FUZZ, SETTINGS, check_fuzz, check_garbage_between, check_pure_decode, chunked


def test_layout_point_to_point() -> None:
    raw = encode(REC, 5, b"ab")
    assert raw[:6] == bytes([0x7E, REC, 5, 0, 2]) + b"a"
    assert int.from_bytes(raw[-2:], "little") == slink.crc16(raw[1:-2])


def test_layout_bus() -> None:
    raw = encode(REC, 5, b"ab", addr=17, up=True)
    assert raw[:5] == bytes([0x7E, REC | BUS | UP, 17, 5, 0])
    assert decode(raw) == Frame(REC, 5, b"ab", 17, True)
    assert decode(encode(POLL, 0, b"", 17)) == Frame(POLL, 0, b"", 17, False)


def test_layout_dispatch_is_a_data_frame_of_its_own() -> None:
    raw = encode(DISPATCH, 7, b"{}", addr=3, up=True)
    assert raw[1] == DISPATCH | BUS | UP == 0xC3
    assert decode(raw) == Frame(DISPATCH, 7, b"{}", 3, True)
    assert DISPATCH in slink.DATA_TYPES
    types = [REC, slink.GATE, DISPATCH, slink.ACK, slink.CMD, LACK, HELLO, POLL, slink.IDLE]
    assert len(set(types)) == len(types) and all(not t & (BUS | UP) for t in types)


def test_encode_refuses_what_it_cannot_carry() -> None:
    with pytest.raises(ValueError):
        encode(REC, 1, b"x" * (slink.MAX_PAYLOAD + 1))
    with pytest.raises(ValueError):
        encode(REC, 1, b"", addr=255)
    with pytest.raises(ValueError):
        encode(REC | BUS, 1)


def test_every_way_mixed_modes() -> None:
    frames = [
        Frame(REC, 1, b'{"seq":1}'),
        Frame(LACK, 1),
        Frame(REC, 2, b"x" * 300, 3, True),
        Frame(HELLO, 0, b"", 200),
    ]
    stream = b"".join(encode(f.type, f.num, f.payload, f.addr, f.up) for f in frames)
    check_all_ways(Decoder, stream, frames)


@pytest.mark.parametrize("index", [1, 2, 3, 4, 6, -2, -1])
def test_corrupted_byte_costs_only_its_frame(index: int) -> None:
    bad = bytearray(encode(REC, 1, b"first", 9, True))
    bad[index] ^= 0x10
    with pytest.raises(FrameError):
        decode(bytes(bad))
    good = encode(REC, 2, b"second", 9, True)
    check_recovers(Decoder, bytes(bad) + good, [decode(good)])


def test_regression_up_bit_without_address_is_a_frame_error() -> None:
    body = bytes([REC | UP, 1, 0, 0])
    raw = b"\x7e" + body + slink.crc16(body).to_bytes(2, "little")
    with pytest.raises(FrameError, match="no address"):
        decode(raw)


def test_crc_error_is_a_checksum_error() -> None:
    raw = bytearray(encode(REC, 1, b"abc"))
    raw[5] ^= 1
    with pytest.raises(ChecksumError):
        decode(bytes(raw))
    assert kinds(Decoder().feed(bytes(raw))) == ["BadFrame:ChecksumError"]


# -- properties -----------------------------------------------------------------------------

frames = st.builds(
    Frame,
    st.sampled_from([*slink.DATA_TYPES, LACK, HELLO, POLL, slink.IDLE]),
    st.integers(0, 255),
    st.binary(max_size=80),
    st.one_of(st.just(0), st.integers(1, 254)),
    st.booleans(),
).map(lambda f: Frame(f.type, f.num, f.payload, f.addr, f.up and f.addr > 0))


def _raw(f: Frame) -> bytes:
    return encode(f.type, f.num, f.payload, f.addr, f.up)


@SETTINGS
@given(frames)
def test_property_round_trip(f: Frame) -> None:
    assert decode(_raw(f)) == f


@SETTINGS
@given(st.lists(frames, min_size=1, max_size=6), st.data())
def test_property_any_chunks(fs: list[Frame], data: st.DataObject) -> None:
    stream = b"".join(_raw(f) for f in fs)
    d = Decoder()
    out: list[object] = []
    for c in data.draw(chunked(stream)):
        out.extend(d.feed(c))
    assert out == fs


@SETTINGS
@given(
    st.lists(frames, min_size=1, max_size=5),
    st.lists(st.binary(max_size=10), max_size=4),
    st.lists(st.integers(1, 40)),
)
def test_property_good_frames_survive_arbitrary_garbage(
    fs: list[Frame], noise: list[bytes], sizes: list[int]
) -> None:
    check_garbage_between(Decoder, [_raw(f) for f in fs], noise, list(fs), sizes)


@FUZZ
@given(st.binary(max_size=600), st.data())
def test_property_arbitrary_bytes_never_raise(data_: bytes, data: st.DataObject) -> None:
    check_fuzz(Decoder(max_buffer=300), data.draw(chunked(data_)), (Frame,))
    check_pure_decode(decode, data_)


# -- the link layer on the host clock ---------------------------------------------------------


class Pipe:
    def __init__(self) -> None:
        self.peer: Pipe | None = None
        self.buf = b""

    def write(self, data: bytes) -> int:
        assert self.peer is not None
        self.peer.buf += data
        return len(data)

    def read(self) -> bytes | None:
        out, self.buf = self.buf, b""
        return out or None


class Clock:
    def __init__(self) -> None:
        self.t = 0

    def diff(self, a: int, b: int) -> int:
        return a - b


def test_gateway_keepalive_notices_a_silent_terminal_and_its_return() -> None:
    a, b = Pipe(), Pipe()
    a.peer, b.peer = b, a
    clock = Clock()
    got: list[tuple[int, bytes]] = []
    gw = slink.SerialEndpoint(a, clock, lambda t, p: got.append((t, p)), 50, 3, keepalive_ms=200)
    term = slink.SerialEndpoint(b, clock, lambda t, p: None, 50)
    for now in range(0, 1000, 10):
        gw.poll(now)
        term.poll(now)
    assert gw.is_up and term.is_up and gw.hellos == 1 and term.hellos == 1
    assert gw.heard_at is not None and gw.heard_at >= 800  # the keepalive's LACKs
    for now in range(1000, 2000, 10):  # the terminal is gone
        gw.poll(now)
        b.buf = b""
    assert not gw.is_up
    for now in range(2000, 2500, 10):
        gw.poll(now)
        term.poll(now)
    assert gw.is_up and got == []


@SETTINGS
@given(
    st.lists(st.sampled_from([REC, slink.GATE, DISPATCH]), min_size=1, max_size=6),
    st.binary(min_size=1, max_size=300),
    st.sets(st.integers(0, 40), max_size=8),
    st.sampled_from([0, 5]),
)
def test_property_terminal_data_frames_arrive_once_with_their_type(
    types: list[int], payload: bytes, lost: set[int], addr: int
) -> None:
    """Records, fill-gate and dispatch requests from a terminal (point-to-point or bus),
    some of its frames lost on the line: each reaches the gateway once, as sent, in order,
    and the gateway's answer reaches the terminal."""
    a, b = Pipe(), Pipe()
    a.peer, b.peer = b, a
    clock = Clock()
    at_gw: list[tuple[int, bytes]] = []
    at_term: list[tuple[int, bytes]] = []
    gw: Any
    term: Any
    if addr:
        gw = slink.BusMaster(a, clock, lambda _a, t, p: at_gw.append((t, p)), [addr], 50)
        term = slink.BusTerminal(b, clock, lambda t, p: at_term.append((t, p)), addr, 5000)
    else:
        gw = slink.SerialEndpoint(a, clock, lambda t, p: at_gw.append((t, p)), 50)
        term = slink.SerialEndpoint(b, clock, lambda t, p: at_term.append((t, p)), 50)
    written = [0]
    write = b.write

    def lossy(data: bytes) -> int:  # the terminal's frames numbered in `lost` vanish
        written[0] += 1
        return len(data) if written[0] - 1 in lost else write(data)

    b.write = lossy  # type: ignore[method-assign]
    want = [(t, payload + bytes([i])) for i, t in enumerate(types)]
    queued = 0
    for now in range(0, 60_000, 10):
        if queued < len(want) and term.room() > 0:
            term.send(*want[queued])
            queued += 1
        gw.poll(now)
        term.poll(now)
        if [x for x in at_gw if x[0] != HELLO] == want:
            break
    assert [x for x in at_gw if x[0] != HELLO] == want
    if addr:
        gw.send(addr, slink.CMD, b"answer")
    else:
        gw.send(slink.CMD, b"answer")
    for now in range(60_000, 70_000, 10):
        gw.poll(now)
        term.poll(now)
    assert at_term == [(slink.CMD, b"answer")]


def test_host_clock_is_monotonic_ms() -> None:
    c = slink.HostClock()
    t = c.ticks_ms()
    assert c.diff(c.ticks_ms(), t) >= 0


# -- no input stops a link: the endpoints take any bytes and any well-formed frames ---------

any_frames = st.lists(
    st.one_of(
        st.binary(max_size=40),
        frames.map(_raw),
        st.builds(
            lambda t, n, a: encode(t, n, b"", a, False),
            st.sampled_from([LACK, POLL, HELLO, slink.IDLE, REC, DISPATCH]),
            st.integers(0, 255),
            st.sampled_from([0, 1, 2]),
        ),
    ),
    max_size=30,
)


class Sink:
    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = list(chunks)
        self.written = 0

    def read(self) -> bytes | None:
        return self.chunks.pop(0) if self.chunks else None

    def write(self, data: bytes) -> int:
        self.written += len(data)
        return len(data)


@FUZZ
@given(any_frames)
def test_property_no_input_breaks_an_endpoint(chunks: list[bytes]) -> None:
    clock = Clock()
    got: list[object] = []
    eps: list[Any] = [
        slink.SerialEndpoint(Sink(chunks), clock, lambda t, p: got.append(p), 50, 3, 4, 100),
        slink.BusTerminal(Sink(chunks), clock, lambda t, p: got.append(p), 1, 500),
        slink.BusMaster(Sink(chunks), clock, lambda a, t, p: got.append(p), [1, 2], 50),
    ]
    for ep in eps:
        for now in range(0, 40 * (len(chunks) + 2), 20):
            ep.poll(now)
        assert ep.dec.buffered <= ep.dec.max_buffer
    assert all(isinstance(p, bytes) for p in got)


def test_bus_master_waits_while_a_long_answer_arrives() -> None:
    answer = encode(REC, 1, b"r" * 2000, 1, True)
    pieces = [answer[i : i + 100] for i in range(0, len(answer), 100)]

    class SlowLine:
        """The terminal's long answer arrives 100 bytes every 20 ms after the POLL."""

        def __init__(self) -> None:
            self.polled = False
            self.sent: list[Frame] = []

        def read(self) -> bytes | None:
            return pieces.pop(0) if self.polled and pieces else None

        def write(self, data: bytes) -> int:
            self.sent.extend(f for f in Decoder().feed(data) if isinstance(f, Frame))
            if self.sent[-1].type == POLL:
                self.polled = True
            return len(data)

    line = SlowLine()
    got: list[tuple[int, int, bytes]] = []
    m = slink.BusMaster(line, Clock(), lambda a, t, p: got.append((a, t, p)), [1, 2], 50)
    m.peers[1].queue.clear()  # no HELLO first: straight to the poll
    for now in range(0, 1000, 20):
        m.poll(now)
        if got:
            break
    assert got == [(1, REC, b"r" * 2000)] and m.timeouts == 0
    # acknowledged, and nobody else spoken to while the answer was on the line
    to_two = [i for i, f in enumerate(line.sent) if f.addr == 2]
    assert line.sent.index(Frame(LACK, 1, b"", 1, False)) < (to_two or [len(line.sent)])[0]
