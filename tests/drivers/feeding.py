"""Feed a decoder a byte stream every way a serial line can deliver it.

Plain Python in the MicroPython subset: the same helpers drive the pytest suite under
CPython and ``mp_checks.py`` under the MicroPython interpreter.
"""

from drivers.codecs.stream import BadFrame


def ways(stream: bytes) -> list[tuple[str, list[bytes]]]:
    """(label, chunks): whole, split at every byte position, one byte at a time."""
    out = [("whole", [stream])]
    for i in range(1, len(stream)):
        out.append((f"split at {i}", [stream[:i], stream[i:]]))
    out.append(("byte by byte", [stream[i : i + 1] for i in range(len(stream))]))
    return out


def feed(decoder: object, chunks: list[bytes]) -> list[object]:
    items: list[object] = []
    for chunk in chunks:
        items.extend(decoder.feed(chunk))  # type: ignore[attr-defined]
    return items


def good(items: list[object]) -> list[object]:
    return [item for item in items if not isinstance(item, BadFrame)]


def kinds(items: list[object]) -> list[str]:
    """``["Reply", "BadFrame:ChecksumError", ...]``: a stream's shape, ignoring content."""
    out = []
    for item in items:
        if isinstance(item, BadFrame):
            out.append("BadFrame:" + type(item.error).__name__)
        else:
            out.append(type(item).__name__)
    return out


def check_all_ways(make: object, stream: bytes, expected: list[object]) -> int:
    """Every way of feeding ``stream`` yields exactly ``expected`` and leaves nothing
    buffered. Returns the number of ways checked."""
    checked = 0
    for label, chunks in ways(stream):
        decoder = make()  # type: ignore[operator]
        got = feed(decoder, chunks)
        if got != expected:
            raise AssertionError(f"{label}: expected {expected!r}, got {got!r}")
        if decoder.buffered:
            raise AssertionError(f"{label}: {decoder.buffered} bytes left buffered")
        checked += 1
    return checked


def check_recovers(make: object, stream: bytes, expected_good: list[object]) -> int:
    """Every way of feeding yields ``expected_good`` in order; anything else it yields is
    a BadFrame (how many depends on where the chunks fall)."""
    checked = 0
    for label, chunks in ways(stream):
        got = feed(make(), chunks)  # type: ignore[operator]
        if good(got) != expected_good:
            raise AssertionError(f"{label}: expected good {expected_good!r}, got {got!r}")
        checked += 1
    return checked
