"""Where each simulated terminal's sequence stands between ``fleet run``s: a small JSON file.

A real terminal keeps its sequence in flash and never uses a number twice, across reboots;
the collector quarantines a second record under a number it has stored (a conflict). The
fleet keeps the same promise across runs with this file::

    {"devices": {"CYL-S1-3F9A2C": {"seq": 1200, "boot": 3}, ...}}

``seq`` is the last number the device may have used, ``boot`` its last boot. Each run is a
new boot of every terminal, its numbers continuing after ``seq``. Before anything is
published the run *reserves* the numbers it may use (``seq`` advanced by the records it is
asked for) and, when it ends, writes where each device really stopped. A run killed before
that (SIGKILL, power cut) leaves the reservation in force: the next run starts past it, a
gap the collector reports, never a reuse it quarantines.

Every write replaces the file atomically (temporary file, fsync, rename, fsync of the
folder) and keeps the entries of devices this run does not drive. One run at a time: a
second run on the same file is refused while the first holds its lock (``FILE.lock``).
"""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from hostlib.errors import ConfigError

Position = tuple[int, int]
"""``(seq, boot)``: the last sequence number a device may have used, and its last boot."""


def default_path(registry: Path) -> Path:
    """The state file of the fleet driving ``registry``'s devices: beside it,
    ``devices.json`` → ``devices.fleet-state.json``."""
    return registry.with_name(registry.stem + ".fleet-state.json")


class FleetState:
    """The state file at ``path``; use inside :meth:`locked`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock: IO[str] | None = None

    @contextmanager
    def locked(self) -> Iterator[FleetState]:
        """Hold the file for one run; a :class:`ConfigError` naming the holder's pid when
        another run holds it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock_path = Path(f"{self.path}.lock")
        with open(lock_path, "a+", encoding="utf-8") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                lock.seek(0)
                holder = lock.read().strip() or "?"
                raise ConfigError(
                    str(self.path), "", f"another fleet run (pid {holder}) is using this state"
                ) from None
            lock.seek(0)
            lock.truncate()
            lock.write(str(os.getpid()))
            lock.flush()
            try:
                yield self
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def load(self) -> dict[str, Position]:
        """Every device's position; empty when no run has written the file yet."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        try:
            return {
                str(dev): (int(p["seq"]), int(p["boot"]))
                for dev, p in json.loads(text)["devices"].items()
            }
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ConfigError(
                str(self.path), "devices", f"not a fleet state file ({exc}); fix or move it"
            ) from exc

    def begin(self, devs: Iterable[str], records: int) -> dict[str, Position]:
        """Start a run of at most ``records`` records from ``devs``: each device's starting
        position (its sequence so far, a new boot), after reserving in the file every number
        the run may give it (``records`` more: it cannot give one device more)."""
        known = self.load()
        start = {}
        for dev in devs:
            seq, boot = known.get(dev, (0, 0))
            start[dev] = (seq, boot + 1)
        self.save({dev: (seq + records, boot) for dev, (seq, boot) in start.items()})
        return start

    def save(self, positions: Mapping[str, Position]) -> None:
        """Write ``positions`` over what the file holds for those devices, atomically."""
        merged = {**self.load(), **positions}
        data = {"devices": {dev: {"seq": seq, "boot": boot} for dev, (seq, boot) in merged.items()}}
        folder = self.path.parent
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=self.path.name + ".")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(data, fh, indent=1, sort_keys=True)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)  # the rename itself survives a power cut
        finally:
            os.close(dir_fd)
