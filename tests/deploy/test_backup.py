"""The backup docs/deploy.md gives, taken while records flow into a running collector:
SQLite's online backup (the ``sqlite3`` shell's ``.backup``, and the same through the
venv's Python) gives a store that passes its integrity check and holds every record
committed before it, readable as a store."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from collector.store import read_summary
from tests.conftest import Chain, wait_until

PY_BACKUP = "import sqlite3, sys; sqlite3.connect(sys.argv[1]).backup(sqlite3.connect(sys.argv[2]))"


def backup_commands(store: Path, out: Path) -> dict[str, list[str]]:
    sqlite3_shell = shutil.which("sqlite3")
    if sqlite3_shell is None:
        pytest.fail("sqlite3 not found: install Debian's sqlite3 package", pytrace=False)
    return {
        "sqlite3": [sqlite3_shell, str(store), f".backup {out / 'shell.sqlite'}"],
        "python": [sys.executable, "-c", PY_BACKUP, str(store), str(out / "python.sqlite")],
    }


def test_a_backup_of_a_live_store_is_whole(
    chain_factory: Callable[..., Chain], tmp_path: Path
) -> None:
    ch = chain_factory()
    fleet = ch.fleet()
    t = threading.Thread(target=fleet.run, args=(3000,), kwargs={"drain_timeout_s": 120})
    t.start()
    try:
        wait_until(lambda: ch.collector_stats()["records"] >= 500, 60, "records flowing")
        before = ch.collector_stats()["records"]
        for name, cmd in backup_commands(ch.store, tmp_path).items():
            res = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
            assert res.returncode == 0, res.stdout + res.stderr
            copy = tmp_path / f"{'shell' if name == 'sqlite3' else 'python'}.sqlite"
            db = sqlite3.connect(copy)
            try:
                assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",), name
            finally:
                db.close()
            got = read_summary(copy)["records"]
            assert before <= got <= 3000, (name, before, got)
    finally:
        t.join()
    # the collector went on meanwhile
    wait_until(lambda: ch.collector_stats()["records"] == 3000, 60, "every record stored")
