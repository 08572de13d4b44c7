"""The traceedge wire contract: record envelope, canonical encoding, MAC, topics.

One implementation, written in the subset of Python that MicroPython runs, shared by the
firmware, the edge agent and the collector. The codes inside records have theirs here too:
trace codes and the local date they carry (:mod:`wire.tracecode`), the GS1 check digit
(:mod:`wire.checkdigit`); only the boards that make codes carry those two. Host-only helpers
(JSON Schema validation, uplink batches) live in :mod:`wire.schemas` and :mod:`wire.batch`,
which the firmware never imports.

Errors: every error raised here is a ``ValueError``; a record that breaks the contract raises
:class:`WireError` with a machine-readable reason. Retrying the same input never helps.
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
