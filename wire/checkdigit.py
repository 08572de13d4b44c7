"""The GS1 mod-10 check digit: the one implementation, for every code of ours and every GS1 key.

From the right of the body, weights 3, 1, 3, 1, ...; the check digit makes the weighted sum
a multiple of 10. Trace codes, vouchers and batch codes (:mod:`wire.tracecode`,
``docs/tracecode.md``) end with it, as do the GTINs, SSCCs and GLNs a scanner reads
(:mod:`drivers.codecs.gs1`)::

    body     4 0 0 6 3 8 1 3 3 3 9 3
    weights  1 3 1 3 1 3 1 3 1 3 1 3
    sum      4+0+0+18+3+24+1+9+3+9+9+9 = 89  ->  check = (10 - 89 % 10) % 10 = 1

Digits are ASCII ``0``-``9`` only (``str.isdigit`` also takes other scripts' digits).
Pure and in the MicroPython subset (no imports), so terminals check and make codes with this
same file.
"""

_DIGITS = "0123456789"


def all_digits(text: object) -> bool:
    """True if ``text`` is a non-empty ``str`` of ASCII digits."""
    if not isinstance(text, str) or not text:
        return False
    return all(ch in _DIGITS for ch in text)


def _mod10(digits: str) -> str:
    total = 0
    weight = 3
    i = len(digits) - 1
    while i >= 0:
        total += (ord(digits[i]) - 48) * weight
        weight = 4 - weight
        i -= 1
    return str((10 - total % 10) % 10)


def check_digit(digits: str) -> str:
    """The check digit (one character) of ``digits``, the body without its check digit.

    Raises ``ValueError`` unless ``digits`` is a non-empty string of ASCII digits.
    """
    if not all_digits(digits):
        raise ValueError("check digit needs a non-empty string of digits")
    return _mod10(digits)


def with_check_digit(digits: str) -> str:
    """``digits`` followed by its :func:`check_digit`."""
    return digits + check_digit(digits)


def verify_check_digit(number: object) -> bool:
    """True if ``number`` is at least two ASCII digits and its last is the check digit of the
    rest; never raises."""
    if not isinstance(number, str) or len(number) < 2 or not all_digits(number):
        return False
    return _mod10(number[:-1]) == number[-1]
