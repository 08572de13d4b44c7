"""The typed decoders (wire/typed.py) give the verdicts of the JSON Schemas and the envelope
check: one property per level, fed with valid bodies of every kind (simulators/records.py)
and with mutations of them (fields missing, wrong types, numbers at and past their bounds,
extra fields, strings that break a pattern or a length, enums swapped, items repeated).

The example count is the profile's (``tests/conftest.py``): 1,000 in CI, 10,000 nightly.
"""

from __future__ import annotations

import copy
import json
import random
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from collector.verify import _Float
from simulators.records import make_body
from wire.canonical import canonical, canonical_pure
from wire.envelope import KINDS, WireError, check_envelope, make_record
from wire.schemas import BodyValidator, default_validator
from wire.typed import TypedRecords

VALIDATOR = default_validator()
TYPED = TypedRecords(VALIDATOR.schemas)
BODY_DECODERS = {k: TYPED.body_decoder(k) for k in KINDS}
KEY = b"\x07" * 32


def _enum_values(node: object, out: set[str]) -> set[str]:
    if isinstance(node, dict):
        for k, v in node.items():
            if k in ("enum", "const"):
                out.update(x for x in (v if isinstance(v, list) else [v]) if isinstance(x, str))
            else:
                _enum_values(v, out)
    elif isinstance(node, list):
        for v in node:
            _enum_values(v, out)
    return out


ENUMS = sorted(_enum_values(list(VALIDATOR.schemas.values()), set()))
# every integer bound of the schemas, and its neighbours
BOUNDS = sorted(
    {
        b + d
        for b in (
            *(-20, 0, 1, 300, 12, 16, 20, 64, 100000, 1000000, 2000000, 10000000),
            *(100000000, 4294967295, 4102444800000, 10000000000, 100000000000, 2**53 - 1),
        )
        for d in (-1, 0, 1)
    }
)
ODD_VALUES: list[object] = [
    None,
    True,
    False,
    1.5,
    1.0,
    -0.0,
    2**63,
    -(2**63) - 1,
    2**64,
    "",
    "x",
    "A" * 65,
    "0123456789ABCDEF",
    "0123456789abcdef",
    "AB\n",
    "é",
    "\U0001f600" * 8,
    "12345678901234567890",
    "1234567890123456789\n",
    "ABCDEFGHIJ0123456789",
    [],
    {},
    ["x"],
    {"a": 1},
]
ANY_VALUE = (
    st.sampled_from(ODD_VALUES).map(copy.deepcopy)
    | st.sampled_from(ENUMS)
    | st.sampled_from(BOUNDS)
)


def _containers(v: object, out: list[Any]) -> list[Any]:
    if isinstance(v, (dict, list)):
        out.append(v)
        for x in v.values() if isinstance(v, dict) else v:
            _containers(x, out)
    return out


@st.composite
def bodies(draw: st.DrawFn) -> tuple[str, Any]:
    """A generated body of some kind, valid, or with 0..3 mutations anywhere in it."""
    kind = draw(st.sampled_from(KINDS))
    seed = draw(st.integers(1, 400))
    body: Any = copy.deepcopy(make_body(kind, random.Random(seed), "DEV-0001", seed, "HZ01"))
    for _ in range(draw(st.integers(0, 3))):
        spots = _containers(body, [])
        spot = draw(st.sampled_from(spots))
        op = draw(st.integers(0, 6))
        if isinstance(spot, dict):
            keys = sorted(spot)
            if op == 0 and keys:  # a field missing
                del spot[draw(st.sampled_from(keys))]
            elif op == 1:  # an extra field (or one of a sibling's names)
                name = draw(st.sampled_from(["extra", "tag", "pre", "post", "items", "time_out"]))
                spot[name] = draw(ANY_VALUE)
            elif keys:  # a value replaced: wrong type, bound, enum, odd string
                k = draw(st.sampled_from(keys))
                old = spot[k]
                if op == 2 and isinstance(old, str):
                    spot[k] = draw(
                        st.sampled_from(
                            [old + "\n", old.lower(), old[:-1], old + old, old + "-", "-" + old]
                        )
                    )
                elif op == 3 and isinstance(old, int) and not isinstance(old, bool):
                    spot[k] = draw(st.sampled_from(BOUNDS))
                else:
                    spot[k] = draw(ANY_VALUE)
        elif isinstance(spot, list):
            if op in (0, 1) and spot:  # an item repeated (uniqueItems) or dropped
                if op == 0:
                    spot.append(copy.deepcopy(spot[draw(st.integers(0, len(spot) - 1))]))
                else:
                    spot.pop(draw(st.integers(0, len(spot) - 1)))
            elif op == 2:
                spot.clear()
            else:
                spot.append(draw(ANY_VALUE))
    return kind, body


def _old_verdict(validator: BodyValidator, kind: str, body: object) -> str | None:
    try:
        validator.validate(kind, body)
    except WireError as exc:
        return exc.reason
    return None


def _typed_accepts(kind: str, data: bytes) -> bool:
    try:
        BODY_DECODERS[kind].decode(data)
    except msgspec.ValidationError:
        return False
    return True


def test_every_kind_is_typed() -> None:
    assert TYPED.kinds == KINDS and TYPED.untyped == {}


@pytest.mark.parametrize("kind", KINDS)
def test_generated_bodies_are_accepted(kind: str) -> None:
    for seed in range(1, 200):
        body = make_body(kind, random.Random(seed), "DEV-0001", seed, "HZ01")
        assert _typed_accepts(kind, json.dumps(body).encode())


@given(bodies())
def test_typed_body_verdict_is_the_schemas(case: tuple[str, Any]) -> None:
    """Same accept/refuse verdict as fastjsonschema (+ the float check); the reference's
    error category for a bad body is always ``schema``."""
    kind, body = case
    old = _old_verdict(VALIDATOR, kind, body)
    assert old in (None, "schema")
    assert _typed_accepts(kind, json.dumps(body).encode()) == (old is None), (old, body)


ENVELOPE_MUTATIONS: list[tuple[str, object]] = [
    ("v", 1),
    ("v", 3),
    ("v", "2"),
    ("v", 2.0),
    ("v", True),
    ("dev", ""),
    ("dev", "D" * 32),
    ("dev", "D" * 33),
    ("dev", "bad dev"),
    ("dev", "DEV\n"),
    ("dev", "DÉV"),
    ("dev", 7),
    ("seq", 0),
    ("seq", -1),
    ("seq", 2**53 - 1),
    ("seq", 2**53),
    ("seq", True),
    ("seq", 1.0),
    ("seq", "1"),
    ("boot", 0),
    ("boot", -1),
    ("boot", 2**53),
    ("ts", 0),
    ("ts", 2**53),
    ("ts", None),
    ("kind", "cylinder.refill"),
    ("kind", 1),
    ("tq", "gps"),
    ("tq", "rtc"),
    ("tq", "unsynced"),
    ("body", []),
    ("body", {}),
    ("mac", "0" * 63),
    ("mac", "0" * 65),
    ("mac", "A" * 64),
    ("mac", "z" * 64),
    ("mac", 5),
    ("extra", 1),
]


@st.composite
def records(draw: st.DrawFn) -> dict[str, Any]:
    kind, body = draw(bodies())
    rec = make_record("DEV-0001", 5, 1, kind, 1_763_900_000_000, "ntp", {}, KEY)
    rec["body"] = body
    for _ in range(draw(st.integers(0, 2))):
        op = draw(st.integers(0, 3))
        if op == 0:
            del rec[draw(st.sampled_from(sorted(rec)))]
        elif op == 1:
            rec[draw(st.sampled_from(sorted(rec)))] = draw(ANY_VALUE)
        else:
            k, v = draw(st.sampled_from(ENVELOPE_MUTATIONS))
            rec[k] = v
    return rec


@given(records())
def test_typed_record_verdict_is_envelope_and_schema(rec: dict[str, Any]) -> None:
    """Accepted by the typed decoder ⇔ accepted by check_envelope and the body schema, with
    one narrowing: the typed side wants the mac in lower-case hex (any other fails the MAC
    check anyway, and the reference path then says so). Parsed as the collector parses:
    a float becomes a value every check refuses (``2.0`` is no version 2)."""
    data = json.dumps(rec).encode()
    parsed = json.loads(data, parse_float=_Float)
    try:
        check_envelope(parsed)
        VALIDATOR.validate(str(parsed["kind"]), parsed["body"], floats_possible=False)
        old = True
    except WireError:
        old = False
    try:
        TYPED.decode(data)
        new = True
    except msgspec.ValidationError:
        new = False
    hex_mac = isinstance(rec.get("mac"), str) and all(c in "0123456789abcdef" for c in rec["mac"])
    assert new == (old and hex_mac), rec


_CHARS = st.characters(exclude_categories=["Cs"])  # lone surrogates: refused before this
JSON_DOMAIN: st.SearchStrategy[object] = st.deferred(
    lambda: (
        st.none()
        | st.booleans()
        | st.integers()
        | st.text(_CHARS, max_size=12)
        | st.lists(JSON_DOMAIN, max_size=4)
        | st.dictionaries(st.text(_CHARS, max_size=8), JSON_DOMAIN, max_size=4)
    )
)


def _depth(v: object) -> int:
    if isinstance(v, list):
        return 1 + max((_depth(x) for x in v), default=0)
    if isinstance(v, dict):
        return 1 + max((_depth(x) for x in v.values()), default=0)
    return 0


# the canonical domain nests at most 16 deep (wire.canonical refuses deeper values); the
# recursive strategy draws deeper ones now and then (a fresh-clone run drew one)
@given(JSON_DOMAIN.filter(lambda v: _depth(v) <= 16))
def test_msgspec_sorted_encoding_is_canonical(value: object) -> None:
    """The canonicality check compares received bytes with msgspec's sorted encoding: over
    the canonical domain it is byte for byte the reference encoder."""
    assert msgspec.json.Encoder(order="sorted").encode(value) == canonical_pure(value)


@given(bodies())
def test_signed_bytes_are_the_canonical_unsigned_record(case: tuple[str, Any]) -> None:
    kind, body = case
    if _old_verdict(VALIDATOR, kind, body) is not None:
        return
    rec = make_record("DEV-0001", 9, 2, kind, 1_763_900_000_000, "rtc", body, KEY)
    raw = canonical(rec)
    got = TYPED.signed_bytes(raw, TYPED.decode(raw))
    assert got == canonical({k: v for k, v in rec.items() if k != "mac"})


def test_a_schema_beyond_the_translation_leaves_its_kind_untyped(tmp_path: Path) -> None:
    for kind, schema in VALIDATOR.schemas.items():
        s: dict[str, Any] = dict(schema)
        if kind == "elevator.fault":
            s["properties"] = {**s["properties"], "detail": {"type": ["string", "null"]}}
        (tmp_path / f"{kind}.json").write_text(json.dumps(s), encoding="utf-8")
    typed = TypedRecords(BodyValidator(tmp_path).schemas)
    assert "elevator.fault" in typed.untyped and "elevator.fault" not in typed.kinds
    assert len(typed.kinds) == len(KINDS) - 1


CLASS_PATTERNS = [
    ("^[0-9A-F]+$", {}),
    ("^[0-9A-Za-z]{20}$", {"minLength": 20, "maxLength": 20}),
    ("^[0-9A-Za-z][0-9A-Za-z_.-]*$", {"minLength": 1, "maxLength": 32}),
    ("^[0-9A-Z][0-9A-Z-]*$", {"minLength": 4}),
    ("^[0-9A-Z]{5}$", {}),
    ("^[a-f_.]+$", {"maxLength": 6}),
    ("^[0-9]+", {}),  # not a class pattern: left to msgspec's regular expression
]


@given(
    st.sampled_from(CLASS_PATTERNS),
    st.text(st.sampled_from("09AFGZafgz_.-\n é\x00"), max_size=24),
)
def test_character_class_patterns_match_as_fastjsonschema(
    case: tuple[str, dict[str, int]], text: str
) -> None:
    """Patterns checked by ``str.strip`` in ``__post_init__`` (wire.typed._char_class)
    accept what fastjsonschema's regular expression accepts, and nothing else."""
    import fastjsonschema

    from wire.typed import _Translator

    pattern, lengths = case
    schema = {
        "type": "object",
        "additionalProperties": False,
        "required": ["s"],
        "properties": {"s": {"type": "string", "pattern": pattern, **lengths}},
    }
    try:
        fastjsonschema.compile(schema)({"s": text})
        old = True
    except fastjsonschema.JsonSchemaValueException:
        old = False
    decoder = msgspec.json.Decoder(_Translator("t", schema).annotation(schema, "body"))
    try:
        decoder.decode(json.dumps({"s": text}).encode())
        new = True
    except msgspec.ValidationError:
        new = False
    assert new == old
