"""The fake platform's check of EPCIS 2.0 documents: the official GS1 JSON Schema, formats
enforced.

A real city platform validates what it is sent; so does ours (``simulators/platform.py``,
``POST /capture``), which is how the tests prove that the collector's documents
(``collector/epcis.py``) are valid EPCIS 2.0 and not only valid by our own rules.

The schema is not copied into the repository: it is read from ``$TRACEEDGE_EPCIS_SCHEMA``
when set, else from ``<repo>/../shared/epcis/EPCIS-JSON-Schema.json`` (gs1/EPCIS at commit
2b888be). It is checked with ``jsonschema``'s Draft-07 validator and its format checker. The
schema types every identifier (``bizStep``, ``readPoint.id``, ``epcList``…) as
``"format": "uri"``, and ``jsonschema`` only enforces formats whose checker library is
installed (``rfc3986-validator`` for ``uri`` and ``rfc3339-validator`` for ``date-time``,
both in the ``jsonschema[format-nongpl]`` extra the project depends on): without them a bare
``"filling"`` passes as a business step. :func:`validator` therefore proves the checkers are
live before it answers, and raises :class:`SchemaUnavailable` naming the pip requirement if
they are not.
"""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path

from jsonschema import Draft7Validator
from jsonschema.exceptions import ValidationError, best_match

ENV_VAR = "TRACEEDGE_EPCIS_SCHEMA"
PIP_REQUIREMENT = "jsonschema[format-nongpl]>=4.21"
# A few wrong values each checker must refuse, and a right one it must accept.
_FORMAT_PROBES = (
    ("uri", "filling", "https://traceedge.example/voc/bizstep/filling"),
    ("date-time", "2025-11-23T08:00:00.000", "2025-11-23T08:00:00.000Z"),
)


class SchemaUnavailable(RuntimeError):
    """The official schema cannot be used: file missing or unreadable, or format checks off."""


def default_schema_path() -> Path:
    """``$TRACEEDGE_EPCIS_SCHEMA``, else ``../shared/epcis/EPCIS-JSON-Schema.json`` beside the
    repository."""
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env)
    repo = Path(__file__).resolve().parent.parent
    return repo.parent / "shared" / "epcis" / "EPCIS-JSON-Schema.json"


def check_format_checkers(validator: Draft7Validator) -> None:
    """Raise :class:`SchemaUnavailable` unless ``uri`` and ``date-time`` are really checked."""
    checker = validator.format_checker
    if checker is None:
        raise SchemaUnavailable("the EPCIS validator has no format checker")
    for fmt, wrong, right in _FORMAT_PROBES:
        if checker.conforms(wrong, fmt) or not checker.conforms(right, fmt):
            raise SchemaUnavailable(
                f"jsonschema does not check the {fmt!r} format, so the EPCIS schema would accept "
                f"{wrong!r}; install the format extras: pip install '{PIP_REQUIREMENT}'"
            )


@functools.lru_cache(maxsize=8)
def _load(path: Path) -> Draft7Validator:
    try:
        schema = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SchemaUnavailable(
            f"the official EPCIS 2.0 JSON Schema is missing: {path} (set ${ENV_VAR} to "
            "the path of EPCIS-JSON-Schema.json from gs1/EPCIS)"
        ) from None
    except (OSError, ValueError) as exc:
        raise SchemaUnavailable(f"cannot read the EPCIS JSON Schema {path}: {exc}") from None
    Draft7Validator.check_schema(schema)
    v = Draft7Validator(schema, format_checker=Draft7Validator.FORMAT_CHECKER)
    check_format_checkers(v)
    return v


def validator(path: str | os.PathLike[str] | None = None) -> Draft7Validator:
    """The Draft-07 validator of the official schema with live format checking (cached)."""
    return _load(Path(path) if path is not None else default_schema_path().resolve())


def _where(err: ValidationError) -> str:
    out = ""
    for part in err.absolute_path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "document"


def schema_errors(doc: object, path: str | os.PathLike[str] | None = None) -> list[str]:
    """Every schema violation of ``doc`` as ``"<where>: <message>"``; empty when valid.

    The schema dispatches with ``if``/``then`` and ``anyOf``, so one wrong value can show
    up as several errors; the most specific one comes first.
    """
    v = validator(path)
    errors = list(v.iter_errors(doc))
    if not errors:
        return []
    first = best_match(errors)
    ordered = [first, *(e for e in errors if e is not first)]
    return [f"{_where(e)}: {e.message}" for e in ordered]
