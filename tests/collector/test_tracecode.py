"""Trace codes: structure, check digit (what it catches, and the one thing GS1 mod-10 cannot),
dates, and the same file under the real MicroPython interpreter."""

from __future__ import annotations

import datetime
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.tracecode import (
    check_digit,
    local_date,
    make_trace_code,
    parse_trace_code,
    valid,
    with_check_digit,
)
from simulators import records
from tests.mpy import repo_files, run_micropython

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


@given(st.text(DIGIT, min_size=1, max_size=40))
def test_check_digit_is_the_one_records_py_uses(digits: str) -> None:
    assert check_digit(digits) == records.check_digit(digits)
    assert with_check_digit(digits) == records.with_check_digit(digits)
    assert valid(with_check_digit(digits)) is (len(digits) == 19)


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


def test_local_date_at_midnight() -> None:
    midnight = 1_763_913_600_000  # 2025-11-24 00:00 CST = 2025-11-23 16:00 UTC
    assert local_date(midnight - 1) == "251123" and local_date(midnight) == "251124"
    with pytest.raises(ValueError):
        local_date(0)  # 1970 does not fit yymmdd


def test_the_same_file_under_micropython() -> None:
    code = make_trace_code("100001", local_date(1_763_913_600_000), 4, 36)
    out = run_micropython(
        "from collector import tracecode as t\n"
        "c = t.make_trace_code('100001', t.local_date(1763913600000), 4, 36)\n"
        "print('code', c, t.valid(c))\n"
        "f = t.parse_trace_code(c)\n"
        "print('fields', f['market'], f['day'], f['terminal'], f['serial'])\n"
        "bad = c[:-1] + str((int(c[-1]) + 1) % 10)\n"
        "print('bad', t.valid(bad))\n",
        repo_files("collector/tracecode.py"),
    )
    assert f"code {code} True" in out
    assert "fields 100001 2025-11-24 4 36" in out
    assert "bad False" in out
