"""The gateway's half of the sneakernet: export the outbox to a bundle on removable media,
and free what the centre's receipt confirms (format: :mod:`wire.bundle`).

* :func:`export` reads the outbox forward in chunks (memory stays bounded whatever its
  depth), writes ``<dir>/<site>-<gw>-<UTC time>.bundle.part``, seals the manifest with the
  gateway's key, and makes it durable under its final name ``….bundle``
  (:func:`hostlib.durable.durable_replace`: fsync, rename, fsync of the folder): a bundle
  that exists is whole. It deletes nothing: the records stay in the outbox until a
  receipt or an uplink ack frees them.
* :func:`apply_receipt` verifies the centre's signature (the agent's ``command_key``), that
  the receipt is for this site and gateway and has not expired, then deletes exactly the
  confirmed ``(dev, seq)`` ranges; a record not confirmed stays and goes up when the link
  returns.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from edge_agent.outbox import Outbox
from hostlib.durable import durable_replace
from hostlib.errors import BundleError
from hostlib.registry import Device
from wire import bundle as fmt
from wire.command import load_public_key, verify_command
from wire.envelope import WireError

CHUNK = 5000
Progress = Callable[[int, int], None]
"""Called with (records written so far, records to write)."""


@dataclass(frozen=True)
class Exported:
    path: Path
    records: int
    bytes: int
    devices: int
    sha256: str


def _utc_name(t: float) -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(t))


def export(
    outbox: Outbox,
    site: str,
    gateway: Device,
    to_dir: Path,
    since: float = 0.0,
    progress: Progress | None = None,
    now: float | None = None,
) -> Exported:
    """Write every outbox record received at or after ``since`` (epoch seconds) to a new
    bundle in ``to_dir``; returns what was written. :class:`BundleError` when there is
    nothing to export."""
    created = time.time() if now is None else now
    total = outbox.count_since(since)
    if total == 0:
        raise BundleError("nothing to export: the outbox holds no record since then")
    to_dir.mkdir(parents=True, exist_ok=True)
    final = to_dir / f"{site}-{gateway.dev}-{_utc_name(created)}.bundle"
    part = final.with_name(final.name + ".part")
    h = hashlib.sha256()
    devices: dict[str, list[int]] = {}
    n = nbytes = cursor = 0
    try:
        with open(part, "wb", buffering=1 << 20) as f:
            f.write(fmt.MAGIC)
            h.update(fmt.MAGIC)
            nbytes = len(fmt.MAGIC)
            while True:
                rows = outbox.export_rows(cursor, since, CHUNK)
                if not rows:
                    break
                chunk = b"".join(fmt.record_line(rec) for _, _, _, rec in rows)
                f.write(chunk)
                h.update(chunk)
                nbytes += len(chunk)
                for _, dev, seq, _ in rows:
                    d = devices.get(dev)
                    if d is None:
                        devices[dev] = [1, seq, seq]
                    else:
                        d[0] += 1
                        d[1] = min(d[1], seq)
                        d[2] = max(d[2], seq)
                n += len(rows)
                cursor = rows[-1][0]
                if progress:
                    progress(n, max(total, n))
            digest = h.hexdigest()
            line = fmt.manifest(
                site,
                gateway.dev,
                int(created * 1000),
                int(since * 1000),
                n,
                nbytes,
                digest,
                devices,
                gateway.key,
            )
            f.write(line + b"\n")
        durable_replace(part, final)
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    return Exported(final, n, nbytes + len(line) + 1, len(devices), digest)


@dataclass(frozen=True)
class Freed:
    bundle: str
    confirmed: int
    freed: int
    devices: int


def apply_receipt(
    outbox: Outbox,
    receipt: Path,
    site: str,
    gateway: Device,
    command_key: Path,
    now_ms: int | None = None,
) -> Freed:
    """Verify the centre's receipt and free the records it confirms; :class:`BundleError`
    (nothing freed) when it does not verify or is not for this gateway."""
    try:
        payload = receipt.read_bytes()
    except OSError as exc:
        raise BundleError(f"{receipt}: cannot read the receipt: {exc.strerror}") from exc
    try:
        cmd = verify_command(
            payload,
            load_public_key(command_key),
            site,
            int(time.time() * 1000) if now_ms is None else now_ms,
        )
        confirmed = fmt.check_receipt(cmd, gateway.dev)
    except WireError as exc:
        raise BundleError(f"{receipt}: receipt refused ({exc}); nothing freed") from exc
    freed = outbox.delete_identities(
        {dev: [(lo, hi) for lo, hi in ranges] for dev, ranges in confirmed.items()}
    )
    records = cmd.get("records")
    return Freed(
        str(cmd.get("bundle", "")),
        records if isinstance(records, int) else 0,
        freed,
        len(confirmed),
    )
