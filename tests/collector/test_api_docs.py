"""``/docs`` without the internet: the page names only assets the collector serves itself,
and a real browser with every off-host request blocked renders the API's operations."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient

from collector.api import make_app
from collector.api_docs import mount_docs
from collector.store import SqliteStore
from hostlib.listen import listen

CHROMIUM_HINT = "chromium not found: apt-get install chromium"


class Refs(HTMLParser):
    """Every URL a page makes the browser load: script src, link href, img src."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        for key in ("src", "href"):
            if a.get(key) and tag in ("script", "link", "img"):
                self.urls.append(str(a[key]))


@pytest.fixture
def store(tmp_path: Path) -> Path:
    SqliteStore(tmp_path / "collector.sqlite").close()
    return tmp_path / "collector.sqlite"


def test_every_asset_of_docs_is_served_here(store: Path) -> None:
    with TestClient(make_app(store)) as client:
        page = client.get("/docs")
        assert page.status_code == 200
        refs = Refs()
        refs.feed(page.text)
        assert len(refs.urls) >= 3, refs.urls  # the script, the stylesheet, the icon
        for url in refs.urls:
            parts = urlsplit(url)
            assert not parts.scheme and not parts.netloc, f"{url} is off-host"
            assert url.startswith("/docs/"), url  # anonymous on the regulator listener
            reply = client.get(url)
            assert reply.status_code == 200 and len(reply.content) > 1000, url
        assert "url: '/openapi.json'" in page.text
        assert '"validatorUrl": null' in page.text  # no call to validator.swagger.io
        spec = client.get("/openapi.json")
        assert spec.status_code == 200 and "/metrics" in spec.json()["paths"]
        assert client.get("/redoc").status_code == 404  # the CDN one is off


def test_an_app_with_its_own_docs_is_refused() -> None:
    with pytest.raises(ValueError, match="docs_url=None"):
        mount_docs(FastAPI())


@pytest.fixture
def served(store: Path) -> Iterator[str]:
    sock = listen("test api", "127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(make_app(store), log_level="warning"))
    t = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        t.join(timeout=10)
        sock.close()


def test_docs_render_in_a_browser_cut_off_from_the_internet(served: str) -> None:
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.fail(CHROMIUM_HINT, pytrace=False)
    from playwright.sync_api import Route, sync_playwright

    off_host: list[str] = []

    def only_here(route: Route) -> None:
        if route.request.url.startswith(served + "/"):
            route.continue_()
        else:
            off_host.append(route.request.url)
            route.abort()

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium)
        try:
            page = browser.new_page()
            page.route("**/*", only_here)
            page.goto(served + "/docs")
            page.wait_for_selector(".opblock", timeout=20_000)  # operations drawn from the spec
            assert page.locator(".opblock").count() > 10
            assert "/metrics" in page.content()
        finally:
            browser.close()
    assert off_host == []
