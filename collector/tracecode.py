"""Trace codes printed on market receipts: make, check and take apart.

A trace code is 20 ASCII digits (``docs/tracecode.md``)::

    8 MMMMMM YYMMDD TT SSSS C
    | |      |      |  |    +-- GS1 mod-10 check digit over the first 19 digits
    | |      |      |  +------- serial: the terminal's sale counter of that day, 0000-9999
    | |      |      +---------- terminal number within the market, 00-99
    | |      +----------------- local date of the sale (China Standard Time, UTC+8)
    | +------------------------ market number (6 digits, assigned per market, no leading 8)
    +-------------------------- "8": a retail trace code (vouchers start with a region code,
                                batch codes with a market number)

Pure and in the MicroPython subset (no imports, annotations never evaluated), so a scale or
settlement terminal makes its codes with this same file.
"""

PREFIX = "8"
LENGTH = 20
# China Standard Time: the date in a code is the market's local date.
CST_OFFSET_MIN = 480

_DIGITS = "0123456789"
_DAYS_IN_MONTH = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def _all_digits(text: object) -> bool:
    if not isinstance(text, str) or not text:
        return False
    return all(ch in _DIGITS for ch in text)


def check_digit(digits: str) -> str:
    """GS1 mod-10 check digit of a string of ASCII digits (weights 3, 1, 3, ... from the right)."""
    if not _all_digits(digits):
        raise ValueError("check digit needs a non-empty string of digits")
    total = 0
    weight = 3
    i = len(digits) - 1
    while i >= 0:
        total += (ord(digits[i]) - 48) * weight
        weight = 4 - weight
        i -= 1
    return str((10 - total % 10) % 10)


def with_check_digit(digits: str) -> str:
    """``digits`` followed by its :func:`check_digit`."""
    return digits + check_digit(digits)


def valid(code: object) -> bool:
    """True if ``code`` is 20 ASCII digits whose last digit is the check digit of the rest.

    Holds for every 20-digit code of ours (trace code, voucher, batch); it says nothing about
    the fields inside: :func:`parse_trace_code` checks those.
    """
    if not isinstance(code, str) or len(code) != LENGTH or not _all_digits(code):
        return False
    return check_digit(code[:-1]) == code[-1]


def _leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def _check_date(yymmdd: str) -> None:
    if len(yymmdd) != 6 or not _all_digits(yymmdd):
        raise ValueError("date must be yymmdd (6 digits)")
    year = 2000 + int(yymmdd[0:2])
    month = int(yymmdd[2:4])
    day = int(yymmdd[4:6])
    if month < 1 or month > 12:
        raise ValueError(f"no month {month} in date {yymmdd}")
    last = 29 if month == 2 and _leap(year) else _DAYS_IN_MONTH[month - 1]
    if day < 1 or day > last:
        raise ValueError(f"no day {day} in month {month} of date {yymmdd}")


def local_date(ts_ms: int, offset_min: int = CST_OFFSET_MIN) -> str:
    """The local date ``yymmdd`` of a time in ms since the Unix epoch (UTC).

    Integer civil-from-days arithmetic: no ``time`` module, whose epoch differs between
    MicroPython ports.
    """
    days = (ts_ms + offset_min * 60_000) // 86_400_000
    z = days + 719_468
    era = z // 146_097
    doe = z - era * 146_097
    yoe = (doe - doe // 1460 + doe // 36_524 - doe // 146_096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = mp + 3 if mp < 10 else mp - 9
    year = yoe + era * 400 + (1 if month <= 2 else 0)
    if year < 2000 or year > 2099:
        raise ValueError(f"year {year} does not fit a yymmdd code")
    return f"{year % 100:02d}{month:02d}{day:02d}"


def _field(value: object, width: int, name: str) -> str:
    """``value`` (an int, or a string of digits) as exactly ``width`` digits."""
    if isinstance(value, bool):
        raise ValueError(f"{name} must be a number")
    if isinstance(value, int):
        if value < 0 or value >= 10**width:
            raise ValueError(f"{name} {value} does not fit {width} digits")
        text = str(value)
        return "0" * (width - len(text)) + text
    if isinstance(value, str) and len(value) == width and _all_digits(value):
        return value
    raise ValueError(f"{name} must be {width} digits")


def make_trace_code(market: str | int, date: str, terminal: int, serial: int) -> str:
    """The trace code of sale ``serial`` on ``terminal`` of ``market`` on ``date`` (yymmdd).

    ``market``: the 6-digit market number; ``terminal``: 0-99; ``serial``: 0-9999, the
    terminal's sale counter of the day. Raises ``ValueError`` when a field does not fit.
    """
    _check_date(date)
    body = (
        PREFIX
        + _field(market, 6, "market")
        + date
        + _field(terminal, 2, "terminal")
        + _field(serial, 4, "serial")
    )
    return with_check_digit(body)


def parse_trace_code(code: str) -> dict[str, object]:
    """The fields of a trace code; ``ValueError`` if it is not one (format, check digit, date).

    Returns ``{"code", "market", "date" (yymmdd), "day" (YYYY-MM-DD), "terminal" (int),
    "serial" (int), "check" (int)}``.
    """
    if not isinstance(code, str) or len(code) != LENGTH or not _all_digits(code):
        raise ValueError(f"a trace code is {LENGTH} digits")
    if check_digit(code[:-1]) != code[-1]:
        raise ValueError("check digit does not match")
    if code[0] != PREFIX:
        raise ValueError(f"a trace code starts with {PREFIX}")
    date = code[7:13]
    _check_date(date)
    return {
        "code": code,
        "market": code[1:7],
        "date": date,
        "day": f"20{date[0:2]}-{date[2:4]}-{date[4:6]}",
        "terminal": int(code[13:15]),
        "serial": int(code[15:19]),
        "check": int(code[19]),
    }
