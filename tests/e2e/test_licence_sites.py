"""A purchase licence valid at two stores, end to end: real Mosquitto (a broker per site and
the central one), two sites' agents and the collector (docs/warehouse.md, issue 14).

What left at site A against the licence reaches site B's dispatch gate through the
collector's signed ``licence_use`` push, and B refuses beyond the remainder. Then, with the
central broker down, both sites let the same second licence go within what each knew; when
the link returns the collector sees the sites together went over its quantity and raises a
``licence_overdrawn`` alarm, and the reporting list flags the sales."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from collector import licence_use, whviews
from collector.storedb import StoreDb
from edge_agent.status import read_status
from hostlib.sqlite import get_meta
from simulators.warehouse_terminal import WarehouseTerminal
from tests.conftest import SITE, Chain, wait_until
from tests.e2e.test_warehouse_day import BUYER, chemical, cli, gs1
from traceedge.brokers import Broker, free_port
from traceedge.launch import Role, agent_config
from traceedge.provision import new_device, site_trust

SITE_B = "CHEM-B"
BOTH = f"{SITE} {SITE_B}"
LICENCES = (
    "licence,kind,holder,classes,quantity,unit,valid_from,valid_until,sites\n"
    f"JD-2,toxic_purchase,宁波港华电镀厂,chemical_toxic,100000,g,2020-01-01,2099-12-31,{BOTH}\n"
    f"JD-3,toxic_purchase,宁波港华电镀厂,chemical_toxic,50000,g,2020-01-01,2099-12-31,{BOTH}\n"
)


def toxic(quantity: int, licence: str) -> dict[str, Any]:
    return chemical("chemical_toxic", "氰化钠", quantity, "L-CN", licence=licence, **BUYER)


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest) -> str | None:
    """The collector's store: None for its SQLite file, else a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return None
    return str(request.getfixturevalue("pg_url"))


def test_a_licence_is_honoured_across_its_sites_and_an_overdraw_offline_is_alarmed(
    store_url: str | None, chain_factory: Callable[..., Chain], tmp_path: Path
) -> None:
    term_a = new_device("warehouse-terminal", SITE)
    term_b = new_device("warehouse-terminal", SITE_B)
    # store_url first: its database is made before the chain and dropped after it stops
    ch = chain_factory(separate_central=True, extra_devices=[term_a, term_b], store_url=store_url)
    # site B: its own gateway, broker and agent, under the same centre
    trust_b = site_trust(ch.root, ch.registry, SITE_B)
    broker_b = Broker("mosquitto", free_port(), ch.root / "broker-b").start()
    cfg_b = agent_config(
        ch.root / "agent-b.toml",
        SITE_B,
        ch.root / "agent-b",
        broker_b.port,
        ch.central.port,
        devices=trust_b.agent_devices,
        identity=trust_b.identity,
        command_key=trust_b.command_pub,
    )
    agent_b = Role("agent", cfg_b, ch.root / "agent-b.log").start()
    outbox_b = ch.root / "agent-b" / "outbox.sqlite"
    store = StoreDb(ch.store, store_url, pool_size=1)
    a = b = None
    try:

        def status_b() -> dict[str, Any]:
            try:
                return read_status(outbox_b)
            except Exception:
                return {}

        def wait_for_use_at_b(use: dict[tuple[str, str], dict[str, int]]) -> None:
            """The collector summed ``use`` (debounced), versioned it, and B holds it."""

            def versioned() -> int:
                with store.read() as db:
                    if licence_use.use_by_site(db) != use or licence_use.changed(db):
                        return 0
                    return int(get_meta(db, licence_use.USE_VERSION) or 0)

            wait_until(lambda: versioned() > 0, 40, f"the collector to sum {use}")
            ver = versioned()
            wait_until(lambda: status_b().get("licence_use_version", 0) >= ver, 20, "the push to B")

        wait_until(lambda: bool(status_b().get("local_connected")), 30, "site B's agent")
        (tmp_path / "lic.csv").write_text(LICENCES, encoding="utf-8")
        assert "registry version 1" in cli(ch, "import-licences", str(tmp_path / "lic.csv"))
        wait_until(
            lambda: (
                ch.agent_status()["licence_registry_version"] == 1
                and status_b().get("licence_registry_version") == 1
            ),
            30,
            "the licences to reach both sites",
        )
        a = WarehouseTerminal(ch.broker.port, term_a, SITE)
        b = WarehouseTerminal(broker_b.port, term_b, SITE_B)
        a.receive(
            [gs1(f"A{i}") for i in range(4)], **chemical("chemical_toxic", "氰化钠", 4, "L-CN")
        )
        b.receive(
            [gs1(f"B{i}") for i in range(5)], **chemical("chemical_toxic", "氰化钠", 5, "L-CN")
        )
        # both receipts stored at the collector: each agent keeps its stock from them
        wait_until(lambda: ch.collector_stats().get("records", 0) >= 2, 30, "the receipts")

        # ---- connected: 60 000 g leave at A; B then has 40 000 g left of JD-2 ----------------
        ans = a.dispatch([gs1("A0")], toxic(60_000, "JD-2"))
        assert ans["decision"] == "allow", ans
        wait_for_use_at_b({("JD-2", "g"): {SITE: 60_000}})
        ans = b.dispatch([gs1("B0")], toxic(50_000, "JD-2"))
        assert ans["reasons"] == ["over_licence_quantity"], ans
        ans = b.dispatch([gs1("B0")], toxic(40_000, "JD-2"))
        assert ans["decision"] == "allow", ans

        # ---- cut off: each site lets 30 000 g of JD-3 (50 000 g) go --------------------------
        ch.central.stop()
        wait_until(
            lambda: (
                not ch.agent_status()["uplink_connected"] and not status_b().get("uplink_connected")
            ),
            15,
            "the outage",
        )
        assert a.dispatch([gs1("A1")], toxic(30_000, "JD-3"))["decision"] == "allow"
        assert b.dispatch([gs1("B1")], toxic(30_000, "JD-3"))["decision"] == "allow"
        ch.central.start()

        def alarms() -> list[str]:
            with store.read() as db:
                rows = db.execute(
                    "SELECT detail FROM alarms WHERE kind = ?", (licence_use.ALARM,)
                ).fetchall()
            return [str(r[0]) for r in rows]

        wait_until(lambda: len(alarms()) == 2, 60, "the overdraw alarm at each site")
        assert sorted(a.split(":")[0] for a in alarms()) == sorted([SITE, SITE_B])
        assert all("licence JD-3: 60000 g" in a for a in alarms()), alarms()
        assert f"{SITE_B} 30000, {SITE} 30000" in alarms()[0]  # sites in order
        with store.read() as db:
            sales = whviews.to_report(db)
            first_deny = db.execute(
                "SELECT rec FROM records WHERE site = ? AND kind = 'goods.dispatch' "
                "AND json_extract(rec, '$.body.decision') = 'deny' ORDER BY ts LIMIT 1",
                (SITE_B,),
            ).fetchone()
        body = json.loads(first_deny[0])["body"]  # the figures B refused 50 000 g with
        assert (body["used_here"], body["used_elsewhere"], body["quantity"]) == (0, 60_000, 50_000)
        flagged = {(s.site, s.licence) for s in sales if s.licence_overdrawn}
        assert flagged == {(SITE, "JD-3"), (SITE_B, "JD-3")}
        # and B, told what A let go, refuses even a gram more of either licence
        wait_for_use_at_b(
            {
                ("JD-2", "g"): {SITE: 60_000, SITE_B: 40_000},
                ("JD-3", "g"): {SITE: 30_000, SITE_B: 30_000},
            }
        )
        for lic in ("JD-2", "JD-3"):
            ans = b.dispatch([gs1("B2")], toxic(1, lic))
            assert ans["reasons"] == ["over_licence_quantity"], (lic, ans)
    finally:
        for t in (a, b):
            if t is not None:
                t.close()
        store.close()
        agent_b.stop()
        broker_b.stop()
