"""The whole chain to the shopper: simulated market scales → agent → broker → collector, a
stop order issued on the regulator's API with a token, and the shopper's page on the
collector's public listener showing it, with the market's name and complaint line and
nothing personal; the public listener answers none of the regulator's routes and limits
each client."""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Callable

import httpx

from collector import audit, sites
from collector.tokens import TokenStore
from tests.conftest import SITE, Chain
from traceedge.brokers import free_port

MARKET_NAME = "上城区测试农贸市场"
MARKET_PHONE = "0571-88886666"
REASON = "瘦肉精 test positive"
PERSONAL = ("card", "seller_card", "buyer", "buyer_card", "terminal")


def test_a_stop_reaches_the_shoppers_page(chain_factory: Callable[..., Chain]) -> None:
    api, public = free_port(), free_port()
    ch = chain_factory(api_port=api, public={"port": public, "burst": 60})
    scales = [d for d in ch.devices if d.type == "market-scale"]
    out = ch.fleet(devices=scales).run(300, drain_timeout_s=60)
    assert out["pending"] == 0
    ch.wait_forwarded(300)

    db = sqlite3.connect(ch.store, isolation_level=None)
    try:
        sales = [
            json.loads(r[0])["body"]
            for r in db.execute("SELECT rec FROM records WHERE kind = 'market.settlement'")
        ]
        market = str(sales[0]["market"])
        # what `traceedge collector import-sites` writes: the market's name and phone
        sites.import_sites(
            db,
            [{"site": SITE, "name": MARKET_NAME, "kind": "market", "market": market,
              "phone": MARKET_PHONE}],
        )  # fmt: skip
        _, token = TokenStore(db).create(
            "admin", "all", "e2e", audit.Actor("cli:e2e", "admin", "local")
        )
        secrets: set[str] = set()
        for dev, text in db.execute("SELECT dev, rec FROM records"):
            rec = json.loads(text)
            body = rec["body"]
            secrets |= {dev, str(rec["mac"])}
            secrets |= {str(body[k]) for k in PERSONAL if body.get(k)}
    finally:
        db.close()
    assert any(s.get("buyer") for s in sales), "the simulator's sales should name buyers"

    sale = sales[0]
    batch = str(sale["lines"][0]["batch_id"])
    regulator = f"http://127.0.0.1:{api}"
    r = httpx.post(
        f"{regulator}/markets/batches/{batch}/stop",
        json={"reason": REASON},
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert r.status_code == 200, r.text

    base = f"http://127.0.0.1:{public}"
    page = httpx.get(f"{base}/t/{sale['trace_id']}", timeout=10)
    assert page.status_code == 200, page.text
    text = page.text
    alert = re.search(r'role="alert".*?</section>', text)
    assert alert is not None and REASON in alert.group(0)
    for needle in (MARKET_NAME, f"({market})", 'href="tel:12315"', f'href="tel:{MARKET_PHONE}"'):
        assert needle in text, needle
    assert page.headers["content-security-policy"].startswith("default-src 'self'")
    got = httpx.get(f"{base}/t/{sale['trace_id']}.json", timeout=10).json()
    assert got["stopped"] is True and got["market"]["name"] == MARKET_NAME

    # nothing personal or device-bound in the answers about the chain's sales
    pattern = re.compile("|".join(re.escape(s) for s in sorted(secrets, key=len, reverse=True)))
    for s in sales[:20]:
        for url in (f"{base}/t/{s['trace_id']}", f"{base}/t/{s['trace_id']}.json"):
            res = httpx.get(url, timeout=10)
            assert res.status_code == 200, url
            assert pattern.findall(res.text) == [], url

    # the regulator's routes are not on the public listener; there they need a token
    for path in (f"/trace/{sale['trace_id']}", "/records", "/devices", "/stats"):
        assert httpx.get(base + path, timeout=10).status_code == 404, path
        assert httpx.get(regulator + path, timeout=10).status_code == 401, path
    assert (
        httpx.post(f"{base}/markets/batches/{batch}/lift", json={"reason": "x"}).status_code == 404
    )

    # and it limits a client that keeps asking
    for _ in range(300):
        refused = httpx.get(f"{base}/", timeout=10)
        if refused.status_code == 429:
            break
        assert refused.status_code == 200
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
