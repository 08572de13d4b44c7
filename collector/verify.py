"""Verify an uplink batch record by record: envelope, size, device, site, schema, MAC.

Pure apart from the registry lookup; the store never sees a record that failed here.
"""

from __future__ import annotations

import hmac
import json
from dataclasses import dataclass

from hostlib.registry import Device, Registry
from wire.batch import decode_batch
from wire.canonical import canonical_trusted
from wire.envelope import MAX_RECORD_BYTES, WireError, check_envelope, unsigned
from wire.mac import hmac_sha256
from wire.schemas import BodyValidator


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


def verify_batch(
    topic_site: str,
    payload: bytes,
    registry: Registry,
    validator: BodyValidator,
    max_bytes: int,
) -> VerifiedBatch:
    """Decode and verify a batch; raises :class:`WireError` if the batch itself is unusable."""
    if len(payload) > max_bytes:
        raise WireError("oversized", f"batch of {len(payload)} bytes > {max_bytes}")
    obj = decode_batch(payload, max_inflated=16 * max_bytes, parse_float=_Float)
    site, batch_id = str(obj["site"]), str(obj["b"])
    if site != topic_site:
        raise WireError("wrong_site", f"batch for {site} published under {topic_site}")
    gateway = registry.get(str(obj["gw"]))
    if gateway is None or gateway.type != "gateway" or gateway.site != site:
        # without the gateway's key no ack can be sealed: nothing is stored, so nothing
        # is acknowledged that the sender would then delete
        raise WireError("unknown_gateway", f"{obj['gw']!r} is not a gateway of site {site}")
    good: list[Good] = []
    bad: list[Bad] = []
    recs = obj["recs"]
    assert isinstance(recs, list)
    for rec in recs:
        res = verify_record(rec, site, registry, validator)
        (good if isinstance(res, Good) else bad).append(res)  # type: ignore[arg-type]
    return VerifiedBatch(site, gateway, batch_id, good, bad)
