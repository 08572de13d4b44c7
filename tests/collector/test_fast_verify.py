"""The collector's fast verification (typed decoding, MAC over the received bytes) answers
exactly as the reference path: same good records with the same stored text, same refusals
with the same reason, detail and payload, same batch errors. Then the byte-level MAC path on
its own: canonical input, non-canonical input (white space, key order, escapes, duplicate
keys), tampered bytes, and bytes signed as received but not canonical.

The example count is the profile's (``tests/conftest.py``): 1,000 in CI, 10,000 nightly.
"""

from __future__ import annotations

import json
import random
import zlib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from collector.verify import (
    HMAC,
    Good,
    VerifiedBatch,
    _verify_fast,
    typed_records,
    verify_batch,
    verify_batch_reference,
)
from hostlib.registry import Device, Registry, add_devices
from simulators.records import make_body
from wire.batch import encode_batch
from wire.canonical import canonical
from wire.envelope import KINDS, WireError, make_record
from wire.mac import hexlify, hmac_sha256
from wire.schemas import default_validator

KEY, GW_KEY, OTHER_KEY = b"\x01" * 32, b"\x02" * 32, b"\x03" * 32
DEV, GW, SITE = "DEV-S1-0001", "GW-S1", "S1"
REVOKED, ELSEWHERE = "DEV-S1-0002", "DEV-S2-0001"
NOW = 1_763_900_000_000
VALIDATOR = default_validator()
TYPED = typed_records(VALIDATOR)
MAX = 1 << 22


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Registry:
    path = tmp_path_factory.mktemp("reg") / "devices.json"
    add_devices(
        path,
        [
            Device(DEV, KEY, "cylinder-reader", SITE),
            Device(REVOKED, KEY, "cylinder-reader", SITE, revoked_from=3),
            Device(ELSEWHERE, KEY, "cylinder-reader", "S2"),
            Device(GW, GW_KEY, "gateway", SITE),
        ],
        provisioned=1,
    )
    return Registry(path)


def _rec(kind: str, seq: int, dev: str = DEV, key: bytes = KEY) -> dict[str, Any]:
    body = make_body(kind, random.Random(seq), dev, seq, SITE)
    return make_record(dev, seq, 1, kind, NOW + seq, "ntp", body, key)


GENUINE = [canonical(_rec(k, i + 1)) for i, k in enumerate(KINDS * 3)]


def _same(payload: bytes, registry: Registry) -> VerifiedBatch | None:
    """Both paths on ``payload``: equal results or the same error."""
    try:
        ref: VerifiedBatch | WireError = verify_batch_reference(
            SITE, payload, registry, VALIDATOR, MAX
        )
    except WireError as exc:
        ref = exc
    try:
        fast: VerifiedBatch | WireError = verify_batch(SITE, payload, registry, VALIDATOR, MAX)
    except WireError as exc:
        fast = exc
    if isinstance(ref, WireError):
        assert isinstance(fast, WireError), fast
        assert (fast.reason, fast.detail) == (ref.reason, ref.detail)
        return None
    assert fast == ref
    return ref if isinstance(ref, VerifiedBatch) else None


def _mutate(data: bytearray, draw: st.DrawFn) -> None:
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.integers(0, 4))
        at = draw(st.integers(0, len(data)))
        if op == 0 and at < len(data):
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif op == 1:
            data[at:at] = draw(st.sampled_from([b" ", b"\n", b",", b'"', b"\\", b"0", b"\xc3"]))
        elif op == 2:
            del data[at : at + draw(st.integers(1, 8))]
        elif op == 3:
            data[at:at] = data[at : at + draw(st.integers(1, 64))]
        elif at < len(data) and 0x30 <= data[at] <= 0x39:
            data[at] = ord(str((int(chr(data[at])) + 1) % 10))


@st.composite
def batches(draw: st.DrawFn) -> bytes:
    """A batch of genuine records, some re-signed by another key or device, some with bytes
    mutated, some non-canonical; sometimes the batch's own JSON mutated too."""
    recs: list[bytes] = []
    for _ in range(draw(st.integers(1, 6))):
        i = draw(st.integers(0, len(GENUINE) - 1))
        how = draw(st.integers(0, 6))
        if how == 0:
            recs.append(GENUINE[i])
        elif how == 1:
            dev = draw(st.sampled_from([REVOKED, ELSEWHERE, "DEV-UNKNOWN"]))
            recs.append(canonical(_rec(KINDS[i % len(KINDS)], draw(st.integers(1, 5)), dev)))
        elif how == 2:
            recs.append(canonical(_rec(KINDS[i % len(KINDS)], i + 1, key=OTHER_KEY)))
        elif how == 3:  # valid JSON, not canonical
            rec = json.loads(GENUINE[i])
            style = draw(st.integers(0, 2))
            if style == 0:
                recs.append(json.dumps(rec).encode())
            elif style == 1:
                recs.append(json.dumps(rec, ensure_ascii=True, separators=(",", ":")).encode())
            else:
                recs.append(json.dumps(dict(reversed(rec.items())), separators=(",", ":")).encode())
        else:
            data = bytearray(GENUINE[i])
            _mutate(data, draw)
            recs.append(bytes(data))
    head = draw(
        st.sampled_from(
            [b'"site":"S1","gw":"GW-S1"'] * 6
            + [b'"site":"S2","gw":"GW-S1"', b'"site":"S1","gw":"GW-S9"', b'"site":"S1"']
        )
    )
    body = b"{" + head + b',"b":"b1","recs":[' + b",".join(recs) + b"]}"
    if draw(st.integers(0, 9)) == 0:
        data = bytearray(body)
        _mutate(data, draw)
        body = bytes(data)
    return zlib.compress(body)


@given(batches())
def test_fast_path_answers_as_the_reference(registry: Registry, payload: bytes) -> None:
    _same(payload, registry)


def test_genuine_batches_are_all_good_by_the_fast_path(registry: Registry) -> None:
    vb = _same(encode_batch(SITE, GW, "b1", GENUINE), registry)
    assert vb is not None and len(vb.good) == len(GENUINE) and vb.bad == []
    for raw, good in zip(GENUINE, vb.good, strict=True):
        assert _verify_fast(raw, SITE, registry, TYPED) == good  # not the fallback
        assert json.loads(good.text) == json.loads(raw)


@pytest.mark.parametrize(
    "batch",
    [
        b'{"site":"S1","gw":"GW-S1","b":"b1","recs":[],"extra":1}',
        b'{"site":"S1","gw":"GW-S1","b":"b1","recs":[],"extra":' + b"9" * 5000 + b"}",
        b'{"site":"S1","gw":"GW-S1","b":"b1","recs":[' + b"9" * 5000 + b"]}",
        b'{"site":"S1","gw":"GW-S1","b":"b1","recs":[{"x":"\xff"}]}',
        b'{"site":"S1","gw":"GW-S1","b":"b1","recs":[{"x":"\xed\xa0\x80"}]}',
        b'{"site":"S1","gw":"GW-S1","b":"b1","recs":[{"x":"\\ud800"}]}',
        b'{"site":"S1","gw":"GW-S1","b":"b1","recs":[NaN]}',
        b'\xef\xbb\xbf{"site":"S1","gw":"GW-S1","b":"b1","recs":[]}',
        b'{"site":"S1","b":"b1","recs":[]}',
        b'{"site":"S1","gw":"GW-S1","b":"b1","recs":[],"recs":[1]}',
        b'{"site":"S2","gw":"GW-S1","b":"b1","recs":[]}',
        b'{"site":"S2","gw":"GW-S1","b":"b1","recs":[{"x":"\xff"}]}',
        b'{"site":"S1","gw":"GW-S9","b":"b1","recs":[' + b"9" * 5000 + b"]}",
        b'{"site":"S1","gw":"GW-S2","b":"b1","recs":[]}',
        b"[" * 100 + b"]" * 100,
    ],
)
def test_odd_batches_answer_as_the_reference(registry: Registry, batch: bytes) -> None:
    _same(zlib.compress(batch), registry)


# ---- the MAC over the received bytes ---------------------------------------------------------


def _fast(raw: bytes, registry: Registry) -> Good | None:
    return _verify_fast(raw, SITE, registry, TYPED)


def _one(raw: bytes, registry: Registry) -> VerifiedBatch:
    vb = _same(
        zlib.compress(b'{"site":"S1","gw":"GW-S1","b":"b1","recs":[' + raw + b"]}"), registry
    )
    assert vb is not None
    return vb


def test_canonical_bytes_verify_as_received(registry: Registry) -> None:
    rec = _rec("market.settlement", 7)
    raw = canonical(rec)
    good = _fast(raw, registry)
    assert good is not None and good.mac == rec["mac"]
    # what the MAC covered is the received bytes without the mac member
    signed = raw.replace(b',"mac":"' + str(rec["mac"]).encode() + b'"', b"")
    assert hexlify(hmac_sha256(KEY, signed)) == rec["mac"]
    assert good.text == signed[:-1].decode() + ',"mac":"' + str(rec["mac"]) + '"}'


@pytest.mark.parametrize(
    "dump",
    [
        lambda r: json.dumps(r).encode(),  # white space
        lambda r: json.dumps(r, separators=(",", ":"), ensure_ascii=True).encode(),  # escapes
        lambda r: json.dumps(dict(reversed(r.items())), separators=(",", ":")).encode(),  # order
        lambda r: canonical(r).replace(b'"seq":', b'"seq":1,"seq":'),  # a duplicate key
    ],
)
def test_non_canonical_bytes_are_re_encoded_and_verify(registry: Registry, dump: Any) -> None:
    rec = _rec("market.settlement", 8)  # Chinese goods names: escapes differ
    raw = dump(rec)
    assert raw != canonical(rec)
    assert _fast(raw, registry) is None  # not taken as received: re-encoded
    vb = _one(raw, registry)
    assert [g.mac for g in vb.good] == [rec["mac"]]


def test_tampered_bytes_are_refused(registry: Registry) -> None:
    rec = _rec("elevator.status", 9)
    raw = canonical(rec)
    body: Any = rec["body"]
    floor = f'"floor":{body["floor"]}'.encode()
    other = b'"floor":' + str((int(floor.split(b":")[1]) + 1) % 40).encode()
    tampered = raw.replace(floor, other)
    assert tampered != raw
    assert _fast(tampered, registry) is None
    vb = _one(tampered, registry)
    assert vb.good == [] and [b.reason for b in vb.bad] == ["mac"]


def test_bytes_signed_as_sent_but_not_canonical_are_refused(registry: Registry) -> None:
    """The MAC covers the canonical encoding, never the bytes as such: a sender that signs
    its own spacing or key order is refused, as before."""
    rec = _rec("cylinder.fill", 10)
    unsigned = {k: v for k, v in rec.items() if k != "mac"}
    for text in (
        json.dumps(unsigned).encode(),
        json.dumps(dict(reversed(unsigned.items())), separators=(",", ":")).encode(),
    ):
        mac = hexlify(hmac_sha256(KEY, text)).encode()
        raw = text[:-1] + b',"mac":"' + mac + b'"}'
        vb = _one(raw, registry)
        assert vb.good == [] and [b.reason for b in vb.bad] == ["mac"]


def test_mac_member_moved_or_upper_case(registry: Registry) -> None:
    rec = _rec("elevator.fault", 11)
    raw = canonical(rec)
    mac = str(rec["mac"]).encode()
    at_end = raw.replace(b',"mac":"' + mac + b'"', b"")[:-1] + b',"mac":"' + mac + b'"}'
    vb = _one(at_end, registry)  # key order is no part of what is signed
    assert [g.mac for g in vb.good] == [rec["mac"]]
    upper = raw.replace(mac, mac.upper())
    vb = _one(upper, registry)
    assert vb.good == [] and [b.reason for b in vb.bad] == ["mac"]


def test_golden_vectors_verify_over_their_received_bytes() -> None:
    """config/vectors/wire.json: each record as a device sends it (canonical, with its mac):
    the bytes cut from it are the vector's canonical bytes, and its MAC verifies over them."""
    path = Path(__file__).resolve().parents[2] / "config" / "vectors" / "wire.json"
    vectors = json.loads(path.read_text(encoding="utf-8"))
    typed = 0
    for case in vectors:
        if "record" not in case or "mac" not in case:
            continue
        rec = dict(case["record"], mac=case["mac"])
        raw = canonical(rec)
        try:
            decoded = TYPED.decode(raw)
        except Exception:  # a vector whose body is not of its kind's schema: reference path
            VALIDATOR.is_valid(rec["kind"], rec["body"]) and pytest.fail(case["name"])
            continue
        typed += 1
        signed = TYPED.signed_bytes(raw, decoded)
        assert signed is not None, case["name"]
        assert signed == case["canonical"].encode(), case["name"]
        key = bytes.fromhex(case["key_hex"])
        assert hexlify(hmac_sha256(key, signed)) == case["mac"], case["name"]
    assert typed >= 5  # the vectors that are records of a kind


@given(st.binary(max_size=130), st.binary(max_size=600))
def test_hmac_with_kept_key_states_is_hmac_sha256(key: bytes, msg: bytes) -> None:
    assert HMAC.hexdigest(key, msg) == hmac_sha256(key, msg).hex()
    assert HMAC.hexdigest(key, msg) == hmac_sha256(key, msg).hex()  # from the kept state


@pytest.mark.parametrize(
    "bad", [b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xc0\x80"]
)
def test_bytes_that_are_not_utf8_inside_a_record_answer_as_the_reference(
    registry: Registry, bad: bytes
) -> None:
    """The batch is not checked for UTF-8 as a whole: each record's strings are, by the
    typed decoder or by the reference parse."""
    raw = canonical(_rec("market.entry", 12))
    at = raw.index(b'"origin":"') + len(b'"origin":"')
    broken = raw[:at] + bad + raw[at:]
    payload = zlib.compress(b'{"site":"S1","gw":"GW-S1","b":"b1","recs":[' + broken + b"]}")
    with pytest.raises(WireError) as ref:
        verify_batch_reference(SITE, payload, registry, VALIDATOR, MAX)
    with pytest.raises(WireError) as fast:
        verify_batch(SITE, payload, registry, VALIDATOR, MAX)
    assert (fast.value.reason, fast.value.detail) == (ref.value.reason, ref.value.detail)
