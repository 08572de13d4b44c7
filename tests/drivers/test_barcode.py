"""Barcode scans and GS1: AIM prefix, element strings, check digits, Digital Link."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.codecs import EncodeError, FrameError, Weight
from drivers.codecs.barcode import Decoder, Scan, decode_scan, encode_scan, gs1_scan
from drivers.codecs.gs1 import (
    AIS,
    CSET82,
    GS,
    build_digital_link,
    encode_element_string,
    expand_date,
    parse_digital_link,
    parse_element_string,
    percent_decode,
    percent_encode,
)
from wire.checkdigit import with_check_digit

from .feeding import check_all_ways, check_recovers, feed, kinds
from .props import FUZZ, SETTINGS, check_fuzz, check_garbage_between, check_pure_decode, chunked

GTIN = "09506000134352"
DL = "https://id.example.com/01/09506000134352/10/ABC?3103=000195"
AIS_EXAMPLE = {"01": GTIN, "10": "ABC", "3103": "000195"}


def test_element_string_with_fnc1_as_gs() -> None:
    text = "01" + GTIN + "10ABC" + GS + "3103000195" + "17251231" + "21SN-42"
    assert parse_element_string(text) == {
        "01": GTIN,
        "10": "ABC",
        "3103": "000195",
        "17": "251231",
        "21": "SN-42",
    }


def test_net_weight_3103_is_grams() -> None:
    scan = decode_scan(b"]C10109506000134352" + b"3103000195\r\n")
    assert scan.net_weight == Weight(195, 3, "kg")
    assert scan.net_weight is not None and scan.net_weight.at(3) == 195


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("0109506000134353", "check digit should be 2"),
        ("01095060001343", "needs 14"),
        ("10" + "A" * 21, "1-20"),
        ("17251331", "not a YYMMDD"),
        ("99ABC", "unsupported"),
        ("3103000x95", "digits"),
        ("10AB" + GS + "10CD", "twice"),
        ("21A B", "set 82"),
    ],
)
def test_bad_element_strings(text: str, match: str) -> None:
    with pytest.raises(FrameError, match=match):
        parse_element_string(text)


def test_digital_link_parse_and_build() -> None:
    assert parse_digital_link(DL) == AIS_EXAMPLE
    assert build_digital_link(AIS_EXAMPLE, "https://id.example.com") == DL


def test_digital_link_details() -> None:
    # GTIN-13 padded, prefix path, percent escapes, non-AI query ignored, fragment dropped
    url = "https://example.com/shop/01/4006381333931/21/A%2FB?linkType=gs1:pip&17=261231#x"
    assert parse_digital_link(url) == {"01": "04006381333931", "21": "A/B", "17": "261231"}
    with pytest.raises(FrameError, match="no GS1 primary key"):
        parse_digital_link("https://example.com/about")
    with pytest.raises(FrameError, match="cannot qualify"):
        parse_digital_link("https://x.org/01/09506000134352/21/S/10/L")
    with pytest.raises(FrameError, match="check digit"):
        parse_digital_link("https://x.org/01/09506000134353")
    with pytest.raises(EncodeError):
        build_digital_link({"10": "ABC"})


def test_percent_coding() -> None:
    assert percent_encode("A/B %") == "A%2FB%20%25"
    assert percent_decode("A%2fB") == "A/B"
    with pytest.raises(FrameError):
        percent_decode("%G0")
    with pytest.raises(FrameError):
        percent_decode("%FF")


def test_expand_date_century_rule() -> None:
    assert expand_date("251231", 2025) == (2025, 12, 31)
    assert expand_date("990101", 2025) == (1999, 1, 1)
    assert expand_date("750101", 2025) == (2075, 1, 1)


@pytest.mark.parametrize(
    ("line", "scan"),
    [
        (
            b"]C10109506000134352\x1d10ABC\r\n",
            Scan("]C1", "0109506000134352\x1d10ABC", {"01": GTIN, "10": "ABC"}),
        ),
        (b"]d20109506000134352\r", Scan("]d2", "0109506000134352", {"01": GTIN})),
        (b"]Q3\x1d0109506000134352\r", Scan("]Q3", "\x1d0109506000134352", {"01": GTIN})),
        (b"]E04006381333931\r\n", Scan("]E0", "4006381333931", {"01": "04006381333931"})),
        (b"]E496385074\r\n", Scan("]E4", "96385074", {"01": "00000096385074"})),
        (b"]Q1" + DL.encode() + b"\r\n", Scan("]Q1", DL, AIS_EXAMPLE)),
        (DL.encode() + b"\r", Scan("", DL, AIS_EXAMPLE)),
        (b"\x1d0109506000134352\r", Scan("", "\x1d0109506000134352", {"01": GTIN})),
        (b"]A0HELLO-1\r", Scan("]A0", "HELLO-1")),
        (b"plain text \xc3\xa9\r\n", Scan("", "plain text \u00e9")),
        (b"https://example.com/about\r", Scan("", "https://example.com/about")),
    ],
)
def test_scan_vectors(line: bytes, scan: Scan) -> None:
    assert decode_scan(line) == scan


def test_scan_names() -> None:
    assert decode_scan(b"]C1" + b"01" + GTIN.encode()).name == "GS1-128"
    assert decode_scan(b"]Q3" + b"01" + GTIN.encode()).name == "GS1 QR Code"
    assert decode_scan(b"]d2" + b"01" + GTIN.encode()).name == "GS1 DataMatrix"
    assert decode_scan(b"]E04006381333931").name == "EAN-13"
    assert decode_scan(b"]z9data").name == "unknown ]z9"


@pytest.mark.parametrize(
    "line",
    [b"]E04006381333932\r", b"]E0400638133393\r", b"]C10109506000134353\r", b"a\x00b\r", b"\xff\r"],
)
def test_bad_scans_are_frame_errors(line: bytes) -> None:
    with pytest.raises(FrameError):
        decode_scan(line)


def test_every_way_cr_and_crlf_terminators() -> None:
    stream = b"]C10109506000134352\r]E04006381333931\r\nhello\n" + DL.encode() + b"\r\n"
    expected = [
        Scan("]C1", "0109506000134352", {"01": GTIN}),
        Scan("]E0", "4006381333931", {"01": "04006381333931"}),
        Scan("", "hello"),
        Scan("", DL, AIS_EXAMPLE),
    ]
    check_all_ways(Decoder, stream, expected)


def test_corrupted_scan_then_good_scan() -> None:
    stream = b"]E04006381333932\r\n]E04006381333931\r\n"
    for chunks in ([stream], [bytes([b]) for b in stream]):
        assert kinds(feed(Decoder(), chunks)) == ["BadFrame:FrameError", "Scan"]


def test_regression_line_noise_glued_to_an_aim_scan_costs_only_the_noise() -> None:
    items = Decoder().feed(b"\xff\x00]C10109506000134352\r\n")
    assert kinds(items) == ["BadFrame:FrameError", "Scan"]


def test_regression_noise_inside_opaque_text_does_not_invent_a_shorter_scan() -> None:
    # a suffix of opaque text is not a scan: the line is lost as a whole
    assert kinds(Decoder().feed(b"abc\x00def\r")) == ["BadFrame:FrameError"]


def test_garbage_before_and_between() -> None:
    stream = b"\x00\xff\r\n]E04006381333931\r\n\x01\x02\r]C10109506000134352\r"
    check_recovers(
        Decoder,
        stream,
        [
            Scan("]E0", "4006381333931", {"01": "04006381333931"}),
            Scan("]C1", "0109506000134352", {"01": GTIN}),
        ],
    )


def test_encode_scan_and_gs1_scan() -> None:
    scan = gs1_scan(AIS_EXAMPLE)
    assert decode_scan(encode_scan(scan)) == scan
    with pytest.raises(EncodeError):
        gs1_scan(AIS_EXAMPLE, "]Q1")
    with pytest.raises(EncodeError):
        encode_scan(Scan("", "a\rb"))
    with pytest.raises(EncodeError):
        encode_scan(Scan("", "]C1looks like an identifier"))


# -- properties -------------------------------------------------------------------------


@st.composite
def gtins(draw: st.DrawFn) -> str:
    body = "".join(draw(st.lists(st.sampled_from("0123456789"), min_size=13, max_size=13)))
    return with_check_digit(body)


cset = st.text(st.sampled_from(CSET82), min_size=1, max_size=20)
dates = st.builds(
    lambda y, m, d: f"{y:02d}{m:02d}{d:02d}",
    st.integers(0, 99),
    st.integers(1, 12),
    st.integers(0, 31),
)


@st.composite
def ai_sets(draw: st.DrawFn) -> dict[str, str]:
    ais = {"01": draw(gtins())}
    if draw(st.booleans()):
        ais["10"] = draw(cset)
    if draw(st.booleans()):
        ais["21"] = draw(cset)
    if draw(st.booleans()):
        ais["17"] = draw(dates)
    if draw(st.booleans()):
        ais["11"] = draw(dates)
    if draw(st.booleans()):
        ais["310" + str(draw(st.integers(0, 5)))] = f"{draw(st.integers(0, 999999)):06d}"
    if draw(st.booleans()):
        ais["400"] = draw(st.text(st.sampled_from(CSET82), min_size=1, max_size=30))
    return ais


@SETTINGS
@given(ai_sets())
def test_property_element_string_round_trip(ais: dict[str, str]) -> None:
    assert parse_element_string(encode_element_string(ais)) == ais


@SETTINGS
@given(ai_sets())
def test_property_digital_link_round_trip(ais: dict[str, str]) -> None:
    assert parse_digital_link(build_digital_link(ais)) == ais


@SETTINGS
@given(ai_sets(), st.sampled_from(["]C1", "]d2", "]Q3", "]e0"]))
def test_property_scan_round_trip(ais: dict[str, str], symbology: str) -> None:
    scan = gs1_scan(ais, symbology)
    assert decode_scan(encode_scan(scan)) == scan


@SETTINGS
@given(st.lists(ai_sets(), min_size=1, max_size=6), st.data())
def test_property_any_chunks(sets: list[dict[str, str]], data: st.DataObject) -> None:
    scans = [gs1_scan(ais) for ais in sets]
    stream = b"".join(encode_scan(s) for s in scans)
    assert feed(Decoder(), data.draw(chunked(stream))) == scans


# noise that cannot be a scan on its own: non-UTF-8 lead bytes and NULs
noise = st.binary(max_size=8).map(lambda b: bytes(0xFF if x > 0x7F or x < 0x20 else 0 for x in b))


@SETTINGS
@given(
    st.lists(ai_sets(), min_size=1, max_size=5),
    st.lists(noise, max_size=4),
    st.lists(st.integers(1, 40)),
)
def test_property_good_scans_survive_noise(
    sets: list[dict[str, str]], noise_: list[bytes], chunks: list[int]
) -> None:
    scans = [gs1_scan(ais) for ais in sets]
    check_garbage_between(Decoder, [encode_scan(s) for s in scans], noise_, scans, chunks)


@FUZZ
@given(st.binary(max_size=600), st.data())
def test_property_arbitrary_bytes_never_raise(data_: bytes, data: st.DataObject) -> None:
    check_fuzz(Decoder(max_buffer=256), data.draw(chunked(data_)), (Scan,))
    check_pure_decode(decode_scan, data_)
    text = data_.decode("latin-1")
    check_pure_decode(parse_element_string, text)
    check_pure_decode(parse_digital_link, "https://x.org/" + text)


@FUZZ
@given(st.text(st.sampled_from("0123456789ABC" + GS), max_size=60))
def test_property_element_string_parser_raises_only_frame_errors(text: str) -> None:
    check_pure_decode(parse_element_string, text)


def test_ai_table_lengths_are_sane() -> None:
    for ai, (low, high, _, _) in AIS.items():
        assert 1 <= low <= high <= 30, ai
