"""Golden vectors in config/vectors/wire.json: both encoders and both HMACs reproduce them."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.wire.make_vectors import VECTORS_PATH, build_vectors, render
from wire.canonical import CanonicalError, canonical, canonical_pure
from wire.envelope import WireError, check_envelope, sign
from wire.mac import _hmac_pure, hexlify, hmac_sha256, unhexlify


def _load() -> list[dict[str, Any]]:
    cases = json.loads(VECTORS_PATH.read_text(encoding="utf-8"))
    assert isinstance(cases, list)
    return cases


CASES = _load()
POSITIVE = [c for c in CASES if "record" in c]
NEGATIVE = [c for c in CASES if "expect_error" in c]


def test_file_matches_generator() -> None:
    assert VECTORS_PATH.read_text(encoding="utf-8") == render(build_vectors()), (
        "config/vectors/wire.json is stale: run python -m tests.wire.make_vectors"
    )


def test_vector_set_covers_the_domain() -> None:
    assert len(POSITIVE) >= 8
    assert len(NEGATIVE) >= 3
    text = "".join(c["canonical"] for c in POSITIVE)
    assert "\\u0000" in text and "\\n" in text and '\\"' in text and "\\\\" in text
    assert "中" in text and "😀" in text  # raw UTF-8, BMP and beyond
    assert str(2**53 - 1) in text
    assert "[]" in text and "{}" in text and '""' in text
    assert {len(unhexlify(c["key_hex"])) for c in POSITIVE} >= {0, 32, 100}
    assert {c["expect_error"] for c in NEGATIVE} == {"float", "surrogate", "nested"}


@pytest.mark.parametrize("case", POSITIVE, ids=[c["name"] for c in POSITIVE])
def test_canonical_reproduced(case: dict[str, Any]) -> None:
    expected = case["canonical"].encode("utf-8")
    assert canonical_pure(case["record"]) == expected
    assert canonical(case["record"]) == expected
    # The encoding is itself JSON that decodes back to the record.
    assert json.loads(expected) == case["record"]


@pytest.mark.parametrize("case", POSITIVE, ids=[c["name"] for c in POSITIVE])
def test_mac_reproduced(case: dict[str, Any]) -> None:
    key = unhexlify(case["key_hex"])
    data = case["canonical"].encode("utf-8")
    assert hexlify(hmac_sha256(key, data)) == case["mac"]
    assert hexlify(_hmac_pure(key, data)) == case["mac"]  # the MicroPython fallback
    assert sign(case["record"], key) == case["mac"]
    assert sign(dict(case["record"], mac="0" * 64), key) == case["mac"]  # mac is not covered


def test_envelope_vectors_are_valid_unsigned_records() -> None:
    for case in POSITIVE:
        check_envelope(case["record"], with_mac=False)


@pytest.mark.parametrize("case", NEGATIVE, ids=[c["name"] for c in NEGATIVE])
def test_negative_vectors_refused(case: dict[str, Any]) -> None:
    record = json.loads(case["record_json"])
    for encode in (canonical_pure, canonical):
        with pytest.raises(CanonicalError, match=case["expect_error"]):
            encode(record)
    with pytest.raises(WireError) as info:
        sign(record, unhexlify(case["key_hex"]))
    assert info.value.reason == "encoding"
