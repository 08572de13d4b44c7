"""The fake platform's EPCIS 2.0 schema check: the official GS1 schema, formats enforced,
and a clear refusal when it cannot check (schema file missing, format checkers absent)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from jsonschema import Draft7Validator, FormatChecker

from simulators.epcis_schema import (
    ENV_VAR,
    SchemaUnavailable,
    check_format_checkers,
    default_schema_path,
    schema_errors,
    validator,
)

EXAMPLES = default_schema_path().parent / "examples"


def test_a_validator_without_format_checks_is_refused_with_the_pip_requirement() -> None:
    blind = Draft7Validator({}, format_checker=FormatChecker(formats=()))
    with pytest.raises(SchemaUnavailable, match=r"jsonschema\[format-nongpl\]"):
        check_format_checkers(blind)
    with pytest.raises(SchemaUnavailable, match="no format checker"):
        check_format_checkers(Draft7Validator({}))


def test_missing_schema_file_fails_with_a_clear_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "nowhere" / "EPCIS-JSON-Schema.json"
    with pytest.raises(SchemaUnavailable, match=r"missing: .*nowhere.*TRACEEDGE_EPCIS_SCHEMA"):
        validator(missing)
    monkeypatch.setenv(ENV_VAR, str(missing))
    assert default_schema_path() == missing
    with pytest.raises(SchemaUnavailable, match="missing"):
        schema_errors({"type": "EPCISDocument"})
    monkeypatch.delenv(ENV_VAR)
    assert default_schema_path().name == "EPCIS-JSON-Schema.json"
    assert default_schema_path().is_file()


def test_official_examples_validate_so_the_validator_is_not_just_rejecting() -> None:
    examples = sorted(EXAMPLES.glob("*.jsonld"))
    assert len(examples) >= 5
    for path in examples:
        assert schema_errors(json.loads(path.read_text(encoding="utf-8"))) == [], path.name
