"""Chafon / CF-RU UHF readers: CRC-16, public vector, inventory, multi-frame, properties."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.codecs import ChecksumError, DeviceError, EncodeError, FrameError
from drivers.codecs.chafon import (
    Command,
    CommandDecoder,
    Decoder,
    Inventory,
    InventoryRound,
    ReaderInfo,
    Response,
    crc16,
    decode_command,
    decode_response,
    encode_command,
    encode_inventory,
    encode_inventory_response,
    encode_read,
    encode_reader_info,
    encode_response,
)

from .feeding import check_all_ways, check_recovers, feed, kinds
from .props import FUZZ, SETTINGS, check_fuzz, check_garbage_between, check_pure_decode, chunked

EPC1 = bytes.fromhex("E20000193018019726703CE1")
EPC2 = bytes.fromhex("300833B2DDD9014000000000")


def test_public_vector_inventory_to_address_ff() -> None:
    assert encode_inventory(0xFF) == bytes([0x04, 0xFF, 0x01, 0x1B, 0xB4])
    assert crc16(b"\x04\xff\x01") == 0xB41B


def test_crc_is_sent_lsb_first() -> None:
    frame = encode_reader_info(0x00)
    crc = crc16(frame[:-2])
    assert frame[-2:] == bytes([crc & 0xFF, crc >> 8])


def test_inventory_response_with_epc_list() -> None:
    raw = encode_inventory_response(0x00, [EPC1, EPC2])
    assert raw[0] == len(raw) - 1
    response = decode_response(raw)
    assert isinstance(response, Inventory)
    assert response.epcs == [EPC1, EPC2]
    assert not response.more
    assert response.raise_for_status() is response


def test_multi_frame_inventory_status_03_collected_into_one_round() -> None:
    frames = [
        encode_inventory_response(0, [EPC1], status=0x03),
        encode_inventory_response(0, [EPC2], status=0x03),
        encode_inventory_response(0, [], status=0x01),
    ]
    collector = InventoryRound()
    results = []
    for item in Decoder().feed(b"".join(frames)):
        assert isinstance(item, Inventory)
        results.append(collector.add(item))
    assert results == [None, None, [EPC1, EPC2]]


def test_no_tag_status_is_an_empty_inventory() -> None:
    response = decode_response(encode_response(0, 0x01, 0xFB))
    assert isinstance(response, Inventory)
    assert response.epcs == []


def test_reader_info() -> None:
    info = decode_response(
        encode_response(0, 0x21, 0x00, bytes([3, 1, 0x09, 0x03, 0x3E, 0, 30, 10]))
    )
    assert isinstance(info, ReaderInfo)
    assert (info.version, info.reader_type, info.power, info.scan_time) == ((3, 1), 9, 30, 10)


def test_read_command_layout() -> None:
    raw = encode_read(0x00, EPC1, "tid", 0, 6)
    command = decode_command(raw)
    assert command.cmd == 0x02
    assert command.data == bytes([6]) + EPC1 + bytes([2, 0, 6]) + b"\0\0\0\0"
    with pytest.raises(EncodeError):
        encode_read(0, b"\x01", "tid", 0, 1)
    with pytest.raises(EncodeError):
        encode_read(0, EPC1, "flash", 0, 1)


def test_error_status_maps_to_device_error() -> None:
    response = decode_response(encode_response(0, 0x02, 0xFA))
    with pytest.raises(DeviceError, match="poor communication") as info:
        response.raise_for_status()
    assert info.value.retry
    with pytest.raises(DeviceError, match="0x0B"):
        decode_response(encode_response(0, 0x02, 0xFC, b"\x0b")).raise_for_status()


def test_every_way() -> None:
    frames = [
        encode_inventory_response(0, [EPC1, EPC2]),
        encode_response(0, 0x21, 0x00, bytes(8)),
        encode_response(0, 0x02, 0x00, b"\x12\x34"),
    ]
    expected = [decode_response(f) for f in frames]
    check_all_ways(Decoder, b"".join(frames), expected)


def test_command_decoder_every_way() -> None:
    stream = encode_inventory() + encode_reader_info(0) + encode_read(0, EPC1, "epc", 2, 6)
    expected = [
        Command(0xFF, 1),
        Command(0, 0x21),
        decode_command(encode_read(0, EPC1, "epc", 2, 6)),
    ]
    check_all_ways(CommandDecoder, stream, expected)


@pytest.mark.parametrize("index", [1, 3, 5, 10, -2, -1])
def test_corrupted_byte_gives_crc_error_and_the_next_frame_survives(index: int) -> None:
    frame = encode_inventory_response(0, [EPC1])
    bad = bytearray(frame)
    bad[index] ^= 0x40
    with pytest.raises(ChecksumError):
        decode_response(bytes(bad))
    good = encode_response(0, 0x21, 0x00, bytes(8))
    check_recovers(Decoder, bytes(bad) + good, [decode_response(good)])


def test_regression_corrupted_len_byte_does_not_swallow_the_next_frame() -> None:
    # Len corrupted upwards: the decoder must not wait for the phantom length while a
    # complete good frame sits in the buffer
    frame = bytearray(encode_inventory_response(0, [EPC1]))
    frame[0] = 0xF0
    good = encode_response(0, 0x21, 0x00, bytes(8))
    items = Decoder().feed(bytes(frame) + good)
    assert items[-1] == decode_response(good)


def test_regression_bad_frame_is_reported_once_not_per_byte() -> None:
    bad = bytearray(encode_inventory_response(0, [EPC1, EPC2]))
    bad[8] ^= 0xFF
    items = Decoder().feed(bytes(bad) + encode_response(0, 0x21, 0, bytes(8)))
    assert kinds(items) == ["BadFrame:ChecksumError", "ReaderInfo"]


def test_garbage_before_and_between() -> None:
    good = encode_inventory_response(0, [EPC1])
    stream = b"\x00\x09\xff\x33" + good + b"\x05\x00\x00\x00\x00\x00\x00" + good
    check_recovers(Decoder, stream, [decode_response(good)] * 2)


def test_inconsistent_epc_lengths_are_frame_errors() -> None:
    data = bytes([2, 12]) + EPC1  # says two tags, carries one
    with pytest.raises(FrameError, match="2 tags"):
        decode_response(encode_response(0, 0x01, 0x01, data))


# -- properties -------------------------------------------------------------------------

epcs = st.lists(st.binary(min_size=2, max_size=16), max_size=5)
responses = st.one_of(
    st.builds(encode_inventory_response, st.integers(0, 255), epcs, st.sampled_from([1, 2, 3, 4])),
    st.builds(
        encode_response,
        st.integers(0, 255),
        st.just(0x21),
        st.just(0),
        st.binary(min_size=8, max_size=8),
    ),
    st.builds(
        encode_response,
        st.integers(0, 255),
        st.integers(2, 0x20),
        st.integers(0, 255),
        st.binary(max_size=40),
    ),
)


@SETTINGS
@given(st.integers(0, 255), epcs, st.sampled_from([1, 2, 3, 4]))
def test_property_inventory_round_trip(adr: int, epcs_: list[bytes], status: int) -> None:
    response = decode_response(encode_inventory_response(adr, epcs_, status))
    assert isinstance(response, Inventory)
    assert (response.adr, response.epcs, response.status) == (adr, epcs_, status)


@SETTINGS
@given(responses)
def test_property_encode_decode_encode(raw: bytes) -> None:
    r = decode_response(raw)
    assert encode_response(r.adr, r.cmd, r.status, r.data) == raw


@SETTINGS
@given(st.integers(0, 255), st.integers(0, 255), st.binary(max_size=60))
def test_property_command_round_trip(adr: int, cmd: int, data: bytes) -> None:
    assert decode_command(encode_command(adr, cmd, data)) == Command(adr, cmd, data)


@SETTINGS
@given(st.lists(responses, min_size=1, max_size=6), st.data())
def test_property_any_chunks(frames: list[bytes], data: st.DataObject) -> None:
    stream = b"".join(frames)
    assert feed(Decoder(), data.draw(chunked(stream))) == [decode_response(f) for f in frames]


@SETTINGS
@given(
    st.lists(responses, min_size=1, max_size=5),
    st.lists(st.binary(max_size=10), max_size=4),
    st.lists(st.integers(1, 40)),
)
def test_property_good_frames_survive_arbitrary_garbage(
    frames: list[bytes], noise: list[bytes], chunks: list[int]
) -> None:
    expected: list[object] = [decode_response(f) for f in frames]
    check_garbage_between(Decoder, frames, noise, expected, chunks)


@FUZZ
@given(st.binary(max_size=600), st.data())
def test_property_arbitrary_bytes_never_raise(data_: bytes, data: st.DataObject) -> None:
    check_fuzz(Decoder(max_buffer=300), data.draw(chunked(data_)), (Response,))
    check_fuzz(CommandDecoder(max_buffer=300), data.draw(chunked(data_)), (Command,))
    check_pure_decode(decode_response, data_)
    check_pure_decode(decode_command, data_)
