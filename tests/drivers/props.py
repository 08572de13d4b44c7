"""Hypothesis settings and generic properties shared by the codec tests."""

import contextlib

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from drivers.codecs import CodecError
from drivers.codecs.stream import BadFrame, StreamDecoder

from .feeding import good

# the profile's example count (tests/conftest.py: 1,000 in CI, 10,000 nightly); the ci
# profile is derandomised, so a CRC collision found once is not a flaky failure there
SETTINGS = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
FUZZ = SETTINGS


@st.composite
def chunked(draw: st.DrawFn, data: bytes) -> list[bytes]:
    """``data`` cut into chunks at arbitrary positions."""
    cuts = sorted(draw(st.sets(st.integers(1, max(1, len(data) - 1)), max_size=12)))
    out = []
    last = 0
    for cut in cuts:
        if cut < len(data):
            out.append(data[last:cut])
            last = cut
    out.append(data[last:])
    return out


def check_fuzz(decoder: StreamDecoder, chunks: list[bytes], frame_types: tuple[type, ...]) -> None:
    """Arbitrary bytes: only frames or BadFrames come out, no exception, bounded buffer."""
    for chunk in chunks:
        items = decoder.feed(chunk)
        for item in items:
            assert isinstance(item, (BadFrame, *frame_types)), item
            if isinstance(item, BadFrame):
                assert isinstance(item.error, CodecError)
        assert decoder.buffered <= decoder.max_buffer


def check_pure_decode(decode: object, raw: bytes) -> None:
    """A pure ``decode_*`` on arbitrary bytes returns or raises CodecError, nothing else."""
    with contextlib.suppress(CodecError):
        decode(raw)  # type: ignore[operator]


def check_garbage_between(
    make: object,
    frames: list[bytes],
    garbage: list[bytes],
    expected: list[object],
    chunks: list[int],
) -> None:
    """Frames interleaved with garbage, fed in arbitrary chunks: every good frame decodes."""
    stream = b""
    for i, frame in enumerate(frames):
        stream += garbage[i % len(garbage)] if garbage else b""
        stream += frame
    decoder = make()  # type: ignore[operator]
    items: list[object] = []
    pos = 0
    for size in chunks:
        items.extend(decoder.feed(stream[pos : pos + size]))
        pos += size
    items.extend(decoder.feed(stream[pos:]))
    assert good(items) == expected, items


def garbage(false_starts: list[bytes], exclude: bytes = b"") -> st.SearchStrategy[bytes]:
    """Random bytes mixed with ``false_starts`` (bytes that look like a frame beginning);
    bytes in ``exclude`` are removed (they would form valid items on their own)."""
    piece = st.one_of(st.binary(max_size=6), *[st.just(s) for s in false_starts])
    return st.lists(piece, max_size=4).map(
        lambda parts: bytes(x for x in b"".join(parts) if x not in exclude)
    )
