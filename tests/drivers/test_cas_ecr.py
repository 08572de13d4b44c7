"""CAS ECR: ENQ/ACK, DC1 weight frame, DC2 price frame, BCC, corruption, properties."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.codecs import ChecksumError, EncodeError, FrameError, Money, Weight
from drivers.codecs.cas_ecr import (
    LAYOUT,
    PRICE_FRAME_LEN,
    WEIGHT_FRAME_LEN,
    CommandDecoder,
    Control,
    Decoder,
    Reading,
    bcc,
    decode_reading,
    encode_command,
    encode_control,
    encode_reading,
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

WEIGHT_FRAME = b"\x01\x02S  1.250kg" + bytes([bcc(b"S  1.250kg")]) + b"\x03\x04"
PRICE_BODY = b"U- 0.500kg00012.9000006.45"
PRICE_FRAME = b"\x01\x02" + PRICE_BODY + bytes([bcc(PRICE_BODY)]) + b"\x03\x04"
WEIGHT_READING = Reading("S", Weight(1250, 3, "kg"))
PRICE_READING = Reading("U", Weight(-500, 3, "kg"), Money(1290, 2), Money(645, 2))


def test_layout_table_is_consistent_with_frame_lengths() -> None:
    offset, length = LAYOUT["unit"]
    assert offset + length + 3 == WEIGHT_FRAME_LEN
    offset, length = LAYOUT["total"]
    assert offset + length + 3 == PRICE_FRAME_LEN


def test_commands_and_controls() -> None:
    assert encode_command("ENQ") == b"\x05"
    assert encode_command("DC1") == b"\x11"
    assert encode_command("DC2") == b"\x12"
    assert encode_control("ACK") == b"\x06"
    with pytest.raises(EncodeError):
        encode_command("DC3")


def test_frame_vectors() -> None:
    assert len(WEIGHT_FRAME) == 15
    assert len(PRICE_FRAME) == 31
    assert decode_reading(WEIGHT_FRAME) == WEIGHT_READING
    assert decode_reading(PRICE_FRAME) == PRICE_READING
    assert encode_reading(WEIGHT_READING) == WEIGHT_FRAME
    assert encode_reading(PRICE_READING) == PRICE_FRAME


def test_overload_has_no_weight() -> None:
    raw = encode_reading(Reading("O", None))
    reading = decode_reading(raw)
    assert reading.overload
    assert reading.weight is None


def test_every_way_with_ack() -> None:
    stream = b"\x06" + WEIGHT_FRAME + PRICE_FRAME + b"\x06" + WEIGHT_FRAME
    expected = [Control("ACK"), WEIGHT_READING, PRICE_READING, Control("ACK"), WEIGHT_READING]
    check_all_ways(Decoder, stream, expected)


def test_bad_bcc_is_a_checksum_error_and_the_next_frame_survives() -> None:
    bad = bytearray(WEIGHT_FRAME)
    bad[12] ^= 0x01
    stream = bytes(bad) + PRICE_FRAME
    for chunks in ([stream], [bytes([b]) for b in stream]):
        items = feed(Decoder(), chunks)
        assert kinds(items)[0] == "BadFrame:ChecksumError"
        assert items[-1] == PRICE_READING
    with pytest.raises(ChecksumError):
        decode_reading(bytes(bad))


@pytest.mark.parametrize("body", [b"S  1.2x0kg", b"X  1.250kg", b"S+ 1.250kg", b"S  1.250  "])
def test_bad_fields_with_a_valid_bcc_are_frame_errors(body: bytes) -> None:
    raw = b"\x01\x02" + body + bytes([bcc(body)]) + b"\x03\x04"
    with pytest.raises(FrameError):
        decode_reading(raw)
    items = Decoder().feed(raw + WEIGHT_FRAME)
    assert kinds(items) == ["BadFrame:FrameError", "Reading"]


def test_regression_garbage_soh_stx_does_not_hold_back_a_weight_frame() -> None:
    # a stray SOH STX looks like the start of a 31-byte price frame; the complete weight
    # frame behind it must come out without waiting for 31 bytes
    items = Decoder().feed(b"\x01\x02zz" + WEIGHT_FRAME)
    assert items == [WEIGHT_READING]


def test_garbage_before_and_between() -> None:
    stream = b"\xff\x00\x01" + WEIGHT_FRAME + b"\x02\x03noise" + PRICE_FRAME
    check_recovers(Decoder, stream, [WEIGHT_READING, PRICE_READING])


def test_command_decoder() -> None:
    check_all_ways(CommandDecoder, b"\x05\x11x\x12", ["ENQ", "DC1", "DC2"])


def test_encode_refuses_bad_readings() -> None:
    with pytest.raises(EncodeError):
        encode_reading(Reading("S", None))
    with pytest.raises(EncodeError):
        encode_reading(Reading("S", Weight(10**7, 0, "kg")))
    with pytest.raises(EncodeError):
        encode_reading(Reading("S", Weight(1, 0, "kg"), Money(1, 2)))
    with pytest.raises(EncodeError):
        encode_reading(Reading("O", Weight(1, 0, "kg")))


weights = st.builds(
    Weight,
    st.integers(-9999, 9999),
    st.integers(0, 3),
    st.sampled_from(["kg", "lb", "g"]),
)
money = st.builds(Money, st.integers(0, 99999), st.integers(0, 2))
readings = st.one_of(
    st.builds(Reading, st.sampled_from("SU"), weights),
    st.builds(Reading, st.sampled_from("SU"), weights, money, money),
    st.just(Reading("O", None)),
)


@SETTINGS
@given(readings)
def test_property_round_trip(reading: Reading) -> None:
    assert decode_reading(encode_reading(reading)) == reading


@SETTINGS
@given(st.lists(readings, min_size=1, max_size=8), st.data())
def test_property_any_chunks(readings_: list[Reading], data: st.DataObject) -> None:
    stream = b"".join(encode_reading(r) for r in readings_)
    assert feed(Decoder(), data.draw(chunked(stream))) == readings_


# garbage may hold SOH STX (false frame starts) but no ACK/NAK, which are valid items
noise = garbage([b"\x01\x02", b"\x01\x02S  1.2", b"\x03\x04"], exclude=b"\x06\x15")


@SETTINGS
@given(
    st.lists(readings, min_size=1, max_size=6),
    st.lists(noise, max_size=4),
    st.lists(st.integers(1, 40)),
)
def test_property_good_frames_survive_garbage(
    readings_: list[Reading], garbage_: list[bytes], chunks: list[int]
) -> None:
    frames = [encode_reading(r) for r in readings_]
    check_garbage_between(Decoder, frames, garbage_, readings_, chunks)


@FUZZ
@given(st.binary(max_size=600), st.data())
def test_property_arbitrary_bytes_never_raise(data_: bytes, data: st.DataObject) -> None:
    check_fuzz(Decoder(max_buffer=64), data.draw(chunked(data_)), (Reading, Control))
    check_fuzz(CommandDecoder(), data.draw(chunked(data_)), (str,))
    check_pure_decode(decode_reading, data_)
