"""Parquet parts and the per-day manifests of the archive (layout: :mod:`collector.archive`).

A day's ``manifest.json``::

    {"format": 1, "day": "2026-03-01", "files": [
      {"file": "S001.parquet", "site": "S001", "sha256": "…", "rows": 48211, "bytes": 3912345,
       "min_id": 1, "max_id": 90412, "min_ts": 1772294400000, "max_ts": 1772380799000,
       "created": "2026-04-01T02:00:03Z", "purged": true}]}

``purged`` turns true once the file's rows are gone from the hot store. One manifest per
day: a run rewrites only the days it touches, and each rewrite is small.

Every file goes down the same way (:func:`durable_replace`): written to ``<name>.tmp``,
fsynced, renamed over the final name, and the folder fsynced, so after a crash a name holds
either nothing or the whole file.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from hostlib.durable import durable_replace
from wire import tracecode

FORMAT = 1
MANIFEST = "manifest.json"
COMPRESSION = "zstd"

SCHEMA = pa.schema(
    [
        ("id", pa.int64()),
        ("dev", pa.string()),
        ("seq", pa.int64()),
        ("kind", pa.string()),
        ("ts", pa.int64()),
        ("site", pa.string()),
        ("mac", pa.string()),
        ("received", pa.float64()),
        ("rec", pa.string()),
    ]
)
COLUMNS = tuple(SCHEMA.names)

Row = tuple[int, str, int, str, int, str, str, float, str]
"""A record as the hot store holds it: id, dev, seq, kind, ts, site, mac, received, rec."""


class ArchiveFileError(Exception):
    """A file of the archive is missing, unreadable, or not what its manifest says (a
    checksum or row count mismatch). Retrying does not help: restore it from a backup."""


def day_of(ts_ms: int) -> str:
    """The archive day (``YYYY-MM-DD``) of a capture time: its date in China time (UTC+8)."""
    return tracecode.local_day(ts_ms)


@dataclass(frozen=True)
class FileEntry:
    """One part file as its day's manifest lists it (``file``: name inside the day folder)."""

    day: str
    file: str
    site: str
    sha256: str
    rows: int
    bytes: int
    min_id: int
    max_id: int
    min_ts: int
    max_ts: int
    created: str
    purged: bool = False

    def path(self, root: Path) -> Path:
        return root / self.day / self.file

    def label(self) -> str:
        """``<day>/<file>``, as messages name it."""
        return f"{self.day}/{self.file}"


# -- durable files ----------------------------------------------------------------------------


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# -- manifests --------------------------------------------------------------------------------


def days(root: Path) -> list[str]:
    """The days that have a manifest, oldest first."""
    if not root.is_dir():
        return []
    return sorted(p.parent.name for p in root.glob(f"*/{MANIFEST}"))


def load_day(root: Path, day: str) -> list[FileEntry]:
    """The files a day's manifest lists (none when it has no manifest)."""
    path = root / day / MANIFEST
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
    except ValueError as exc:
        raise ArchiveFileError(f"{path}: not a manifest: {exc}") from exc
    try:
        return [FileEntry(day=day, **{k: v for k, v in f.items()}) for f in data["files"]]
    except (KeyError, TypeError) as exc:
        raise ArchiveFileError(f"{path}: not a manifest: {exc!r}") from exc


def save_day(root: Path, day: str, entries: Sequence[FileEntry]) -> None:
    """Write a day's manifest atomically (:func:`durable_replace`)."""
    folder = root / day
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for e in entries:
        d = asdict(e)
        del d["day"]
        files.append(d)
    doc = {"format": FORMAT, "day": day, "files": files}
    tmp = folder / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    durable_replace(tmp, folder / MANIFEST)


def entries(root: Path) -> Iterator[FileEntry]:
    """Every file of every day's manifest, oldest day first."""
    for day in days(root):
        yield from load_day(root, day)


def mark_purged(root: Path, entry: FileEntry) -> None:
    """Record in its day's manifest that ``entry``'s rows left the hot store."""
    listed = load_day(root, entry.day)
    save_day(
        root, entry.day, [replace(e, purged=True) if e.file == entry.file else e for e in listed]
    )


def clean(root: Path) -> list[str]:
    """Remove what a crashed run left behind: ``*.tmp`` files, and part files that no
    manifest lists (their rows were never deleted from the hot store: a run writes them
    again). Returns ``<day>/<file>`` of each file removed. Only one run at a time may call
    this (the run holds a lock)."""
    removed: list[str] = []
    if not root.is_dir():
        return removed
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        listed = {e.file for e in load_day(root, folder.name)}
        for p in sorted(folder.iterdir()):
            stray = p.name.endswith(".tmp") or (p.suffix == ".parquet" and p.name not in listed)
            if stray and p.is_file():
                p.unlink()
                removed.append(f"{folder.name}/{p.name}")
    return removed


# -- writing ----------------------------------------------------------------------------------


def part_name(root: Path, day: str, site: str, taken: set[str]) -> str:
    """A free file name for a new part of ``site``'s ``day``: ``<site>.parquet``, then
    ``<site>.1.parquet``, ``<site>.2.parquet`` … (free: not listed, not on disk)."""
    listed = taken | {e.file for e in load_day(root, day)}
    n = 0
    while True:
        name = f"{site}.parquet" if n == 0 else f"{site}.{n}.parquet"
        if name not in listed and not (root / day / name).exists():
            return name
        n += 1


def to_table(rows: Sequence[Row]) -> pa.Table:
    cols: list[Sequence[Any]] = list(zip(*rows, strict=True)) if rows else [() for _ in COLUMNS]
    return pa.Table.from_arrays(
        [pa.array(c, type=f.type) for c, f in zip(cols, SCHEMA, strict=True)], schema=SCHEMA
    )


class PartWriter:
    """One part file being written: :meth:`write` rows (each call one row group), then
    :meth:`close` (durable, with its manifest entry) or :meth:`abort`."""

    def __init__(self, root: Path, day: str, site: str, name: str) -> None:
        self.root, self.day, self.site, self.name = root, day, site, name
        (root / day).mkdir(parents=True, exist_ok=True)
        self.tmp = root / day / (name + ".tmp")
        self._writer = pq.ParquetWriter(self.tmp, SCHEMA, compression=COMPRESSION)
        self.rows = 0
        self.min_id = self.min_ts = 2**63
        self.max_id = self.max_ts = -(2**63)

    def write(self, rows: Sequence[Row]) -> None:
        if not rows:
            return
        self._writer.write_table(to_table(rows))
        self.rows += len(rows)
        self.min_id = min(self.min_id, min(r[0] for r in rows))
        self.max_id = max(self.max_id, max(r[0] for r in rows))
        self.min_ts = min(self.min_ts, min(r[4] for r in rows))
        self.max_ts = max(self.max_ts, max(r[4] for r in rows))

    def close(self) -> FileEntry:
        """Finish the file and make it durable under its name; its entry (not yet listed:
        the caller adds it to the day's manifest)."""
        self._writer.close()
        final = self.root / self.day / self.name
        durable_replace(self.tmp, final)
        return FileEntry(
            day=self.day,
            file=self.name,
            site=self.site,
            sha256=sha256_file(final),
            rows=self.rows,
            bytes=final.stat().st_size,
            min_id=self.min_id,
            max_id=self.max_id,
            min_ts=self.min_ts,
            max_ts=self.max_ts,
            created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        )

    def abort(self) -> None:
        try:
            self._writer.close()
        finally:
            self.tmp.unlink(missing_ok=True)


# -- reading and checking ---------------------------------------------------------------------


def check(root: Path, entry: FileEntry) -> None:
    """``entry``'s file is there, its sha256 and row count those of the manifest; else
    :class:`ArchiveFileError` naming the file and what is wrong."""
    path = entry.path(root)
    try:
        digest = sha256_file(path)
    except OSError as exc:
        raise ArchiveFileError(f"{entry.label()}: cannot read: {exc.strerror or exc}") from exc
    if digest != entry.sha256:
        raise ArchiveFileError(
            f"{entry.label()}: checksum mismatch (sha256 {digest[:16]}…, manifest says "
            f"{entry.sha256[:16]}…)"
        )
    try:
        rows = pq.ParquetFile(path).metadata.num_rows
    except (OSError, pa.ArrowException) as exc:
        raise ArchiveFileError(f"{entry.label()}: not a readable Parquet file: {exc}") from exc
    if rows != entry.rows:
        raise ArchiveFileError(f"{entry.label()}: {rows} rows, manifest says {entry.rows}")


def verify(root: Path) -> tuple[int, list[str]]:
    """Check every listed file (:func:`check`): how many were checked, and the problems."""
    problems: list[str] = []
    n = 0
    for day in days(root):
        try:
            listed = load_day(root, day)
        except ArchiveFileError as exc:
            problems.append(str(exc))
            continue
        for e in listed:
            n += 1
            try:
                check(root, e)
            except ArchiveFileError as exc:
                problems.append(str(exc))
    return n, problems


def read_batches(
    root: Path, entry: FileEntry, columns: Sequence[str], batch_rows: int = 50_000
) -> Iterator[dict[str, list[Any]]]:
    """``columns`` of ``entry``'s rows, ``batch_rows`` at a time (a dict of lists)."""
    try:
        pf = pq.ParquetFile(entry.path(root))
        for batch in pf.iter_batches(batch_size=batch_rows, columns=list(columns)):
            yield batch.to_pydict()
    except (OSError, pa.ArrowException) as exc:
        raise ArchiveFileError(f"{entry.label()}: not a readable Parquet file: {exc}") from exc
