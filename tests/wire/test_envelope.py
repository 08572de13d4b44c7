"""make_record / verify_mac / decode_record: the signed envelope end to end."""

from __future__ import annotations

import copy
import json
import random

import pytest

from simulators.records import make_body
from wire.envelope import (
    KINDS,
    MAX_RECORD_BYTES,
    WireError,
    decode_record,
    make_record,
    record_digest,
    verify_mac,
)

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))


def _record(kind: str = "market.settlement", seq: int = 7) -> dict[str, object]:
    body = make_body(kind, random.Random(seq), "MKT-S-0001", seq, "HZ01")
    return make_record("MKT-S-0001", seq, 2, kind, 1763900000000, "ntp", body, KEY)


def _bytes(rec: dict[str, object]) -> bytes:
    return json.dumps(rec, ensure_ascii=False, separators=(",", ":")).encode()


@pytest.mark.parametrize("kind", KINDS)
def test_round_trip_through_json(kind: str) -> None:
    rec = _record(kind)
    assert verify_mac(rec, KEY)
    assert not verify_mac(rec, OTHER_KEY)
    back = decode_record(_bytes(rec))
    assert back == rec
    assert verify_mac(back, KEY)
    assert record_digest(back) == rec["mac"]
    # Key order on the wire does not matter: the MAC covers the canonical form.
    shuffled = dict(reversed(list(rec.items())))
    assert verify_mac(decode_record(json.dumps(shuffled).encode()), KEY)


def _leaf_paths(v: object, path: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    if isinstance(v, dict):
        return [p for k, x in v.items() for p in _leaf_paths(x, (*path, k))]
    if isinstance(v, list):
        return [p for i, x in enumerate(v) for p in _leaf_paths(x, (*path, i))]
    return [path]


def _tampered(v: object) -> object:
    if isinstance(v, bool):
        return not v
    if isinstance(v, int):
        return v + 1
    if isinstance(v, str):
        return v + "x" if v else "x"
    if v is None:
        return 0
    raise AssertionError(v)


@pytest.mark.parametrize("kind", KINDS)
def test_tampering_any_field_breaks_the_mac(kind: str) -> None:
    rec = _record(kind)
    paths = [p for p in _leaf_paths(rec) if p != ("mac",)]
    assert len(paths) > 8
    for path in paths:
        bad = copy.deepcopy(rec)
        node: object = bad
        for step in path[:-1]:
            node = node[step]  # type: ignore[index]
        node[path[-1]] = _tampered(node[path[-1]])  # type: ignore[index]
        assert not verify_mac(bad, KEY), path


def test_adding_or_removing_a_body_field_breaks_the_mac() -> None:
    rec = _record("market.settlement")
    added = copy.deepcopy(rec)
    added["body"]["note"] = ""  # type: ignore[index]
    assert not verify_mac(added, KEY)
    removed = copy.deepcopy(rec)
    del removed["body"]["scale_sw"]  # type: ignore[attr-defined]
    assert not verify_mac(removed, KEY)


def test_bad_mac_values() -> None:
    rec = _record()
    mac = str(rec["mac"])
    for bad in (mac.upper(), mac[:-1], mac + "0", "", None, 0):
        assert not verify_mac(dict(rec, mac=bad), KEY), bad
    assert not verify_mac({k: v for k, v in rec.items() if k != "mac"}, KEY)


def test_make_record_refuses_bad_fields() -> None:
    body: dict[str, object] = {"x": 1}
    with pytest.raises(WireError) as info:
        make_record("DEV-1", 0, 1, "market.entry", 1, "ntp", body, KEY)
    assert info.value.reason == "envelope"
    with pytest.raises(WireError) as info:
        make_record("DEV-1", 1, 1, "market.exit", 1, "ntp", body, KEY)
    assert info.value.reason == "kind"
    with pytest.raises(WireError) as info:
        make_record("DEV 1", 1, 1, "market.entry", 1, "ntp", body, KEY)
    assert info.value.reason == "envelope"
    with pytest.raises(WireError) as info:
        make_record("DEV-1", 1, 1, "market.entry", 1, "gps", body, KEY)
    assert info.value.reason == "envelope"
    with pytest.raises(WireError) as info:
        make_record("DEV-1", 1, 1, "market.entry", 1, "ntp", {"w": 1.5}, KEY)
    assert info.value.reason == "encoding"


def _reason(data: bytes) -> str:
    with pytest.raises(WireError) as info:
        decode_record(data)
    return info.value.reason


def test_decode_rejects_not_json() -> None:
    assert _reason(b"not json") == "json"
    assert _reason(b"") == "json"
    assert _reason(b'{"v":1,') == "json"
    assert _reason(b"\xff\xfe{}") == "json"  # not UTF-8


def test_decode_rejects_non_objects() -> None:
    for data in (b"[]", b"1", b'"rec"', b"null"):
        assert _reason(data) == "envelope"


def test_decode_rejects_floats() -> None:
    rec = _record()
    text = _bytes(rec).decode()
    assert _reason(text.replace('"ts":1763900000000', '"ts":1763900000000.0').encode()) == (
        "encoding"
    )
    assert _reason(text.replace('"total_fen":', '"total_fen":1.5,"x":').encode()) == "encoding"
    assert _reason(text.replace('"boot":2', '"boot":2e3').encode()) == "encoding"


def test_decode_rejects_oversized() -> None:
    rec = _record()
    rec["body"] = {"pad": "x" * MAX_RECORD_BYTES}
    assert _reason(_bytes(rec)) == "oversized"
    # The limit is on bytes, not characters: 1400 three-byte characters exceed 4096 bytes.
    rec["body"] = {"pad": "中" * 1400}
    assert len(json.dumps(rec["body"], ensure_ascii=False)) < MAX_RECORD_BYTES
    assert _reason(_bytes(rec)) == "oversized"


def test_decode_rejects_unknown_and_missing_fields() -> None:
    rec = _record()
    assert _reason(_bytes(dict(rec, extra=1))) == "envelope"
    for field in ("v", "dev", "seq", "boot", "kind", "ts", "tq", "body", "mac"):
        assert _reason(_bytes({k: v for k, v in rec.items() if k != field})) in (
            "envelope",
            "version",
        ), field


def test_decode_rejects_bad_kind_and_version() -> None:
    rec = _record()
    assert _reason(_bytes(dict(rec, kind="market.exit"))) == "kind"
    assert _reason(_bytes(dict(rec, kind=""))) == "kind"
    assert _reason(_bytes(dict(rec, v=3))) == "version"


def test_wire_version_1_is_refused_by_name() -> None:
    with pytest.raises(WireError, match="wire version 1 is no longer accepted"):
        decode_record(_bytes(dict(_record(), v=1)))


def test_decode_rejects_bad_sequence_numbers() -> None:
    rec = _record()
    assert _reason(_bytes(dict(rec, seq=0))) == "envelope"
    assert _reason(_bytes(dict(rec, seq=-1))) == "envelope"
    assert _reason(_bytes(dict(rec, seq=2**53))) == "envelope"
    assert _reason(_bytes(dict(rec, seq=True))) == "envelope"
    assert _reason(_bytes(dict(rec, seq="7"))) == "envelope"
    assert decode_record(_bytes(dict(rec, seq=2**53 - 1)))["seq"] == 2**53 - 1


def test_decode_rejects_bad_envelope_values() -> None:
    rec = _record()
    assert _reason(_bytes(dict(rec, dev=""))) == "envelope"
    assert _reason(_bytes(dict(rec, dev="设备-1"))) == "envelope"
    assert _reason(_bytes(dict(rec, dev="D" * 33))) == "envelope"
    assert _reason(_bytes(dict(rec, tq="gps"))) == "envelope"
    assert _reason(_bytes(dict(rec, body=[]))) == "envelope"
    assert _reason(_bytes(dict(rec, mac="ab"))) == "envelope"
