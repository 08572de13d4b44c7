"""Toledo continuous output: status bytes, decimal point, 7-bit checksum, streaming."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.codecs import ChecksumError, EncodeError, FrameError, Weight
from drivers.codecs.toledo_continuous import (
    DECIMAL_POINT,
    FLAGS,
    FRAME_LEN,
    Decoder,
    Frame,
    checksum,
    decode_frame,
    encode_frame,
)

from .feeding import check_all_ways, check_recovers, feed, kinds
from .props import (
    FUZZ,
    SETTINGS,
    check_fuzz,
    check_garbage_between,
    check_pure_decode,
    chunked,
    garbage,
)

# SWA 0x34: bit 5, increment x2 (bits 3-4 = 10), decimal code 4 (XXXX.XX)
# SWB 0x39: bit 5, kg, motion, net ; SWC 0x20
BODY = b"\x024\x39 001234000100\r"
FRAME = BODY + bytes([-sum(BODY) & 0x7F])
DECODED = Frame(Weight(1234, 2, "kg"), Weight(100, 2, "kg"), ["motion", "net"], 2)


def test_vector_decodes_and_encodes_literally() -> None:
    assert len(FRAME) == FRAME_LEN
    assert (sum(FRAME) & 0x7F) == 0
    assert decode_frame(FRAME) == DECODED
    assert encode_frame(DECODED) == FRAME


def test_checksum_is_twos_complement_of_the_7_bit_sum() -> None:
    assert checksum(b"\x02\x01") == 0x7D
    assert (sum(b"\x02\x01") + checksum(b"\x02\x01")) & 0x7F == 0


def test_negative_weight_sets_the_sign_bit() -> None:
    raw = encode_frame(Frame(Weight(-5, 1, "lb"), Weight(0, 1, "lb")))
    assert raw[2] & 0x02
    assert not raw[2] & 0x10  # lb
    assert decode_frame(raw).weight == Weight(-5, 1, "lb")


@pytest.mark.parametrize(
    ("code", "digits", "weight"),
    [
        (0, b"000123", Weight(12300, 0, "kg")),
        (1, b"000123", Weight(1230, 0, "kg")),
        (2, b"000123", Weight(123, 0, "kg")),
        (3, b"000123", Weight(123, 1, "kg")),
        (7, b"000123", Weight(123, 5, "kg")),
    ],
)
def test_decimal_point_table(code: int, digits: bytes, weight: Weight) -> None:
    body = bytes([0x02, 0x28 | code, 0x30, 0x20]) + digits + b"000000\r"
    frame = decode_frame(body + bytes([checksum(body)]))
    assert frame.weight == weight
    assert frame.dp_code == code
    assert DECIMAL_POINT[code][0] == weight.decimals


def test_every_way() -> None:
    other = encode_frame(Frame(Weight(0, 2, "kg"), Weight(0, 2, "kg")))
    check_all_ways(Decoder, FRAME + other + FRAME, [DECODED, decode_frame(other), DECODED])


def test_bad_checksum_then_good_frame() -> None:
    bad = bytearray(FRAME)
    bad[-1] ^= 0x01
    stream = bytes(bad) + FRAME
    for chunks in ([stream], [bytes([b]) for b in stream]):
        items = feed(Decoder(), chunks)
        assert kinds(items) == ["BadFrame:ChecksumError", "Frame"]
    with pytest.raises(ChecksumError):
        decode_frame(bytes(bad))


@pytest.mark.parametrize("index", range(1, FRAME_LEN - 1))
def test_any_single_corrupted_byte_is_detected(index: int) -> None:
    bad = bytearray(FRAME)
    bad[index] ^= 0x04
    items = Decoder().feed(bytes(bad) + FRAME)
    assert kinds(items)[-1] == "Frame"
    assert all(k.startswith("BadFrame") for k in kinds(items)[:-1])


def test_bad_digits_with_a_valid_checksum_are_frame_errors() -> None:
    body = b"\x024\x39 0012x4000100\r"
    with pytest.raises(FrameError, match="digits"):
        decode_frame(body + bytes([checksum(body)]))


def test_regression_8n1_line_with_parity_bits_is_rejected_not_misread() -> None:
    bad = bytes([FRAME[0], FRAME[1] | 0x80]) + FRAME[2:]
    with pytest.raises(FrameError, match="bit 7"):
        decode_frame(bad)


def test_garbage_before_and_between() -> None:
    stream = b"\x02\x02garbage" + FRAME + b"\x00\xff\x02" + FRAME
    check_recovers(Decoder, stream, [DECODED, DECODED])


def test_encode_refuses_bad_frames() -> None:
    with pytest.raises(EncodeError):
        encode_frame(Frame(Weight(10**7, 0, "kg"), Weight(0, 0, "kg")))
    with pytest.raises(EncodeError):
        encode_frame(Frame(Weight(1, 0, "kg"), Weight(0, 0, "lb")))
    with pytest.raises(EncodeError):
        encode_frame(Frame(Weight(1, 0, "kg"), Weight(0, 0, "kg"), increment=3))
    with pytest.raises(EncodeError):
        encode_frame(Frame(Weight(1, 0, "kg"), Weight(0, 0, "kg"), dp_code=0))


@st.composite
def frames(draw: st.DrawFn) -> Frame:
    code = draw(st.integers(0, 7))
    decimals, multiplier = DECIMAL_POINT[code]
    unit = draw(st.sampled_from(["kg", "lb", "g", "t", "oz"]))
    value = draw(st.integers(-999999, 999999)) * multiplier
    tare = draw(st.integers(0, 999999)) * multiplier
    flags = draw(st.lists(st.sampled_from(FLAGS), unique=True))
    increment = draw(st.sampled_from([1, 2, 5]))
    return Frame(
        Weight(value, decimals, unit), Weight(tare, decimals, unit), flags, increment, code
    )


@SETTINGS
@given(frames())
def test_property_round_trip(frame: Frame) -> None:
    assert decode_frame(encode_frame(frame)) == frame


@SETTINGS
@given(st.lists(frames(), min_size=1, max_size=8), st.data())
def test_property_any_chunks(frames_: list[Frame], data: st.DataObject) -> None:
    stream = b"".join(encode_frame(f) for f in frames_)
    assert feed(Decoder(), data.draw(chunked(stream))) == frames_


noise = garbage([b"\x02", FRAME[:9], b"\r"])


@SETTINGS
@given(
    st.lists(frames(), min_size=1, max_size=6),
    st.lists(noise, max_size=4),
    st.lists(st.integers(1, 40)),
)
def test_property_good_frames_survive_garbage(
    frames_: list[Frame], noise_: list[bytes], chunks: list[int]
) -> None:
    check_garbage_between(Decoder, [encode_frame(f) for f in frames_], noise_, frames_, chunks)


@FUZZ
@given(st.binary(max_size=600), st.data())
def test_property_arbitrary_bytes_never_raise(data_: bytes, data: st.DataObject) -> None:
    check_fuzz(Decoder(max_buffer=64), data.draw(chunked(data_)), (Frame,))
    check_pure_decode(decode_frame, data_)
