"""The firmware type-checks against the MicroPython ESP32 stubs (mypy, strict).

The stubs are a typeshed of their own (stdlib/ plus machine, time, network ... at the
top), so they live in a folder of their own, never in the venv's site-packages (there
they would shadow CPython's modules for the host's checks)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.firmware.mpy_fw import REPO

STUBS_REQ = "micropython-esp32-stubs==1.27.0.post1"
HINT = (
    f"install them with `{sys.executable} -m pip install --target build/mpy-stubs "
    f"'{STUBS_REQ}'` (make firmware-stubs)"
)
CONFIG = REPO / "firmware" / "micropython" / "mypy.ini"


def stubs_dir() -> Path:
    d = Path(os.environ.get("TRACEEDGE_MPY_STUBS", REPO / "build" / "mpy-stubs"))
    if not (d / "machine.pyi").is_file() or not (d / "stdlib" / "VERSIONS").is_file():
        pytest.fail(f"MicroPython stubs not found in {d}: {HINT}", pytrace=False)
    return d


def mypy(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    d = stubs_dir()
    env = dict(os.environ, MYPYPATH=str(d))
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--config-file",
            str(CONFIG),
            "--custom-typeshed-dir",
            str(d),
            *args,
        ],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=300,
        check=False,
    )


def test_firmware_is_type_clean_against_the_stubs() -> None:
    res = mypy()
    assert res.returncode == 0, res.stdout + res.stderr
    assert "Success: no issues found" in res.stdout


def test_firmware_tests_are_type_clean_too() -> None:
    """The MicroPython-side test modules use the firmware's seams as typed (MemFS is an FS)."""
    mp = REPO / "tests" / "firmware" / "mp"
    cache = REPO / ".mypy_cache" / "firmware-tests"
    files = sorted(p.name for p in mp.glob("*.py"))
    res = mypy("--explicit-package-bases", "--cache-dir", str(cache), *files, cwd=mp)
    assert res.returncode == 0, res.stdout + res.stderr


def test_the_stubs_are_really_used(tmp_path: Path) -> None:
    """A wrong call into ``machine`` / ``time`` must fail: the check is not vacuous."""
    bad = tmp_path / "bad_fw.py"
    bad.write_text(
        "import machine\nimport time\n\n\n"
        "def f() -> str:\n"
        '    machine.WDT(timeout="5 s")\n'
        "    return time.ticks_ms()\n"
    )
    res = mypy("--cache-dir", str(tmp_path / "cache"), str(bad))
    assert res.returncode == 1, res.stdout
    assert 'Argument "timeout" to "WDT" has incompatible type "str"' in res.stdout
    assert 'Incompatible return value type (got "int", expected "str")' in res.stdout
