"""Property tests: the fast CPython encoder and the MicroPython-safe one never disagree."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wire.canonical import CanonicalError, canonical, canonical_pure

TEXT = st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=20)
SCALARS = st.none() | st.booleans() | st.integers(min_value=-(2**53), max_value=2**53) | TEXT
VALUES = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(TEXT, children, max_size=5),
    max_leaves=40,
)


def _depth(v: object) -> int:
    if isinstance(v, list):
        return 1 + max((_depth(x) for x in v), default=0)
    if isinstance(v, dict):
        return 1 + max((_depth(x) for x in v.values()), default=0)
    return 0


@settings(max_examples=400, deadline=None)
@given(VALUES)
def test_pure_and_fast_agree(value: object) -> None:
    if _depth(value) > 16:
        for encode in (canonical_pure, canonical):
            with pytest.raises(CanonicalError):
                encode(value)
        return
    data = canonical_pure(value)
    assert canonical(value) == data
    # Valid JSON, decodes to the same value, and re-encoding is a fixed point.
    assert json.loads(data) == value
    assert canonical(json.loads(data)) == data


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(TEXT, VALUES, max_size=6))
def test_keys_sorted_by_code_point(obj: dict[str, object]) -> None:
    if _depth(obj) > 16:
        return
    decoded = json.loads(canonical(obj), object_pairs_hook=lambda pairs: [k for k, _ in pairs])
    assert decoded == sorted(obj)


FLOATS = st.floats(allow_nan=True, allow_infinity=True)


@settings(max_examples=300, deadline=None)
@given(VALUES, FLOATS, st.sampled_from(["bare", "list", "dict", "nested"]))
def test_floats_refused_by_both(value: object, f: float, where: str) -> None:
    if where == "bare":
        poisoned: object = f
    elif where == "list":
        poisoned = [value, f]
    elif where == "dict":
        poisoned = {"a": value, "weight_g": f}
    else:
        poisoned = {"body": {"lines": [{"x": value}, {"amount_fen": [f]}]}}
    for encode in (canonical_pure, canonical):
        with pytest.raises(CanonicalError, match="float"):
            encode(poisoned)


@pytest.mark.parametrize(
    "value",
    [b"bytes", {1: "int key"}, {"a": {1, 2}}, [object()], {"s": "\udfff"}, ["\ud83d"]],
    ids=["bytes", "int_key", "set", "object", "low_surrogate", "high_surrogate"],
)
def test_out_of_domain_refused_by_both(value: object) -> None:
    for encode in (canonical_pure, canonical):
        with pytest.raises(CanonicalError):
            encode(value)


def test_depth_limit_is_sixteen() -> None:
    ok: object = 0
    for _ in range(16):
        ok = [ok]
    assert canonical_pure(ok) == canonical(ok) == b"[" * 16 + b"0" + b"]" * 16
    with pytest.raises(CanonicalError):
        canonical_pure([ok])
    with pytest.raises(CanonicalError):
        canonical([ok])


def test_tuples_encode_as_lists() -> None:
    assert canonical_pure((1, "a", (None,))) == canonical((1, "a", (None,))) == b'[1,"a",[null]]'


_SHORT = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _model_string(s: str) -> str:
    """The spec in wire/canonical.py's docstring, written out independently."""
    out = []
    for c in s:
        if c in _SHORT:
            out.append(_SHORT[c])
        elif ord(c) < 0x20:
            out.append(f"\\u{ord(c):04x}")
        else:
            out.append(c)
    return '"' + "".join(out) + '"'


@settings(max_examples=400, deadline=None)
@given(TEXT | st.text(alphabet=st.characters(max_codepoint=0x7F), max_size=30))
def test_string_escaping_matches_spec(s: str) -> None:
    expected = _model_string(s).encode("utf-8")
    assert canonical_pure(s) == expected
    assert canonical(s) == expected
    assert canonical_pure({s: s}) == b"{" + expected + b":" + expected + b"}"
