"""Uplink batches (gateway → central). Host only.

A batch is zlib-compressed JSON::

    {"site": "S1", "gw": "<gateway id>", "b": "<batch id>", "recs": [<record>, ...]}

The records inside are the terminals' own JSON, byte for byte. ``gw`` names the gateway
that sent it: the collector seals its ack (``edge/{site}/ack``, :func:`wire.auth.batch_ack`)
with that gateway's key and binds it to :func:`wire.auth.batch_digest` of the batch's bytes,
so only a collector that holds the key can make the gateway delete anything, and only for
the batch it sent. The gateway deletes a batch's records only on such an ack; the collector
sends it only after its commit.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable

from wire.envelope import WireError
from wire.limits import loads

MAX_INFLATED = 64 * 1024 * 1024
# Records per batch: the agent's own bound on ``batch_records`` (edge_agent/settings.py).
# More is refused as one error before a single record is looked at.
MAX_BATCH_RECORDS = 100_000


def encode_batch(site: str, gw: str, batch_id: str, records: list[bytes], level: int = 1) -> bytes:
    head = json.dumps({"site": site, "gw": gw, "b": batch_id}, separators=(",", ":"))
    body = head[:-1].encode() + b',"recs":[' + b",".join(records) + b"]}"
    return zlib.compress(body, level)


def decode_batch(
    payload: bytes,
    max_inflated: int = MAX_INFLATED,
    parse_float: Callable[[str], object] | None = None,
    max_records: int = MAX_BATCH_RECORDS,
) -> dict[str, object]:
    """Inflate and parse a batch; :class:`WireError` on garbage, a zip bomb, nesting deeper
    than :data:`wire.limits.MAX_DEPTH`, a lone surrogate or more than ``max_records``.

    Total: any bytes in, a batch (its records still unchecked) or a ``WireError`` out.
    ``parse_float`` lets the collector turn floats into values that fail every check.
    """
    try:
        d = zlib.decompressobj()
        raw = d.decompress(payload, max_inflated)
        if d.unconsumed_tail:
            raise WireError("oversized", f"batch inflates past {max_inflated} bytes")
    except zlib.error as exc:
        raise WireError("compression", str(exc)) from exc
    obj = loads(raw, max_inflated, parse_float=parse_float)
    if (
        not isinstance(obj, dict)
        or not isinstance(obj.get("b"), str)
        or not isinstance(obj.get("site"), str)
        or not isinstance(obj.get("recs"), list)
    ):
        raise WireError("envelope", "batch needs site, gw, b and recs")
    if not isinstance(obj.get("gw"), str):
        raise WireError(
            "version", "batch without gw: the gateway speaks wire version 1; update its agent"
        )
    recs = obj["recs"]
    assert isinstance(recs, list)
    if len(recs) > max_records:
        raise WireError("count", f"{len(recs)} records > {max_records} in one batch")
    return obj


def to_ranges(seqs: list[int]) -> list[tuple[int, int]]:
    """Sorted, merged inclusive ranges of ``seqs``."""
    out: list[tuple[int, int]] = []
    for s in sorted(set(seqs)):
        if out and out[-1][1] == s - 1:
            out[-1] = (out[-1][0], s)
        else:
            out.append((s, s))
    return out
