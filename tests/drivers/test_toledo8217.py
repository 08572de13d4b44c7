"""Toledo 8217: weight and status frames, status bit map, corruption, properties."""

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from drivers.codecs import EncodeError, FrameError, Weight
from drivers.codecs.toledo8217 import (
    STATUS_BITS,
    CommandDecoder,
    Decoder,
    Reply,
    decode_reply,
    encode_command,
    encode_reply,
    encode_status,
    encode_weight,
    status_byte,
    status_flags,
)

from .feeding import check_all_ways, check_recovers, feed, good, kinds
from .props import (
    FUZZ,
    SETTINGS,
    check_fuzz,
    check_garbage_between,
    check_pure_decode,
    chunked,
    garbage,
)

WEIGHT = b"\x0201.234\r"
MOTION = b"\x02?\x21\r"


def test_command_w_is_one_byte() -> None:
    assert encode_command("W") == b"W"
    with pytest.raises(EncodeError):
        encode_command("Q")


def test_weight_and_status_vectors() -> None:
    assert decode_reply(WEIGHT) == Reply(weight=Weight(1234, 3, "kg"))
    assert decode_reply(WEIGHT, unit="lb") == Reply(weight=Weight(1234, 3, "lb"))
    assert encode_weight(Weight(1234, 3, "kg")) == WEIGHT
    reply = decode_reply(MOTION)
    assert reply.status == 0x21
    assert reply.flags == ["motion"]
    assert encode_status(0x21) == MOTION


def test_status_bit_map_table() -> None:
    assert [bit for bit, _ in STATUS_BITS] == [0x01, 0x02, 0x04, 0x08, 0x10, 0x40]
    assert status_flags(0x20 | 0x02 | 0x40) == ["over_capacity", "net"]
    assert status_byte(["negative", "out_of_zero_range"]) == 0x2C
    with pytest.raises(EncodeError):
        status_byte(["bogus"])


def test_parity_bit_of_status_byte_is_ignored() -> None:
    assert decode_reply(b"\x02?\xa1\r").status == 0x21


def test_every_way() -> None:
    stream = WEIGHT + MOTION + b"\x02000.0\r"
    expected = [
        Reply(weight=Weight(1234, 3, "kg")),
        Reply(status=0x21),
        Reply(weight=Weight(0, 1, "kg")),
    ]
    check_all_ways(Decoder, stream, expected)


@pytest.mark.parametrize(
    "bad",
    [
        b"\x0201.2x4\r",  # bad digit
        b"\x02-1.234\r",  # sign is not part of this protocol
        b"\x02?\x01\r",  # status without the always-one bit
        b"\x02?\x21\x21\r",  # two status bytes
        b"\x021.2.3\r",  # two points
        b"\x02123456789\r",  # too long
    ],
)
def test_corrupted_frame_is_reported_and_the_next_frame_survives(bad: bytes) -> None:
    stream = WEIGHT + bad + MOTION
    for chunks in ([stream], [bytes([b]) for b in stream]):
        items = feed(Decoder(), chunks)
        assert kinds(items) == ["Reply", "BadFrame:FrameError", "Reply"]
        assert items[2] == Reply(status=0x21)


def test_regression_frame_cut_by_a_new_stx_does_not_swallow_it() -> None:
    # the scale restarted mid-frame: the new STX must start a new frame
    items = Decoder().feed(b"\x0201.2" + WEIGHT)
    assert kinds(items) == ["BadFrame:FrameError", "Reply"]


def test_regression_lost_cr_does_not_stall_forever() -> None:
    decoder = Decoder()
    items = decoder.feed(b"\x0201.234" + b"5" * 20 + WEIGHT)
    assert kinds(items) == ["BadFrame:FrameError", "Reply"]
    assert decoder.buffered == 0


def test_garbage_before_and_between() -> None:
    stream = b"\xff\x00W\r" + WEIGHT + b"junk\r\n" + MOTION
    check_recovers(Decoder, stream, [Reply(weight=Weight(1234, 3, "kg")), Reply(status=0x21)])


def test_command_decoder_skips_noise() -> None:
    check_all_ways(CommandDecoder, b"W\rxS\r\nZ", ["W", "S", "Z"])


def test_encode_refuses_what_the_wire_cannot_carry() -> None:
    with pytest.raises(EncodeError):
        encode_weight(Weight(-1, 0, "kg"))
    with pytest.raises(EncodeError):
        encode_weight(Weight(10**9, 0, "kg"))
    with pytest.raises(EncodeError):
        encode_status(0x01)
    with pytest.raises(FrameError):
        decode_reply(b"\x02\r")


flags = st.lists(st.sampled_from([name for _, name in STATUS_BITS]), unique=True)
replies = st.one_of(
    st.builds(
        lambda v, d: Reply(weight=Weight(v, d, "kg")), st.integers(0, 999999), st.integers(0, 3)
    ),
    flags.map(lambda f: Reply(status=status_byte(f))),
)


@SETTINGS
@given(replies)
def test_property_round_trip(reply: Reply) -> None:
    assert decode_reply(encode_reply(reply)) == reply


@SETTINGS
@given(st.lists(replies, min_size=1, max_size=8), st.data())
def test_property_any_chunks(replies_: list[Reply], data: st.DataObject) -> None:
    stream = b"".join(encode_reply(r) for r in replies_)
    assert feed(Decoder(), data.draw(chunked(stream))) == replies_


# false starts: a lone STX, a frame cut short, a stray "?"
noise = garbage([b"\x02", b"\x0201.", b"\x02?", b"\r"])


@SETTINGS
@given(
    st.lists(replies, min_size=1, max_size=6),
    st.lists(noise, max_size=4),
    st.lists(st.integers(1, 20)),
)
def test_property_good_frames_survive_garbage(
    replies_: list[Reply], garbage_: list[bytes], chunks: list[int]
) -> None:
    # The 8217 frame has no checksum: garbage holding STX, a status byte and CR (b"\x02? \r",
    # drawn by a fresh-clone run) is a valid reply, rightly decoded. Such streams are left out.
    assume(not any(good(feed(Decoder(), [g])) for g in garbage_))
    check_garbage_between(Decoder, [encode_reply(r) for r in replies_], garbage_, replies_, chunks)


@FUZZ
@given(st.binary(max_size=600), st.data())
def test_property_arbitrary_bytes_never_raise(data_: bytes, data: st.DataObject) -> None:
    check_fuzz(Decoder(max_buffer=64), data.draw(chunked(data_)), (Reply,))
    check_fuzz(CommandDecoder(), data.draw(chunked(data_)), (str,))
    check_pure_decode(decode_reply, data_)
