"""Exact quantities: weights and money as integers in the device's own resolution.

``Weight(10000, 2, "g")`` is 100.00 g: ``value`` counts steps of ``10 ** -decimals`` of
``unit``. Nothing here ever touches a float, so a reading is reproduced digit for digit.
"""

from .errors import EncodeError, FrameError

_DIGITS = "0123456789"


def is_digits(text: str) -> bool:
    """True when ``text`` is non-empty and only ASCII digits (``str.isdigit`` accepts more)."""
    if not text:
        return False
    return all(ch in _DIGITS for ch in text)


def parse_decimal(text: str) -> tuple[int, int]:
    """Parse ``"-100.50"`` into ``(-10050, 2)``; strict: sign, digits, at most one point
    with digits on both sides.

    Leading and trailing spaces are allowed (devices right-align numbers); anything else
    raises :class:`FrameError`.
    """
    s = text.strip(" ")
    negative = False
    if s[:1] == "-" or s[:1] == "+":
        negative = s[0] == "-"
        s = s[1:]
    whole, point, frac = s.partition(".")
    if point and (not whole or not frac or "." in frac):
        raise FrameError(f"bad number {text!r}: a point needs digits on both sides")
    digits = whole + frac
    if not is_digits(digits):
        raise FrameError(f"bad number {text!r}: expected digits with an optional point")
    value = int(digits)
    return (-value if negative else value), len(frac)


def format_decimal(value: int, decimals: int) -> str:
    """Inverse of :func:`parse_decimal`: ``(10000, 2)`` -> ``"100.00"``."""
    if decimals < 0:
        raise EncodeError(f"decimals must be >= 0, got {decimals}")
    sign = "-" if value < 0 else ""
    digits = str(abs(value))
    if decimals == 0:
        return sign + digits
    if len(digits) <= decimals:
        digits = "0" * (decimals - len(digits) + 1) + digits
    return sign + digits[:-decimals] + "." + digits[-decimals:]


def rescale(value: int, decimals: int, target: int) -> int:
    """``value`` at ``decimals`` expressed at ``target`` decimals; exact or EncodeError."""
    if target >= decimals:
        scale: int = 10 ** (target - decimals)
        return value * scale
    factor: int = 10 ** (decimals - target)
    if value % factor:
        raise EncodeError(
            f"{format_decimal(value, decimals)} cannot be expressed with {target} decimals"
            " without rounding"
        )
    return value // factor


class Weight:
    """A weight as the device reported it: ``value * 10**-decimals`` ``unit``."""

    __slots__ = ("decimals", "unit", "value")

    def __init__(self, value: int, decimals: int, unit: str) -> None:
        self.value = value
        self.decimals = decimals
        self.unit = unit

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Weight)
            and other.value == self.value
            and other.decimals == self.decimals
            and other.unit == self.unit
        )

    def __repr__(self) -> str:
        return f"Weight({self.value}, {self.decimals}, {self.unit!r})"

    def __str__(self) -> str:
        return self.text() + " " + self.unit

    def text(self) -> str:
        """The number as the device would print it, e.g. ``"100.00"``."""
        return format_decimal(self.value, self.decimals)

    def at(self, decimals: int) -> int:
        """The value at another resolution, exactly (``Weight(195, 3, "kg").at(3)``)."""
        return rescale(self.value, self.decimals, decimals)


class Money:
    """An amount of money in the device's resolution: ``value * 10**-decimals``."""

    __slots__ = ("decimals", "value")

    def __init__(self, value: int, decimals: int) -> None:
        self.value = value
        self.decimals = decimals

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Money)
            and other.value == self.value
            and other.decimals == self.decimals
        )

    def __repr__(self) -> str:
        return f"Money({self.value}, {self.decimals})"

    def __str__(self) -> str:
        return format_decimal(self.value, self.decimals)


def _pow10(n: int) -> int:
    f = 1
    for _ in range(n):
        f *= 10
    return f


def grams(w: Weight) -> int:
    """A weight in grams, exactly; ``ValueError`` (an ``EncodeError``) if it would round."""
    if w.unit == "kg":
        return w.at(3)
    if w.unit == "g":
        return w.at(0)
    raise ValueError("unit %r is not a mass unit a terminal records" % w.unit)


def fen(m: Money) -> int:
    """Yuan (as a scale prints them) in fen, exactly; ``ValueError`` if it would round."""
    if m.decimals <= 2:
        return m.value * _pow10(2 - m.decimals)
    f = _pow10(m.decimals - 2)
    if m.value % f:
        raise ValueError("%d at %d decimals is not a whole number of fen" % (m.value, m.decimals))
    return m.value // f
