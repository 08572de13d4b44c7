"""Elevator controller register map: encode / decode, validation, round trips."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.codecs import EncodeError, FrameError
from drivers.codecs.modbus_elevator import (
    COUNT,
    DIRECTIONS,
    DOOR_STATES,
    FAULTS,
    KEYS,
    START,
    decode_status,
    encode_status,
    fault_text,
)

from .props import FUZZ, SETTINGS, check_pure_decode

STATUS: dict[str, object] = {
    "floor": -2,
    "direction": "up",
    "door": "closed",
    "door_zone": False,
    "running": True,
    "fault_code": 0,
    "speed_mm_s": 1600,
    "runs": 123456,
    "door_cycles": 70000,
    "run_hours": 4321,
}
REGISTERS = [0xFFFE, 1, 0, 0, 1, 0, 1600, 1, 57920, 1, 4464, 4321]


def test_register_map_literal() -> None:
    assert (START, COUNT) == (0, 12)
    assert encode_status(STATUS) == REGISTERS
    assert decode_status(REGISTERS) == {**STATUS, "fault": "no fault"}


def test_32_bit_counters_are_high_word_first() -> None:
    regs = encode_status({**STATUS, "runs": 0x12345678})
    assert regs[7:9] == [0x1234, 0x5678]


def test_fault_table() -> None:
    assert fault_text(4) == FAULTS[4]
    assert fault_text(999) == "unknown fault 999"
    regs = list(REGISTERS)
    regs[5] = 5
    assert decode_status(regs)["fault"] == "overload: car load above rated load"


@pytest.mark.parametrize(
    ("index", "value", "match"),
    [
        (1, 3, "direction"),
        (2, 9, "door"),
        (3, 2, "door_zone"),
        (4, 7, "running"),
        (6, 70000, "16-bit"),
    ],
)
def test_out_of_range_registers_are_frame_errors(index: int, value: int, match: str) -> None:
    regs = list(REGISTERS)
    regs[index] = value
    with pytest.raises(FrameError, match=match):
        decode_status(regs)


def test_wrong_register_count() -> None:
    with pytest.raises(FrameError, match="expected 12"):
        decode_status(REGISTERS[:-1])


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("floor", 40000),
        ("direction", "sideways"),
        ("door_zone", 1),
        ("runs", -1),
        ("speed_mm_s", True),
    ],
)
def test_encode_refuses_bad_values(key: str, value: object) -> None:
    with pytest.raises(EncodeError, match=key):
        encode_status({**STATUS, key: value})
    with pytest.raises(EncodeError, match="missing"):
        encode_status({k: v for k, v in STATUS.items() if k != key})


statuses = st.fixed_dictionaries(
    {
        "floor": st.integers(-0x8000, 0x7FFF),
        "direction": st.sampled_from(DIRECTIONS),
        "door": st.sampled_from(DOOR_STATES),
        "door_zone": st.booleans(),
        "running": st.booleans(),
        "fault_code": st.integers(0, 0xFFFF),
        "speed_mm_s": st.integers(0, 0xFFFF),
        "runs": st.integers(0, 0xFFFFFFFF),
        "door_cycles": st.integers(0, 0xFFFFFFFF),
        "run_hours": st.integers(0, 0xFFFF),
    }
)


@SETTINGS
@given(statuses)
def test_property_round_trip(status: dict[str, object]) -> None:
    decoded = decode_status(encode_status(status))
    assert {k: decoded[k] for k in KEYS} == status
    assert encode_status(decoded) == encode_status(status)


@FUZZ
@given(st.lists(st.integers(-5, 0x10005), min_size=0, max_size=14))
def test_property_arbitrary_registers_raise_only_frame_errors(regs: list[int]) -> None:
    check_pure_decode(decode_status, regs)
