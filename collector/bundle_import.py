"""The centre's half of the sneakernet: check a bundle, store its records once, sign a
receipt (format: :mod:`wire.bundle`).

:func:`check_bundle` refuses, before a single record is stored, a bundle that is torn (no
manifest line at its end, fewer or more bytes than the manifest says), tampered with (the
SHA-256 over its records differs from the manifest's, the manifest's MAC does not verify
under the gateway's key) or from a gateway the registry does not know. Only then does
:func:`import_bundle` read the records, in chunks (memory stays bounded), through the same
verification as an uplink batch (:func:`collector.verify.verify_records`) into the same
:meth:`Store.commit`: a record already stored with the same MAC is a duplicate, with other
content a conflict (quarantined, alarm raised), a bad record is quarantined. The receipt
confirms every good record that was not a conflict, and nothing else.

The bytes are hashed again while they are imported: a file that changes between the check
and the import (a medium pulled and pushed back) gets no receipt (what was stored was
verified record by record all the same).
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from collector.store import Store
from collector.verify import verify_records
from hostlib.durable import durable_replace
from hostlib.errors import BundleError
from hostlib.registry import Device, Registry
from wire import bundle as fmt
from wire.command import sign_command
from wire.envelope import WireError
from wire.schemas import BodyValidator

CHUNK = 5000
READ = 1 << 20
RECEIPT_VALID_MS = 365 * 24 * 3600 * 1000
"""A receipt may travel back to its site slowly; it frees nothing that was not confirmed."""
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Checked:
    path: Path
    manifest: dict[str, object]
    gateway: Device
    records_bytes: int

    @property
    def site(self) -> str:
        return str(self.manifest["site"])

    @property
    def sha256(self) -> str:
        return str(self.manifest["sha256"])

    @property
    def records(self) -> int:
        n = self.manifest["records"]
        assert isinstance(n, int)
        return n


def _refuse(path: Path, why: str) -> BundleError:
    return BundleError(f"{path}: bundle refused: {why}; nothing stored")


def _tail(f: BinaryIO, size: int) -> tuple[int, bytes]:
    """``(offset, manifest line)`` of the file's last line."""
    for want in (fmt.TAIL_READ, fmt.MAX_MANIFEST_BYTES + 2):
        n = min(size, want)
        f.seek(size - n)
        tail = f.read(n)
        try:
            start, line = fmt.split_tail(tail)
            return size - n + start, line
        except WireError:
            # a longer read helps only a manifest longer than the first: a file that does
            # not end with a newline is torn however much of it is read
            if n == size or want > fmt.TAIL_READ or not tail.endswith(b"\n"):
                raise
    raise AssertionError("unreachable")


def check_bundle(path: Path, registry: Registry, progress: Progress | None = None) -> Checked:
    """The bundle's manifest and gateway once every check passed; :class:`BundleError`
    with the reason otherwise."""
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if f.read(len(fmt.MAGIC)) != fmt.MAGIC:
                raise _refuse(path, "not a traceedge bundle (no magic line)")
            try:
                offset, line = _tail(f, size)
                man = fmt.parse_manifest(line)
            except WireError as exc:
                raise _refuse(path, f"torn: {exc.detail or exc}") from exc
            if man["bytes"] != offset:
                raise _refuse(
                    path, f"torn: {offset} bytes before the manifest, it says {man['bytes']}"
                )
            gw, site = str(man["gw"]), str(man["site"])
            gateway = registry.get(gw)
            if gateway is None or gateway.type != "gateway" or gateway.site != site:
                raise _refuse(path, f"{gw!r} is not a gateway of site {site!r} in the registry")
            try:
                fmt.check_manifest(man, gateway.recent_keys())
            except WireError as exc:
                raise _refuse(path, f"tampered: {exc.detail}") from exc
            f.seek(0)
            h = hashlib.sha256()
            lines = done = 0
            while done < offset:
                block = f.read(min(READ, offset - done))
                if not block:
                    break
                h.update(block)
                lines += block.count(b"\n")
                done += len(block)
                if progress:
                    progress(done, offset)
    except OSError as exc:
        raise BundleError(f"{path}: cannot read the bundle: {exc.strerror or exc}") from exc
    if h.hexdigest() != man["sha256"]:
        raise _refuse(path, "tampered: the records' SHA-256 differs from the manifest's")
    if lines - 1 != man["records"]:
        raise _refuse(path, f"tampered: {lines - 1} records, the manifest says {man['records']}")
    return Checked(path, man, gateway, offset)


def _chunks(f: BinaryIO, end: int, h: hashlib._Hash) -> Iterator[list[bytes]]:
    """The record lines of an open bundle (positioned after the magic line) up to ``end``,
    ``CHUNK`` at a time; every byte read goes into ``h``."""
    pos = f.tell()
    rest = b""
    out: list[bytes] = []
    while pos < end:
        block = f.read(min(READ, end - pos))
        if not block:
            break
        pos += len(block)
        h.update(block)
        lines = (rest + block).split(b"\n")
        rest = lines.pop()
        out.extend(lines)
        while len(out) >= CHUNK:
            yield out[:CHUNK]
            out = out[CHUNK:]
    if rest:
        out.append(rest)
    if out:
        yield out


@dataclass(frozen=True)
class Imported:
    bundle: str
    records: int
    stored: int
    duplicates: int
    bad: int
    confirmed: int
    receipt: bytes


class _Ranges:
    """Per device, the confirmed seqs as ``[lo, hi]`` ranges, extended in place while seqs
    come in order (memory grows with the gaps, not the records)."""

    def __init__(self) -> None:
        self.by_dev: dict[str, list[list[int]]] = {}

    def add(self, dev: str, seq: int) -> None:
        r = self.by_dev.setdefault(dev, [])
        if r and r[-1][1] + 1 == seq:
            r[-1][1] = seq
        else:
            r.append([seq, seq])

    def merged(self) -> dict[str, list[list[int]]]:
        return {d: fmt.to_ranges_sorted(r) for d, r in sorted(self.by_dev.items())}


def import_bundle(
    checked: Checked,
    store: Store,
    registry: Registry,
    validator: BodyValidator,
    command_key: Ed25519PrivateKey,
    progress: Progress | None = None,
    now_ms: int | None = None,
) -> Imported:
    """Store a checked bundle's records and sign the receipt. :class:`StoreError` from the
    store propagates (nothing is confirmed: import the same bundle again)."""
    site, sha = checked.site, checked.sha256
    ranges = _Ranges()
    stored = dups = bad = n = confirmed = 0
    h = hashlib.sha256()
    try:
        with open(checked.path, "rb") as f:
            h.update(f.read(len(fmt.MAGIC)))
            for i, raws in enumerate(_chunks(f, checked.records_bytes, h)):
                good, bads = verify_records(site, raws, registry, validator)
                res = store.commit(site, f"bundle-{sha[:16]}-{i}", good, bads)
                stored, dups, bad = stored + res.stored, dups + res.duplicates, bad + res.bad
                conflicts = set(res.conflicted)
                for g in good:
                    if (g.dev, g.seq) not in conflicts:
                        ranges.add(g.dev, g.seq)
                        confirmed += 1
                n += len(raws)
                if progress:
                    progress(n, checked.records)
    except OSError as exc:
        raise BundleError(f"{checked.path}: cannot read the bundle: {exc.strerror}") from exc
    if h.hexdigest() != sha:
        raise BundleError(
            f"{checked.path}: the bundle changed while it was imported; the records stored "
            "were verified one by one, but no receipt is written: import it again"
        )
    now = int(time.time() * 1000) if now_ms is None else now_ms
    receipt = sign_command(
        {
            "type": fmt.RECEIPT,
            "site": site,
            "gw": checked.gateway.dev,
            "bundle": sha,
            "version": now,
            "expires": now + RECEIPT_VALID_MS,
            "records": confirmed,
            "confirmed": ranges.merged(),
        },
        command_key,
    )
    return Imported(sha, n, stored, dups, bad, confirmed, receipt)


def write_receipt(path: Path, receipt: bytes) -> None:
    """Write the receipt durably (:func:`hostlib.durable.durable_replace`: temp file,
    fsync, rename, fsync of the folder), so a medium pulled right after the command holds
    the whole receipt or none; the temp file never stays behind when a step fails."""
    part = path.with_name(path.name + ".part")
    try:
        with open(part, "wb") as f:
            f.write(receipt + b"\n")
        durable_replace(part, path)
    except BaseException:
        part.unlink(missing_ok=True)
        raise
