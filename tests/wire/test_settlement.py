"""wire/settlement.py: the sale logic the MCU app and the Linux stall terminal share."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wire import settlement
from wire.checkdigit import verify_check_digit
from wire.schemas import default_validator
from wire.tracecode import parse_trace_code

GOODS: dict[str, Any] = {
    "batch_id": "33014225112300000076",
    "goods_code": "10010004",
    "goods_name": "五花肉",
    "price_fen_per_piece": 250,
}


@given(st.integers(0, 10_000_000), st.integers(0, 100_000_000))
def test_priced_is_the_exact_amount_rounded_half_up(weight_g: int, per_kg: int) -> None:
    amount = settlement.priced(weight_g, per_kg)
    exact = weight_g * per_kg  # in milli-fen
    assert amount * 1000 - 500 <= exact < amount * 1000 + 500


@given(st.integers(1, 9999), st.integers(0, 99))
def test_codes_carry_date_terminal_and_serial(serial: int, terminal_no: int) -> None:
    tran, trace = settlement.codes("330106", "330142", "251123", terminal_no, serial)
    assert len(tran) == 20 and verify_check_digit(tran)
    assert tran.startswith(f"330106251123{terminal_no:02d}{serial:05d}")
    p = parse_trace_code(trace)
    assert (p["date"], p["terminal"], p["serial"]) == ("251123", terminal_no, serial)


def test_serial_counts_per_day_and_stops_at_9999() -> None:
    assert settlement.next_serial(None, "251123") == 1
    assert settlement.next_serial({"date": "251123", "serial": 7}, "251123") == 8
    assert settlement.next_serial({"date": "251122", "serial": 7}, "251123") == 1
    with pytest.raises(ValueError, match="no room"):
        settlement.next_serial({"date": "251123", "serial": 9999}, "251123")


def test_a_body_is_what_the_collector_schema_takes() -> None:
    lines = [
        settlement.weighed_line(GOODS, 1235, 3280, settlement.priced(1235, 3280)),
        settlement.counted_line(GOODS, 3),
    ]
    tran, trace = settlement.codes("330106", "330142", "251123", 17, 14)
    body = settlement.body(
        "M1", "M1-017", "ACS 3.0", tran, trace, "T1", "9C3A11F0", lines, "B1", "04A1B2C3", "cash"
    )
    default_validator().validate("market.settlement", body)
    assert body["total_fen"] == 4051 + 750 and body["pay"] == "cash"
    bare = settlement.body("M1", "M1-017", "ACS 3.0", tran, trace, "T1", "9C3A11F0", lines[:1])
    default_validator().validate("market.settlement", bare)
    assert "buyer" not in bare and "pay" not in bare


@pytest.mark.parametrize("n", [0, 21])
def test_a_sale_has_one_to_twenty_lines(n: int) -> None:
    with pytest.raises(ValueError, match=r"1\.\.20 lines"):
        settlement.body("M", "T", "S", "1" * 20, "8" * 20, "T1", "AB", [{"amount_fen": 1}] * n)


@given(st.dictionaries(st.sampled_from(["version", "batches", "x"]), st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=8), c, max_size=3),
    max_leaves=8)), st.integers(0, 5))  # fmt: skip
def test_stopped_batches_is_total(sl: dict[str, object], held: int) -> None:
    ids = settlement.stopped_batches(sl, held)
    assert ids is None or all(isinstance(i, str) for i in ids)
    if ids is not None:
        assert isinstance(sl["version"], int) and sl["version"] > held


def test_only_a_newer_stop_list_counts() -> None:
    sl: dict[str, object] = {"version": 3, "batches": [{"batch_id": "B1"}, {"x": 1}, "junk"]}
    assert settlement.stopped_batches(sl, 2) == ["B1"]
    assert settlement.stopped_batches(sl, 3) is None
