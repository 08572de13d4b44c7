"""The traceedge wire contract: record envelope, canonical encoding, MAC, topics.

One implementation, written in the subset of Python that MicroPython runs, shared by the
firmware, the edge agent and the collector. Host-only helpers (JSON Schema validation,
uplink batches) live in :mod:`wire.schemas` and :mod:`wire.batch`, which the firmware
never imports.

Errors: every error raised here is a :class:`WireError`; retrying the same input never helps.
"""

from wire.canonical import canonical
from wire.envelope import (
    KINDS,
    PROTECTED_KINDS,
    THINNABLE_KINDS,
    TIME_QUALITY,
    VERSION,
    WireError,
    decode_record,
    make_record,
    record_digest,
    sign,
    verify_mac,
)
from wire.mac import hmac_sha256

__all__ = [
    "KINDS",
    "PROTECTED_KINDS",
    "THINNABLE_KINDS",
    "TIME_QUALITY",
    "VERSION",
    "WireError",
    "canonical",
    "decode_record",
    "hmac_sha256",
    "make_record",
    "record_digest",
    "sign",
    "verify_mac",
]
