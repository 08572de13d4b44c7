"""Driving Debian's Chromium with Playwright for the console tests: launch (a missing browser
FAILS with what to install), screenshots kept as artefacts, and an axe-core check per page.

Playwright's own browser downloads are never used (``playwright install`` needs the
internet): the browser is ``/usr/bin/chromium``, started headless with every background
service that would reach out switched off.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path(os.environ.get("TRACEEDGE_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ROOT = Path(__file__).resolve().parents[2]
SHOTS = Path(os.environ.get("TRACEEDGE_SCREENSHOTS", ROOT / "build" / "screenshots"))
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}
BLOCKING = ("serious", "critical")


def require_chromium() -> Path:
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} not found: apt-get install chromium fonts-noto-cjk "
            "(or set TRACEEDGE_CHROMIUM to a Chromium binary)",
            pytrace=False,
        )
    try:
        import axe_playwright_python  # noqa: F401
        import playwright  # noqa: F401
    except ImportError:
        pytest.fail("pip install -e '.[dev]' (playwright, axe-playwright-python)", pytrace=False)
    return CHROMIUM


@contextmanager
def browser() -> Iterator[Any]:
    """A Playwright Chromium browser (Debian's binary)."""
    from playwright.sync_api import sync_playwright

    exe = require_chromium()
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(exe), args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


class Pages:
    """Screenshots (``<SHOTS>/<group>/<nn>-<name>-<width>.png``) and the axe check of each
    page visited; ``checked`` lists every page checked, ``problems`` what axe found."""

    def __init__(self, group: str) -> None:
        self.dir = SHOTS / group
        self.dir.mkdir(parents=True, exist_ok=True)
        for old in self.dir.glob("*.png"):
            old.unlink()
        self.n = 0
        self.checked: list[str] = []
        self.problems: list[str] = []

    def check(self, page: Any, name: str) -> Path:
        """Screenshot ``page`` (the whole length) and run axe-core on it."""
        from axe_playwright_python.sync_playwright import Axe

        self.n += 1
        width = page.viewport_size["width"] if page.viewport_size else 0
        slug = re.sub(r"[^0-9a-z]+", "-", name.lower()).strip("-")
        shot = self.dir / f"{self.n:02d}-{slug}-{width}.png"
        page.screenshot(path=str(shot), full_page=True)
        result = Axe().run(page)
        for v in result.response["violations"]:
            if v.get("impact") in BLOCKING:
                nodes = "; ".join(str(n.get("target")) for n in v.get("nodes", [])[:5])
                where = f"{name} ({page.url}, {width}px)"
                self.problems.append(f"{where}: {v['id']} [{v['impact']}] {v['help']}: {nodes}")
        self.checked.append(f"{name} {width}px")
        return shot

    def assert_accessible(self) -> None:
        print(f"\nscreenshots: {self.dir} ({self.n} pages)")
        assert not self.problems, "axe-core found serious violations:\n" + "\n".join(self.problems)
