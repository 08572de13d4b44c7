"""Run the firmware and its tests under the real MicroPython interpreter (Node + wasm).

The board's files come from the apps' manifests (the same lists ``traceedge device
flash`` copies), so a test run also proves the manifests complete. Fails (never skips)
when Node or the npm package is missing, saying how to install them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from traceedge.cli.dev_flash import APP_TYPES, FIRMWARE, board_files

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "node_modules/@micropython/micropython-webassembly-pyscript/micropython.mjs"
HINT = "run `make test` (it runs `npm install` in the repository) or `npm install` yourself"
RUNNER = Path(__file__).resolve().parent / "mp_run.mjs"
MP_TESTS = Path(__file__).resolve().parent / "mp"
PATH = ["/lib", "/sim", "/tests"]

# The firmware test modules (tests/firmware/mp/mp_*.py), each run in a fresh interpreter.
MODULES = (
    "mp_imports",
    "mp_flashlog",
    "mp_core",
    "mp_mqtt",
    "mp_link",
    "mp_slink",
    "mp_drivers",
    "mp_cylinder",
    "mp_elevator",
    "mp_settlement",
    "mp_warehouse",
    "mp_measure",
)


class MissingTool(Exception):
    """Node or the MicroPython npm package is missing; the message says how to install."""


def find_micropython() -> Path:
    env = os.environ.get("TRACEEDGE_MICROPYTHON_MJS")
    for cand in ([Path(env)] if env else []) + [PACKAGE]:
        if cand.is_file():
            return cand
    raise MissingTool(f"MicroPython (WebAssembly) not installed: {HINT}")


def find_node() -> str:
    node = shutil.which("node")
    if node is None:
        raise MissingTool("node not found: install Node.js 20 (Debian package nodejs)")
    return node


def device_files(apps: tuple[str, ...] = tuple(APP_TYPES)) -> list[tuple[str, str]]:
    """(source, board path) for every app's files, main.py included."""
    out: dict[str, str] = {}
    for app in apps:
        for f in board_files(app):
            out["/" + f.dest] = str(f.src)
    return [(src, dest) for dest, src in sorted(out.items())]


def sim_files() -> list[tuple[str, str]]:
    root = FIRMWARE / "sim"
    return [(str(p), "/sim/" + str(p.relative_to(root))) for p in sorted(root.rglob("*.py"))]


def test_files() -> list[tuple[str, str]]:
    return [(str(p), "/tests/" + p.name) for p in sorted(MP_TESTS.glob("*.py"))]


def example_files() -> list[tuple[str, str]]:
    """Each app's ``app.example.json`` as ``/apps/<app>.json`` (the scenarios' base)."""
    return [
        (str(FIRMWARE / "apps" / app / "app.example.json"), f"/apps/{app}.json")
        for app in APP_TYPES
    ]


def all_files() -> list[tuple[str, str]]:
    return device_files() + sim_files() + test_files() + example_files()


def job(
    code: str,
    files: list[tuple[str, str]] | None = None,
    is_async: bool = False,
    heap: int = 32 * 1024 * 1024,
) -> dict[str, object]:
    return {
        "files": files if files is not None else all_files(),
        "path": PATH,
        "code": code,
        "async": is_async,
        "heap": heap,
    }


def start(spec: dict[str, object], **popen: object) -> tuple[subprocess.Popen[str], Path]:
    """Start a MicroPython job; returns the process and its job file (delete it after)."""
    node = find_node()
    mjs = find_micropython()
    fd, name = tempfile.mkstemp(prefix="mpjob-", suffix=".json")
    with os.fdopen(fd, "w") as fh:
        json.dump(spec, fh)
    proc = subprocess.Popen(
        [node, str(RUNNER), str(mjs), name],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=REPO,
        **popen,  # type: ignore[call-overload]
    )
    return proc, Path(name)


def run(spec: dict[str, object], timeout: float = 60) -> tuple[int, str]:
    proc, name = start(spec)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        out += f"\nTIMEOUT after {timeout:.0f} s"
        return -1, out
    finally:
        name.unlink(missing_ok=True)
    return proc.returncode, out


def run_module(module: str, timeout: float = 60) -> tuple[int, int, str]:
    """Run one firmware test module; ``(passed, failed, output)``."""
    code = f"import mprun\nmprun.run({module!r})\n"
    rc, out = run(job(code), timeout)
    for line in out.splitlines():
        if line.startswith("RESULT " + module + " "):
            parts = line.split()
            passed, failed = int(parts[2]), int(parts[4])
            if rc != 0:
                failed += 1
            return passed, failed, out
    return 0, 1, out
