"""Verify an uplink batch record by record: envelope, size, device, site, schema, MAC.

Pure apart from the registry lookup; the store never sees a record that failed here.

Two paths, one answer. :func:`verify_batch_reference` is the reference: ``json`` parse of
the batch, :func:`~wire.envelope.check_envelope`, the compiled JSON Schema, the canonical
re-encoding that the MAC covers. :func:`verify_batch` gets the same verdicts at a fraction
of the CPU: msgspec cuts the batch into each record's received bytes and decodes each
record into types derived from the same schemas (:mod:`wire.typed`), and the MAC is checked
over the received bytes themselves when they are canonical (they are what the device
signed, minus its ``mac`` member). Anything the fast path does not accept outright (a
refusal, a record not in canonical form, a batch it cannot cut) is decided by the
reference path, so every refusal keeps its exact reason and detail; the tests feed both
paths the same bytes and compare (``tests/collector/test_fast_verify.py``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import weakref
import zlib
from dataclasses import dataclass
from typing import Any

import msgspec

from hostlib.registry import Device, Registry
from wire.batch import MAX_BATCH_RECORDS, decode_batch
from wire.canonical import canonical_trusted
from wire.envelope import MAX_RECORD_BYTES, WireError, check_envelope, unsigned
from wire.limits import MAX_DEPTH, _depth_ok, _may_hold_surrogate, loads
from wire.mac import hmac_sha256
from wire.schemas import BodyValidator
from wire.typed import TypedRecords


class _Float:
    """Stands in for a JSON float so that it fails every check it meets (never serialises)."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


@dataclass(frozen=True)
class Good:
    dev: str
    seq: int
    kind: str
    ts: int
    mac: str
    text: str


@dataclass(frozen=True)
class Bad:
    reason: str
    detail: str
    dev: str | None
    seq: int | None
    payload: bytes


@dataclass(frozen=True)
class VerifiedBatch:
    site: str
    gateway: Device
    batch_id: str
    good: list[Good]
    bad: list[Bad]


def _dumps(obj: object) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), default=lambda o: None)


def verify_record(
    rec: object, site: str, registry: Registry, validator: BodyValidator
) -> Good | Bad:
    dev = rec.get("dev") if isinstance(rec, dict) else None
    seq = rec.get("seq") if isinstance(rec, dict) else None
    dev_s = dev if isinstance(dev, str) else None
    seq_i = seq if isinstance(seq, int) and not isinstance(seq, bool) else None
    try:
        check_envelope(rec)
        assert isinstance(rec, dict) and dev_s is not None and seq_i is not None
        device = registry.get(dev_s)
        if device is None:
            raise WireError("unknown_device", dev_s)
        if device.site != site:
            raise WireError("wrong_site", f"{dev_s} belongs to {device.site}, not {site}")
        if not device.accepts(seq_i):
            raise WireError("revoked", f"{dev_s} is revoked from seq {device.revoked_from}")
        kind = rec["kind"]
        assert isinstance(kind, str)
        validator.validate(kind, rec["body"], floats_possible=False)
        try:
            data = canonical_trusted(unsigned(rec))
        except (TypeError, ValueError) as exc:
            raise WireError("encoding", str(exc)) from exc
        if len(data) + 80 > MAX_RECORD_BYTES:
            raise WireError("oversized", f"{len(data)} bytes")
        mac = str(rec["mac"])
        if not hmac.compare_digest(hmac_sha256(device.key_for(seq_i), data).hex(), mac):
            raise WireError("mac", "MAC does not match the device key")
        ts = rec["ts"]
        assert isinstance(ts, int)
        # the signed bytes plus the MAC: valid JSON of the same record, with no second encode
        return Good(dev_s, seq_i, kind, ts, mac, data[:-1].decode() + ',"mac":"' + mac + '"}')
    except WireError as exc:
        return Bad(exc.reason, exc.detail, dev_s, seq_i, _dumps(rec).encode()[:8192])


def _check_batch(topic_site: str, site: str, gw: str, registry: Registry) -> Device:
    if site != topic_site:
        raise WireError("wrong_site", f"batch for {site} published under {topic_site}")
    gateway = registry.get(gw)
    if gateway is None or gateway.type != "gateway" or gateway.site != site:
        # without the gateway's key no ack can be sealed: nothing is stored, so nothing
        # is acknowledged that the sender would then delete
        raise WireError("unknown_gateway", f"{gw!r} is not a gateway of site {site}")
    return gateway


def verify_batch_reference(
    topic_site: str,
    payload: bytes,
    registry: Registry,
    validator: BodyValidator,
    max_bytes: int,
) -> VerifiedBatch:
    """The reference path: decode and verify a batch; raises :class:`WireError` if the
    batch itself is unusable."""
    if len(payload) > max_bytes:
        raise WireError("oversized", f"batch of {len(payload)} bytes > {max_bytes}")
    obj = decode_batch(payload, max_inflated=16 * max_bytes, parse_float=_Float)
    site, batch_id = str(obj["site"]), str(obj["b"])
    gateway = _check_batch(topic_site, site, str(obj["gw"]), registry)
    good: list[Good] = []
    bad: list[Bad] = []
    recs = obj["recs"]
    assert isinstance(recs, list)
    for rec in recs:
        res = verify_record(rec, site, registry, validator)
        (good if isinstance(res, Good) else bad).append(res)  # type: ignore[arg-type]
    return VerifiedBatch(site, gateway, batch_id, good, bad)


class _BatchHead(msgspec.Struct, forbid_unknown_fields=True):
    """A batch as :func:`wire.batch.decode_batch` takes it, each record left as its bytes.
    No other field: msgspec would only skip it, unchecked for what ``json`` refuses (an
    integer of 4,301 digits), so such a batch goes the reference way."""

    site: str
    gw: str
    b: str
    recs: list[msgspec.Raw]


_BATCH = msgspec.json.Decoder(_BatchHead)
_TYPED: weakref.WeakKeyDictionary[BodyValidator, TypedRecords] = weakref.WeakKeyDictionary()


def typed_records(validator: BodyValidator) -> TypedRecords:
    """The typed decoders built from ``validator``'s own schemas (once per validator)."""
    typed = _TYPED.get(validator)
    if typed is None:
        typed = _TYPED[validator] = TypedRecords(validator.schemas)
    return typed


def _cut_batch(payload: bytes, max_inflated: int) -> _BatchHead | None:
    """The batch with its records as received, or ``None`` for anything that
    :func:`wire.batch.decode_batch` might answer otherwise than by a plain success (its
    error then comes from there). Same limits first: size inflated, nesting, surrogates.

    UTF-8: msgspec checks it in every string it decodes, not in a record it only cuts out
    (``Raw``). Each record is then either decoded by the typed decoder, which decodes every
    string and key in it, or parsed by ``json`` from ``raw.decode()``, where bytes that are
    not UTF-8 make :func:`verify_batch` hand the whole batch to the reference path."""
    try:
        d = zlib.decompressobj()
        raw = d.decompress(payload, max_inflated)
        if d.unconsumed_tail:
            return None
    except zlib.error:
        return None
    if not _depth_ok(raw, MAX_DEPTH) or _may_hold_surrogate(raw):
        return None
    try:
        head = _BATCH.decode(raw)
    except (msgspec.DecodeError, ValueError):  # ValueError: not UTF-8
        return None
    return head if len(head.recs) <= MAX_BATCH_RECORDS else None


_IPAD = bytes(b ^ 0x36 for b in range(256))
_OPAD = bytes(b ^ 0x5C for b in range(256))


class _Hmac:
    """HMAC-SHA256 (RFC 2104, as :func:`wire.mac.hmac_sha256`) with each key's padded inner
    and outer hash states made once: a MAC is then two copies and two updates, without the
    one-shot call's per-call setup (about half its cost on a record). Keys kept: up to
    :attr:`MAX_KEYS` (a few tens of MB), then the table starts over: a fleet larger than
    that, seen in no order, pays about what the one-shot call costs."""

    MAX_KEYS = 1 << 16

    def __init__(self) -> None:
        self._states: dict[bytes, tuple[Any, Any]] = {}

    def hexdigest(self, key: bytes, msg: bytes) -> str:
        st = self._states.get(key)
        if st is None:
            if len(self._states) >= self.MAX_KEYS:
                self._states.clear()
            k = hashlib.sha256(key).digest() if len(key) > 64 else key
            k = k + b"\x00" * (64 - len(k))
            st = self._states[key] = (
                hashlib.sha256(k.translate(_IPAD)),
                hashlib.sha256(k.translate(_OPAD)),
            )
        inner = st[0].copy()
        inner.update(msg)
        outer = st[1].copy()
        outer.update(inner.digest())
        return outer.hexdigest()


HMAC = _Hmac()


def _verify_fast(raw: bytes, site: str, registry: Registry, typed: TypedRecords) -> Good | None:
    """The record if it is good by the fast path; ``None``: ask the reference path."""
    try:
        rec: Any = typed.decode(raw)
    except (msgspec.DecodeError, ValueError):  # ValueError: not UTF-8
        return None
    dev: str = rec.dev
    seq: int = rec.seq
    device = registry.get(dev)
    if device is None or device.site != site or not device.accepts(seq):
        return None
    data = typed.signed_bytes(raw, rec)
    if data is None or len(data) + 80 > MAX_RECORD_BYTES:
        return None
    mac: str = rec.mac
    if not hmac.compare_digest(HMAC.hexdigest(device.key_for(seq), data), mac):
        return None
    return Good(dev, seq, rec.KIND, rec.ts, mac, data[:-1].decode() + ',"mac":"' + mac + '"}')


def verify_batch(
    topic_site: str,
    payload: bytes,
    registry: Registry,
    validator: BodyValidator,
    max_bytes: int,
) -> VerifiedBatch:
    """Decode and verify a batch; raises :class:`WireError` if the batch itself is unusable.
    The same answer as :func:`verify_batch_reference`, by the fast path where it can."""
    if len(payload) > max_bytes:
        raise WireError("oversized", f"batch of {len(payload)} bytes > {max_bytes}")
    head = _cut_batch(payload, 16 * max_bytes)
    if head is None:
        return verify_batch_reference(topic_site, payload, registry, validator, max_bytes)
    site = head.site
    try:
        gateway = _check_batch(topic_site, site, head.gw, registry)
    except WireError:  # the reference's answer: a record it cannot parse comes first there
        return verify_batch_reference(topic_site, payload, registry, validator, max_bytes)
    typed = typed_records(validator)
    good: list[Good] = []
    bad: list[Bad] = []
    for item in head.recs:
        raw = bytes(item)
        res: Good | Bad | None = _verify_fast(raw, site, registry, typed)
        if res is None:
            try:
                rec = json.loads(raw.decode(), parse_float=_Float)
            except (ValueError, RecursionError):  # the whole batch is refused, as there
                return verify_batch_reference(topic_site, payload, registry, validator, max_bytes)
            res = verify_record(rec, site, registry, validator)
        (good if isinstance(res, Good) else bad).append(res)  # type: ignore[arg-type]
    return VerifiedBatch(site, gateway, head.b, good, bad)


def verify_records(
    site: str, raws: list[bytes], registry: Registry, validator: BodyValidator
) -> tuple[list[Good], list[Bad]]:
    """Verify records given as their received bytes (a sneakernet bundle's lines) with the
    same checks and verdicts as a batch's records: the fast path, else the reference one;
    bytes that are no JSON at all are one ``json`` refusal each."""
    typed = typed_records(validator)
    good: list[Good] = []
    bad: list[Bad] = []
    for raw in raws:
        res: Good | Bad | None = _verify_fast(raw, site, registry, typed)
        if res is None:
            try:
                rec = loads(raw, MAX_RECORD_BYTES, parse_float=_Float)
            except WireError as exc:
                res = Bad(exc.reason, exc.detail[:200], None, None, raw[:8192])
            else:
                res = verify_record(rec, site, registry, validator)
        (good if isinstance(res, Good) else bad).append(res)  # type: ignore[arg-type]
    return good, bad
