"""The record envelope: make, sign, decode and verify.

A record is a JSON object::

    {"v": 2, "dev": "CYL-R-0001", "seq": 42, "boot": 3, "kind": "cylinder.fill",
     "ts": 1763900000000, "tq": "ntp", "body": {...}, "mac": "<64 hex>"}

``ts`` is the capture time in milliseconds since the Unix epoch (UTC); ``tq`` says how far
to trust it (``ntp``, ``rtc``, ``unsynced``). ``mac`` is HMAC-SHA256 under the device's
provisioned key over the canonical encoding of every other field. Identity is
``(dev, seq)``; ``seq`` starts at 1 and is never reused.
"""

from wire.canonical import CanonicalError, canonical
from wire.mac import hexlify, hmac_sha256

# 2: control messages sealed or signed (wire.auth, wire.command); 1 is refused by name.
VERSION = 2

KINDS = (
    "cylinder.fill",
    "cylinder.check",
    "elevator.status",
    "elevator.fault",
    "elevator.maintenance",
    "market.entry",
    "market.settlement",
    "goods.in",
    "goods.out",
    "goods.count",
    "goods.pack",
    "goods.dispatch",
)
# Legally relevant records: never evicted from an outbox.
PROTECTED_KINDS = (
    "cylinder.fill",
    "cylinder.check",
    "elevator.fault",
    "elevator.maintenance",
    "market.entry",
    "market.settlement",
    "goods.in",
    "goods.out",
    "goods.count",
    "goods.pack",
    "goods.dispatch",
)
# Periodic samples an outbox may thin when it is full.
THINNABLE_KINDS = ("elevator.status",)

TIME_QUALITY = ("ntp", "rtc", "unsynced")

MAX_RECORD_BYTES = 4096
MAX_DEV_LEN = 32

_FIELDS = ("v", "dev", "seq", "boot", "kind", "ts", "tq", "body", "mac")


class WireError(ValueError):
    """Root of the wire contract's errors. ``reason`` is a short machine-readable code."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(reason + (": " + detail if detail else ""))
        self.reason = reason
        self.detail = detail


_DEV_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_."


def check_dev(dev: object) -> None:
    """A device id: 1..32 of ``A-Z a-z 0-9 - _ .`` (safe in topics and file names)."""
    if not isinstance(dev, str) or not dev or len(dev) > MAX_DEV_LEN:
        raise WireError("envelope", "dev must be a string of 1..%d characters" % MAX_DEV_LEN)
    for ch in dev:
        if ch not in _DEV_CHARS:
            raise WireError("envelope", "dev may hold only A-Z a-z 0-9 - _ .")


def unsigned(rec: dict[str, object]) -> dict[str, object]:
    """The record without its ``mac``: what the MAC covers."""
    return {k: v for k, v in rec.items() if k != "mac"}


def sign(rec: dict[str, object], key: bytes) -> str:
    """The MAC (lower-case hex) of ``rec`` under ``key``; ``rec['mac']`` is ignored."""
    try:
        data = canonical(unsigned(rec))
    except CanonicalError as exc:
        raise WireError("encoding", str(exc)) from exc
    return hexlify(hmac_sha256(key, data))


def make_record(
    dev: str,
    seq: int,
    boot: int,
    kind: str,
    ts: int,
    tq: str,
    body: dict[str, object],
    key: bytes,
) -> dict[str, object]:
    """Build and sign a record. Raises :class:`WireError` on a malformed field."""
    rec: dict[str, object] = {
        "v": VERSION,
        "dev": dev,
        "seq": seq,
        "boot": boot,
        "kind": kind,
        "ts": ts,
        "tq": tq,
        "body": body,
    }
    check_envelope(rec, False)
    rec["mac"] = sign(rec, key)
    return rec


def check_envelope(rec: object, with_mac: bool = True) -> None:
    """Check the envelope's shape (not the body's schema, not the MAC)."""
    if not isinstance(rec, dict):
        raise WireError("envelope", "record is not a JSON object")
    for k in rec:
        if k not in _FIELDS:
            raise WireError("envelope", "unknown field %r" % k)
    for k in _FIELDS:
        if k not in rec and (with_mac or k != "mac"):
            raise WireError("envelope", "missing field %r" % k)
    if rec["v"] != VERSION:
        if rec["v"] == 1:
            raise WireError(
                "version",
                "wire version 1 is no longer accepted: update the device's firmware"
                " (this side speaks %d)" % VERSION,
            )
        raise WireError(
            "version", "unsupported version %r (this side speaks %d)" % (rec["v"], VERSION)
        )
    check_dev(rec["dev"])
    for k in ("seq", "boot", "ts"):
        val = rec[k]
        if not isinstance(val, int) or isinstance(val, bool) or val < 0 or val >= 1 << 53:
            raise WireError("envelope", "%s must be a non-negative integer" % k)
    if rec["seq"] == 0:
        raise WireError("envelope", "seq starts at 1")
    if rec["kind"] not in KINDS:
        raise WireError("kind", "unknown kind %r" % (rec["kind"],))
    if rec["tq"] not in TIME_QUALITY:
        raise WireError("envelope", "tq must be one of ntp, rtc, unsynced")
    if not isinstance(rec["body"], dict):
        raise WireError("envelope", "body must be an object")
    if with_mac:
        mac = rec["mac"]
        if not isinstance(mac, str) or len(mac) != 64:
            raise WireError("envelope", "mac must be 64 hex characters")


def _no_float(s: str) -> object:
    raise WireError("encoding", "floats are not allowed (%s)" % s)


def decode_record(data: bytes) -> dict[str, object]:
    """Parse one record from JSON bytes and check its envelope. No MAC check.

    Total: any bytes in, a record or a :class:`WireError` out (:func:`wire.limits.loads`
    bounds the size, the depth and the strings first)."""
    from wire.limits import loads  # imports this module: not at the top

    rec = loads(data, MAX_RECORD_BYTES, parse_float=_no_float)
    check_envelope(rec)
    return rec  # type: ignore[return-value]


def verify_mac(rec: dict[str, object], key: bytes) -> bool:
    """True if ``rec['mac']`` is the MAC of ``rec`` under ``key``."""
    try:
        expected = sign(rec, key)
    except WireError:
        return False
    mac = rec.get("mac")
    if not isinstance(mac, str) or len(mac) != len(expected):
        return False
    diff = 0
    for a, b in zip(expected, mac):
        diff |= ord(a) ^ ord(b)
    return diff == 0


def record_digest(rec: dict[str, object]) -> str:
    """Content identity of a signed record: its MAC (covers every other field)."""
    mac = rec.get("mac")
    return mac if isinstance(mac, str) else ""
