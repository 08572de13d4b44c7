"""``traceedge collector import-traders`` and ``import-elevators``: a good file reaches the
store and shows in the query API; a bad file is refused whole with its row and field named.
Each on the SQLite store and on PostgreSQL (``[store] url``); a store that cannot be opened
is a one-line error on either (a file that is not a database, a server that does not
answer)."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from collector.api import make_app
from collector.verify import Good
from simulators.records import make_body
from tests.stores import KINDS, StoreUnderTest, store_of
from traceedge.brokers import free_port
from traceedge.cli import main
from wire.canonical import canonical
from wire.envelope import make_record

NOW_MS = 1_763_900_000_000
REG_1 = "31103301002021000017"
REG_2 = "31103301002021000025"


def write_config(tmp_path: Path, url: str | None = None) -> Path:
    """A collector config file: the SQLite store in ``data``, or PostgreSQL at ``url``."""
    cfg = tmp_path / "collector.toml"
    text = (
        '[collector]\ndata_dir = "data"\nregistry = "devices.json"\ncommand_key = "command.key"\n'
    )
    if url:
        text += f'[store]\nurl = "{url}"\n'
    cfg.write_text(text)
    return cfg


@pytest.fixture(params=KINDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreUnderTest]:
    """The store the config names (its SQLite file where the config puts it), empty."""
    sut = store_of(request.param, tmp_path / "data")
    try:
        yield sut
    finally:
        sut.close()


def collector_config(tmp_path: Path, store: StoreUnderTest) -> Path:
    return write_config(tmp_path, store.url)


def run(command: str, cfg: Path, source: Path) -> Any:
    return CliRunner().invoke(main, ["collector", command, "--config", str(cfg), str(source)])


def write_json(path: Path, data: object) -> Path:
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


def store_sale(store: StoreUnderTest) -> dict[str, Any]:
    """Commit one settlement, as the collector would; returns its body."""
    dev, kind = "MKT-C-1", "market.settlement"
    body = make_body(kind, random.Random(1), dev, 1, "S1", now_ms=NOW_MS)
    rec = make_record(dev, 1, 1, kind, NOW_MS, "ntp", body, b"k" * 32)
    store.store.commit(
        "S1", "b1", [Good(dev, 1, kind, NOW_MS, str(rec["mac"]), canonical(rec).decode())], []
    )
    return body


def count(store: StoreUnderTest, table: str) -> int:
    query = {
        "traders": "SELECT COUNT(*) FROM traders",
        "elevators": "SELECT COUNT(*) FROM elevators",
    }
    with store.read() as db:
        return int(db.execute(query[table]).fetchone()[0])


def test_imported_traders_are_the_sellers_trace_chains_name(
    tmp_path: Path, store: StoreUnderTest
) -> None:
    cfg = collector_config(tmp_path, store)
    sale = store_sale(store)
    client = TestClient(make_app(store.ctx()), headers=store.admin_headers())
    before = client.get(f"/trace/{sale['trace_id']}").json()
    assert before["sale"]["seller"]["registered"] is False
    assert "seller_unregistered" in before["flags"]

    traders = [
        {
            "trader": sale["seller"],
            "name": "王建国",
            "market": sale["market"],
            "card_uid": sale["seller_card"],
            "stall": "A-01",
        },
        {"trader": "T0002", "name": "李秀英", "market": sale["market"]},
    ]
    res = run("import-traders", cfg, write_json(tmp_path / "traders.json", traders))
    assert res.exit_code == 0, res.output
    assert "imported 2 traders" in res.output

    after = client.get(f"/trace/{sale['trace_id']}").json()
    seller = after["sale"]["seller"]
    assert seller["registered"] is True and seller["card_matches"] is True
    assert (seller["name"], seller["stall"]) == ("王建国", "A-01")
    assert "seller_unregistered" not in after["flags"]
    assert count(store, "traders") == 2


def test_imported_elevators_show_in_the_query_api(tmp_path: Path, store: StoreUnderTest) -> None:
    cfg = collector_config(tmp_path, store)
    elevators = [
        {"reg": REG_1, "address": "杭州市西湖区文三路 90 号 2 单元", "company": "西子电梯维保"},
        {"reg": REG_2, "address": "杭州市西湖区文三路 90 号 3 单元", "site": "S001"},
    ]
    res = run("import-elevators", cfg, write_json(tmp_path / "elevators.json", elevators))
    assert res.exit_code == 0, res.output
    assert "imported 2 elevators" in res.output

    client = TestClient(make_app(store.ctx()), headers=store.admin_headers())
    view = client.get(f"/elevators/{REG_1}").json()
    assert view["registered"] is True
    assert view["registration"] == {
        "reg": REG_1,
        "address": elevators[0]["address"],
        "company": "西子电梯维保",
        "site": None,
    }
    assert client.get(f"/elevators/{REG_2}").json()["registration"]["site"] == "S001"


GOOD_TRADER = {"trader": "T0001", "name": "王建国", "market": "M330106001"}
GOOD_ELEVATOR = {"reg": REG_1, "address": "杭州市文三路 90 号"}


@pytest.mark.parametrize(
    ("command", "table", "data", "message"),
    [
        (
            "import-traders",
            "traders",
            [GOOD_TRADER, dict(GOOD_TRADER, card_uid="xyz")],
            "trader row 1: card_uid must be 8-20 upper-case hex digits; nothing imported",
        ),
        (
            "import-traders",
            "traders",
            [GOOD_TRADER, {"trader": "T0002", "market": "M330106001"}],
            "trader row 1: name is required; nothing imported",
        ),
        (
            "import-traders",
            "traders",
            [GOOD_TRADER, "T0002"],
            "trader row 1: not an object; nothing imported",
        ),
        (
            "import-elevators",
            "elevators",
            [GOOD_ELEVATOR, dict(GOOD_ELEVATOR, reg="31103301002021")],
            "elevator row 1: reg must be 20 of 0-9 A-Z; nothing imported",
        ),
        (
            "import-elevators",
            "elevators",
            [GOOD_ELEVATOR, dict(GOOD_ELEVATOR, reg=REG_2, company=7)],
            "elevator row 1: company must be text of at most 64 characters; nothing imported",
        ),
        (
            "import-elevators",
            "elevators",
            [GOOD_ELEVATOR, ["31103301002021000025"]],
            "elevator row 1: not an object; nothing imported",
        ),
        ("import-traders", "traders", {"trader": "T0001"}, "must be a JSON list of traders"),
        ("import-elevators", "elevators", {"reg": REG_1}, "must be a JSON list of elevators"),
    ],
)
def test_a_bad_file_is_refused_whole_and_says_where(
    tmp_path: Path, store: StoreUnderTest, command: str, table: str, data: object, message: str
) -> None:
    cfg = collector_config(tmp_path, store)
    res = run(command, cfg, write_json(tmp_path / "in.json", data))
    assert res.exit_code != 0
    assert message in res.output
    assert "Traceback" not in res.output
    assert count(store, table) == 0


@pytest.mark.parametrize("command", ["import-traders", "import-elevators"])
def test_a_file_that_is_not_json_is_a_clear_error(tmp_path: Path, command: str) -> None:
    cfg = write_config(tmp_path)
    source = tmp_path / "in.json"
    source.write_text('[{"reg": ', encoding="utf-8")
    res = run(command, cfg, source)
    assert res.exit_code != 0
    assert f"{source}: not JSON" in res.output
    assert "Traceback" not in res.output


def test_a_store_that_cannot_be_opened_is_a_clear_error(tmp_path: Path) -> None:
    cfg = write_config(tmp_path)
    store_path = tmp_path / "data" / "collector.sqlite"
    store_path.parent.mkdir()
    store_path.write_bytes(b"not a database, " * 64)
    res = run("import-elevators", cfg, write_json(tmp_path / "in.json", [GOOD_ELEVATOR]))
    assert res.exit_code != 0
    assert f"{store_path}: file is not a database; nothing imported" in res.output
    assert "Traceback" not in res.output


def test_a_postgresql_server_that_does_not_answer_is_a_clear_error(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    cfg = write_config(tmp_path, f"postgresql://postgres:secret@127.0.0.1:{port}/traceedge")
    res = run("import-traders", cfg, write_json(tmp_path / "in.json", [GOOD_TRADER]))
    assert res.exit_code != 0
    assert f"postgresql://postgres@127.0.0.1:{port}/traceedge: " in res.output
    assert res.output.rstrip().endswith("nothing imported")
    assert "secret" not in res.output and "Traceback" not in res.output
