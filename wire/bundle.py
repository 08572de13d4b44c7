"""Sneakernet bundles (gateway → centre on removable media) and their receipts (centre →
gateway). Host only.

A bundle is one file, written by ``traceedge agent export`` and read by ``traceedge
collector import``::

    TRACEEDGE-BUNDLE 1\\n             the magic line
    <record>\\n                        one per line: the terminal's signed JSON, byte for byte
    ...                               (a newline byte inside one, JSON whitespace, becomes a
    <record>\\n                        space: the MAC covers the canonical form, not the bytes)
    <manifest>\\n                      the last line: sealed with the gateway's key

The manifest (:func:`manifest`) is a :func:`wire.auth.seal`-ed object of type ``bundle``::

    {"t": "bundle", "site": "S1", "gw": "GW-S1", "created": <ms>, "since": <ms>,
     "records": 1000000, "bytes": <bytes before the manifest line>,
     "sha256": "<hex of those bytes>", "devices": {"CYL-1": [<count>, <lo>, <hi>], ...},
     "mac": "<HMAC-SHA256 under the gateway key>"}

so the bundle proves who made it (only the gateway and the centre hold that key) and
everything before the manifest line is bound to it by length and digest: a bundle cut
short anywhere (its last line is then no manifest, or the bytes before it are fewer) or
with one byte changed is refused before a record is stored.

The receipt (:func:`receipt`) is a command (:mod:`wire.command`) of type
``bundle_receipt``, signed with the centre's command key, which every gateway already
verifies::

    {"type": "bundle_receipt", "site": "S1", "gw": "GW-S1", "bundle": "<sha256>",
     "version": <ms>, "expires": <ms>, "records": <confirmed>,
     "confirmed": {"CYL-1": [[lo, hi], ...], ...}, "sig": "..."}

``confirmed`` lists exactly the identities the centre holds with the bundle's MAC (stored
now, or stored before with the same MAC): the gateway frees those and nothing else.
"""

from __future__ import annotations

from wire import auth
from wire.envelope import WireError

MAGIC = b"TRACEEDGE-BUNDLE 1\n"
T_BUNDLE = "bundle"
RECEIPT = "bundle_receipt"
MAX_MANIFEST_BYTES = 64 * 1024 * 1024
"""A manifest lists every device once; 64 MiB holds far more devices than a site has."""
TAIL_READ = 1 << 20


def manifest(
    site: str,
    gw: str,
    created_ms: int,
    since_ms: int,
    records: int,
    nbytes: int,
    sha256: str,
    devices: dict[str, list[int]],
    key: bytes,
) -> bytes:
    """The sealed manifest line (without its newline)."""
    return auth.seal(
        {
            "t": T_BUNDLE,
            "site": site,
            "gw": gw,
            "created": created_ms,
            "since": since_ms,
            "records": records,
            "bytes": nbytes,
            "sha256": sha256,
            "devices": {d: list(v) for d, v in devices.items()},
        },
        key,
    )


def _uint(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and 0 <= v < (1 << 53)


def parse_manifest(line: bytes) -> dict[str, object]:
    """The manifest's fields, its MAC not yet checked (the caller finds the gateway's key
    by ``gw``); :class:`WireError` ``torn`` when the line is no manifest."""
    try:
        msg = auth.parse(line, T_BUNDLE, MAX_MANIFEST_BYTES)
    except WireError as exc:
        raise WireError("torn", f"the last line is not a bundle manifest ({exc})") from exc
    for k in ("site", "gw", "sha256"):
        if not isinstance(msg.get(k), str):
            raise WireError("envelope", f"manifest needs {k}")
    for k in ("created", "since", "records", "bytes"):
        if not _uint(msg.get(k)):
            raise WireError("envelope", f"manifest needs {k}")
    devices = msg.get("devices")
    if not isinstance(devices, dict) or not all(
        isinstance(v, list) and len(v) == 3 and all(_uint(x) for x in v) for v in devices.values()
    ):
        raise WireError("envelope", "manifest devices are {dev: [count, lo, hi]}")
    return msg


def check_manifest(msg: dict[str, object], keys: list[bytes]) -> None:
    """:class:`WireError` ``mac`` unless the manifest is sealed with one of ``keys``."""
    if not auth.verify(msg, keys):
        raise WireError("mac", "manifest is not sealed by the gateway's key")


def split_tail(tail: bytes) -> tuple[int, bytes]:
    """``(offset in tail, manifest line)`` of the last line of ``tail`` (the end of a
    bundle file); :class:`WireError` ``torn`` if the file does not end with a newline."""
    if not tail.endswith(b"\n"):
        raise WireError("torn", "the bundle does not end with a complete manifest line")
    start = tail.rfind(b"\n", 0, len(tail) - 1) + 1
    if start == 0:
        raise WireError("torn", "no manifest line in the bundle's last MiB")
    return start, tail[start:-1]


def record_line(rec: bytes) -> bytes:
    """A record as one bundle line: newline bytes (JSON whitespace; never inside a JSON
    string, never inside a UTF-8 sequence) become spaces."""
    return (rec.replace(b"\n", b" ") if b"\n" in rec else rec) + b"\n"


def to_ranges_sorted(ranges: list[list[int]]) -> list[list[int]]:
    """Sorted, merged inclusive ``[lo, hi]`` ranges."""
    out: list[list[int]] = []
    for lo, hi in sorted(ranges):
        if out and lo <= out[-1][1] + 1:
            out[-1][1] = max(out[-1][1], hi)
        else:
            out.append([lo, hi])
    return out


def check_receipt(cmd: dict[str, object], gw: str) -> dict[str, list[list[int]]]:
    """The confirmed ranges of a verified receipt command (:func:`wire.command.
    verify_command` checked signature, site and expiry) for gateway ``gw``."""
    if cmd.get("type") != RECEIPT:
        raise WireError("envelope", f"not a bundle receipt but {cmd.get('type')!r}")
    if cmd.get("gw") != gw:
        raise WireError("site", f"receipt for gateway {cmd.get('gw')!r}, this is {gw!r}")
    conf = cmd.get("confirmed")
    if not isinstance(conf, dict):
        raise WireError("envelope", "receipt needs confirmed")
    out: dict[str, list[list[int]]] = {}
    for dev, ranges in conf.items():
        if not isinstance(ranges, list):
            raise WireError("envelope", "confirmed ranges are [[lo, hi], ...]")
        for r in ranges:
            if not (isinstance(r, list) and len(r) == 2 and _uint(r[0]) and _uint(r[1])):
                raise WireError("envelope", "confirmed ranges are [[lo, hi], ...]")
            if r[0] > r[1]:
                raise WireError("envelope", "confirmed range with lo > hi")
        out[str(dev)] = [[int(r[0]), int(r[1])] for r in ranges]
    return out
