"""HMAC-SHA256 (RFC 2104) over ``hashlib.sha256``, so it runs where ``hmac`` is missing."""

import hashlib

_BLOCK = 64


def _hmac_pure(key: bytes, msg: bytes) -> bytes:
    if len(key) > _BLOCK:
        key = hashlib.sha256(key).digest()
    key = key + b"\x00" * (_BLOCK - len(key))
    ipad = bytes(b ^ 0x36 for b in key)
    opad = bytes(b ^ 0x5C for b in key)
    inner = hashlib.sha256(ipad)
    inner.update(msg)
    outer = hashlib.sha256(opad)
    outer.update(inner.digest())
    return outer.digest()


try:
    # CPython's one-shot C HMAC. MicroPython 1.27 (WebAssembly) has an ``hmac`` module
    # without ``digest``: check the function, not the module.
    from hmac import digest as _digest

    def hmac_sha256(key: bytes, msg: bytes) -> bytes:
        """HMAC-SHA256 of ``msg`` under ``key`` (C implementation where available)."""
        return _digest(key, msg, "sha256")

except ImportError:
    hmac_sha256 = _hmac_pure


def hexlify(b: bytes) -> str:
    """Lower-case hex of ``b`` (``binascii`` differs between runtimes)."""
    try:
        return b.hex()
    except AttributeError:  # MicroPython built without bytes.hex
        return "".join("%02x" % x for x in b)


def unhexlify(s: str) -> bytes:
    """Bytes of an even-length hex string; ``ValueError`` on anything else."""
    if len(s) % 2:
        raise ValueError("odd-length hex string")
    return bytes(int(s[i : i + 2], 16) for i in range(0, len(s), 2))
