"""Golden vectors of the wire contract, checked by code that runs on CPython and MicroPython.

Used by ``test_vectors_under_micropython`` (real MicroPython, WebAssembly) and under CPython.
"""

import json

from wire.canonical import CanonicalError, canonical_pure
from wire.envelope import WireError, make_record, verify_mac
from wire.mac import _hmac_pure, hexlify, hmac_sha256, unhexlify


def run(path="config/vectors/wire.json"):
    with open(path) as fh:
        cases = json.load(fh)
    ok = 0
    for case in cases:
        key = unhexlify(case["key_hex"])
        if "expect_error" in case:
            rec = json.loads(case["record_json"])
            try:
                canonical_pure(rec)
            except CanonicalError:
                ok += 1
                continue
            raise AssertionError("%s: no error" % case["name"])
        rec = case["record"]
        data = canonical_pure(rec)
        if data != case["canonical"].encode():
            raise AssertionError("%s: canonical differs" % case["name"])
        for fn in (hmac_sha256, _hmac_pure):
            if hexlify(fn(key, data)) != case["mac"]:
                raise AssertionError("%s: mac differs" % case["name"])
        signed = dict(rec)
        signed["mac"] = case["mac"]
        if not verify_mac(signed, key):
            raise AssertionError("%s: verify_mac refused" % case["name"])
        ok += 1
    # a record made on this runtime verifies, and tampering breaks it
    r = make_record("MP-1", 1, 1, "elevator.fault", 1, "unsynced", {"reg": "x"}, b"k" * 32)
    assert verify_mac(r, b"k" * 32)
    r["seq"] = 2
    assert not verify_mac(r, b"k" * 32)
    try:
        make_record("bad/dev", 1, 1, "elevator.fault", 1, "ntp", {}, b"k")
        raise AssertionError("bad dev accepted")
    except WireError:
        pass
    print("mp_vectors: %d vectors passed" % ok)
    return ok
