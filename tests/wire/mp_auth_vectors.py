"""Golden vectors of the sealed control messages, checked by code that runs on CPython and
MicroPython (``test_auth_vectors_under_micropython``, real MicroPython in WebAssembly)."""

import json

from wire import auth
from wire.envelope import WireError
from wire.mac import unhexlify


def build(fn, a, key):
    if fn == "terminal_ack":
        return auth.terminal_ack(
            a["dev"], a["wm"], [(r[0], r[1]) for r in a["ranges"]], a["bad"], key
        )
    if fn == "gate_answer":
        return auth.gate_answer(
            a["dev"],
            a["rid"],
            a["nonce"],
            a["decision"],
            a["reasons"],
            a["reg_ver"],
            key,
            a.get("seq"),
            a.get("error"),
        )
    if fn == "batch_ack":
        return auth.batch_ack(
            a["site"], a["gw"], a["batch_id"], a["digest"], a["stored"], a["dup"], a["bad"], key
        )
    if fn == "stop_list":
        return auth.stop_list(a["dev"], a["version"], a["batches"], key)
    if fn == "status":
        return auth.status(a["site"], a["gw"], a["fields"], key)
    if fn == "dispatch_request":
        return auth.dispatch_request(a["dev"], a["fields"], key)
    raise AssertionError("unknown builder %r" % fn)


def _refused(fn, *args):
    try:
        fn(*args)
    except WireError:
        return True
    return False


def run(path="config/vectors/auth.json"):
    with open(path) as fh:
        cases = json.load(fh)["sealed"]
    other = b"\x01" * 32
    ok = 0
    for case in cases:
        key = unhexlify(case["key_hex"])
        a = case["args"]
        data = build(case["fn"], a, key)
        if data != case["bytes"].encode():
            raise AssertionError("%s: bytes differ: %r" % (case["name"], data))
        msg = json.loads(data)
        t = msg["t"]
        if auth.unseal(data, t, [other, key]) != msg:
            raise AssertionError("%s: unseal with the key list failed" % case["name"])
        if not _refused(auth.unseal, data, t, [other]):
            raise AssertionError("%s: verified under the wrong key" % case["name"])
        # any change to any field breaks the MAC
        for k in msg:
            if k in ("mac", "t"):
                continue
            forged = dict(msg)
            forged[k] = [forged[k]]
            if auth.verify(forged, [key]):
                raise AssertionError("%s: changed %s still verifies" % (case["name"], k))
        if case["fn"] == "terminal_ack":
            wm, ranges, bad = auth.open_terminal_ack(data, a["dev"], [key])
            assert wm == a["wm"] and bad == a["bad"]
            assert ranges == [(r[0], r[1]) for r in a["ranges"]]
            assert _refused(auth.open_terminal_ack, data, "OTHER-DEV", [key])
        elif case["fn"] == "gate_answer":
            assert auth.check_gate_answer(msg, a["dev"], a["nonce"], [key])
            assert not auth.check_gate_answer(msg, a["dev"], "f" * 32, [key])
            assert not auth.check_gate_answer(msg, "OTHER-DEV", a["nonce"], [key])
            assert not auth.check_gate_answer(msg, a["dev"], a["nonce"], [other])
        elif case["fn"] == "dispatch_request":
            assert auth.check_dispatch_request(msg, a["dev"], [key])
            assert not auth.check_dispatch_request(msg, "OTHER-DEV", [key])
            assert not auth.check_dispatch_request(msg, a["dev"], [other])
        elif case["fn"] == "stop_list":
            assert auth.open_stop_list(data, a["dev"], [key])["version"] == a["version"]
            assert _refused(auth.open_stop_list, data, "OTHER-DEV", [key])
        elif case["fn"] == "batch_ack":
            assert auth.open_batch_ack(data, a["site"], a["gw"], [key])["digest"] == a["digest"]
            assert _refused(auth.open_batch_ack, data, "S2", a["gw"], [key])
        ok += 1
    new = bytes(range(32, 64))
    w = auth.wrap_key(new, other, "D1", 1000)
    assert (
        auth.unwrap_key(w, other, "D1", 1000) == new and auth.unwrap_key(w, other, "D1", 1) != new
    )
    print("mp_auth_vectors: %d vectors passed" % ok)
    return ok
