"""Trace codes and the check digit (what it catches, and the one thing GS1 mod-10 cannot),
local dates and times, one implementation for every user, and the same files under the real
MicroPython interpreter."""

from __future__ import annotations

import datetime
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector import api_markets
from collector.markets import queries as market_queries
from drivers.codecs import barcode, gs1
from edge_agent import gate
from simulators import records
from tests.mpy import repo_files, run_micropython
from traceedge.cli.dev_flash import board_files
from wire import checkdigit, tracecode
from wire.checkdigit import check_digit, verify_check_digit, with_check_digit
from wire.tracecode import (
    local_date,
    local_datetime,
    local_day,
    local_time,
    make_trace_code,
    parse_trace_code,
    valid,
)

DIGIT = "0123456789"

dates = st.dates(min_value=datetime.date(2000, 1, 1), max_value=datetime.date(2099, 12, 31))
codes = st.builds(
    lambda m, d, t, s: make_trace_code(m, d.strftime("%y%m%d"), t, s),
    st.integers(0, 999_999),
    dates,
    st.integers(0, 99),
    st.integers(0, 9999),
)


def test_known_code() -> None:
    code = make_trace_code("100001", "251124", 4, 36)
    assert code == "8100001251124040036" + check_digit("8100001251124040036")
    assert len(code) == 20 and valid(code)
    assert parse_trace_code(code) == {
        "code": code,
        "market": "100001",
        "date": "251124",
        "day": "2025-11-24",
        "terminal": 4,
        "serial": 36,
        "check": int(code[-1]),
    }
    assert make_trace_code(100001, "251124", 4, 36) == code


@given(st.integers(0, 999_999), dates, st.integers(0, 99), st.integers(0, 9999))
def test_round_trip(market: int, day: datetime.date, terminal: int, serial: int) -> None:
    yymmdd = day.strftime("%y%m%d")
    code = make_trace_code(market, yymmdd, terminal, serial)
    f = parse_trace_code(code)
    assert (f["market"], f["date"], f["terminal"], f["serial"]) == (
        f"{market:06d}",
        yymmdd,
        terminal,
        serial,
    )
    assert f["day"] == day.isoformat()


def test_check_digit_gs1_examples() -> None:
    assert check_digit("400638133393") == "1"  # EAN-13 4006381333931
    assert check_digit("10614141123456789") == "7"  # SSCC 106141411234567897
    assert check_digit("0950600013435") == "2"  # GTIN-14 09506000134352
    assert with_check_digit("629104150021") == "6291041500213"
    assert verify_check_digit("4006381333931") and not verify_check_digit("4006381333932")


def _reference_check_digit(digits: str) -> str:
    """docs/tracecode.md written out: weights 3, 1, 3, ... from the right."""
    total = sum(int(ch) * (3 if i % 2 == 0 else 1) for i, ch in enumerate(reversed(digits)))
    return str((10 - total % 10) % 10)


@given(st.text(DIGIT, min_size=1, max_size=40))
def test_check_digit_is_the_documented_one(digits: str) -> None:
    assert check_digit(digits) == _reference_check_digit(digits)
    assert verify_check_digit(with_check_digit(digits))
    assert valid(with_check_digit(digits)) is (len(digits) == 19)


@pytest.mark.parametrize("digits", ["", "12a4", "١٢٣", "１２３", None, 123])
def test_check_digit_needs_ascii_digits(digits: object) -> None:
    with pytest.raises(ValueError, match="digits"):
        check_digit(digits)  # type: ignore[arg-type]
    assert not verify_check_digit(digits)


def test_a_check_digit_needs_a_body() -> None:
    assert not verify_check_digit("0") and not verify_check_digit("5")


@settings(max_examples=300)
@given(codes)
def test_every_single_digit_error_is_caught(code: str) -> None:
    for i in range(20):
        for d in DIGIT:
            if d != code[i]:
                wrong = code[:i] + d + code[i + 1 :]
                assert not valid(wrong), (code, i, d)
                with pytest.raises(ValueError):
                    parse_trace_code(wrong)


@settings(max_examples=300)
@given(codes)
def test_adjacent_transpositions_are_caught_unless_the_digits_differ_by_5(code: str) -> None:
    # Weights 3 and 1 alternate: swapping a and b changes the sum by 2(a - b), a multiple of
    # 10 exactly when |a - b| = 5. That blind spot is GS1 mod-10's, documented in
    # docs/tracecode.md; every other adjacent transposition is caught.
    for i in range(19):
        a, b = code[i], code[i + 1]
        if a == b:
            continue
        swapped = code[:i] + b + a + code[i + 2 :]
        assert valid(swapped) is (abs(int(a) - int(b)) == 5), (code, i)


def test_the_blind_spot_is_exactly_ten_digit_pairs() -> None:
    code = make_trace_code("100001", "251124", 4, 36)
    missed = set()
    for a in DIGIT:
        for b in DIGIT:
            body = "8" + a + b + code[3:19]
            full = with_check_digit(body)
            if a != b and valid(full[0] + b + a + full[3:]):
                missed.add((a, b))
    assert missed == {(a, b) for a in DIGIT for b in DIGIT if abs(int(a) - int(b)) == 5}


@pytest.mark.parametrize(
    "code",
    [
        None,
        12345678901234567890,
        "",
        "8100001251124040036",  # 19 digits
        "810000125112404003600",  # 21 digits
        "8100001251124O40036" + "5",  # a letter O
        "٨١٠٠٠٠١٢٥١١٢٤٠٤٠٠٣٦٥",  # Arabic-Indic digits: int() takes them, we do not
        "８１００００１２５１１２４０４００３６５",  # full-width digits
    ],
)
def test_not_codes(code: object) -> None:
    assert not valid(code)
    with pytest.raises(ValueError):
        parse_trace_code(code)  # type: ignore[arg-type]


def test_structure_is_checked_beyond_the_check_digit() -> None:
    for body in (
        "7100001251124040036",  # not a trace code's prefix
        "8100001251324040036",  # month 13
        "8100001250230040036",  # 30 February
        "8100001250229040036",  # 2025 is no leap year
    ):
        code = with_check_digit(body)
        assert valid(code)
        with pytest.raises(ValueError):
            parse_trace_code(code)
    assert parse_trace_code(with_check_digit("8100001240229040036"))["day"] == "2024-02-29"


@pytest.mark.parametrize(
    ("args", "what"),
    [
        (("10001", "251124", 1, 1), "market"),
        ((1_000_000, "251124", 1, 1), "market"),
        (("100001", "251324", 1, 1), "month"),
        (("100001", "25112", 1, 1), "date"),
        (("100001", "251124", 100, 1), "terminal"),
        (("100001", "251124", -1, 1), "terminal"),
        (("100001", "251124", 1, 10_000), "serial"),
        (("100001", "251124", True, 1), "terminal"),
    ],
)
def test_make_refuses_fields_that_do_not_fit(args: tuple[object, ...], what: str) -> None:
    with pytest.raises(ValueError, match=what):
        make_trace_code(*args)  # type: ignore[arg-type]


@given(st.integers(946_656_000_000, 4_102_415_999_999))
def test_local_date_is_china_standard_time(ts_ms: int) -> None:
    assert local_date(ts_ms) == time.strftime("%y%m%d", time.gmtime(ts_ms // 1000 + 8 * 3600))


EPOCH = datetime.datetime(1970, 1, 1)


@given(
    # every instant whose local time has a year Python's datetime can show (1-9999)
    st.integers(-62_135_500_000_000, 253_402_200_000_000),
    st.integers(-720, 840),
)
def test_local_time_matches_the_calendar(ts_ms: int, offset_min: int) -> None:
    t = EPOCH + datetime.timedelta(milliseconds=ts_ms, minutes=offset_min)
    assert local_time(ts_ms, offset_min) == (t.year, t.month, t.day, t.hour, t.minute, t.second)
    assert local_day(ts_ms, offset_min) == f"{t.year:04d}-{t.month:02d}-{t.day:02d}"
    assert local_datetime(ts_ms, offset_min) == t.isoformat(" ", "seconds")


def test_local_time_at_midnight() -> None:
    midnight = 1_763_913_600_000  # 2025-11-24 00:00 CST = 2025-11-23 16:00 UTC
    assert local_date(midnight - 1) == "251123" and local_date(midnight) == "251124"
    assert local_datetime(midnight - 1) == "2025-11-23 23:59:59"
    assert local_datetime(midnight) == "2025-11-24 00:00:00"
    assert local_datetime(midnight, 0) == "2025-11-23 16:00:00"
    assert local_day(0) == "1970-01-01"
    with pytest.raises(ValueError, match="1970"):
        local_date(0)  # 1970 does not fit yymmdd


def test_any_record_time_has_a_local_time() -> None:
    # The envelope allows ts up to 2**53 - 1: far beyond year 9999, still shown, never raised.
    assert local_day(2**53 - 1) == "287396-10-12"
    with pytest.raises(ValueError, match="287396"):
        local_date(2**53 - 1)


def test_one_implementation_everywhere() -> None:
    """The simulators, the collector, the fill gate and the scanner codec call these very
    functions, and the settlement board gets these very files."""
    assert records.make_trace_code is tracecode.make_trace_code
    assert records.with_check_digit is checkdigit.with_check_digit
    assert records.local_date is tracecode.local_date
    assert market_queries.tracecode is tracecode and api_markets.tracecode is tracecode
    assert gate.local_day is tracecode.local_day
    assert gs1.check_digit is checkdigit.check_digit
    assert barcode.verify_check_digit is gs1.verify_check_digit is checkdigit.verify_check_digit
    board = {f.dest: f.src for f in board_files("settlement")}
    assert board["lib/wire/tracecode.py"] == Path(tracecode.__file__).resolve()
    assert board["lib/wire/checkdigit.py"] == Path(checkdigit.__file__).resolve()
    assert "lib/tracecode.py" not in board  # no second copy beside the wire package


def test_the_same_files_under_micropython() -> None:
    ts = 1_763_913_600_000 + 9 * 3_600_000 + 15 * 60_000 + 2000
    code = make_trace_code("100001", local_date(ts), 4, 36)
    out = run_micropython(
        "from wire import tracecode as t\n"
        "from wire.checkdigit import verify_check_digit\n"
        f"c = t.make_trace_code('100001', t.local_date({ts}), 4, 36)\n"
        "print('code', c, t.valid(c), verify_check_digit(c))\n"
        "f = t.parse_trace_code(c)\n"
        "print('fields', f['market'], f['day'], f['terminal'], f['serial'])\n"
        "bad = c[:-1] + str((int(c[-1]) + 1) % 10)\n"
        "print('bad', t.valid(bad))\n"
        f"print('time', t.local_datetime({ts}), t.local_day({2**53 - 1}, 0))\n",
        repo_files(
            "wire/tracecode.py",
            "wire/checkdigit.py",
            # wire/__init__.py imports these
            "wire/canonical.py",
            "wire/envelope.py",
            "wire/limits.py",
            "wire/mac.py",
        ),
    )
    assert f"code {code} True True" in out
    assert "fields 100001 2025-11-24 4 36" in out
    assert "bad False" in out
    assert "time 2025-11-24 09:15:02 287396-10-12" in out
