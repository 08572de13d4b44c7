"""Canonical encoding of a record: the bytes the MAC covers.

JSON with object keys sorted by code point, no insignificant white space, strings in raw
UTF-8 with only ``"`` ``\\`` and control characters escaped (the short escapes ``\\b \\f
\\n \\r \\t``, otherwise ``\\u00XX``). Values are restricted to what a record may hold:
``None``, booleans, integers, strings, lists and string-keyed objects. Floats are refused:
weights and money travel as integers in the device's own resolution.

The pure encoder below runs on MicroPython. On CPython the C JSON encoder yields the same
bytes for this value domain and is used for speed; ``tests/wire`` proves they agree.
"""

_SHORT = {
    0x22: '\\"',
    0x5C: "\\\\",
    0x08: "\\b",
    0x0C: "\\f",
    0x0A: "\\n",
    0x0D: "\\r",
    0x09: "\\t",
}


class CanonicalError(ValueError):
    """A value outside the canonical domain (float, bytes, non-string key, ...)."""


def _string(s: str, out: list[str]) -> None:
    out.append('"')
    start = 0
    i = 0
    n = len(s)
    while i < n:
        c = ord(s[i])
        if c < 0x20 or c == 0x22 or c == 0x5C:
            if i > start:
                out.append(s[start:i])
            esc = _SHORT.get(c)
            if esc is None:
                esc = "\\u%04x" % c
            out.append(esc)
            start = i + 1
        elif 0xD800 <= c <= 0xDFFF:
            raise CanonicalError("lone surrogate in string")
        i += 1
    if start < n:
        out.append(s[start:])
    out.append('"')


def _value(v: object, out: list[str], depth: int) -> None:
    if depth > 16:
        raise CanonicalError("nested deeper than 16 levels")
    if v is None:
        out.append("null")
    elif v is True:
        out.append("true")
    elif v is False:
        out.append("false")
    elif isinstance(v, int):
        out.append(str(v))
    elif isinstance(v, str):
        _string(v, out)
    elif isinstance(v, (list, tuple)):
        out.append("[")
        first = True
        for item in v:
            if not first:
                out.append(",")
            first = False
            _value(item, out, depth + 1)
        out.append("]")
    elif isinstance(v, dict):
        for k in v:
            if not isinstance(k, str):
                raise CanonicalError("object key is not a string")
        out.append("{")
        first = True
        for k in sorted(v):
            if not first:
                out.append(",")
            first = False
            _string(k, out)
            out.append(":")
            _value(v[k], out, depth + 1)
        out.append("}")
    else:
        raise CanonicalError("value of type %s is not allowed" % type(v).__name__)


def canonical_pure(obj: object) -> bytes:
    """Encode ``obj`` canonically; the reference implementation (MicroPython-safe)."""
    out: list[str] = []
    _value(obj, out, 0)
    return "".join(out).encode()


def _domain_check(v: object, depth: int) -> None:
    # The C encoder would happily write floats, NaN and non-string keys; refuse them first.
    if depth > 16:
        raise CanonicalError("nested deeper than 16 levels")
    if isinstance(v, dict):
        for k, item in v.items():
            if not isinstance(k, str):
                raise CanonicalError("object key is not a string")
            _domain_check(item, depth + 1)
    elif isinstance(v, (list, tuple)):
        for item in v:
            _domain_check(item, depth + 1)
    elif v is None or isinstance(v, (bool, int)):
        return
    elif isinstance(v, str):
        for ch in v:
            if 0xD800 <= ord(ch) <= 0xDFFF:
                raise CanonicalError("lone surrogate in string")
    else:
        raise CanonicalError("value of type %s is not allowed" % type(v).__name__)


try:  # CPython fast path: identical output for the canonical domain.
    import json as _json
    import sys as _sys

    if _sys.implementation.name != "cpython":
        raise ImportError("not CPython")

    _fast = _json.JSONEncoder(
        ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False
    ).encode

    def canonical(obj: object) -> bytes:
        """Encode ``obj`` canonically (C encoder after a domain check)."""
        _domain_check(obj, 0)
        return _fast(obj).encode()

    def canonical_trusted(obj: object) -> bytes:
        """Encode a value that came from ``json.loads`` (already in the domain but floats).

        Only for decoded JSON whose floats were rejected at parse time.
        """
        return _fast(obj).encode()

except ImportError:  # MicroPython
    canonical = canonical_pure
    canonical_trusted = canonical_pure
