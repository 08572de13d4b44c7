"""Item codes of the warehouse in/out terminal: pesticide, seed, drug, GS1 and EPC."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.codecs import CodecError, EncodeError, FrameError
from drivers.codecs.barcode import Decoder, Scan, gs1_scan
from drivers.codecs.epc import decode_epc, encode_sgtin96, encode_sscc96, epc_hex
from drivers.codecs.gs1 import build_digital_link, encode_element_string
from drivers.codecs.itemcodes import (
    drug_code,
    gs1_item,
    parse_item,
    parse_scan,
    pesticide_code,
    seed_qr,
)
from wire.checkdigit import with_check_digit

from .feeding import good
from .props import FUZZ, SETTINGS, check_pure_decode

PESTICIDE = "10803851001" + "462031958274016385520"  # PD..080385, holder, spec 001
SEED_LINES = [
    "郑单958",
    "河南秋乐种业科技股份有限公司",
    "41010000100000000012",
    "https://zs.example.cn/s/1",
]
DRUG = "81234560001234567890"
GTIN = "09506000134352"
SSCC = "106141412345678908"
# GS1 EPC Tag Data Standard examples
SGTIN_EPC = "3074257BF7194E4000001A85"  # urn:epc:id:sgtin:0614141.812345.6789
SSCC_EPC = "3114257BF4499602D2000000"  # urn:epc:id:sscc:0614141.1234567890


# -- pesticide ------------------------------------------------------------------------------


def test_pesticide_fields() -> None:
    item = parse_item(PESTICIDE)
    assert item == {
        "scheme": "pesticide",
        "id": "pesticide:" + PESTICIDE,
        "level": "unit",
        "unique": True,
        "code": PESTICIDE,
        "category": "1",
        "category_name": "PD",
        "registration_tail": "080385",
        "production_type": 1,
        "production": "holder",
        "spec": "001",
        "random": "462031958274016385520",
        "url": "",
    }


@pytest.mark.parametrize(
    "text",
    [
        "]Q1" + PESTICIDE,
        "]d1" + PESTICIDE + "\r\n",
        "http://www.example.cn/trace?code=" + PESTICIDE,
        "https://nyzs.example.com/q?from=scan&c=" + PESTICIDE + "#top",
        "https://zs.example.com/p/" + PESTICIDE,
        "https://zs.example.com/p/" + PESTICIDE + "/",
        "https://zs.example.com/p/" + PESTICIDE + "\r\n" + PESTICIDE,
        "https://zs.example.com/trace\n" + PESTICIDE,
        # a trace URL whose path happens to look like a Digital Link key
        "https://zs.example.com/01/" + PESTICIDE,
    ],
)
def test_pesticide_forms(text: str) -> None:
    item = parse_item(text)
    assert item["id"] == "pesticide:" + PESTICIDE
    if "http" in text:
        assert str(item["url"]).startswith("http")


@pytest.mark.parametrize(
    ("text", "match"),
    [
        (PESTICIDE[:31], "31-digit"),
        (PESTICIDE + "0", "33-digit"),
        (PESTICIDE[:31] + "X", "digits only"),
        (PESTICIDE[:7] + "0" + PESTICIDE[8:], "production type"),
        (PESTICIDE[:7] + "4" + PESTICIDE[8:], "production type"),
        ("https://zs.example.com/p/" + PESTICIDE[:7] + "9" + PESTICIDE[8:], "production type"),
        ("https://a.example/" + PESTICIDE + "\n" + PESTICIDE[:-1] + "7", "more than one"),
    ],
)
def test_pesticide_refused(text: str, match: str) -> None:
    with pytest.raises(FrameError, match=match):
        parse_item(text)


def test_pesticide_level_is_the_callers() -> None:
    assert parse_item(PESTICIDE, level="case")["level"] == "case"
    with pytest.raises(CodecError, match="level must be"):
        parse_item(PESTICIDE, level="pallet")


def test_pesticide_unknown_category_is_kept() -> None:
    item = parse_item("9" + PESTICIDE[1:])
    assert item["category"] == "9" and item["category_name"] == ""


# -- seed -----------------------------------------------------------------------------------


@pytest.mark.parametrize("eol", ["\r\n", "\n", "\r"])
def test_seed_label(eol: str) -> None:
    text = eol.join(line + " \t" for line in SEED_LINES) + eol + eol
    item = parse_item(text)
    assert item == {
        "scheme": "seed",
        "id": "seed:41010000100000000012",
        "level": "unit",
        "unique": True,
        "variety": SEED_LINES[0],
        "producer": SEED_LINES[1],
        "unit_code": SEED_LINES[2],
        "trace": SEED_LINES[3],
    }


def test_seed_label_with_aim_identifier_and_text_trace() -> None:
    text = "]Q1" + "\n".join([*SEED_LINES[:3], "批次 2026-03 见标签"])
    assert parse_item(text)["trace"] == "批次 2026-03 见标签"


@pytest.mark.parametrize(
    ("lines", "match"),
    [
        (SEED_LINES[:3], "3 lines"),
        ([*SEED_LINES, "extra"], "5 lines"),
        ([SEED_LINES[0], "", *SEED_LINES[2:]], r"line 2 \(producer\) is empty"),
        ([*SEED_LINES[:3], "  "], "3 lines"),  # a blank last line is a trailing one
        ([*SEED_LINES[:3], "", SEED_LINES[3]], "5 lines"),
        ([*SEED_LINES[:2], " ", SEED_LINES[3]], r"line 3 \(unit code\) is empty"),
        ([*SEED_LINES[:2], "A" * 21, SEED_LINES[3]], "1-20 letters"),
        ([*SEED_LINES[:2], "4101-0001", SEED_LINES[3]], "1-20 letters"),
    ],
)
def test_seed_refused(lines: list[str], match: str) -> None:
    with pytest.raises(FrameError, match=match):
        parse_item("\r\n".join(lines))


def test_four_lines_with_a_pesticide_code_are_that_code() -> None:
    text = "\n".join(["草甘膦", "某农化有限公司", PESTICIDE, "https://zs.example.com/t"])
    assert parse_item(text)["scheme"] == "pesticide"


def test_seed_unit_code_of_20_digits_is_not_a_drug_code() -> None:
    text = "\n".join([*SEED_LINES[:2], DRUG, SEED_LINES[3]])
    assert parse_item(text)["id"] == "seed:" + DRUG


# -- drug -----------------------------------------------------------------------------------


def test_drug_code_structure_only() -> None:
    item = parse_item("]C0" + DRUG)
    assert item == {
        "scheme": "drug",
        "id": "drug:" + DRUG,
        "level": "unknown",
        "unique": True,
        "code": DRUG,
        "drug_id": "8123456",
        "serial": "000123456",
        "check": "7890",
        "check_verified": False,
        "url": "",
    }
    assert parse_item(DRUG, level="case")["level"] == "case"


def test_drug_code_in_a_url() -> None:
    item = parse_item("https://m.example.com/yp/?code=" + DRUG)
    assert item["id"] == "drug:" + DRUG


@pytest.mark.parametrize("text", [DRUG[:19], DRUG + "1", DRUG[:19] + "A"])
def test_drug_code_refused(text: str) -> None:
    with pytest.raises(FrameError):
        parse_item(text)


def test_drug_gs1_forms_give_one_id() -> None:
    ais = {"01": GTIN, "21": "1234567890AB", "10": "B2601", "17": "281231"}
    ids = {
        parse_item("]d2" + encode_element_string(ais))["id"],
        parse_item("]Q1" + build_digital_link(ais, "https://example.cn/drug"))["id"],
        parse_item("\x1d" + encode_element_string(ais))["id"],
    }
    assert ids == {f"https://id.gs1.org/01/{GTIN}/21/1234567890AB"}
    item = parse_item("]d2" + encode_element_string(ais))
    assert (item["lot"], item["expiry"], item["unique"]) == ("B2601", "281231", True)


# -- plain GS1 ------------------------------------------------------------------------------


def test_sscc_is_a_case() -> None:
    item = parse_item("]C100" + SSCC)
    assert item["id"] == "https://id.gs1.org/00/" + SSCC and item["level"] == "case"
    assert parse_item("]C100" + SSCC, level="case")["level"] == "case"
    with pytest.raises(FrameError, match="says 'case'"):
        parse_item("]C100" + SSCC, level="unit")


def test_gtin_lot_and_gtin_are_not_unique() -> None:
    lot = parse_item("]C101" + GTIN + "10L1")
    assert lot["id"] == f"https://id.gs1.org/01/{GTIN}/10/L1" and lot["unique"] is False
    for text in ("]E04006381333931", "4006381333931", "96385074", "0" + "4006381333931"):
        item = parse_item(text)
        assert item["gtin"] == "04006381333931" or item["gtin"] == "00000096385074"
        assert item["unique"] is False
    with pytest.raises(FrameError, match="13-digit"):
        parse_item("4006381333932")


def test_gs1_without_item_key_refused() -> None:
    with pytest.raises(FrameError, match="no \\(00\\) SSCC"):
        gs1_item({"414": with_check_digit("950600013435")})


def test_serial_is_percent_encoded_in_the_id() -> None:
    assert parse_item("]C101" + GTIN + "21A/B")["id"] == f"https://id.gs1.org/01/{GTIN}/21/A%2FB"


def test_bare_twenty_digits_are_a_drug_code_not_an_sscc() -> None:
    assert parse_item("00" + SSCC)["scheme"] == "drug"
    assert parse_item("]C100" + SSCC)["scheme"] == "gs1"


# -- EPC ------------------------------------------------------------------------------------


def test_tds_sgtin96() -> None:
    assert decode_epc(SGTIN_EPC) == {
        "scheme": "sgtin-96",
        "gtin": "80614141123458",
        "serial": "6789",
        "filter": 3,
        "company_prefix": "0614141",
    }
    assert encode_sgtin96("80614141123458", 6789, 7, 3) == SGTIN_EPC
    item = parse_item(SGTIN_EPC.lower(), "epc")
    assert item["id"] == "https://id.gs1.org/01/80614141123458/21/6789"
    assert item["epc"] == SGTIN_EPC and item["level"] == "unknown"


def test_tds_sscc96() -> None:
    fields = decode_epc(SSCC_EPC)
    assert fields is not None and fields["sscc"] == SSCC
    assert encode_sscc96(SSCC, 7) == SSCC_EPC
    assert parse_item(bytes.fromhex(SSCC_EPC), "epc")["level"] == "case"


def test_rfid_and_barcode_of_one_carton_give_one_id() -> None:
    epc = encode_sgtin96(GTIN, 42, 7, 2)
    tag = parse_item(epc, "epc")
    assert tag["id"] == parse_item("]C101" + GTIN + "2142")["id"]
    assert tag["level"] == "case"
    with pytest.raises(FrameError, match="says 'case'"):
        parse_item(epc, "epc", "unit")


def test_other_epc_is_its_hex() -> None:
    raw = bytes(range(1, 13))
    item = parse_item(raw, "epc")
    assert item == {
        "scheme": "epc",
        "id": "epc:0102030405060708090A0B0C",
        "level": "unknown",
        "unique": True,
        "epc": "0102030405060708090A0B0C",
    }
    assert parse_item("0102 0304", "epc")["id"] == "epc:01020304"


@pytest.mark.parametrize(
    ("epc", "match"),
    [
        ("30", "16-bit words"),
        ("", "16-bit words"),
        ("30G4", "not hex"),
        ("301C" + "0" * 20, "partition 7"),
        (SSCC_EPC[:-1] + "1", "unallocated"),
        # SGTIN-96, partition 6: a 6-digit company prefix in 20 bits, 2^20 - 1 > 999999
        (f"{(0x30 << 88) | (6 << 82) | ((1 << 20) - 1) << 62:024X}", "company prefix"),
        (f"{(0x30 << 88) | (6 << 82) | ((1 << 24) - 1) << 38:024X}", "item reference"),
    ],
)
def test_bad_epcs(epc: str, match: str) -> None:
    with pytest.raises(FrameError, match=match):
        parse_item(epc, "epc")


def test_bad_arguments() -> None:
    with pytest.raises(CodecError, match="source"):
        parse_item(PESTICIDE, "nfc")
    with pytest.raises(FrameError):
        parse_item(12345)
    with pytest.raises(FrameError):
        epc_hex(3.5)
    with pytest.raises(EncodeError):
        encode_sgtin96(GTIN, 1 << 38, 7)
    with pytest.raises(EncodeError):
        encode_sgtin96(GTIN[:-1] + "3", 1, 7)


# -- from the scanner line decoder ----------------------------------------------------------


def test_scans_from_the_line_decoder() -> None:
    stream = (
        b"]Q1https://zs.example.com/p/" + PESTICIDE.encode() + b"\r\n"
        b"]C0" + DRUG.encode() + b"\r\n"
        b"]C100" + SSCC.encode() + b"\r\n"
    )
    scans = good(Decoder().feed(stream))
    assert all(isinstance(s, Scan) for s in scans)
    items = [parse_scan(s) for s in scans]  # type: ignore[arg-type]
    assert [i["scheme"] for i in items] == ["pesticide", "drug", "gs1"]


# -- properties -----------------------------------------------------------------------------

digits = st.text("0123456789", min_size=1, max_size=1)


@st.composite
def pesticide_fields(draw: st.DrawFn) -> dict[str, object]:
    return {
        "category": draw(digits),
        "registration_tail": draw(st.text("0123456789", min_size=6, max_size=6)),
        "production_type": draw(st.integers(1, 3)),
        "spec": draw(st.text("0123456789", min_size=3, max_size=3)),
        "random": draw(st.text("0123456789", min_size=21, max_size=21)),
    }


@SETTINGS
@given(pesticide_fields(), st.sampled_from(["", "]Q1", "]d1"]), st.booleans())
def test_property_pesticide_round_trip(fields: dict[str, object], aim: str, url: bool) -> None:
    code = pesticide_code(fields)
    text = aim + ("https://zs.example.com/p?code=" + code if url else code)
    item = parse_item(text)
    assert item["id"] == "pesticide:" + code
    for key in ("category", "registration_tail", "production_type", "spec", "random"):
        assert item[key] == fields[key]


@SETTINGS
@given(pesticide_fields(), st.sampled_from("0456789"))
def test_property_pesticide_bad_production_type(fields: dict[str, object], bad: str) -> None:
    code = pesticide_code(fields)
    with pytest.raises(FrameError, match="production type"):
        parse_item(code[:7] + bad + code[8:])
    with pytest.raises(EncodeError):
        pesticide_code({**fields, "production_type": bad})


line_text = st.text(
    st.characters(blacklist_categories=("Cs", "Cc", "Zs", "Zl", "Zp")), min_size=1, max_size=30
)
seed_code = st.text("0123456789ABCDEFXYZabc", min_size=1, max_size=20)


@SETTINGS
@given(
    line_text,
    line_text,
    seed_code,
    line_text,
    st.sampled_from(["\r\n", "\n", "\r"]),
    st.sampled_from(["", " ", "\t ", "\r\n", "\n\n"]),
)
def test_property_seed_round_trip(
    variety: str, producer: str, code: str, trace: str, eol: str, tail: str
) -> None:
    item = parse_item(seed_qr(variety, producer, code, trace, eol) + tail)
    assert (item["scheme"], item["id"]) == ("seed", "seed:" + code)
    assert (item["variety"], item["producer"], item["trace"]) == (variety, producer, trace)


@SETTINGS
@given(st.text("0123456789", min_size=20, max_size=20), st.sampled_from(["", "]C0", "]Q1"]))
def test_property_drug_round_trip(code: str, aim: str) -> None:
    assert drug_code(code[:7], code[7:16], code[16:]) == code
    item = parse_item(aim + code)
    assert (item["drug_id"], item["serial"], item["check"]) == (code[:7], code[7:16], code[16:])


gtin_bodies = st.text("0123456789", min_size=13, max_size=13)


@SETTINGS
@given(gtin_bodies, st.integers(0, (1 << 38) - 1), st.integers(6, 12), st.integers(0, 7))
def test_property_sgtin96_round_trip(body: str, serial: int, prefix_len: int, filt: int) -> None:
    gtin = with_check_digit(body)
    epc = encode_sgtin96(gtin, serial, prefix_len, filt)
    fields = decode_epc(epc)
    assert fields is not None
    assert (fields["gtin"], fields["serial"], fields["filter"]) == (gtin, str(serial), filt)
    assert parse_item(epc, "epc")["id"] == parse_item("]C101" + gtin + "21" + str(serial))["id"]


@SETTINGS
@given(st.text("0123456789", min_size=17, max_size=17), st.integers(6, 12))
def test_property_sscc96_round_trip(body: str, prefix_len: int) -> None:
    sscc = with_check_digit(body)
    item = parse_item(encode_sscc96(sscc, prefix_len), "epc")
    assert (item["sscc"], item["level"]) == (sscc, "case")


@SETTINGS
@given(gtin_bodies, st.text("0123456789ABCxyz-/", min_size=1, max_size=20))
def test_property_gs1_scan_round_trip(body: str, serial: str) -> None:
    ais = {"01": with_check_digit(body), "21": serial}
    scan = gs1_scan(ais, "]d2")
    assert parse_scan(scan)["ais"] == ais


VECTORS = [
    PESTICIDE,
    "https://zs.example.com/p?code=" + PESTICIDE,
    "\r\n".join(SEED_LINES),
    "]C0" + DRUG,
    "]C100" + SSCC,
    "]d201" + GTIN + "21ABC\x1d10L1",
    "https://id.example.com/01/" + GTIN + "/21/X?17=281231",
]


@FUZZ
@given(st.one_of(st.text(max_size=200), st.binary(max_size=200)))
def test_property_any_scan_is_an_item_or_a_codec_error(data: object) -> None:
    check_pure_decode(parse_item, data)  # type: ignore[arg-type]


@FUZZ
@given(st.sampled_from(VECTORS), st.lists(st.tuples(st.integers(0, 300), st.text(max_size=3))))
def test_property_mutated_vectors(vector: str, edits: list[tuple[int, str]]) -> None:
    text = vector
    for at, insert in edits:
        at %= len(text) + 1
        text = text[:at] + insert + text[at + 1 :]
    check_pure_decode(parse_item, text)  # type: ignore[arg-type]


@FUZZ
@given(st.one_of(st.binary(max_size=64), st.text("0123456789abcdefABCDEF ", max_size=64)))
def test_property_any_epc_is_an_item_or_a_codec_error(data: object) -> None:
    try:
        item = parse_item(data, "epc")
    except CodecError:
        return
    assert item["scheme"] in ("gs1", "epc") and str(item["id"])
