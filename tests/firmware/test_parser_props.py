"""The firmware's parsers of what comes from the gateway are total, under the real
MicroPython: any bytes give a value or a ``WireError`` (acks, gate answers, stop lists),
and the firmware takes any bytes on ``t/{dev}/ack`` and ``t/{dev}/cmd`` without raising
and without acting on them. Hypothesis makes each batch on the host; one interpreter runs
a batch (``tests/firmware/mp/fuzz_parsers.py``)."""

from __future__ import annotations

import json
import os
import tempfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.firmware import mpy_fw
from wire import auth

DEV = "MKT-M42-017"  # the settlement scenario's terminal
KEY = bytes.fromhex("7f" * 32)  # tesim.harness.KEY_HEX

JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=16),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=16,
)
FIELDS = ["t", "dev", "wm", "r", "bad", "mac", "id", "n", "decision", "reasons", "version"]
GENUINE_SHAPES = [
    json.loads(auth.terminal_ack(DEV, 5, [(1, 3)], [4], KEY)),
    json.loads(auth.gate_answer(DEV, 7, "ab" * 16, "allow", [], 1, KEY)),
    json.loads(auth.stop_list(DEV, 9, [{"batch_id": "B1"}], KEY)),
]


def _payloads() -> st.SearchStrategy[bytes]:
    anything = st.dictionaries(st.sampled_from([*FIELDS, "batches"]), JSONISH)
    # a genuine message with fields replaced (its MAC then no longer matches)
    mutated = st.tuples(st.sampled_from(GENUINE_SHAPES), anything).map(
        lambda t: json.dumps({**t[0], **t[1]}).encode()
    )
    # a genuine message with its MAC removed, cut short, or with a byte flipped
    raw = st.sampled_from(GENUINE_SHAPES).map(lambda m: json.dumps(m).encode())
    cut = st.tuples(raw, st.integers(0, 400)).map(lambda t: t[0][: t[1]])
    flipped = st.tuples(raw, st.integers(0, 400), st.integers(1, 255)).map(
        lambda t: t[0][: t[1]] + bytes([t[0][t[1] % len(t[0])] ^ t[2]]) + t[0][t[1] + 1 :]
    )
    deep = st.integers(1, 20_000).map(lambda n: b'{"t":"ack","r":' + b"[" * n + b"]" * n + b"}")
    return (
        st.binary(max_size=300)
        | anything.map(lambda d: json.dumps(d).encode())
        | mutated
        | cut
        | flipped
        | deep
    )


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_payloads(), min_size=100, max_size=150))
def test_what_the_gateway_sends_is_parsed_totally_on_the_device(batch: list[bytes]) -> None:
    fd, path = tempfile.mkstemp(prefix="fuzz-", suffix=".json")
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump([p.hex() for p in batch], fh)
        files = [*mpy_fw.all_files(), (path, "/tests/fuzz_batch.json")]
        code = "import fuzz_parsers\nfuzz_parsers.run('/tests/fuzz_batch.json')\n"
        try:
            rc, out = mpy_fw.run(mpy_fw.job(code, files), timeout=120)
        except mpy_fw.MissingTool as exc:
            pytest.fail(str(exc), pytrace=False)
    finally:
        os.unlink(path)
    assert rc == 0 and "FUZZ ok " in out, out[-4000:]
    fed = int(out.split("FUZZ ok ")[1].split()[0])
    assert fed >= len(batch) // 2, out[-500:]  # most of a batch is not the agent's own
