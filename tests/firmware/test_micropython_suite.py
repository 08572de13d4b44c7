"""The firmware suite under the real MicroPython interpreter, one pytest test per module.

Each module's tests must all pass *and* all run (the count is checked against the
module's ``test_*`` functions). Every record an app scenario produced is checked on the
host too: envelope, MAC under the scenario's key, body against its JSON Schema.
"""

from __future__ import annotations

import ast
import json

import pytest

from tests.firmware import mpy_fw
from wire.envelope import check_envelope, verify_mac
from wire.schemas import default_validator

SCENARIO_KEY = bytes.fromhex("7f" * 32)  # tesim.harness.KEY_HEX


def count_tests(module: str) -> int:
    tree = ast.parse((mpy_fw.MP_TESTS / f"{module}.py").read_text(encoding="utf-8"))
    return sum(
        1 for n in tree.body if isinstance(n, ast.FunctionDef) and n.name.startswith("test_")
    )


def run(module: str) -> str:
    try:
        passed, failed, out = mpy_fw.run_module(module)
    except mpy_fw.MissingTool as exc:
        pytest.fail(str(exc), pytrace=False)
    assert failed == 0, out[-6000:]
    assert passed == count_tests(module), out[-6000:]
    return out


@pytest.mark.parametrize("module", [m for m in mpy_fw.MODULES if m != "mp_measure"])
def test_module_under_micropython(module: str) -> None:
    out = run(module)
    recs = [json.loads(line[4:]) for line in out.splitlines() if line.startswith("REC ")]
    if module in ("mp_cylinder", "mp_elevator", "mp_settlement", "mp_warehouse"):
        assert len(recs) >= 5, f"{module} produced only {len(recs)} records"
    validator = default_validator()
    for rec in recs:
        check_envelope(rec)
        assert verify_mac(rec, SCENARIO_KEY), rec
        validator.validate(str(rec["kind"]), rec["body"])


def test_cost_per_record_under_micropython() -> None:
    """Heap allocated to make + store and to send one record, and flash bytes per record;
    heap to verify an ack or a gate answer (figures in the report: ``make firmware-test``
    prints them)."""
    out = run("mp_measure")
    figures = {}
    for line in out.splitlines():
        if line.startswith("MEASURE "):
            kind, *pairs = line.split()[1:]
            figures[kind] = {k: int(v) for k, v in (p.split("=") for p in pairs)}
    auth = figures.pop("auth")  # verifying an ack or a gate answer, choosing a key
    assert auth["key_for_seq"] == 0 and auth["ack"] < 8192 and auth["gate_answer"] < 8192, auth
    assert set(figures) == {
        "cylinder.check",
        "cylinder.fill",
        "elevator.status",
        "elevator.fault",
        "elevator.maintenance",
        "market.settlement",
    }
    for kind, f in figures.items():
        assert f["flash"] == f["record"] + 10 or f["flash"] - f["record"] in (9, 10, 11), kind
        assert 1000 < f["heap_make_store"] < 32768, (kind, f)
        assert f["heap_send"] < f["heap_make_store"], (kind, f)


def test_every_firmware_test_module_is_run() -> None:
    on_disk = {p.stem for p in mpy_fw.MP_TESTS.glob("mp_*.py")}
    assert on_disk == set(mpy_fw.MODULES)
