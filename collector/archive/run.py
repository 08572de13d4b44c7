"""The archive job: move records past retention from the hot store to Parquet, then delete them.

Two phases, each safe to interrupt (:mod:`collector.archive` has the durability order):

* :func:`write` streams the safe records captured before the cutoff, ``chunk_rows`` at a
  time in id order, into one open part per (day, site) (at most ``max_open`` open; the
  least recently used is finished first), and lists each finished part in its day's
  manifest. Nothing leaves the hot store here. Memory: one chunk plus the open writers.
* :func:`purge` deletes from the hot store the rows of every listed part not yet marked
  ``purged``, after checking its sha256, one transaction per ``chunk_rows`` of a file, and
  marks it purged. Rows already gone are skipped, so it may run again.

:func:`run` is what ``traceedge collector archive`` does: under a lock, clean what a
crashed run left, purge (finishing an interrupted run), write, purge.
"""

from __future__ import annotations

from collections import OrderedDict, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from collector.archive import files
from collector.archive.files import FileEntry, PartWriter, Row
from collector.archive.source import ArchiveSource
from hostlib.pidlock import PidLock

DAY_MS = 86_400_000
CHINA_OFFSET_MS = 8 * 3_600_000
CHUNK_ROWS = 50_000
MAX_OPEN = 64
LOCK = ".lock"

Progress = Callable[[str], None]
"""Told one line at a time what the job is doing (the CLI prints it)."""


def _quiet(_: str) -> None:
    pass


def cutoff_ms(now_ms: int, keep_days: int) -> int:
    """The capture time before which records leave: midnight (China time, UTC+8) starting
    the day ``keep_days`` days before today's. Whole days move, and at least the last
    ``keep_days`` days (and today) stay."""
    midnight = (now_ms + CHINA_OFFSET_MS) // DAY_MS * DAY_MS - CHINA_OFFSET_MS
    return midnight - keep_days * DAY_MS


@dataclass
class Summary:
    cutoff_ms: int
    dry_run: bool = False
    files: list[FileEntry] = field(default_factory=list)  # written by this run
    freed: int = 0  # rows deleted from the hot store
    recovered: int = 0  # parts of an interrupted run purged now
    cleaned: list[str] = field(default_factory=list)  # stray files removed
    planned: dict[tuple[str, str], int] = field(default_factory=dict)  # dry run: rows a day/site
    kept_back: dict[str, int] = field(default_factory=dict)

    @property
    def rows(self) -> int:
        return sum(f.rows for f in self.files) if not self.dry_run else sum(self.planned.values())

    @property
    def bytes(self) -> int:
        return sum(f.bytes for f in self.files)


def _add_to_manifest(root: Path, entry: FileEntry) -> None:
    listed = files.load_day(root, entry.day)
    files.save_day(root, entry.day, [*listed, entry])


def _groups(rows: list[Row]) -> dict[tuple[str, str], list[Row]]:
    out: dict[tuple[str, str], list[Row]] = defaultdict(list)
    for r in rows:
        out[(files.day_of(r[4]), r[5])].append(r)
    return out


def write(
    source: ArchiveSource,
    root: Path,
    before_ms: int,
    *,
    chunk_rows: int = CHUNK_ROWS,
    max_open: int = MAX_OPEN,
    progress: Progress = _quiet,
) -> list[FileEntry]:
    """Write the safe records captured before ``before_ms`` to new parts, listed in their
    days' manifests; the entries written. Call :func:`purge` first (as :func:`run` does):
    rows of a listed part not yet purged would be written again."""
    open_parts: OrderedDict[tuple[str, str], PartWriter] = OrderedDict()
    taken: dict[str, set[str]] = defaultdict(set)
    done: list[FileEntry] = []

    def finish(key: tuple[str, str]) -> None:
        entry = open_parts.pop(key).close()
        _add_to_manifest(root, entry)
        done.append(entry)
        progress(f"{entry.label()}: {entry.rows} rows, {entry.bytes} bytes")

    after_id = 0
    try:
        while rows := source.archivable(before_ms, after_id, chunk_rows):
            after_id = rows[-1][0]
            for key, group in _groups(rows).items():
                part = open_parts.get(key)
                if part is None:
                    if len(open_parts) >= max_open:
                        finish(next(iter(open_parts)))
                    day, site = key
                    name = files.part_name(root, day, site, taken[day])
                    taken[day].add(name)
                    part = open_parts[key] = PartWriter(root, day, site, name)
                else:
                    open_parts.move_to_end(key)
                part.write(group)
            progress(f"read {len(rows)} records (through id {after_id})")
        while open_parts:
            finish(next(iter(open_parts)))
    finally:
        for part in open_parts.values():  # an error: nothing of these is listed
            part.abort()
    return done


def purge(
    source: ArchiveSource, root: Path, *, chunk_rows: int = CHUNK_ROWS, progress: Progress = _quiet
) -> tuple[int, int]:
    """Delete from the hot store the rows of every listed part not purged yet, each file
    checked against its manifest first (:func:`files.check`: a damaged file deletes
    nothing and stops the job with :class:`files.ArchiveFileError`); how many parts and
    rows."""
    parts = freed = 0
    for entry in [e for e in files.entries(root) if not e.purged]:
        files.check(root, entry)
        n = 0
        for b in files.read_batches(root, entry, ("id", "dev", "seq", "mac"), chunk_rows):
            n += source.remove(list(zip(b["id"], b["dev"], b["seq"], b["mac"], strict=True)))
        files.mark_purged(root, entry)
        parts += 1
        freed += n
        progress(f"{entry.label()}: {n} records removed from the hot store")
    return parts, freed


def plan(
    source: ArchiveSource, before_ms: int, chunk_rows: int = CHUNK_ROWS
) -> dict[tuple[str, str], int]:
    """What :func:`write` would archive: rows by (day, site)."""
    out: dict[tuple[str, str], int] = defaultdict(int)
    after_id = 0
    while rows := source.archivable(before_ms, after_id, chunk_rows):
        after_id = rows[-1][0]
        for key, group in _groups(rows).items():
            out[key] += len(group)
    return dict(sorted(out.items()))


def run(
    source: ArchiveSource,
    root: Path,
    before_ms: int,
    *,
    dry_run: bool = False,
    chunk_rows: int = CHUNK_ROWS,
    max_open: int = MAX_OPEN,
    progress: Progress = _quiet,
) -> Summary:
    """The whole job under the archive's lock (a second run at once is refused with
    :class:`hostlib.errors.StartupError` naming the holder)."""
    summary = Summary(cutoff_ms=before_ms, dry_run=dry_run)
    if dry_run:
        summary.planned = plan(source, before_ms, chunk_rows)
        summary.kept_back = source.kept_back(before_ms)
        return summary
    root.mkdir(parents=True, exist_ok=True)
    lock = PidLock(root / LOCK).acquire("another archive run is using this archive")
    try:
        summary.cleaned = files.clean(root)
        for name in summary.cleaned:
            progress(f"{name}: removed (left by an interrupted run, not listed)")
        summary.recovered, summary.freed = purge(
            source, root, chunk_rows=chunk_rows, progress=progress
        )
        summary.files = write(
            source, root, before_ms, chunk_rows=chunk_rows, max_open=max_open, progress=progress
        )
        _, freed = purge(source, root, chunk_rows=chunk_rows, progress=progress)
        summary.freed += freed
        summary.kept_back = source.kept_back(before_ms)
    finally:
        lock.release()
    return summary
