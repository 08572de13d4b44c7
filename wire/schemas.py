"""JSON Schema validation of record bodies. Host only: the firmware never imports this.

One Draft-07 schema per kind lives in ``config/schemas/<kind>.json`` and describes only the
record's ``body`` (the envelope is checked by :func:`wire.envelope.check_envelope`). Every
schema is compiled once with ``fastjsonschema``. The folder is ``$TRACEEDGE_SCHEMAS`` when
set, else ``config/schemas`` next to this package.

JSON Schema (draft 6 and later) counts ``1.0`` as an integer; the wire contract does not, so
a body holding any float is refused here too, whatever its schema says.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable
from pathlib import Path

import fastjsonschema

from wire.envelope import KINDS, WireError

ENV_VAR = "TRACEEDGE_SCHEMAS"

_Validate = Callable[[object], object]


def default_schema_dir() -> Path:
    """The folder the default validator loads: ``$TRACEEDGE_SCHEMAS`` or ``config/schemas``."""
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env)
    return Path(__file__).resolve().parent.parent / "config" / "schemas"


def _float_path(v: object, path: str) -> str | None:
    """The path of the first float inside ``v``, or ``None``."""
    if isinstance(v, float):
        return path
    if isinstance(v, dict):
        for k, item in v.items():
            if isinstance(item, (dict, list, float)):
                found = _float_path(item, f"{path}.{k}")
                if found is not None:
                    return found
    elif isinstance(v, list):
        for i, item in enumerate(v):
            if isinstance(item, (dict, list, float)):
                found = _float_path(item, f"{path}[{i}]")
                if found is not None:
                    return found
    return None


def _message(exc: fastjsonschema.JsonSchemaValueException) -> str:
    msg = str(exc.message)
    # fastjsonschema names the validated value "data"; the record calls it "body".
    if msg.startswith("data"):
        msg = "body" + msg[4:]
    return msg


class BodyValidator:
    """Compiled body schemas for every kind found in ``schema_dir``."""

    def __init__(self, schema_dir: Path | None = None) -> None:
        folder = schema_dir if schema_dir is not None else default_schema_dir()
        self.schema_dir: Path = folder
        self.schemas: dict[str, dict[str, object]] = {}
        self._validators: dict[str, _Validate] = {}
        paths = sorted(folder.glob("*.json"))
        for path in paths:
            kind = path.name[: -len(".json")]
            try:
                schema = json.loads(path.read_text(encoding="utf-8"))
                validate: _Validate = fastjsonschema.compile(schema)
            except (ValueError, fastjsonschema.JsonSchemaDefinitionException) as exc:
                raise ValueError(f"bad schema {path}: {exc}") from exc
            self.schemas[kind] = schema
            self._validators[kind] = validate
        missing = [k for k in KINDS if k not in self._validators]
        if missing:
            raise FileNotFoundError(f"no schema for {', '.join(missing)} in {folder}")

    @property
    def kinds(self) -> tuple[str, ...]:
        """The kinds this validator has a schema for."""
        return tuple(sorted(self._validators))

    def validate(self, kind: str, body: object, floats_possible: bool = True) -> None:
        """Check ``body`` against the schema of ``kind``.

        ``floats_possible=False`` skips the scan for floats, for callers whose JSON parser
        already refuses them (``decode_record``) or turns them into values every schema type
        rejects (the collector).

        Raises ``WireError("kind", ...)`` for a kind without a schema and
        ``WireError("schema", "<kind>: <message naming the field>")`` for a bad body.
        """
        validate = self._validators.get(kind)
        if validate is None:
            raise WireError("kind", f"no schema for kind {kind!r}")
        try:
            validate(body)
        except fastjsonschema.JsonSchemaValueException as exc:
            raise WireError("schema", f"{kind}: {_message(exc)}") from None
        where = _float_path(body, "body") if floats_possible else None
        if where is not None:
            raise WireError("schema", f"{kind}: {where} must be integer, not a float")

    def is_valid(self, kind: str, body: object) -> bool:
        """True if :meth:`validate` would pass."""
        try:
            self.validate(kind, body)
        except WireError:
            return False
        return True


@functools.cache
def default_validator() -> BodyValidator:
    """The process-wide validator over :func:`default_schema_dir` (compiled on first use)."""
    return BodyValidator()
