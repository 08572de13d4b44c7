"""PC/SC: GET UID APDU, response parsing, status words, APDU codec for card simulators."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.codecs import DeviceError, EncodeError, FrameError
from drivers.codecs.pcsc import (
    GET_UID,
    Apdu,
    check_status,
    decode_apdu,
    decode_uid_response,
    encode_apdu,
    encode_get_uid,
    encode_response,
    split_response,
    status_message,
)

from .props import FUZZ, SETTINGS, check_pure_decode


def test_get_uid_apdu_is_literal() -> None:
    assert encode_get_uid() == bytes([0xFF, 0xCA, 0x00, 0x00, 0x00])
    assert GET_UID == b"\xff\xca\x00\x00\x00"
    apdu = decode_apdu(GET_UID)
    assert apdu.is_get_uid
    assert apdu.le == 0


@pytest.mark.parametrize("uid", [bytes(4), bytes.fromhex("04A23B1A2C5D80"), bytes(range(10))])
def test_uid_followed_by_90_00(uid: bytes) -> None:
    assert decode_uid_response(uid + b"\x90\x00") == uid


@pytest.mark.parametrize(
    ("sw", "words", "retry"),
    [
        (b"\x63\x00", "could not read the card", True),
        (b"\x6a\x81", "function not supported", False),
        (b"\x6b\x00", "wrong parameters", False),
        (b"\x6e\x00", "class .CLA. not supported", False),
        (b"\x6d\x00", "instruction .INS. not supported", False),
        (b"\x67\x00", "wrong length", False),
        (b"\x6c\x07", "Le = 7", True),
        (b"\x61\x10", "16 more response bytes", True),
        (b"\x12\x34", "unknown status word", False),
    ],
)
def test_status_words_become_clear_device_errors(sw: bytes, words: str, retry: bool) -> None:
    with pytest.raises(DeviceError, match=words) as info:
        decode_uid_response(sw)
    assert info.value.retry is retry
    assert info.value.code == sw[0] << 8 | sw[1]
    assert f"{sw[0]:02X} {sw[1]:02X}" in str(info.value)


def test_malformed_responses_are_frame_errors() -> None:
    with pytest.raises(FrameError, match="no status word"):
        decode_uid_response(b"\x90")
    with pytest.raises(FrameError, match="UID of 0 bytes"):
        decode_uid_response(b"\x90\x00")
    with pytest.raises(FrameError):
        decode_uid_response(bytes(17) + b"\x90\x00")


def test_check_status_and_split() -> None:
    check_status(0x90, 0x00)
    assert split_response(b"\x01\x02\x90\x00") == (b"\x01\x02", 0x90, 0x00)
    assert status_message(0x9000) == ("success", False)


def test_apdu_cases() -> None:
    assert decode_apdu(b"\x00\xa4\x04\x00") == Apdu(0, 0xA4, 4, 0)
    assert decode_apdu(b"\x00\xa4\x04\x00\x02\x3f\x00") == Apdu(0, 0xA4, 4, 0, b"\x3f\x00")
    assert decode_apdu(b"\x00\xa4\x04\x00\x02\x3f\x00\x10") == Apdu(0, 0xA4, 4, 0, b"\x3f\x00", 16)
    with pytest.raises(FrameError):
        decode_apdu(b"\x00\xa4")
    with pytest.raises(FrameError, match="Lc"):
        decode_apdu(b"\x00\xa4\x04\x00\x05\x01")
    with pytest.raises(EncodeError):
        encode_apdu(Apdu(0, 0, 0, 0, bytes(256)))


def test_card_response() -> None:
    assert encode_response(b"\x01\x02") == b"\x01\x02\x90\x00"
    assert encode_response(b"", 0x6A81) == b"\x6a\x81"


apdus = st.builds(
    Apdu,
    st.integers(0, 255),
    st.integers(0, 255),
    st.integers(0, 255),
    st.integers(0, 255),
    st.binary(max_size=255),
    st.none() | st.integers(0, 255),
)


@SETTINGS
@given(apdus)
def test_property_apdu_round_trip(apdu: Apdu) -> None:
    assert decode_apdu(encode_apdu(apdu)) == apdu


@SETTINGS
@given(st.binary(min_size=1, max_size=16))
def test_property_uid_round_trip(uid: bytes) -> None:
    assert decode_uid_response(encode_response(uid)) == uid


@FUZZ
@given(st.binary(max_size=300))
def test_property_arbitrary_responses_raise_only_codec_errors(raw: bytes) -> None:
    check_pure_decode(decode_uid_response, raw)
    check_pure_decode(decode_apdu, raw)
