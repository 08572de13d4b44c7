"""Commands from the centre to the gateways (``edge/{site}/cmd``), signed with Ed25519.
Host only: terminals never see these (the agent relays what they need, sealed with each
device's key, :mod:`wire.auth`).

A command is a JSON object::

    {"type": "stop_list", "site": "S1", "version": 7, "expires": 1764500000000,
     ..., "sig": "<128 hex>"}

``sig`` is Ed25519 under the centre's command key over ``DOMAIN`` + the canonical encoding
of every other field. ``site`` is the site it is for (``"*"``: every site). ``version``
must grow per ``type`` at each gateway (the gateway keeps the last one it applied), so a
replayed older command changes nothing; ``expires`` (ms since the epoch) bounds how long a
captured command stays usable. The gateways hold only the public key: whoever takes a
gateway cannot command the others.

Errors are :class:`~wire.envelope.WireError` with reasons ``oversized``, ``json``,
``depth``, ``envelope``, ``signature``, ``site``, ``expired``; :func:`verify_command` is
total: any bytes in, a command or one of these out.
"""

from __future__ import annotations

from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from wire.canonical import CanonicalError, canonical
from wire.envelope import WireError
from wire.limits import loads

DOMAIN = b"traceedge-command-v1\x00"
MAX_COMMAND_BYTES = 16 * 1024 * 1024  # a full cylinder registry of a large city
ALL_SITES = "*"


def _signed_bytes(cmd: dict[str, object]) -> bytes:
    try:
        return DOMAIN + canonical({k: v for k, v in cmd.items() if k != "sig"})
    except CanonicalError as exc:
        raise WireError("encoding", str(exc)) from exc


def _uint(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and 0 <= v < (1 << 53)


def sign_command(cmd: dict[str, object], key: Ed25519PrivateKey) -> bytes:
    """``cmd`` with its ``sig``, as canonical JSON ready to publish."""
    for field, ok in (
        ("type", isinstance(cmd.get("type"), str)),
        ("site", isinstance(cmd.get("site"), str)),
        ("version", _uint(cmd.get("version"))),
        ("expires", _uint(cmd.get("expires"))),
    ):
        if not ok:
            raise WireError("envelope", f"command needs {field}")
    out = {k: v for k, v in cmd.items() if k != "sig"}
    out["sig"] = key.sign(_signed_bytes(out)).hex()
    return canonical(out)


def verify_command(
    payload: bytes,
    key: Ed25519PublicKey,
    site: str,
    now_ms: int,
    max_bytes: int = MAX_COMMAND_BYTES,
) -> dict[str, object]:
    """The command, if its signature verifies, it is for ``site`` (or every site) and it
    has not expired at ``now_ms``; :class:`WireError` otherwise. The caller checks that
    ``version`` grew."""
    cmd = loads(payload, max_bytes)
    if not isinstance(cmd, dict):
        raise WireError("envelope", "command is not a JSON object")
    sig = cmd.get("sig")
    if not isinstance(sig, str) or len(sig) != 128:
        raise WireError("signature", "no Ed25519 signature (sig)")
    try:
        key.verify(bytes.fromhex(sig), _signed_bytes(cmd))
    except (InvalidSignature, ValueError) as exc:
        raise WireError("signature", "not signed by the centre's command key") from exc
    if not isinstance(cmd.get("type"), str) or not _uint(cmd.get("version")):
        raise WireError("envelope", "command needs type and version")
    if cmd.get("site") not in (site, ALL_SITES):
        raise WireError("site", f"command for site {cmd.get('site')!r}, this is {site!r}")
    expires = cmd.get("expires")
    if not isinstance(expires, int) or not _uint(expires) or expires <= now_ms:
        raise WireError("expired", f"command expired at {expires!r} (now {now_ms})")
    return cmd


# -- keys ------------------------------------------------------------------------------------


def new_private_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def private_pem(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def public_pem(key: Ed25519PrivateKey | Ed25519PublicKey) -> bytes:
    pub = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return pub.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def load_private_key(path: Path | str) -> Ed25519PrivateKey:
    """The centre's command key from a PEM file; :class:`WireError` if it is not Ed25519."""
    try:
        key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise WireError("key", f"{path}: cannot read an Ed25519 private key: {exc}") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise WireError("key", f"{path}: not an Ed25519 private key")
    return key


def load_public_key(path: Path | str) -> Ed25519PublicKey:
    """The command key's public half from a PEM file (what a gateway holds)."""
    try:
        key = serialization.load_pem_public_key(Path(path).read_bytes())
    except (OSError, ValueError, TypeError) as exc:
        raise WireError("key", f"{path}: cannot read an Ed25519 public key: {exc}") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise WireError("key", f"{path}: not an Ed25519 public key")
    return key
