"""The shopper's page in a real browser (Debian's Chromium driven by Playwright), at a phone's
390 px and on a desktop: no horizontal scrolling, the stop warning on screen, no serious
axe-core violation; screenshots kept as artefacts (``build/screenshots/public``).

The public app is served by the collector's own server class on a real port, over the same
store the other public tests build (a market day with a stopped batch), once on the SQLite
store and once on PostgreSQL.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from collector.api import ApiServer
from tests.collector.test_public import GTIN14, GTIN_LOT, World, build_world, public_app
from tests.e2e.browser import CHROMIUM, require_chromium
from tests.stores import KINDS, store_of
from traceedge.brokers import free_port

if TYPE_CHECKING:
    from playwright.sync_api import ViewportSize

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
ROOT = Path(__file__).resolve().parents[2]
SHOTS = Path(os.environ.get("TRACEEDGE_SCREENSHOTS", ROOT / "build" / "screenshots")) / "public"
PHONE: ViewportSize = {"width": 390, "height": 844}
DESKTOP: ViewportSize = {"width": 1280, "height": 900}


@pytest.fixture(scope="module", params=KINDS)
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, World]]:
    sut = store_of(request.param, tmp_path_factory.mktemp("public-browser"))
    try:
        world = build_world(sut)
        port = free_port()
        server = ApiServer(public_app(sut), "test: public", "127.0.0.1", port)
        server.start()
        try:
            yield f"http://127.0.0.1:{port}", world
        finally:
            server.stop()
    finally:
        sut.close()


def _check(page: Any, name: str, problems: list[str]) -> None:
    from axe_playwright_python.sync_playwright import Axe

    width = page.viewport_size["width"]
    slug = re.sub(r"[^0-9a-z]+", "-", name.lower()).strip("-")
    page.screenshot(path=str(SHOTS / f"{slug}-{width}.png"), full_page=True)
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    if overflow > 0:
        problems.append(f"{name} at {width}px scrolls sideways by {overflow}px")
    for v in Axe().run(page).response["violations"]:
        if v.get("impact") in ("serious", "critical"):
            problems.append(f"{name} at {width}px: {v['id']} [{v['impact']}] {v['help']}")


def test_the_shopper_pages_fit_a_phone_and_pass_axe(served: tuple[str, World]) -> None:
    require_chromium()
    from playwright.sync_api import sync_playwright

    base, world = served
    stopped = next(r for r in world.day.receipts if any(r.after_stop()) and len(r.lines) > 1)
    pages = {
        "trace page with a stopped batch": f"/t/{stopped.trace_id}",
        "trace page in English": f"/t/{stopped.trace_id}?lang=en",
        "trace page across markets": f"/t/{world.retail.trace_id}",
        "digital link batch": f"/01/{GTIN14}/10/{GTIN_LOT.batch_id}",
        "lookup form": "/",
        "unknown trace code": "/t/81000012511249999990",
    }
    SHOTS.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            for viewport in (PHONE, DESKTOP):
                # axe is injected as a script, which the page's own CSP would refuse
                ctx = browser.new_context(viewport=viewport, bypass_csp=True)
                page = ctx.new_page()
                for name, path in pages.items():
                    page.goto(base + path)
                    _check(page, name, problems)
                ctx.close()
            # with the CSP in force, the page still renders styled (its one stylesheet is
            # its own), and the warning is on the first screen of a phone
            ctx = browser.new_context(viewport=PHONE)
            page = ctx.new_page()
            csp_errors: list[str] = []
            page.on("console", lambda m: csp_errors.append(m.text) if m.type == "error" else None)
            page.goto(base + pages["trace page with a stopped batch"])
            alert = page.get_by_role("alert")
            assert alert.is_visible()
            box = alert.bounding_box()
            assert box is not None and box["y"] + box["height"] <= PHONE["height"]
            color = page.evaluate(
                "getComputedStyle(document.querySelector('[role=alert]')).borderTopColor"
            )
            assert color == "rgb(176, 0, 32)", color  # the stylesheet applied
            assert csp_errors == []
            ctx.close()
        finally:
            browser.close()
    assert problems == [], "\n".join(problems)
