"""Every parser of the wire and the control plane is total: any bytes in, a value or its one
typed error out, quickly, whatever the bytes are (arbitrary, any JSON value, nested deep,
holding lone surrogates, mutated from a genuine message). The handlers built on them
(the agent's intake and command handler) never raise.

The example count is the profile's (``tests/conftest.py``): 1,000 in CI, 10,000 nightly.
"""

from __future__ import annotations

import contextlib
import json
import random
import time
import zlib
from collections.abc import Callable, Iterator

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from collector.verify import Good, verify_batch, verify_record
from edge_agent.commands import Commands
from edge_agent.fillgate import GateRequestError, parse_request
from edge_agent.intake import Rejected, check_message
from edge_agent.outbox import Incoming, Outbox
from edge_agent.registry_cache import RegistryCache
from hostlib.registry import Device, Registry, add_devices
from simulators.records import make_body
from wire import auth, command
from wire.batch import MAX_BATCH_RECORDS, decode_batch, encode_batch
from wire.canonical import canonical
from wire.envelope import WireError, decode_record, make_record
from wire.limits import MAX_DEPTH, _depth_ok, _depth_ok_pure, loads
from wire.schemas import default_validator

KEY, GW_KEY = b"\x01" * 32, b"\x02" * 32
DEV, GW, SITE = "CYL-S1-0001", "GW-S1", "S1"
NOW = 1_763_900_000_000
VALIDATOR = default_validator()
CMD_KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
FAST_S = 0.5  # a parser's answer to one input of these sizes; far above what it needs


def _record(seq: int = 1) -> dict[str, object]:
    body = make_body("cylinder.fill", random.Random(seq), DEV, seq, SITE)
    return make_record(DEV, seq, 1, "cylinder.fill", NOW, "ntp", body, KEY)


RECORD = canonical(_record())
BATCH_JSON = b'{"site":"S1","gw":"GW-S1","b":"b1","recs":[' + RECORD + b"]}"
BATCH = zlib.compress(BATCH_JSON)
ACK = auth.terminal_ack(DEV, 5, [(1, 5)], [3], KEY)
BATCH_ACK = auth.batch_ack(SITE, GW, "b1", "0" * 64, 1, 0, 0, GW_KEY)
STOP_LIST = auth.stop_list(DEV, 2, [{"batch_id": "B1"}], KEY)
STATUS = auth.status(SITE, GW, {"outbox": 3}, GW_KEY)
COMMAND = command.sign_command(
    {"type": "stop_list", "site": SITE, "version": 1, "expires": NOW * 2, "batches": []},
    CMD_KEY,
)
GENUINE = [RECORD, BATCH_JSON, ACK, BATCH_ACK, STOP_LIST, STATUS, COMMAND]

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=20)
    | st.sampled_from(["\ud800", "a\udfffb", "\U0001f600"]),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=30,
)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A genuine message with bytes flipped, inserted, deleted or a slice duplicated."""
    data = bytearray(draw(st.sampled_from(GENUINE)))
    for _ in range(draw(st.integers(1, 8))):
        op = draw(st.integers(0, 3))
        at = draw(st.integers(0, len(data)))
        if op == 0 and at < len(data):
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif op == 1:
            data[at:at] = draw(st.binary(min_size=1, max_size=4))
        elif op == 2:
            del data[at : at + draw(st.integers(1, 8))]
        else:
            data[at:at] = data[at : at + draw(st.integers(1, 64))]
    return bytes(data)


def _deep(n: int, opener: bytes, closer: bytes, inner: bytes = b"1") -> bytes:
    return opener * n + inner + closer * n


DEEP = st.builds(
    _deep,
    st.integers(MAX_DEPTH - 2, 20_000),
    st.sampled_from([b"[", b'{"a":']),
    st.sampled_from([b"]", b"}"]),
)

PAYLOADS = (
    st.binary(max_size=400)
    | JSON_VALUES.map(lambda v: json.dumps(v).encode())
    | DEEP
    | mutated()
    | st.builds(lambda s: b'{"v":2,"dev":"%s"}' % s.encode("utf-8", "surrogatepass"), st.text())
)


def _total(fn: Callable[[bytes], object], payload: bytes, *errors: type[Exception]) -> None:
    """``fn(payload)`` returns or raises one of ``errors``, within :data:`FAST_S` of this
    thread's CPU time (not wall-clock time: a loaded machine must not fail it; a parser
    that blows up on an input still does)."""
    t0 = time.thread_time()
    with contextlib.suppress(errors):
        fn(payload)
    assert time.thread_time() - t0 < FAST_S, f"{len(payload)} bytes took too long"


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Registry:
    path = tmp_path_factory.mktemp("reg") / "devices.json"
    add_devices(
        path,
        [Device(DEV, KEY, "cylinder-reader", SITE), Device(GW, GW_KEY, "gateway", SITE)],
        provisioned=1,
    )
    return Registry(path)


# -- the shared limits ------------------------------------------------------------------------


@given(
    JSON_VALUES.map(lambda v: json.dumps(v, ensure_ascii=False).encode("utf-8", "surrogatepass"))
)
def test_the_fast_depth_scan_agrees_with_the_reference(data: bytes) -> None:
    for limit in (1, 2, 3, 5):
        assert _depth_ok(data, limit) == _depth_ok_pure(data, limit)


def test_the_known_crashes_are_typed_errors_and_fast() -> None:
    deep_batch = zlib.compress(
        b'{"site":"S1","gw":"GW-S1","b":"b","recs":' + _deep(100_000, b"[", b"]") + b"}"
    )
    assert len(deep_batch) < 300  # the 252-byte kind
    cases: list[tuple[Callable[[bytes], object], bytes, str]] = [
        (decode_batch, deep_batch, "depth"),
        (decode_record, _deep(5000, b"[", b"]")[:4000], "depth"),
        (lambda p: loads(p, 1 << 20), _deep(5000, b'{"a":', b"}"), "depth"),
        (decode_record, RECORD.replace(b'"ntp"', b'"\\ud800"'), "json"),
        (decode_record, RECORD.replace(b'"ntp"', b'"\xed\xa0\x80"'), "json"),
        (lambda p: auth.parse(p, "status", 8192), _deep(3000, b"[", b"]"), "depth"),
    ]
    for fn, payload, reason in cases:
        t0 = time.perf_counter()
        with pytest.raises(WireError) as err:
            fn(payload)
        assert err.value.reason == reason, err.value
        assert time.perf_counter() - t0 < 0.1


def test_a_surrogate_pair_is_not_a_lone_surrogate() -> None:
    assert loads(b'["\\ud83d\\ude00"]', 100) == ["\U0001f600"]


def test_depth_up_to_the_limit_is_accepted() -> None:
    assert loads(_deep(MAX_DEPTH, b"[", b"]"), 1000) is not None
    with pytest.raises(WireError, match="depth"):
        loads(_deep(MAX_DEPTH + 1, b"[", b"]"), 1000)


def test_a_batch_of_too_many_records_is_one_error() -> None:
    payload = zlib.compress(
        b'{"site":"S1","gw":"GW-S1","b":"b","recs":[' + b"0," * 2_000_000 + b"0]}"
    )
    t0 = time.perf_counter()
    with pytest.raises(WireError) as err:
        decode_batch(payload)
    assert err.value.reason == "count" and str(MAX_BATCH_RECORDS) in str(err.value)
    assert time.perf_counter() - t0 < 2


# -- each parser ------------------------------------------------------------------------------


@given(PAYLOADS)
def test_decode_record_is_total(payload: bytes) -> None:
    _total(decode_record, payload, WireError)


@given(PAYLOADS)
def test_decode_batch_is_total(payload: bytes) -> None:
    _total(decode_batch, zlib.compress(payload), WireError)
    _total(decode_batch, payload, WireError)


@given(PAYLOADS)
def test_verify_batch_is_total(registry: Registry, payload: bytes) -> None:
    def run(p: bytes) -> object:
        vb = verify_batch(SITE, p, registry, VALIDATOR, 1 << 20)
        for bad in vb.bad:  # what the collector quarantines must be storable
            bad.payload.decode()
        return vb

    _total(run, zlib.compress(payload), WireError)


@given(JSON_VALUES)
def test_verify_record_is_total(registry: Registry, rec: object) -> None:
    # verify_record takes what decode_batch let through: no float (the collector's
    # parse_float makes them unusable) and nothing decode_batch refuses
    try:
        rec = loads(json.dumps(rec).encode(), 1 << 20, parse_float=lambda s: None)
    except WireError:
        return
    res = verify_record(rec, SITE, registry, VALIDATOR)
    assert not isinstance(res, Good)


def test_a_genuine_batch_verifies(registry: Registry) -> None:
    vb = verify_batch(SITE, encode_batch(SITE, GW, "b1", [RECORD]), registry, VALIDATOR, 1 << 20)
    assert [g.seq for g in vb.good] == [1] and vb.bad == []


@given(PAYLOADS)
def test_sealed_message_parsers_are_total(payload: bytes) -> None:
    for fn in (
        lambda p: auth.open_terminal_ack(p, DEV, [KEY]),
        lambda p: auth.open_batch_ack(p, SITE, GW, [GW_KEY]),
        lambda p: auth.open_stop_list(p, DEV, [KEY]),
        lambda p: auth.parse(p, auth.T_STATUS, 8192),
        lambda p: auth.unseal(p, auth.T_STATUS, [GW_KEY]),
    ):
        _total(fn, payload, WireError)


@given(PAYLOADS)
def test_gate_answer_check_is_total(payload: bytes) -> None:
    try:
        msg = auth.parse(payload, auth.T_GATE)
    except WireError:
        return
    auth.check_gate_answer(msg, DEV, "0" * 32, [KEY])


@given(PAYLOADS)
def test_verify_command_is_total(payload: bytes) -> None:
    _total(lambda p: command.verify_command(p, CMD_KEY.public_key(), SITE, NOW), payload, WireError)


@given(PAYLOADS | JSON_VALUES.map(lambda v: json.dumps({"id": 1, "n": "a" * 16, "cyl": v})))
def test_gate_request_parser_is_total(payload: bytes | str) -> None:
    raw = payload.encode() if isinstance(payload, str) else payload

    def run(p: bytes) -> object:
        try:
            obj = loads(p, 4096)
        except WireError:
            obj = None
        return parse_request(obj)

    _total(run, raw, GateRequestError)


# -- the handlers that must never raise -------------------------------------------------------


@given(PAYLOADS)
def test_check_message_never_raises(registry: Registry, payload: bytes) -> None:
    res = check_message(f"t/{DEV}/rec", payload, "", VALIDATOR, registry)
    assert isinstance(res, (Incoming, Rejected))


@pytest.fixture(scope="module")
def commands(tmp_path_factory: pytest.TempPathFactory, registry: Registry) -> Iterator[Commands]:
    ob = Outbox(tmp_path_factory.mktemp("cmd") / "outbox.sqlite", 10**9)
    gw = registry.get(GW)
    assert gw is not None
    yield Commands(ob, RegistryCache(ob), lambda *a: True, SITE, CMD_KEY.public_key(), registry, gw)
    ob.close()


SIGNED_BODIES = st.dictionaries(
    st.sampled_from(["cylinders", "batches", "devices", "gw", "x"]),
    JSON_VALUES | st.just(GW),
)


@given(PAYLOADS)
def test_on_command_never_raises_on_unsigned_input(commands: Commands, payload: bytes) -> None:
    commands.on_command(f"edge/{SITE}/cmd", payload)


@given(st.sampled_from(["cylinder_registry", "stop_list", "devices", "other"]), SIGNED_BODIES)
def test_on_command_never_raises_on_signed_garbage(
    commands: Commands, kind: str, body: dict[str, object]
) -> None:
    """Even a command the centre signed but that makes no sense is refused, not raised."""
    version = commands._version(kind if kind != "other" else "stop_list") + 1
    cmd = {**body, "type": kind, "site": SITE, "version": version, "expires": NOW * 2}
    try:
        payload = command.sign_command(cmd, CMD_KEY)
    except (WireError, ValueError):
        return  # not signable (floats, surrogates): the centre cannot send it either
    commands.on_command(f"edge/{SITE}/cmd", payload)
