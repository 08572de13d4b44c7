"""Read-only lookups in the archive, for the API when the hot store lacks a record.

The API asks the archive only after the hot store answered "none". Cost: the manifests are
read (one small JSON a day), then every listed file is scanned with pyarrow's dataset
reader, streaming and pruned by row-group statistics: a record by ``(dev, seq)`` reads the
``dev`` and ``seq`` columns, a trace-code or batch lookup the ``kind`` and ``rec`` columns
(``rec`` matched as a substring first, then parsed and compared exactly). Expect about a
second per GB of archive on one core; the archive is for the rare old question.

Before a file is read for the first time by this process, its sha256 and row count are
checked against its manifest (:func:`collector.archive.files.check`); the result is kept
until the file's size, times or inode change. A damaged or missing file never fails a
request by itself: it is left out, logged once, and counted (:attr:`ArchiveReader.errors`);
an answer that might have been in it raises :class:`ArchiveIncomplete` naming it, which the
API returns as a 503 with the file's name.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from collector.archive import files
from collector.archive.files import ArchiveFileError, FileEntry

log = logging.getLogger(__name__)

Found = tuple[int, str, int, int, str]
"""A record found by a field: id, dev, seq, ts, rec (as the market readers use them)."""


class ArchiveIncomplete(Exception):
    """Nothing found, but some archive files could not be read: the answer may be there.
    ``problems`` names each file and what is wrong (retrying does not help: run
    ``traceedge collector archive --verify`` and restore the file)."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("the archive could not be searched whole: " + "; ".join(problems))
        self.problems = problems


class ArchiveReader:
    """Lookups in the archive at ``root`` (one reader per process: it keeps which files were
    checked, and the error count)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.errors = 0  # lookups that met a damaged or missing file
        self._checked: dict[str, tuple[int, ...]] = {}  # path → stat signature when good
        self._bad: dict[str, tuple[tuple[int, ...], str]] = {}  # path → (signature, problem)
        self._lock = threading.Lock()

    @staticmethod
    def _signature(path: Path) -> tuple[int, ...]:
        st = os.stat(path)
        return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)

    def _usable(self) -> tuple[list[FileEntry], list[str]]:
        """The listed files that are what their manifests say, and the problems of the rest."""
        good: list[FileEntry] = []
        problems: list[str] = []
        for day in files.days(self.root):
            try:
                listed = files.load_day(self.root, day)
            except ArchiveFileError as exc:
                problems.append(str(exc))
                continue
            for e in listed:
                problem = self._problem(e)
                if problem is None:
                    good.append(e)
                else:
                    problems.append(problem)
        if problems:
            with self._lock:
                self.errors += 1
        return good, problems

    def _problem(self, e: FileEntry) -> str | None:
        path = e.path(self.root)
        key = str(path)
        try:
            sig = self._signature(path)
        except OSError as exc:
            return f"{e.label()}: cannot read: {exc.strerror or exc}"
        with self._lock:
            if self._checked.get(key) == sig:
                return None
            bad = self._bad.get(key)
            if bad is not None and bad[0] == sig:
                return bad[1]
        try:
            files.check(self.root, e)
        except ArchiveFileError as exc:
            log.error("archive file damaged: %s", exc)
            with self._lock:
                self._bad[key] = (sig, str(exc))
            return str(exc)
        with self._lock:
            self._checked[key] = sig
            self._bad.pop(key, None)
        return None

    def _scan(
        self, filt: pc.Expression, columns: list[str]
    ) -> tuple[list[dict[str, Any]], list[str]]:
        good, problems = self._usable()
        if not good:
            return [], problems
        dataset = ds.dataset(
            [str(e.path(self.root)) for e in good], schema=files.SCHEMA, format="parquet"
        )
        rows: list[dict[str, Any]] = []
        try:
            for batch in dataset.to_batches(columns=columns, filter=filt):
                rows.extend(batch.to_pylist())
        except (OSError, pa.ArrowException) as exc:  # changed under us since checked
            with self._lock:
                self.errors += 1
            log.error("archive scan failed: %s", exc)
            problems.append(f"scan failed: {exc}")
        return rows, problems

    def record(self, dev: str, seq: int) -> dict[str, Any] | None:
        """The archived row of ``(dev, seq)`` (every column), or None;
        :class:`ArchiveIncomplete` if not found and some file could not be read."""
        filt = (pc.field("dev") == dev) & (pc.field("seq") == seq)
        rows, problems = self._scan(filt, list(files.COLUMNS))
        if rows:
            return min(rows, key=lambda r: int(r["id"]))
        if problems:
            raise ArchiveIncomplete(problems)
        return None

    def find(self, kind: str, field: str, value: str) -> list[Found]:
        """Archived records of ``kind`` whose ``body[field]`` is ``value``, in id order;
        :class:`ArchiveIncomplete` if none and some file could not be read."""
        filt = (pc.field("kind") == kind) & pc.match_substring(pc.field("rec"), value)
        rows, problems = self._scan(filt, ["id", "dev", "seq", "ts", "rec"])
        out: list[Found] = []
        seen: set[tuple[str, int]] = set()  # a store restored from a backup may archive twice
        for r in sorted(rows, key=lambda r: int(r["id"])):
            if (r["dev"], r["seq"]) in seen:
                continue
            try:
                body = json.loads(r["rec"]).get("body", {})
            except ValueError:
                continue
            if isinstance(body, dict) and body.get(field) == value:
                seen.add((r["dev"], r["seq"]))
                out.append((int(r["id"]), str(r["dev"]), int(r["seq"]), int(r["ts"]), r["rec"]))
        if not out and problems:
            raise ArchiveIncomplete(problems)
        return out
