"""Typed decoding of whole records with msgspec, derived from the body JSON Schemas. Host only.

The collector's fast path. :class:`TypedRecords` turns every ``config/schemas/<kind>.json``
into msgspec types (one ``Struct`` per JSON object, ``Literal`` for string enums,
``Meta`` for lengths, ranges and patterns, ``__post_init__`` for ``uniqueItems`` and the
``allOf``/``if``/``then`` rules) and one tagged union of whole records (the envelope of
:func:`wire.envelope.check_envelope`, tag ``kind``), so that one C call parses a record and
checks its envelope and body.

The contract, proven by ``tests/wire/test_typed.py`` against ``fastjsonschema`` and
``check_envelope``: a record that :meth:`TypedRecords.decode` accepts is one they accept.
The converse holds for bodies (same verdict both ways); for the envelope the typed side is
narrower on purpose (``mac`` must be 64 lower-case hex digits, which is all a MAC that can
verify is). Whatever the typed side refuses, the caller decides with the reference path,
so that every refusal keeps its exact reason and message.

A schema using a keyword not modelled here (:class:`Unsupported`) leaves its kind to the
reference path only: the answer stays right, just not fast.
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Callable, Mapping
from typing import Annotated, Any, Literal, Union

import msgspec
from msgspec import UNSET, Meta, UnsetType

from wire.envelope import KINDS, MAX_DEV_LEN, TIME_QUALITY, VERSION

# fastjsonschema matches ``pattern`` with ``re.search`` after turning every unescaped ``$``
# into ``\Z`` (so that "AB\n" does not match "^[A-Z]+$"): the typed side must do the same.
_DOLLAR = re.compile(r"(?<!\\)\$")

# "x-personal" marks personal data (docs/warehouse.md): an annotation, no constraint.
_IGNORED = frozenset({"description", "title", "$schema", "$comment", "definitions", "x-personal"})
_LIMIT = 1 << 53
_MAC_MEMBER = b',"mac":"'  # the top-level mac member in canonical bytes: 8 + 64 + 1 bytes


class Unsupported(ValueError):
    """A schema construct the typed translation does not model."""


def _pattern(p: object) -> str:
    if not isinstance(p, str):
        raise Unsupported("pattern must be a string")
    return _DOLLAR.sub(r"\\Z", p)


_CLASS_PATTERN = re.compile(r"\^\[([^\]\\^]+)\](?:\[([^\]\\^]+)\]\*|(\+|\{(\d+)\}))\$")
_RANGES = {"0-9": "0123456789", "A-Z": "ABCDEFGHIJKLMNOPQRSTUVWXYZ", "A-F": "ABCDEF"}
_RANGES["a-z"] = _RANGES["A-Z"].lower()
_RANGES["a-f"] = "abcdef"


def _chars(cls: str) -> str | None:
    """The characters of a bracket class made of ``0-9 A-Z a-z A-F a-f`` ranges and the
    literals ``_ .`` (``-`` last), or ``None``."""
    out = ""
    if cls.endswith("-"):
        out, cls = "-", cls[:-1]
    i = 0
    while i < len(cls):
        if cls[i : i + 3] in _RANGES:
            out += _RANGES[cls[i : i + 3]]
            i += 3
        elif cls[i] in "_.":
            out += cls[i]
            i += 1
        else:
            return None
    return out or None


def _char_class(pattern: str) -> tuple[str | None, str, int, int | None] | None:
    """``^[C]+$``, ``^[C]{n}$`` or ``^[F][C]*$`` (``$`` read as ``\\Z``, as fastjsonschema
    does) as (first characters or None, characters, least length, exact length or None):
    checked by ``str.strip`` in ``__post_init__``, cheaper than the regular expression
    msgspec would run. ``None`` for any other pattern."""
    m = _CLASS_PATTERN.fullmatch(pattern)
    if m is None:
        return None
    first, rest, quant, count = m.groups()
    if rest is not None:  # ^[F][C]*$
        f, c = _chars(first), _chars(rest)
        return None if f is None or c is None else (f, c, 1, None)
    c = _chars(first)
    if c is None:
        return None
    if quant == "+":
        return (None, c, 1, None)
    return (None, c, int(count), int(count))


def _only(node: Mapping[str, Any], allowed: set[str], what: str) -> None:
    extra = set(node) - allowed - _IGNORED
    if extra:
        raise Unsupported(f"{what}: {', '.join(sorted(extra))}")


def _int(v: object, what: str) -> int:
    if not isinstance(v, int) or isinstance(v, bool):
        raise Unsupported(f"{what} must be an integer")
    return v


class _Translator:
    def __init__(self, kind: str, schema: Mapping[str, Any]) -> None:
        self.kind = kind
        self.root = schema
        self.count = 0

    def resolve(self, node: Mapping[str, Any]) -> Mapping[str, Any]:
        seen = 0
        while "$ref" in node:
            _only(node, {"$ref"}, "keywords beside $ref")
            ref = node["$ref"]
            if not isinstance(ref, str) or not ref.startswith("#/definitions/"):
                raise Unsupported(f"$ref {ref!r}")
            defs = self.root.get("definitions", {})
            target = defs.get(ref[len("#/definitions/") :]) if isinstance(defs, dict) else None
            if not isinstance(target, dict):
                raise Unsupported(f"$ref {ref!r} not found")
            node = target
            seen += 1
            if seen > 32:
                raise Unsupported("$ref loop")
        return node

    def annotation(self, node: Mapping[str, Any], where: str) -> Any:
        """The msgspec type for ``node``; checks it needs beyond the type come as a struct's
        ``__post_init__`` (see :meth:`struct`)."""
        node = self.resolve(node)
        if "enum" in node:
            _only(node, {"enum"}, f"{where}: keywords beside enum")
            values = node["enum"]
            if not isinstance(values, list) or not values:
                raise Unsupported(f"{where}: enum must be a non-empty list")
            if not all(isinstance(v, str) for v in values):
                raise Unsupported(f"{where}: enum of non-strings")
            return Literal[tuple(values)]
        t = node.get("type")
        if t == "string":
            _only(node, {"type", "minLength", "maxLength", "pattern"}, where)
            kw: dict[str, Any] = {}
            if "minLength" in node:
                kw["min_length"] = _int(node["minLength"], f"{where}: minLength")
            if "maxLength" in node:
                kw["max_length"] = _int(node["maxLength"], f"{where}: maxLength")
            if "pattern" in node:
                kw["pattern"] = _pattern(node["pattern"])
            return Annotated[str, Meta(**kw)] if kw else str
        if t == "integer":
            _only(node, {"type", "minimum", "maximum"}, where)
            if "minimum" not in node or "maximum" not in node:
                raise Unsupported(f"{where}: an integer without both bounds")
            lo = _int(node["minimum"], f"{where}: minimum")
            hi = _int(node["maximum"], f"{where}: maximum")
            if lo < -(1 << 63) or hi >= 1 << 63:
                raise Unsupported(f"{where}: bounds beyond 64 bits")
            return Annotated[int, Meta(ge=lo, le=hi)]
        if t == "boolean":
            _only(node, {"type"}, where)
            return bool
        if t == "array":
            _only(node, {"type", "items", "minItems", "maxItems", "uniqueItems"}, where)
            items = node.get("items")
            if not isinstance(items, dict):
                raise Unsupported(f"{where}: array without one items schema")
            item = self.annotation(items, where + "[]")
            if node.get("uniqueItems") and not self._hashable(items):
                raise Unsupported(f"{where}: uniqueItems over non-strings")
            kw = {}
            if "minItems" in node:
                kw["min_length"] = _int(node["minItems"], f"{where}: minItems")
            if "maxItems" in node:
                kw["max_length"] = _int(node["maxItems"], f"{where}: maxItems")
            return Annotated[list[item], Meta(**kw)] if kw else list[item]  # type: ignore[valid-type]
        if t == "object":
            return self.struct(node, where)
        raise Unsupported(f"{where}: type {t!r}")

    def class_string(
        self, node: Mapping[str, Any], name: str, where: str
    ) -> tuple[Any, list[str]] | None:
        """A string field whose pattern is a character class (:func:`_char_class`): its
        type without the pattern, and the lines of ``__post_init__`` that check it."""
        if node.get("type") != "string" or not isinstance(node.get("pattern"), str):
            return None
        cc = _char_class(node["pattern"])
        if cc is None:
            return None
        _only(node, {"type", "minLength", "maxLength", "pattern"}, where)
        first, chars, least, exact = cc
        lo = max(_int(node.get("minLength", 0), f"{where}: minLength"), least)
        hi = _int(node["maxLength"], f"{where}: maxLength") if "maxLength" in node else None
        if exact is not None:
            hi = exact if hi is None else min(hi, exact)
            lo = max(lo, exact)
        if hi is not None and hi < lo:
            raise Unsupported(f"{where}: no string can match")
        ann = Annotated[str, Meta(min_length=lo, max_length=hi)]
        msg = f"{name} must match pattern {node['pattern']}"
        bad = f"v.strip({chars!r})"
        if first is not None:  # at least one character: min_length above
            bad = f"v[0] not in {first!r} or v[1:].strip({chars!r})"
        return ann, [
            f"v = self.{name}",
            f"if v is not UNSET and ({bad}): raise ValueError({msg!r})",
        ]

    def _hashable(self, items: Mapping[str, Any]) -> bool:
        items = self.resolve(items)
        return "enum" in items or items.get("type") == "string"

    def struct(self, node: Mapping[str, Any], where: str) -> type[msgspec.Struct]:
        _only(
            node,
            {"type", "properties", "required", "additionalProperties", "allOf", "anyOf",
             "description"},
            where,
        )  # fmt: skip
        if node.get("additionalProperties") is not False:
            raise Unsupported(f"{where}: an object must have additionalProperties false")
        props = node.get("properties", {})
        required = node.get("required", [])
        if not isinstance(props, dict) or not isinstance(required, list):
            raise Unsupported(f"{where}: properties / required")
        if not set(required) <= set(props):
            raise Unsupported(f"{where}: a required field without a schema")
        fields: list[tuple[str, Any, Any] | tuple[str, Any]] = []
        checks: list[str] = []
        for name in sorted(props):
            if not name.isidentifier() or keyword.iskeyword(name) or name.startswith("_"):
                raise Unsupported(f"{where}: field name {name!r}")
            sub = props[name]
            if not isinstance(sub, dict):
                raise Unsupported(f"{where}.{name}")
            resolved = self.resolve(sub)
            fast = self.class_string(resolved, name, f"{where}.{name}")
            if fast is not None:
                ann, lines = fast
                checks += lines
            else:
                ann = self.annotation(sub, f"{where}.{name}")
            if resolved.get("type") == "array" and resolved.get("uniqueItems"):
                checks += _unique(name)
            if name in required:
                fields.append((name, ann))
            else:
                fields.append((name, Union[ann, UnsetType], UNSET))  # noqa: UP007 (built at run time)
        all_of = node.get("allOf", [])
        if not isinstance(all_of, list):
            raise Unsupported(f"{where}: allOf")
        for rule in all_of:
            checks += _conditional(rule, set(props), where)
        checks += _any_required(node.get("anyOf"), set(props), where)
        self.count += 1
        name = f"{self.kind.replace('.', '_')}_{self.count}"
        ns: dict[str, Any] = {}
        if checks:
            ns["__post_init__"] = _post_init(checks)
        return msgspec.defstruct(
            name, fields, kw_only=True, forbid_unknown_fields=True, namespace=ns, gc=False
        )


def _post_init(lines: list[str]) -> Callable[[Any], None]:
    """One generated ``__post_init__`` holding every check of a struct: a single Python call
    per decoded object (closures calling closures cost more than the rest of the decode)."""
    src = "def __post_init__(self):\n" + "".join("    " + ln + "\n" for ln in lines)
    ns: dict[str, Any] = {"UNSET": UNSET}
    exec(compile(src, "<wire.typed>", "exec"), ns)  # names and constants checked or repr'd
    fn: Callable[[Any], None] = ns["__post_init__"]
    return fn


def _unique(name: str) -> list[str]:
    msg = f"{name} must contain unique items"
    return [
        f"v = self.{name}",
        f"if v is not UNSET and len(set(v)) != len(v): raise ValueError({msg!r})",
    ]


def _names(v: object, fields: set[str], where: str) -> list[str]:
    if not isinstance(v, list) or not all(isinstance(n, str) and n in fields for n in v):
        raise Unsupported(f"{where}: required must list fields of the object")
    return v


def _any_required(rule: object, fields: set[str], where: str) -> list[str]:
    """``anyOf`` of ``required`` lists (at least one group present): the check's lines."""
    if rule is None:
        return []
    if not isinstance(rule, list) or not rule:
        raise Unsupported(f"{where}: anyOf")
    groups: list[list[str]] = []
    for alt in rule:
        if not isinstance(alt, dict) or set(alt) != {"required"}:
            raise Unsupported(f"{where}: anyOf entries other than required")
        groups.append(_names(alt["required"], fields, where))
    present = " or ".join(
        "(" + (" and ".join(f"self.{n} is not UNSET" for n in g) or "True") + ")" for g in groups
    )
    msg = "needs one of: " + "; ".join(", ".join(g) for g in groups)
    return [f"if not ({present}): raise ValueError({msg!r})"]


def _conditional(rule: object, fields: set[str], where: str) -> list[str]:
    """``{"if": {"required": [f], "properties": {f: {"const": c}}}, "then": {...}}`` with
    ``then`` made of ``required``, ``properties`` of ``minItems``/``maxItems``, and
    ``not``/``anyOf`` of ``required``: the lines of code that check it."""
    if not isinstance(rule, dict) or set(rule) != {"if", "then"}:
        raise Unsupported(f"{where}: allOf entries other than if/then")
    cond, then = rule["if"], rule["then"]
    if not isinstance(cond, dict) or not isinstance(then, dict):
        raise Unsupported(f"{where}: if/then")
    _only(cond, {"required", "properties"}, f"{where}: if")
    props = cond.get("properties", {})
    if not isinstance(props, dict) or len(props) != 1:
        raise Unsupported(f"{where}: if on one property")
    ((field, spec),) = props.items()
    if field not in fields:
        raise Unsupported(f"{where}: if on an unknown field")
    if not isinstance(spec, dict) or set(spec) != {"const"} or not isinstance(spec["const"], str):
        raise Unsupported(f"{where}: if needs a string const")
    const = spec["const"]
    if_required = _names(cond.get("required", []), fields, where)
    if not set(if_required) <= {field}:
        raise Unsupported(f"{where}: if requires another field")
    # absent: UNSET, never equal to a string
    applies = f"v == {const!r}" if if_required else f"v is UNSET or v == {const!r}"
    body: list[str] = []
    _only(then, {"required", "properties", "not"}, f"{where}: then")
    then_required = _names(then.get("required", []), fields, where)
    if then_required:
        missing = " or ".join(f"self.{n} is UNSET" for n in then_required)
        msg = f"{field} {const}: requires {', '.join(then_required)}"
        body.append(f"if {missing}: raise ValueError({msg!r})")
    sizes = then.get("properties") or {}
    if not isinstance(sizes, dict):
        raise Unsupported(f"{where}: then.properties")
    for name, sz in sizes.items():
        if name not in fields or not isinstance(sz, dict) or not sz:
            raise Unsupported(f"{where}: then.properties.{name}")
        if set(sz) - {"minItems", "maxItems"}:
            raise Unsupported(f"{where}: then.properties.{name}")
        body.append(f"w = self.{name}")
        if "minItems" in sz:
            lo = _int(sz["minItems"], "minItems")
            msg = f"{field} {const}: {name} needs at least {lo} items"
            body.append(f"if w is not UNSET and len(w) < {lo}: raise ValueError({msg!r})")
        if "maxItems" in sz:
            hi = _int(sz["maxItems"], "maxItems")
            msg = f"{field} {const}: {name} takes at most {hi} items"
            body.append(f"if w is not UNSET and len(w) > {hi}: raise ValueError({msg!r})")
    if "not" in then:
        neg = then["not"]
        if not isinstance(neg, dict) or set(neg) != {"anyOf"} or not isinstance(neg["anyOf"], list):
            raise Unsupported(f"{where}: then.not")
        for alt in neg["anyOf"]:
            if not isinstance(alt, dict) or set(alt) != {"required"}:
                raise Unsupported(f"{where}: then.not.anyOf")
            names = _names(alt["required"], fields, where)
            present = " and ".join(f"self.{n} is not UNSET" for n in names) or "True"
            msg = f"{field} {const}: {', '.join(names)} not allowed"
            body.append(f"if {present}: raise ValueError({msg!r})")
    if not body:
        return []
    return [f"v = self.{field}", f"if {applies}:"] + ["    " + ln for ln in body]


def _envelope_fields(body: Any) -> list[tuple[str, Any]]:
    u53 = Annotated[int, Meta(ge=0, lt=_LIMIT)]
    return [
        ("body", body),
        ("boot", u53),
        (
            "dev",
            Annotated[
                str, Meta(min_length=1, max_length=MAX_DEV_LEN, pattern=r"^[A-Za-z0-9_.\-]+\Z")
            ],
        ),
        ("mac", Annotated[str, Meta(pattern=r"^[0-9a-f]{64}\Z")]),
        ("seq", Annotated[int, Meta(ge=1, lt=_LIMIT)]),
        ("ts", u53),
        ("tq", Literal[TIME_QUALITY]),
        ("v", Literal[VERSION]),
    ]


class TypedRecords:
    """Typed decoders for the kinds whose schema translates (:attr:`kinds`); the others are
    in :attr:`untyped` with the reason."""

    def __init__(self, schemas: Mapping[str, Mapping[str, Any]]) -> None:
        self.bodies: dict[str, Any] = {}
        self.untyped: dict[str, str] = {}
        records: list[Any] = []
        for kind in KINDS:
            schema = schemas.get(kind)
            if schema is None:
                self.untyped[kind] = "no schema"
                continue
            try:
                body = _Translator(kind, schema).annotation(schema, "body")
            except Unsupported as exc:
                self.untyped[kind] = str(exc)
                continue
            self.bodies[kind] = body
            records.append(
                msgspec.defstruct(
                    "Record_" + kind.replace(".", "_"),
                    _envelope_fields(body),
                    tag_field="kind",
                    tag=kind,
                    forbid_unknown_fields=True,
                    namespace={"KIND": kind},
                    gc=False,
                )
            )
        self.kinds = tuple(self.bodies)
        self._decoder: msgspec.json.Decoder[Any] | None = (
            msgspec.json.Decoder(Union[tuple(records)]) if records else None  # noqa: UP007
        )
        self._encode = msgspec.json.Encoder(order="sorted").encode

    def decode(self, raw: bytes | memoryview) -> Any:
        """The record in ``raw`` as a typed struct (``.KIND``, ``.dev``, ``.seq``, ``.ts``,
        ``.mac``, ``.body``); raises ``msgspec.DecodeError`` (``ValidationError`` is one) or
        ``UnicodeDecodeError`` (a string not UTF-8) for anything the typed side does not
        accept (the caller then asks the reference path, which names the problem)."""
        if self._decoder is None:
            raise msgspec.ValidationError("no kind is typed")
        return self._decoder.decode(raw)

    def body_decoder(self, kind: str) -> msgspec.json.Decoder[Any]:
        """A decoder of the body of ``kind`` alone (tests, benchmarks)."""
        return msgspec.json.Decoder(self.bodies[kind])

    def signed_bytes(self, raw: bytes, rec: Any) -> bytes | None:
        """The bytes the MAC of ``rec`` covers, cut from the bytes it was received as, or
        ``None`` when ``raw`` is not the canonical encoding of ``rec`` (white space, key
        order, escapes, number forms, duplicate keys: the caller then re-encodes).

        Canonical ``raw`` (it equals the canonical encoding of what it decodes to) holds
        the top-level ``"mac":"<64 hex>"`` between ``kind`` and ``seq``; without it, the
        rest is the canonical encoding of the record minus its ``mac``: what
        :func:`wire.envelope.sign` covers."""
        if self._encode(rec) != raw:
            return None
        i = raw.rfind(_MAC_MEMBER)  # seq, ts, tq and v follow: none can hold it
        j = i + len(_MAC_MEMBER) + 64
        if i < 0 or raw[j : j + 2] != b'",':
            return None
        return raw[:i] + raw[j + 1 :]
