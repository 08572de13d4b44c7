"""Run code under the real MicroPython interpreter (npm's WebAssembly build, in Node).

Fails (never skips) when Node or the npm package is missing, saying how to install them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGE = Path("node_modules/@micropython/micropython-webassembly-pyscript/micropython.mjs")
HINT = "run `make test` (it runs `npm install` in the repository) or `npm install` yourself"


def find_micropython() -> Path:
    env = os.environ.get("TRACEEDGE_MICROPYTHON_MJS")
    for cand in ([Path(env)] if env else []) + [REPO / PACKAGE]:
        if cand.is_file():
            return cand
    pytest.fail(f"MicroPython (WebAssembly) not installed: {HINT}", pytrace=False)


def repo_files(*dirs: str) -> list[str]:
    """Every ``.py`` file under the given repo-relative folders (and their ``__init__``s)."""
    out: set[str] = set()
    for d in dirs:
        p = REPO / d
        files = [p] if p.is_file() else sorted(p.rglob("*.py"))
        for f in files:
            rel = f.relative_to(REPO)
            out.add(str(rel))
            for parent in rel.parents:
                if str(parent) != "." and (REPO / parent / "__init__.py").exists():
                    out.add(str(parent / "__init__.py"))
    return sorted(out)


def run_micropython(code: str, files: list[str], timeout: float = 120) -> str:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node not found: install Node.js 20 (Debian package nodejs)", pytrace=False)
    mjs = find_micropython()
    res = subprocess.run(
        [node, str(REPO / "tests" / "micropython_run.mjs"), str(mjs), code, *files],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=REPO,
    )
    out = res.stdout + res.stderr
    assert res.returncode == 0, out
    assert res.stdout.startswith("micropython"), out
    return res.stdout
