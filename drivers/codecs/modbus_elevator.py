"""Elevator controller status over Modbus: the holding-register map, encoded and decoded.

Pure: lists of 16-bit register values in, dicts out (the transport reads
``COUNT`` holding registers from ``START`` with pymodbus; the simulator serves
:func:`encode_status`). 32-bit counters are two registers, high word first.

====  ===========  ========  ===============================================================
reg   key          type      meaning
====  ===========  ========  ===============================================================
0     floor        int16     current floor (negative below ground), two's complement
1     direction    enum      0 idle, 1 up, 2 down (:data:`DIRECTIONS`)
2     door         enum      0 closed, 1 opening, 2 open, 3 closing, 4 obstructed
                             (:data:`DOOR_STATES`)
3     door_zone    bool      1 = car within a door zone (doors may open)
4     running      bool      1 = car moving
5     fault_code   uint16    0 = no fault; table :data:`FAULTS`
6     speed_mm_s   uint16    car speed in mm/s (unsigned; direction in register 1)
7-8   runs         uint32    completed runs since commissioning
9-10  door_cycles  uint32    door open/close cycles
11    run_hours    uint16    motor running hours (the controller saturates at 65535)
====  ===========  ========  ===============================================================

:func:`decode_status` also adds ``fault`` (the fault text). Unknown fault codes decode as
``"unknown fault N"`` (controllers add codes); out-of-range enums, booleans other than 0/1
and values outside 0-65535 raise :class:`FrameError`.

Fault codes:

====  =========================================
code  meaning
====  =========================================
0     no fault
1     door lock circuit open while running
2     door failed to close
3     door failed to open
4     overspeed (governor)
5     overload: car load above rated load
6     safety circuit open
7     motor overheat
8     power supply fault / phase loss
9     position encoder fault
10    car stopped outside a door zone
11    emergency stop pressed
12    communication lost with car controller
====  =========================================
"""

from .errors import EncodeError, FrameError

START = 0
COUNT = 12

DIRECTIONS = ("idle", "up", "down")
DOOR_STATES = ("closed", "opening", "open", "closing", "obstructed")
FAULTS = {
    0: "no fault",
    1: "door lock circuit open while running",
    2: "door failed to close",
    3: "door failed to open",
    4: "overspeed (governor)",
    5: "overload: car load above rated load",
    6: "safety circuit open",
    7: "motor overheat",
    8: "power supply fault / phase loss",
    9: "position encoder fault",
    10: "car stopped outside a door zone",
    11: "emergency stop pressed",
    12: "communication lost with car controller",
}
KEYS = (
    "floor",
    "direction",
    "door",
    "door_zone",
    "running",
    "fault_code",
    "speed_mm_s",
    "runs",
    "door_cycles",
    "run_hours",
)


def fault_text(code: int) -> str:
    return FAULTS.get(code, f"unknown fault {code}")


def _enum(table: tuple[str, ...], value: int, key: str) -> str:
    if not 0 <= value < len(table):
        raise FrameError(f"register {key} = {value} not in 0-{len(table) - 1}")
    return table[value]


def _bool(value: int, key: str) -> bool:
    if value not in (0, 1):
        raise FrameError(f"register {key} = {value} is not 0 or 1")
    return value == 1


def decode_status(registers: list[int]) -> dict[str, object]:
    """``COUNT`` register values -> status dict (keys :data:`KEYS` plus ``fault``)."""
    if len(registers) != COUNT:
        raise FrameError(f"expected {COUNT} registers, got {len(registers)}")
    for i, value in enumerate(registers):
        if not isinstance(value, int) or not 0 <= value <= 0xFFFF:
            raise FrameError(f"register {START + i} = {value!r} is not a 16-bit value")
    r = registers
    floor = r[0] - 0x10000 if r[0] & 0x8000 else r[0]
    return {
        "floor": floor,
        "direction": _enum(DIRECTIONS, r[1], "direction"),
        "door": _enum(DOOR_STATES, r[2], "door"),
        "door_zone": _bool(r[3], "door_zone"),
        "running": _bool(r[4], "running"),
        "fault_code": r[5],
        "fault": fault_text(r[5]),
        "speed_mm_s": r[6],
        "runs": r[7] << 16 | r[8],
        "door_cycles": r[9] << 16 | r[10],
        "run_hours": r[11],
    }


def _int(status: dict[str, object], key: str, low: int, high: int) -> int:
    value = status.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise EncodeError(f"{key} must be an integer in {low}..{high}, got {value!r}")
    return value


def _choice(status: dict[str, object], key: str, table: tuple[str, ...]) -> int:
    value = status.get(key)
    if value not in table:
        raise EncodeError(f"{key} must be one of {', '.join(table)}, got {value!r}")
    return table.index(str(value))


def _flag(status: dict[str, object], key: str) -> int:
    value = status.get(key)
    if not isinstance(value, bool):
        raise EncodeError(f"{key} must be True or False, got {value!r}")
    return 1 if value else 0


def encode_status(status: dict[str, object]) -> list[int]:
    """Status dict (as :func:`decode_status` returns; ``fault`` ignored) -> registers."""
    missing = [k for k in KEYS if k not in status]
    if missing:
        raise EncodeError(f"missing status keys: {', '.join(missing)}")
    floor = _int(status, "floor", -0x8000, 0x7FFF)
    runs = _int(status, "runs", 0, 0xFFFFFFFF)
    cycles = _int(status, "door_cycles", 0, 0xFFFFFFFF)
    return [
        floor & 0xFFFF,
        _choice(status, "direction", DIRECTIONS),
        _choice(status, "door", DOOR_STATES),
        _flag(status, "door_zone"),
        _flag(status, "running"),
        _int(status, "fault_code", 0, 0xFFFF),
        _int(status, "speed_mm_s", 0, 0xFFFF),
        runs >> 16,
        runs & 0xFFFF,
        cycles >> 16,
        cycles & 0xFFFF,
        _int(status, "run_hours", 0, 0xFFFF),
    ]
