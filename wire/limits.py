"""Bounded JSON parsing for everything that arrives from the wire (MicroPython subset).

:func:`loads` is the one way a wire parser turns bytes into a JSON value. It checks the
limits *before* the work they would cause: the size in bytes first, then the nesting depth
by a scan of the bytes (CPython's parser recurses, so a record nested 5,000 deep would
otherwise cost a ``RecursionError`` deep inside it, or inside whatever walks the value
next), and only then parses. After parsing it refuses strings holding a lone surrogate
(``"\\ud800"``): ``json.loads`` accepts them, but no UTF-8 encoder can write them back, so
they would fail later, far from the input that caused it.

Every refusal is a :class:`~wire.envelope.WireError`: ``oversized``, ``depth``, ``json``
(not JSON, or a lone surrogate), or the ``WireError`` a ``parse_float`` hook raised.
"""

import json

from wire.envelope import WireError

# Deeper than any message of the contract needs (records: 16, enforced by the canonical
# encoding); shallow enough that nothing which walks a parsed value recursively can fail.
MAX_DEPTH = 64


def _depth_ok_pure(data: bytes, max_depth: int) -> bool:
    """Reference scan: the bracket depth outside strings never exceeds ``max_depth``."""
    depth = 0
    in_str = False
    esc = False
    for b in data:
        if in_str:
            if esc:
                esc = False
            elif b == 0x5C:
                esc = True
            elif b == 0x22:
                in_str = False
        elif b == 0x22:
            in_str = True
        elif b == 0x5B or b == 0x7B:
            depth += 1
            if depth > max_depth:
                return False
        elif b == 0x5D or b == 0x7D:
            depth -= 1
    return True


def _no_lone_surrogate(v: object) -> bool:
    stack = [v]
    while stack:
        x = stack.pop()
        if isinstance(x, str):
            try:
                x.encode()
            except UnicodeError:
                return False
        elif isinstance(x, dict):
            for k in x:
                stack.append(k)
                stack.append(x[k])
        elif isinstance(x, list):
            for item in x:
                stack.append(item)
    return True


def _may_hold_surrogate_pure(data: bytes) -> bool:
    return False  # MicroPython's strings are UTF-8 and its json writes no lone surrogate


try:  # CPython fast path: the same answers from a few passes in C
    import re as _re
    import sys as _sys

    if _sys.implementation.name != "cpython":
        raise ImportError("not CPython")

    _NOT_MARKS = bytes(range(256)).translate(None, b'"[]{}')
    _SAME = bytes.maketrans(b"{}", b"[]")
    # an escaped or raw (UTF-8, read with surrogatepass) surrogate code unit
    _SURROGATE = _re.compile(rb"\\u[dD][89a-fA-F]|\xed[\xa0-\xbf]")

    def _depth_ok(data: bytes, max_depth: int) -> bool:
        """Escapes dropped, only quotes and brackets kept, strings cut out, innermost pairs
        peeled ``max_depth`` times: anything left is nested too deep (or unbalanced, which
        is not JSON either)."""
        if data.count(b"[") + data.count(b"{") <= max_depth:
            return True
        if b"\\" in data:  # an escaped backslash first, so that \\" still closes a string
            data = data.replace(b"\\\\", b"").replace(b'\\"', b"")
        # dropping two adjacent quotes keeps every later quote's parity: most strings hold
        # no bracket and go here, the rest by their quotes (every other one closes a string)
        brackets = data.translate(_SAME, _NOT_MARKS).replace(b'""', b"")
        if b'"' in brackets:
            brackets = b"".join(brackets.split(b'"')[::2])
        run = b"[" * (max_depth + 1)  # a run of openers nests at least that deep
        for _ in range(max_depth):
            if not brackets:
                return True
            if run in brackets:
                return False
            brackets = brackets.replace(b"[]", b"")
        return not brackets

    def _may_hold_surrogate(data: bytes) -> bool:
        if b"\\u" not in data and b"\xed" not in data:
            return False
        return _SURROGATE.search(data) is not None

except ImportError:  # MicroPython
    _depth_ok = _depth_ok_pure
    _may_hold_surrogate = _may_hold_surrogate_pure


def loads(
    data: bytes, max_bytes: int, max_depth: int = MAX_DEPTH, parse_float: object = None
) -> object:
    """The JSON value in ``data``; :class:`WireError` if it is larger than ``max_bytes``,
    nested deeper than ``max_depth``, not JSON, or holds a lone surrogate."""
    if not isinstance(data, bytes):
        if not isinstance(data, (bytearray, memoryview)):
            raise WireError("json", "payload is not bytes")
        data = bytes(data)
    if len(data) > max_bytes:
        raise WireError("oversized", "%d bytes > %d" % (len(data), max_bytes))
    if not _depth_ok(data, max_depth):
        raise WireError("depth", "nested deeper than %d levels (or unbalanced)" % max_depth)
    problem = None
    try:
        if parse_float is None:
            value = json.loads(data)
        else:
            try:
                value = json.loads(data, parse_float=parse_float)  # type: ignore[arg-type]
            except TypeError:  # MicroPython's json.loads takes no keyword arguments
                value = json.loads(data)
    except WireError:
        raise
    except (ValueError, UnicodeError, RuntimeError) as exc:
        # RuntimeError: CPython's RecursionError is one; MicroPython raises RuntimeError
        problem = str(exc)
    if problem is not None:  # raised outside the handler: MicroPython has no chaining
        raise WireError("json", problem)
    if _may_hold_surrogate(data) and not _no_lone_surrogate(value):
        raise WireError("json", "a string holds a lone surrogate (not encodable as UTF-8)")
    return value
