"""The shared streaming contract and the error hierarchy, across every decoder."""

import time

import pytest

import drivers.codecs as codecs
from drivers.codecs import (
    BadFrame,
    BufferOverflow,
    ChecksumError,
    CodecError,
    DeviceError,
    EncodeError,
    FrameError,
    barcode,
    cas_ecr,
    chafon,
    r2000,
    sics,
    toledo8217,
    toledo_continuous,
)
from drivers.codecs.stream import MAX_BUFFER, StreamDecoder

from .feeding import kinds

DECODERS = [
    sics.Decoder,
    sics.CommandDecoder,
    toledo8217.Decoder,
    toledo8217.CommandDecoder,
    cas_ecr.Decoder,
    cas_ecr.CommandDecoder,
    toledo_continuous.Decoder,
    chafon.Decoder,
    chafon.CommandDecoder,
    r2000.Decoder,
    r2000.CommandDecoder,
    barcode.Decoder,
]


def test_error_hierarchy_has_one_root_under_value_error() -> None:
    for cls in (FrameError, ChecksumError, BufferOverflow, DeviceError, EncodeError):
        assert issubclass(cls, CodecError)
    assert issubclass(CodecError, ValueError)
    assert issubclass(ChecksumError, FrameError)


def test_every_error_says_whether_retrying_helps() -> None:
    assert str(ChecksumError("crc")).endswith("(retrying may help)")
    assert str(EncodeError("too long")).endswith("(retrying will not help)")
    assert DeviceError("x", code=5, retry=True).retry
    assert ChecksumError("crc").message == "crc"


def test_public_surface_is_complete() -> None:
    exported = {name for name in dir(codecs) if not name.startswith("_")}
    classes = {n for n in exported if isinstance(getattr(codecs, n), type)}
    assert classes == set(codecs.__all__)


@pytest.mark.parametrize("make", DECODERS)
def test_empty_feed_is_need_more(make: type[StreamDecoder]) -> None:
    assert make().feed(b"") == []


@pytest.mark.parametrize("make", DECODERS)
def test_buffer_is_bounded_and_overflow_reported(make: type[StreamDecoder]) -> None:
    decoder = make()
    # a byte that starts or extends a frame in each protocol without completing one
    for filler in (b"x", b"\x02", b"\xa0\xff", b"\xff", b"\x01\x02"):
        decoder.reset()
        for _ in range(3):
            decoder.feed(filler * (MAX_BUFFER // 2))
            assert decoder.buffered <= decoder.max_buffer


def test_overflow_is_one_bad_frame_with_a_truncated_raw() -> None:
    items = sics.Decoder(max_buffer=100).feed(b"y" * 500)
    assert kinds(items) == ["BadFrame:BufferOverflow"]
    assert isinstance(items[0], BadFrame)
    assert len(items[0].raw) == 64
    assert "500 bytes" in items[0].reason


def test_discarded_counts_skipped_bytes() -> None:
    decoder = toledo8217.Decoder()
    decoder.feed(b"abc\x0201.234\r")
    assert decoder.discarded == 3


def test_reset_forgets_a_partial_frame() -> None:
    decoder = toledo8217.Decoder()
    decoder.feed(b"\x0201.2")
    decoder.reset()
    assert decoder.buffered == 0
    assert decoder.feed(b"34\r") == []


def test_regression_bytewise_feed_of_long_chafon_frames_stays_linear() -> None:
    # the look-ahead must not re-decode every old candidate on each byte (quadratic CRCs)
    epcs = [bytes([i]) * 12 for i in range(18)]
    frame = chafon.encode_inventory_response(0, epcs)
    assert len(frame) > 240
    decoder = chafon.Decoder()
    started = time.perf_counter()
    items = []
    for i in range(len(frame)):
        items += decoder.feed(frame[i : i + 1])
    assert items == [chafon.decode_response(frame)]
    assert time.perf_counter() - started < 2.0


def test_bytearray_and_memoryview_input_are_accepted() -> None:
    raw = b"S S     100.00 g\r\n"
    assert sics.Decoder().feed(bytearray(raw)) == sics.Decoder().feed(memoryview(raw))
