"""simulators/records.py: deterministic, realistic, internally consistent bodies."""

from __future__ import annotations

import collections
import json
import random
from typing import Any

import pytest

from simulators.records import (
    BASE_MS,
    FAMILIES,
    FAMILY_OF_KIND,
    KIND_MIX_BY_FAMILY,
    make_body,
    pick_kind,
)
from wire.checkdigit import verify_check_digit
from wire.envelope import KINDS, MAX_RECORD_BYTES, make_record
from wire.schemas import default_validator
from wire.tracecode import parse_trace_code


def test_every_kind_has_a_family() -> None:
    assert set(FAMILIES) == set(KIND_MIX_BY_FAMILY)
    assert sorted(FAMILY_OF_KIND) == sorted(KINDS)
    for kind, family in FAMILY_OF_KIND.items():
        assert kind.startswith(family + ".")


def test_pick_kind_follows_weights() -> None:
    rng = random.Random(5)
    counts = collections.Counter(pick_kind("elevator", rng) for _ in range(5000))
    assert counts["elevator.status"] > 0.9 * 5000
    assert counts["elevator.fault"] > 0 and counts["elevator.maintenance"] > 0
    counts = collections.Counter(pick_kind("market", rng) for _ in range(2000))
    assert set(counts) == {"market.settlement", "market.entry"}
    with pytest.raises(ValueError):
        pick_kind("bakery", rng)


@pytest.mark.parametrize("kind", KINDS)
def test_deterministic(kind: str) -> None:
    a = [make_body(kind, random.Random(s), "DEV-1", s + 1, "HZ01") for s in range(20)]
    b = [make_body(kind, random.Random(s), "DEV-1", s + 1, "HZ01") for s in range(20)]
    assert a == b
    assert len({json.dumps(x, sort_keys=True) for x in a}) > 10


def test_unknown_kind() -> None:
    with pytest.raises(ValueError):
        make_body("market.exit", random.Random(1), "DEV-1", 1, "HZ01")


@pytest.mark.parametrize("kind", KINDS)
def test_records_fit_the_size_limit(kind: str) -> None:
    key = bytes(32)
    for seed in range(200):
        body = make_body(kind, random.Random(seed), "DEV-0001", seed + 1, "HZ01")
        rec = make_record("DEV-0001", seed + 1, 1, kind, BASE_MS, "ntp", body, key)
        size = len(json.dumps(rec, ensure_ascii=False, separators=(",", ":")).encode())
        assert size < MAX_RECORD_BYTES // 2, size


def _bodies(kind: str, n: int, dev: str = "DEV-1", site: str = "HZ01") -> list[dict[str, Any]]:
    return [make_body(kind, random.Random(s), dev, s + 1, site) for s in range(n)]


def test_device_identity_is_stable() -> None:
    regs = {b["reg"] for k in ("elevator.status", "elevator.fault") for b in _bodies(k, 50)}
    assert len(regs) == 1
    assert len({b["reg"] for b in _bodies("elevator.status", 5, dev="DEV-2")} | regs) == 2
    fills = _bodies("cylinder.fill", 50)
    assert len({(b["station"], b["scale"], b["medium"]) for b in fills}) == 1
    sales = _bodies("market.settlement", 50)
    assert len({(b["market"], b["terminal"], b["scale_sw"]) for b in sales}) == 1


def test_twenty_character_codes_carry_check_digits() -> None:
    """Every code the simulators make passes the wire contract's check (and a trace code
    its parser), so a simulated terminal's codes are the ones a real one makes."""
    for sale in _bodies("market.settlement", 100):
        for code in [sale["tran_id"], sale["trace_id"]] + [ln["batch_id"] for ln in sale["lines"]]:
            assert len(code) == 20 and verify_check_digit(code), code
        assert parse_trace_code(sale["trace_id"])["date"] == sale["tran_id"][6:12]
    for entry in _bodies("market.entry", 50):
        assert verify_check_digit(entry["batch_id"]), entry["batch_id"]
    assert len({s["tran_id"] for s in _bodies("market.settlement", 300)}) == 300


def test_settlement_figures_are_consistent() -> None:
    for sale in _bodies("market.settlement", 300):
        assert sale["total_fen"] == sum(ln["amount_fen"] for ln in sale["lines"])
        for ln in sale["lines"]:
            if ln["mode"] == "weighed":
                exact = ln["weight_g"] * ln["price_fen_per_kg"] / 1000
                assert abs(ln["amount_fen"] - exact) <= 0.5
            else:
                assert ln["amount_fen"] == ln["pieces"] * ln["price_fen_per_piece"]
        assert len({ln["batch_id"] for ln in sale["lines"]}) == len(sale["lines"])


def test_sales_name_batches_the_gate_registered() -> None:
    """A sale's line names a batch with the same goods and seller as its entry record."""
    now = BASE_MS + 10 * 3_600_000
    entries = {}
    for seq in range(1, 201):
        e = make_body("market.entry", random.Random(seq), "GATE-1", seq, "HZ01", now_ms=now)
        entries[e["batch_id"]] = e
    matched = 0
    for seq in range(1, 201):
        sale = make_body("market.settlement", random.Random(seq), "POS-1", seq, "HZ01", now_ms=now)
        for ln in sale["lines"]:
            entry = entries.get(ln["batch_id"])
            if entry is not None:
                matched += 1
                assert entry["goods_code"] == ln["goods_code"]
                assert entry["goods_name"] == ln["goods_name"]
                assert entry["trader"] == sale["seller"]
    assert matched > 150


def test_cylinder_fill_is_plausible() -> None:
    for b in _bodies("cylinder.fill", 300, site="S3") + _bodies("cylinder.fill", 300, site="S9"):
        assert b["start_ts"] < b["end_ts"] <= BASE_MS + 301 * 30_000
        assert abs(b["actual_net_g"] - b["target_net_g"]) <= 0.02 * b["target_net_g"]
        assert abs(b["post"]["reweigh_g"] - b["pre"]["tare_g"] - b["actual_net_g"]) <= 10


def test_cylinder_checks_decide_consistently() -> None:
    checks = _bodies("cylinder.check", 1000)
    denied = [c for c in checks if c["decision"] == "deny"]
    assert 0 < len(denied) < 200
    for c in checks:
        assert (c["decision"] == "deny") == bool(c["reasons"])
        if "no_residual_pressure" in c["reasons"]:
            assert c["pre"]["residual_kpa"] == 0
        if "damaged" in c["reasons"]:
            assert c["pre"]["appearance_ok"] is False
        if "leaking" in c["reasons"]:
            assert c["stage"] == "post" and c["post"]["leak_ok"] is False


def test_elevator_status_is_plausible() -> None:
    statuses = _bodies("elevator.status", 1000)
    for s in statuses:
        assert s["floor"] != 0
        if s["dir"] != "stopped":
            assert s["door"] == "closed"
        if {"trapped_in_zone", "trapped_out_of_zone"} & set(s["faults"]):
            assert s["people"] and s["dir"] == "stopped"
    runs = [s["counters"]["runs"] for s in statuses if "counters" in s]
    assert len(runs) > 100 and runs == sorted(runs)  # counters grow with seq


def test_maintenance_sign_out_is_complete() -> None:
    visits = _bodies("elevator.maintenance", 200)
    outs = [v for v in visits if v["event"] == "sign_out"]
    assert outs and len(outs) < len(visits)
    for v in outs:
        assert v["time_in"] < v["time_out"]
        assert v["items"] and len(set(v["items"])) == len(v["items"])


def test_now_ms_moves_body_times() -> None:
    now = 1_800_000_000_000
    for seq in range(1, 50):
        b = make_body("cylinder.fill", random.Random(seq), "DEV-1", seq, "HZ01", now_ms=now)
        assert now - 3 * 3_600_000 < b["start_ts"] < b["end_ts"] <= now
        v = make_body("elevator.maintenance", random.Random(seq), "DEV-1", seq, "HZ01", now_ms=now)
        assert now - 3 * 3_600_000 < v["time_in"] <= now
        default_validator().validate("cylinder.fill", b)
