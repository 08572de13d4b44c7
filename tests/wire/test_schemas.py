"""Body schemas (config/schemas) and the host-side validator (wire/schemas.py)."""

from __future__ import annotations

import copy
import json
import random
import shutil
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from simulators.records import make_body
from wire.envelope import KINDS, WireError
from wire.schemas import ENV_VAR, BodyValidator, default_schema_dir, default_validator

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "config" / "schemas"


@pytest.fixture(scope="module")
def validator() -> BodyValidator:
    return BodyValidator(SCHEMA_DIR)


def _body(kind: str, seed: int = 1) -> dict[str, Any]:
    return make_body(kind, random.Random(seed), "DEV-0001", seed, "HZ01")


def _schema_error(validator: BodyValidator, kind: str, body: object) -> str:
    with pytest.raises(WireError) as info:
        validator.validate(kind, body)
    assert info.value.reason == "schema"
    assert info.value.detail.startswith(kind + ": ")
    return info.value.detail


# ---- the schema files themselves ------------------------------------------------------------


def test_one_schema_per_kind_and_nothing_else() -> None:
    assert sorted(p.name for p in SCHEMA_DIR.glob("*.json")) == sorted(k + ".json" for k in KINDS)


@pytest.mark.parametrize("kind", KINDS)
def test_schema_is_strict_draft7(kind: str) -> None:
    schema = json.loads((SCHEMA_DIR / f"{kind}.json").read_text(encoding="utf-8"))
    jsonschema.Draft7Validator.check_schema(schema)
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    assert schema["type"] == "object"
    assert schema["additionalProperties"] is False
    assert set(schema["required"]) <= set(schema["properties"])
    # No float type anywhere, every nested object closed, every string and array bounded.
    text = json.dumps(schema)
    assert '"number"' not in text

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if node.get("type") == "object":
                assert node.get("additionalProperties") is False, node
            if node.get("type") == "string":
                assert 0 < node["maxLength"] <= 128, node
            if node.get("type") == "array":
                assert 0 < node["maxItems"] <= 64, node
            if node.get("type") == "integer":
                assert "minimum" in node and "maximum" in node, node
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(schema)


def test_default_validator_is_cached_and_complete() -> None:
    v = default_validator()
    assert v is default_validator()
    assert v.kinds == tuple(sorted(KINDS))


def test_schema_dir_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for kind in KINDS:
        shutil.copy(SCHEMA_DIR / f"{kind}.json", tmp_path / f"{kind}.json")
    # A looser market.entry schema in the override folder must be the one used.
    (tmp_path / "market.entry.json").write_text(
        json.dumps({"$schema": "http://json-schema.org/draft-07/schema#", "type": "object"})
    )
    monkeypatch.setenv(ENV_VAR, str(tmp_path))
    assert default_schema_dir() == tmp_path
    v = BodyValidator()
    assert v.schema_dir == tmp_path
    v.validate("market.entry", {"anything": "goes"})
    monkeypatch.delenv(ENV_VAR)
    assert default_schema_dir() == SCHEMA_DIR
    with pytest.raises(WireError):
        BodyValidator().validate("market.entry", {"anything": "goes"})


def test_missing_schema_fails_at_start(tmp_path: Path) -> None:
    shutil.copy(SCHEMA_DIR / "market.entry.json", tmp_path / "market.entry.json")
    with pytest.raises(FileNotFoundError, match=r"cylinder\.fill"):
        BodyValidator(tmp_path)


def test_broken_schema_fails_at_start(tmp_path: Path) -> None:
    for kind in KINDS:
        shutil.copy(SCHEMA_DIR / f"{kind}.json", tmp_path / f"{kind}.json")
    (tmp_path / "market.entry.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"market\.entry"):
        BodyValidator(tmp_path)


# ---- generated bodies -----------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_generated_bodies_validate(validator: BodyValidator, kind: str) -> None:
    draft7 = jsonschema.Draft7Validator(validator.schemas[kind])
    optional_seen: set[str] = set()
    for seed in range(300):
        rng = random.Random(seed)
        body = make_body(kind, rng, f"DEV-{seed % 11:04d}", seed + 1, f"S{seed % 5}")
        validator.validate(kind, body)
        assert draft7.is_valid(body), list(draft7.iter_errors(body))[:1]
        optional_seen |= set(body)
    # The generators exercise every field of the schema, optional ones included.
    assert optional_seen == set(validator.schemas[kind]["properties"])  # type: ignore[arg-type]


# ---- rejections -----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_missing_required_field(validator: BodyValidator, kind: str) -> None:
    body = _body(kind)
    required = validator.schemas[kind]["required"]
    assert isinstance(required, list) and required
    for field in required:
        bad = {k: v for k, v in body.items() if k != field}
        detail = _schema_error(validator, kind, bad)
        assert field in detail, detail


@pytest.mark.parametrize("kind", KINDS)
def test_extra_field(validator: BodyValidator, kind: str) -> None:
    detail = _schema_error(validator, kind, dict(_body(kind), colour="red"))
    assert "colour" in detail


@pytest.mark.parametrize("kind", KINDS)
def test_not_an_object(validator: BodyValidator, kind: str) -> None:
    for bad in ([], "body", 1, None):
        assert "must be object" in _schema_error(validator, kind, bad)


@pytest.mark.parametrize(
    ("kind", "field", "value"),
    [
        ("cylinder.fill", "actual_net_g", "14500"),
        ("cylinder.fill", "actual_net_g", True),
        ("cylinder.fill", "medium", "hydrogen"),
        ("cylinder.check", "decision", "maybe"),
        ("cylinder.check", "reasons", "scrapped"),
        ("elevator.status", "floor", "B1"),
        ("elevator.status", "door_zone", 1),
        ("elevator.status", "faults", ["flooded"]),
        ("elevator.fault", "fault", "TRAPPED"),
        ("elevator.maintenance", "time_in", "2025-11-23T08:00:00Z"),
        ("market.entry", "quantity_g", None),
        ("market.settlement", "lines", {}),
        ("market.settlement", "total_fen", "51.17"),
    ],
)
def test_wrong_type_or_value(
    validator: BodyValidator, kind: str, field: str, value: object
) -> None:
    detail = _schema_error(validator, kind, dict(_body(kind), **{field: value}))
    assert field in detail, detail


def test_float_masses_refused(validator: BodyValidator) -> None:
    body = _body("cylinder.fill")
    detail = _schema_error(validator, "cylinder.fill", dict(body, actual_net_g=14500.5))
    assert "actual_net_g" in detail
    # JSON Schema counts 1.0 as an integer; the wire contract does not.
    detail = _schema_error(validator, "cylinder.fill", dict(body, actual_net_g=14500.0))
    assert "body.actual_net_g" in detail and "float" in detail
    nested = copy.deepcopy(body)
    nested["pre"]["tare_g"] = 15320.0
    assert "body.pre.tare_g" in _schema_error(validator, "cylinder.fill", nested)
    sale = _body("market.settlement")
    sale["lines"][0]["amount_fen"] = 100.0
    assert "body.lines[0].amount_fen" in _schema_error(validator, "market.settlement", sale)


def test_negative_and_out_of_range_numbers(validator: BodyValidator) -> None:
    sale = _body("market.settlement")
    assert sale["lines"][0]["mode"] == "weighed"
    sale["lines"][0]["weight_g"] = -5
    assert "weight_g" in _schema_error(validator, "market.settlement", sale)
    fill = _body("cylinder.fill")
    for field, value in (("actual_net_g", -1), ("target_net_g", 0), ("end_ts", -1)):
        assert field in _schema_error(validator, "cylinder.fill", dict(fill, **{field: value}))
    assert "tare_g" in _schema_error(
        validator, "cylinder.fill", dict(fill, pre=dict(fill["pre"], tare_g=2_000_001))
    )
    status = _body("elevator.status")
    assert "floor" in _schema_error(validator, "elevator.status", dict(status, floor=1000))


def test_code_formats(validator: BodyValidator) -> None:
    status = _body("elevator.status")
    for reg in ("3110330106201500012", "311033010620150001234", "3110330106201500012a", ""):
        assert "reg" in _schema_error(validator, "elevator.status", dict(status, reg=reg))
    # A trailing newline must not slip through a ^...$ pattern.
    assert "reg" in _schema_error(
        validator, "elevator.status", dict(status, reg=status["reg"][:19] + "\n")
    )
    fill = _body("cylinder.fill")
    assert "station" in _schema_error(validator, "cylinder.fill", dict(fill, station="CZ 1"))
    assert "station" in _schema_error(validator, "cylinder.fill", dict(fill, station="A" * 33))
    sale = _body("market.settlement")
    assert "tran_id" in _schema_error(validator, "market.settlement", dict(sale, tran_id="1" * 19))
    assert "seller_card" in _schema_error(
        validator, "market.settlement", dict(sale, seller_card="04a2b9c1")
    )


def test_conditional_rules(validator: BodyValidator) -> None:
    check = _body("cylinder.check")
    allow = dict(check, stage="pre", decision="allow", reasons=[])
    validator.validate("cylinder.check", allow)
    assert "reasons" in _schema_error(
        validator, "cylinder.check", dict(allow, reasons=["scrapped"])
    )
    assert "reasons" in _schema_error(validator, "cylinder.check", dict(allow, decision="deny"))
    validator.validate("cylinder.check", dict(allow, decision="deny", reasons=["scrapped"]))
    post = {k: v for k, v in allow.items() if k != "post"}
    assert "post" in _schema_error(validator, "cylinder.check", dict(post, stage="post"))
    assert "reasons" in _schema_error(
        validator, "cylinder.check", dict(allow, decision="deny", reasons=["scrapped", "scrapped"])
    )

    visit = {
        "reg": "31103301062015000123",
        "worker": "W0612345",
        "card": "04A2B9C1",
        "company": "杭州恒达电梯工程有限公司",
        "event": "sign_in",
        "time_in": 1763900000000,
    }
    validator.validate("elevator.maintenance", visit)
    out = dict(visit, event="sign_out")
    assert "time_out" in _schema_error(validator, "elevator.maintenance", out)
    assert "items" in _schema_error(validator, "elevator.maintenance", dict(out, time_out=1))
    validator.validate("elevator.maintenance", dict(out, time_out=1763903600000, items=["轿顶"]))
    with pytest.raises(WireError):
        validator.validate("elevator.maintenance", dict(visit, time_out=1763903600000))

    line = {
        "batch_id": "33010625112300000126",
        "goods_code": "20040001",
        "goods_name": "豆腐",
        "mode": "counted",
        "amount_fen": 750,
    }
    sale = _body("market.settlement")
    assert "pieces" in _schema_error(validator, "market.settlement", dict(sale, lines=[line]))
    counted = dict(line, pieces=3, price_fen_per_piece=250)
    validator.validate("market.settlement", dict(sale, lines=[counted]))
    weighed = dict(counted, mode="weighed")
    assert "weight_g" in _schema_error(validator, "market.settlement", dict(sale, lines=[weighed]))
    assert "lines" in _schema_error(validator, "market.settlement", dict(sale, lines=[]))
    assert "lines" in _schema_error(
        validator, "market.settlement", dict(sale, lines=[counted] * 21)
    )


def test_unknown_kind(validator: BodyValidator) -> None:
    for kind in ("market.exit", "", "market.entry.json"):
        with pytest.raises(WireError) as info:
            validator.validate(kind, {})
        assert info.value.reason == "kind"
    assert not validator.is_valid("market.exit", {})
    assert validator.is_valid("market.entry", _body("market.entry"))
