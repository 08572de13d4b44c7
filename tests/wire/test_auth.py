"""Sealed control messages (:mod:`wire.auth`) and signed commands (:mod:`wire.command`):
golden vectors on CPython and the real MicroPython, refusals, and total parsers."""

from __future__ import annotations

import json

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from tests.mpy import REPO, repo_files, run_micropython
from tests.wire import make_auth_vectors, mp_auth_vectors
from wire import auth, command
from wire.envelope import WireError

VECTORS = REPO / "config/vectors/auth.json"
KEY = bytes(range(32))
NOW = 1_800_000_000_000


def test_vectors_file_matches_its_generator() -> None:
    assert json.loads(VECTORS.read_text(encoding="utf-8")) == make_auth_vectors.build()


def test_sealed_vectors_under_cpython() -> None:
    assert mp_auth_vectors.run(str(VECTORS)) == len(json.loads(VECTORS.read_text())["sealed"])


def test_sealed_vectors_under_micropython() -> None:
    n = len(json.loads(VECTORS.read_text(encoding="utf-8"))["sealed"])
    out = run_micropython(
        "from tests.wire import mp_auth_vectors\n"
        "mp_auth_vectors.run('/repo/config/vectors/auth.json')\n",
        [
            *repo_files(
                "wire/__init__.py",
                "wire/auth.py",
                "wire/canonical.py",
                "wire/envelope.py",
                "wire/limits.py",
                "wire/mac.py",
            ),
            "tests/wire/mp_auth_vectors.py",
            "config/vectors/auth.json",
        ],
    )
    assert f"mp_auth_vectors: {n} vectors passed" in out, out


def test_command_vectors_verify_and_are_deterministic() -> None:
    cases = json.loads(VECTORS.read_text(encoding="utf-8"))["command"]
    for case in cases:
        key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(case["seed_hex"]))
        data = command.sign_command(case["command"], key)
        assert data == case["bytes"].encode()
        cmd = command.verify_command(data, key.public_key(), "S1", NOW)
        assert {k: v for k, v in cmd.items() if k != "sig"} == case["command"]


def _signed(**over: object) -> tuple[bytes, Ed25519PrivateKey]:
    key = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
    cmd: dict[str, object] = {
        "type": "stop_list",
        "site": "S1",
        "version": 3,
        "expires": NOW + 60_000,
        "batches": [],
    }
    cmd.update(over)
    return command.sign_command(cmd, key), key


def _reason(fn: object, *args: object) -> str:
    try:
        fn(*args)  # type: ignore[operator]
    except WireError as exc:
        return exc.reason
    raise AssertionError("accepted")


def test_a_command_is_refused_when_forged_expired_or_for_another_site() -> None:
    data, key = _signed()
    pub = key.public_key()
    other = Ed25519PrivateKey.generate().public_key()
    assert command.verify_command(data, pub, "S1", NOW)["version"] == 3
    assert _reason(command.verify_command, data, other, "S1", NOW) == "signature"
    assert _reason(command.verify_command, data, pub, "S2", NOW) == "site"
    assert _reason(command.verify_command, data, pub, "S1", NOW + 60_000) == "expired"
    # a huge version written into a genuine command breaks its signature
    forged = json.loads(data)
    forged["version"] = 2**52
    assert _reason(command.verify_command, json.dumps(forged).encode(), pub, "S1", NOW) == (
        "signature"
    )
    unsigned = {k: v for k, v in json.loads(data).items() if k != "sig"}
    assert _reason(command.verify_command, json.dumps(unsigned).encode(), pub, "S1", NOW) == (
        "signature"
    )
    everywhere, key2 = _signed(site="*")
    assert command.verify_command(everywhere, key2.public_key(), "S9", NOW)["site"] == "*"


def test_a_terminal_ack_forged_without_the_key_is_refused() -> None:
    real = auth.terminal_ack("D1", 5, [(7, 9)], [], KEY)
    forged = json.loads(real)
    forged["r"] = [[1, 2**40]]
    assert _reason(auth.open_terminal_ack, json.dumps(forged).encode(), "D1", [KEY]) == "mac"
    unsealed = b'{"t":"ack","dev":"D1","wm":99999,"r":[],"bad":[]}'
    assert _reason(auth.open_terminal_ack, unsealed, "D1", [KEY]) == "envelope"
    # the old, unsealed format of wire version 1
    assert _reason(auth.open_terminal_ack, b'{"wm":5,"r":[],"bad":[]}', "D1", [KEY]) == "type"


def test_a_batch_ack_is_bound_to_its_site_gateway_and_digest() -> None:
    digest = auth.batch_digest(b"payload")
    data = auth.batch_ack("S1", "GW1", "b1", digest, 3, 0, 0, KEY)
    assert auth.open_batch_ack(data, "S1", "GW1", [KEY])["digest"] == digest
    assert _reason(auth.open_batch_ack, data, "S1", "GW2", [KEY]) == "envelope"
    assert _reason(auth.open_batch_ack, data, "S1", "GW1", [b"x" * 32]) == "mac"


# -- total parsers: any bytes in, a value or a WireError out ----------------------------------

JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=20,
)


def _payloads() -> st.SearchStrategy[bytes]:
    dicts = st.dictionaries(
        st.sampled_from(["t", "dev", "wm", "r", "bad", "mac", "site", "gw", "b", "digest", "n"]),
        JSONISH,
    ).map(lambda d: json.dumps(d).encode())
    deep = st.integers(1, 100_000).map(lambda n: b"[" * n + b"]" * n)
    return st.binary(max_size=300) | dicts | deep


@given(_payloads())
def test_sealed_parsers_are_total(payload: bytes) -> None:
    for fn, args in (
        (auth.open_terminal_ack, ("D1", [KEY])),
        (auth.open_batch_ack, ("S1", "GW1", [KEY])),
        (auth.unseal, ("gate", [KEY])),
        (auth.unseal, ("status", [KEY])),
    ):
        try:
            fn(payload, *args)  # type: ignore[operator]
        except WireError:
            pass
        else:
            raise AssertionError(f"{fn.__name__} accepted unsealed input")  # type: ignore[attr-defined]


@given(_payloads())
def test_command_parser_is_total(payload: bytes) -> None:
    pub = Ed25519PrivateKey.from_private_bytes(bytes(range(32))).public_key()
    try:
        command.verify_command(payload, pub, "S1", NOW)
    except WireError:
        return
    raise AssertionError("an unsigned payload was accepted")


@given(JSONISH)
def test_gate_answer_check_is_total(msg: object) -> None:
    if isinstance(msg, dict):
        assert not auth.check_gate_answer(msg, "D1", "0" * 32, [KEY])


def test_a_stop_list_relay_is_bound_to_its_device() -> None:
    data = auth.stop_list("M1", 4, [{"batch_id": "B1"}], KEY)
    assert auth.open_stop_list(data, "M1", [KEY])["version"] == 4
    assert _reason(auth.open_stop_list, data, "M2", [KEY]) == "envelope"
    assert _reason(auth.open_stop_list, data, "M1", [b"y" * 32]) == "mac"


def test_a_wrapped_key_unwraps_only_under_its_key_device_and_seq() -> None:
    new = bytes(range(32, 64))
    w = auth.wrap_key(new, KEY, "D1", 1000)
    assert auth.unwrap_key(w, KEY, "D1", 1000) == new
    assert new.hex() not in w
    assert auth.unwrap_key(w, KEY, "D2", 1000) != new
    assert auth.unwrap_key(w, KEY, "D1", 1001) != new
    assert auth.unwrap_key(w, b"z" * 32, "D1", 1000) != new
    assert _reason(auth.unwrap_key, "abc", KEY, "D1", 1) == "key"
