"""Trace codes printed on market receipts: make, check and take apart; the local date in them.

A trace code is 20 ASCII digits (``docs/tracecode.md``)::

    8 MMMMMM YYMMDD TT SSSS C
    | |      |      |  |    +-- GS1 mod-10 check digit over the first 19 digits
    | |      |      |  +------- serial: the terminal's sale counter of that day, 0000-9999
    | |      |      +---------- terminal number within the market, 00-99
    | |      +----------------- local date of the sale (China Standard Time, UTC+8)
    | +------------------------ market number (6 digits, assigned per market, no leading 8)
    +-------------------------- "8": a retail trace code (vouchers start with a region code,
                                batch codes with a market number)

:func:`local_time` is the one conversion from a record's ``ts`` to the local calendar: the
date in codes, the time on the receipt and on the collector's trace page. The check digit is
:mod:`wire.checkdigit`'s.

In the MicroPython subset (annotations never evaluated), so a scale or settlement terminal
makes its codes with this same file.
"""

from wire.checkdigit import all_digits, check_digit, verify_check_digit, with_check_digit

PREFIX = "8"
LENGTH = 20
# China Standard Time: the date in a code is the market's local date.
CST_OFFSET_MIN = 480

_DAYS_IN_MONTH = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def valid(code: object) -> bool:
    """True if ``code`` is 20 ASCII digits whose last digit is the check digit of the rest.

    Holds for every 20-digit code of ours (trace code, voucher, batch); it says nothing about
    the fields inside: :func:`parse_trace_code` checks those.
    """
    return isinstance(code, str) and len(code) == LENGTH and verify_check_digit(code)


def _leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def _check_date(yymmdd: str) -> None:
    if len(yymmdd) != 6 or not all_digits(yymmdd):
        raise ValueError("date must be yymmdd (6 digits)")
    year = 2000 + int(yymmdd[0:2])
    month = int(yymmdd[2:4])
    day = int(yymmdd[4:6])
    if month < 1 or month > 12:
        raise ValueError(f"no month {month} in date {yymmdd}")
    last = 29 if month == 2 and _leap(year) else _DAYS_IN_MONTH[month - 1]
    if day < 1 or day > last:
        raise ValueError(f"no day {day} in month {month} of date {yymmdd}")


def local_time(ts_ms: int, offset_min: int = CST_OFFSET_MIN) -> tuple[int, int, int, int, int, int]:
    """``(year, month, day, hour, minute, second)`` of a time in ms since the Unix epoch (UTC)
    at ``offset_min`` minutes east of UTC (default China Standard Time).

    The one conversion from a record's ``ts`` to the local calendar. Integer civil-from-days
    arithmetic for any integer ``ts_ms``: no ``time`` module, whose epoch differs between
    MicroPython ports and whose range differs between platforms.
    """
    ms = ts_ms + offset_min * 60_000
    days = ms // 86_400_000
    secs = (ms - days * 86_400_000) // 1000
    z = days + 719_468
    era = z // 146_097
    doe = z - era * 146_097
    yoe = (doe - doe // 1460 + doe // 36_524 - doe // 146_096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = mp + 3 if mp < 10 else mp - 9
    year = yoe + era * 400 + (1 if month <= 2 else 0)
    return (year, month, day, secs // 3600, secs // 60 % 60, secs % 60)


def local_date(ts_ms: int, offset_min: int = CST_OFFSET_MIN) -> str:
    """The local date ``yymmdd`` of a time, as codes carry it.

    Raises ``ValueError`` for a year outside 2000-2099, which ``yymmdd`` cannot hold.
    """
    year, month, day = local_time(ts_ms, offset_min)[:3]
    if year < 2000 or year > 2099:
        raise ValueError(f"year {year} does not fit a yymmdd code")
    return f"{year % 100:02d}{month:02d}{day:02d}"


def local_day(ts_ms: int, offset_min: int = CST_OFFSET_MIN) -> str:
    """The local date ``YYYY-MM-DD`` of a time (any year)."""
    year, month, day = local_time(ts_ms, offset_min)[:3]
    return f"{year:04d}-{month:02d}-{day:02d}"


def local_datetime(ts_ms: int, offset_min: int = CST_OFFSET_MIN) -> str:
    """The local time ``YYYY-MM-DD hh:mm:ss`` of a time (any year): the receipt's and the
    trace page's."""
    year, month, day, hour, minute, second = local_time(ts_ms, offset_min)
    return f"{year:04d}-{month:02d}-{day:02d} {hour:02d}:{minute:02d}:{second:02d}"


def _field(value: object, width: int, name: str) -> str:
    """``value`` (an int, or a string of digits) as exactly ``width`` digits."""
    if isinstance(value, bool):
        raise ValueError(f"{name} must be a number")
    if isinstance(value, int):
        if value < 0 or value >= 10**width:
            raise ValueError(f"{name} {value} does not fit {width} digits")
        text = str(value)
        return "0" * (width - len(text)) + text
    if isinstance(value, str) and len(value) == width and all_digits(value):
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
    if not isinstance(code, str) or len(code) != LENGTH or not all_digits(code):
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
