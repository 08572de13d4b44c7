"""Every route of the regulator's listener × every role, generated from the route table in
docs/access.md: allowed or refused as the table says; anonymous requests refused. On an
empty store of each kind (SQLite, PostgreSQL): no route answers 5xx on either."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from collector.api import make_app
from collector.audit import Actor
from collector.tokens import POLICY, TokenStore
from tests.stores import KINDS, store_of
from wire.tracecode import make_trace_code

DOCS = Path(__file__).resolve().parents[2] / "docs" / "access.md"
PRINCIPALS = {  # who → (role, scope); None: no token
    "anonymous": None,
    "inspector": ("inspector", "all"),
    "district inspector": ("inspector", "district:3101"),
    "operator": ("operator", "market:M330106001"),
    "admin": ("admin", "all"),
    "monitor": ("monitor", "all"),
}
SAMPLES = {
    "trace_code": make_trace_code("330106", "251126", 1, 8),
    "batch_id": "B3301060012025112601",
    "dev": "MKT-S1-000001",
    "seq": "1",
    "cyl": "CYL-0001",
    "reg": "31103301002021000017",
    "id": "1",
    "kind": "sites",
    "licence": "LIC-AUTHZ-0001",
}


def route_table() -> list[tuple[str, str, str]]:
    text = DOCS.read_text(encoding="utf-8")
    section = text.split("## Routes of the `[api]` listener", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        m = re.match(r"^\|\s*(GET|POST|PUT|DELETE)\s*\|\s*(\S+)\s*\|\s*(\S+)\s*\|", line)
        if m:
            rows.append((m.group(1), m.group(2), m.group(3)))
    return rows


ROUTES = route_table()


@pytest.fixture(scope="module", params=KINDS)
def api(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[TestClient, dict[str, str]]]:
    sut = store_of(request.param, tmp_path_factory.mktemp("authz"))
    try:
        tokens = {}
        with sut.write() as db:
            for who, spec in PRINCIPALS.items():
                if spec is not None:
                    _, tokens[who] = TokenStore(db).create(*spec, who, Actor("t", "admin", "local"))
        reg = sut.path.parent / "devices.json"
        reg.write_text('{"devices": {}}')
        app = make_app(sut.ctx(registry_path=reg))
        yield TestClient(app, raise_server_exceptions=False), tokens
    finally:
        sut.close()


def _url(path: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: SAMPLES[m.group(1)], path)


def test_the_table_lists_every_route_the_api_documents(
    api: tuple[TestClient, dict[str, str]],
) -> None:
    client, _ = api
    documented = {
        (method.upper(), path)
        for path, ops in client.get("/openapi.json").json()["paths"].items()
        for method in ops
    }
    listed = {(m, p) for m, p, _ in ROUTES}
    assert documented - listed == set(), "routes missing from docs/access.md"
    assert {(m, p) for m, p in listed - documented if not p.startswith("/console")} == set()
    assert {a for _, _, a in ROUTES} <= {*POLICY, "anyone"}


@pytest.mark.parametrize(
    ("method", "path", "action"), ROUTES, ids=[f"{m} {p}" for m, p, _ in ROUTES]
)
@pytest.mark.parametrize("who", list(PRINCIPALS))
def test_route_as_role(
    api: tuple[TestClient, dict[str, str]], method: str, path: str, action: str, who: str
) -> None:
    client, tokens = api
    headers = {"Authorization": f"Bearer {tokens[who]}"} if who in tokens else {}
    body: object = {"reason": "authz test", "comment": "authz test"} if method == "POST" else None
    if path == "/registry/{kind}":
        body = [{"site": "S-AUTHZ", "name": "authz test"}]
    r = client.request(method, _url(path), headers=headers, json=body, follow_redirects=False)
    spec = PRINCIPALS[who]
    if action == "anyone":
        assert r.status_code not in (401, 403), r.text
    elif spec is None:
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer", r.text
    elif spec[0] in POLICY[action]:
        assert r.status_code not in (401, 403), r.text
    else:
        assert r.status_code == 403, r.text
    assert r.status_code < 500, r.text


@pytest.mark.parametrize(
    "token",
    ["te_00000000_" + "A" * 43, "garbage", "", "te_", "Basic dXNlcjpwYXNz"],
)
def test_a_bad_token_is_anonymous(api: tuple[TestClient, dict[str, str]], token: str) -> None:
    client, _ = api
    for h in ({"Authorization": f"Bearer {token}"}, {"Authorization": token}):
        assert client.get("/stats", headers=h).status_code == 401
    client.cookies.set("te_token", token)
    try:
        assert client.get("/stats").status_code == 401
    finally:
        client.cookies.clear()
