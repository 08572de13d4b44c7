"""Authenticated control messages (MicroPython subset): proof of who sent every message that
makes a process delete, allow, stop or change anything (``DESIGN.md``, "Trust").

A *sealed* message is a JSON object with a type ``t``, the identity it is bound to, and
``mac``: HMAC-SHA256 under a provisioned key over the canonical encoding of every other
field (the same encoding records use). The type and the identity inside the MAC keep a
sealed message from being replayed as another kind or for another device or site.

==============  ==================  =========================================================
message         topic               fields (besides ``t`` and ``mac``); key
==============  ==================  =========================================================
terminal ack    ``t/{dev}/ack``     ``dev, wm, r, bad``; the device key
gate answer     ``t/{dev}/cmd``     ``dev, id, n, decision, reasons, reg_ver[, seq][, error]``;
                                    the device key; ``n`` echoes the request's nonce
stop list       ``t/{dev}/cmd``     ``dev, version, batches``; the device key
batch ack       ``edge/{site}/ack`` ``site, gw, b, digest, stored, dup, bad``; the gateway key;
                                    ``digest`` is :func:`batch_digest` of the batch's bytes
site status     ``edge/{site}/status`` ``site, gw, ...``; the gateway key
==============  ==================  =========================================================

A terminal or agent that cannot verify a message ignores it and counts it: a forged or
damaged control message costs availability at worst, never a record or a wrong decision.
Commands from the centre to the gateways are signed with Ed25519 instead
(:mod:`wire.command`, host only): gateways hold only the public key.

Every error here is a :class:`~wire.envelope.WireError` (reasons ``oversized``, ``depth``,
``json``, ``envelope``, ``type``, ``mac``); :func:`parse` and everything built on it is
total: any bytes in, a message or one of these out.
"""

import hashlib

from wire.canonical import CanonicalError, canonical
from wire.envelope import WireError
from wire.limits import loads
from wire.mac import hexlify, hmac_sha256, unhexlify

MAX_SEALED_BYTES = 65536

T_ACK = "ack"
T_GATE = "gate"
T_STOP_LIST = "stop_list"
T_BATCH_ACK = "batch_ack"
T_STATUS = "status"
T_DISPATCH = "dispatch"


def mac_of(msg: dict[str, object], key: bytes) -> str:
    """The MAC (lower-case hex) of ``msg`` without its ``mac`` field, under ``key``."""
    rest: dict[str, object] = {}
    for k in msg:
        if k != "mac":
            rest[k] = msg[k]
    problem = None
    try:
        data = canonical(rest)
    except CanonicalError as exc:
        problem = str(exc)
    if problem is not None:  # raised outside the handler: MicroPython has no chaining
        raise WireError("encoding", problem)
    return hexlify(hmac_sha256(key, data))


def seal(msg: dict[str, object], key: bytes) -> bytes:
    """``msg`` with its ``mac`` added, as canonical JSON bytes ready to publish."""
    out: dict[str, object] = {}
    for k in msg:
        if k != "mac":
            out[k] = msg[k]
    out["mac"] = mac_of(out, key)
    return canonical(out)


def _same(a: str, b: object) -> bool:
    """Constant-time comparison of two hex MACs."""
    if not isinstance(b, str) or len(a) != len(b):
        return False
    diff = 0
    for i in range(len(a)):
        diff |= ord(a[i]) ^ ord(b[i])
    return diff == 0


def parse(payload: bytes, t: str, max_bytes: int = MAX_SEALED_BYTES) -> dict[str, object]:
    """Parse a sealed message of type ``t`` without checking its MAC (to find the key)."""
    msg = loads(payload, max_bytes)
    if not isinstance(msg, dict):
        raise WireError("envelope", "not a JSON object")
    if msg.get("t") != t:
        raise WireError("type", "expected t=%r" % t)
    if not isinstance(msg.get("mac"), str):
        raise WireError("envelope", "no mac")
    return msg


def verify(msg: dict[str, object], keys: list[bytes]) -> bool:
    """True if ``msg['mac']`` verifies under one of ``keys`` (old and new during rotation)."""
    for key in keys:
        try:
            if _same(mac_of(msg, key), msg.get("mac")):
                return True
        except WireError:
            return False
    return False


def unseal(
    payload: bytes, t: str, keys: list[bytes], max_bytes: int = MAX_SEALED_BYTES
) -> dict[str, object]:
    """Parse and verify a sealed message of type ``t``; :class:`WireError` if it does not
    verify under any of ``keys``."""
    msg = parse(payload, t, max_bytes)
    if not verify(msg, keys):
        raise WireError("mac", "%s message does not verify" % t)
    return msg


def _uint(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and 0 <= v < (1 << 53)


# -- terminal acks (agent → terminal) ---------------------------------------------------------


def terminal_ack(
    dev: str, wm: int, ranges: list[tuple[int, int]], bad: list[int], key: bytes
) -> bytes:
    """The agent's ack to ``dev``: every seq ≤ ``wm`` committed; ``ranges`` ``[lo, hi]``
    committed by this group; ``bad`` seqs quarantined (only records whose MAC verified)."""
    return seal(
        {"t": T_ACK, "dev": dev, "wm": wm, "r": [[lo, hi] for lo, hi in ranges], "bad": bad},
        key,
    )


def open_terminal_ack(
    payload: bytes, dev: str, keys: list[bytes]
) -> tuple[int, list[tuple[int, int]], list[int]]:
    """``(wm, ranges, bad)`` of a verified ack for ``dev``; :class:`WireError` otherwise."""
    msg = unseal(payload, T_ACK, keys)
    if msg.get("dev") != dev:
        raise WireError("envelope", "ack for another device")
    wm, r, bad = msg.get("wm"), msg.get("r"), msg.get("bad")
    if (
        not isinstance(wm, int)
        or not _uint(wm)
        or not isinstance(r, list)
        or not isinstance(bad, list)
    ):
        raise WireError("envelope", "ack needs wm, r and bad")
    ranges = []
    for x in r:
        if not isinstance(x, list) or len(x) != 2 or not _uint(x[0]) or not _uint(x[1]):
            raise WireError("envelope", "ack ranges are [lo, hi] pairs")
        if x[0] > x[1]:
            raise WireError("envelope", "ack range with lo > hi")
        ranges.append((x[0], x[1]))
    for s in bad:
        if not _uint(s):
            raise WireError("envelope", "bad seqs are integers")
    return wm, ranges, bad


# -- fill-gate answers (agent → cylinder reader) ----------------------------------------------


def gate_answer(
    dev: str,
    rid: object,
    nonce: str,
    decision: str,
    reasons: list[str],
    reg_ver: int,
    key: bytes,
    seq: object = None,
    error: object = None,
) -> bytes:
    """The gate's answer to request ``rid`` of ``dev``, bound to the request's ``nonce``."""
    msg: dict[str, object] = {
        "t": T_GATE,
        "dev": dev,
        "id": rid,
        "n": nonce,
        "decision": decision,
        "reasons": reasons,
        "reg_ver": reg_ver,
    }
    if seq is not None:
        msg["seq"] = seq
    if error is not None:
        msg["error"] = error
    return seal(msg, key)


def check_gate_answer(msg: dict[str, object], dev: str, nonce: str, keys: list[bytes]) -> bool:
    """True if ``msg`` (parsed) is a verified answer for ``dev`` bound to ``nonce``. Only
    then may a reader act on it; anything else means *no filling*."""
    return (
        msg.get("t") == T_GATE
        and msg.get("dev") == dev
        and isinstance(nonce, str)
        and len(nonce) >= 16
        and msg.get("n") == nonce
        and msg.get("decision") in ("allow", "deny")
        and verify(msg, keys)
    )


def dispatch_request(dev: str, fields: dict[str, object], key: bytes) -> bytes:
    """A warehouse terminal's dispatch request (``fields``: id, n, items, …), sealed with
    its key: an allowed dispatch changes the agent's stock, so the agent acts only on a
    request that verifies (docs/warehouse.md)."""
    msg: dict[str, object] = {"t": T_DISPATCH, "dev": dev}
    for k in fields:
        if k not in ("t", "dev", "mac"):
            msg[k] = fields[k]
    return seal(msg, key)


def check_dispatch_request(msg: object, dev: str, keys: list[bytes]) -> bool:
    """True if ``msg`` (parsed) is a dispatch request of ``dev`` sealed with one of ``keys``."""
    return (
        isinstance(msg, dict)
        and msg.get("t") == T_DISPATCH
        and msg.get("dev") == dev
        and isinstance(msg.get("mac"), str)
        and verify(msg, keys)
    )


# -- batch acks (collector → agent) and status (agent → collector) ----------------------------


def batch_digest(payload: bytes) -> str:
    """SHA-256 (hex) of a batch exactly as published: what a batch ack is bound to."""
    return hexlify(hashlib.sha256(payload).digest())


def batch_ack(
    site: str,
    gw: str,
    batch_id: str,
    digest: str,
    stored: int,
    dup: int,
    bad: int,
    key: bytes,
) -> bytes:
    """A collector's ack of batch ``batch_id`` (bytes hashing to ``digest``) from gateway ``gw``."""
    return seal(
        {
            "t": T_BATCH_ACK,
            "site": site,
            "gw": gw,
            "b": batch_id,
            "digest": digest,
            "stored": stored,
            "dup": dup,
            "bad": bad,
        },
        key,
    )


def open_batch_ack(payload: bytes, site: str, gw: str, keys: list[bytes]) -> dict[str, object]:
    """A verified batch ack for this site and gateway (check ``b`` and ``digest`` against
    the batch in flight); :class:`WireError` otherwise."""
    msg = unseal(payload, T_BATCH_ACK, keys)
    if msg.get("site") != site or msg.get("gw") != gw:
        raise WireError("envelope", "ack for another site or gateway")
    if not isinstance(msg.get("b"), str) or not isinstance(msg.get("digest"), str):
        raise WireError("envelope", "ack needs b and digest")
    for k in ("stored", "dup", "bad"):
        if not _uint(msg.get(k)):
            raise WireError("envelope", "ack needs counts")
    return msg


def status(site: str, gw: str, fields: dict[str, object], key: bytes) -> bytes:
    """The gateway's status message for ``site``, sealed with its key."""
    msg: dict[str, object] = {}
    for k in fields:
        msg[k] = fields[k]
    msg["t"] = T_STATUS
    msg["site"] = site
    msg["gw"] = gw
    return seal(msg, key)


# -- orders relayed to terminals (agent → terminal) -------------------------------------------


def stop_list(dev: str, version: int, batches: list[object], key: bytes) -> bytes:
    """The site's stop list relayed to market terminal ``dev`` (the agent verified the
    centre's signature first). A terminal takes it only when it verifies and ``version``
    is above the one it holds; a lifted stop is a newer list without that batch."""
    return seal({"t": T_STOP_LIST, "dev": dev, "version": version, "batches": batches}, key)


def open_stop_list(payload: bytes, dev: str, keys: list[bytes]) -> dict[str, object]:
    """A verified stop list for ``dev``; :class:`WireError` otherwise (the caller checks
    that ``version`` grew)."""
    msg = unseal(payload, T_STOP_LIST, keys)
    if msg.get("dev") != dev:
        raise WireError("envelope", "stop list for another device")
    if not _uint(msg.get("version")) or not isinstance(msg.get("batches"), list):
        raise WireError("envelope", "stop list needs version and batches")
    return msg


# -- keys carried to a gateway or terminal ----------------------------------------------------


def _pad(key: bytes, dev: str, from_seq: int) -> bytes:
    return hmac_sha256(key, ("traceedge-key-wrap|%s|%d" % (dev, from_seq)).encode())


def wrap_key(new_key: bytes, under: bytes, dev: str, from_seq: int) -> str:
    """``new_key`` (32 bytes) for ``dev`` from ``from_seq`` on, hidden under key ``under``
    (the gateway's key, or the device's current key) as hex. The pad is HMAC-SHA256 under
    ``under`` of the device id and ``from_seq``, which are unique per rotation, so no pad is
    ever used twice; authenticity comes from the signature or seal around it."""
    if len(new_key) != 32:
        raise WireError("key", "keys are 32 bytes")
    pad = _pad(under, dev, from_seq)
    return hexlify(bytes(a ^ b for a, b in zip(new_key, pad)))


def unwrap_key(wrapped: str, under: bytes, dev: str, from_seq: int) -> bytes:
    """The key :func:`wrap_key` hid; :class:`WireError` on malformed input."""
    try:
        raw = unhexlify(wrapped)
    except (ValueError, TypeError):
        raw = b""
    if not raw:
        raise WireError("key", "wrapped key is not hex")
    if len(raw) != 32:
        raise WireError("key", "keys are 32 bytes")
    pad = _pad(under, dev, from_seq)
    return bytes(a ^ b for a, b in zip(raw, pad))
