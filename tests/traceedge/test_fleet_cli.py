"""``traceedge fleet run`` as an operator runs it, against Mosquitto, an edge agent and a
collector: it skips the registry's gateway identity, continues every device's sequence
from the run before (nothing quarantined as a conflict, even after a run killed with
SIGKILL) and ends with one line, not a traceback, when the broker cannot be reached."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from hostlib.registry import Registry
from simulators.fleet_state import FleetState, default_path
from tests.conftest import Chain, wait_until
from traceedge.brokers import free_port


def fleet_cmd(registry: Path, port: int, records: int, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "traceedge",
        "fleet",
        "run",
        "--registry",
        str(registry),
        "--port",
        str(port),
        "--records",
        str(records),
        "--drain-timeout",
        "90",
        *extra,
    ]


def fleet_run(ch: Chain, records: int, *extra: str) -> tuple[dict[str, int], str]:
    """One ``fleet run`` to completion: its JSON summary and its stderr."""
    res = subprocess.run(
        fleet_cmd(ch.registry, ch.broker.port, records, *extra),
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    assert "Traceback" not in res.stderr
    summary: dict[str, int] = json.loads(res.stdout.strip().splitlines()[-1])
    return summary, res.stderr


def stored(ch: Chain, n: int) -> None:
    wait_until(lambda: ch.collector_stats().get("records", 0) >= n, 60, f"{n} records stored")


def settled(ch: Chain) -> int:
    """Records stored once nothing moves any more (the agent empty, the store still)."""
    seen: list[int] = []

    def still() -> bool:
        seen.append(ch.collector_stats()["records"])
        return ch.agent_status()["depth"] == 0 and seen[-4:] == [seen[-1]] * 4

    wait_until(still, 60, "the chain to settle", every=0.5)
    return seen[-1]


def test_fleet_run_skips_the_gateway_the_readme_provisions(
    chain_factory: Callable[..., Chain],
) -> None:
    ch = chain_factory()  # the agent's own identity (a gateway) is in the registry too
    gateways = [d.dev for d in Registry(ch.registry).devices().values() if d.type == "gateway"]
    assert len(gateways) == 1

    out, err = fleet_run(ch, 30)

    assert "skipped 1 registry entries that are not terminals" in err
    assert f"{gateways[0]} (gateway)" in err
    assert (out["generated"], out["acked"], out["pending"]) == (30, 30, 0)
    stored(ch, 30)
    s = ch.collector_stats()
    assert (s["records"], s["quarantined"], s["gaps"]) == (30, 0, 0)


def test_a_second_fleet_run_continues_every_device_sequence(
    chain_factory: Callable[..., Chain],
) -> None:
    ch = chain_factory()
    per_device = 30 // len(ch.devices)

    first, _ = fleet_run(ch, 30)
    second, err = fleet_run(ch, 30)

    assert (first["acked"], second["acked"], second["pending"]) == (30, 30, 0)
    assert settled(ch) == 60
    ch.wait_forwarded(60)
    ch.assert_exactly_once(60)  # no conflict quarantined, no gap, each record once
    state = default_path(ch.registry)
    assert f"sequences kept in {state}" in err
    assert FleetState(state).load() == {d.dev: (2 * per_device, 2) for d in ch.devices}


def test_a_fleet_run_killed_with_sigkill_leaves_a_gap_never_a_conflict(
    chain_factory: Callable[..., Chain], tmp_path: Path
) -> None:
    ch = chain_factory()
    state = tmp_path / "fleet.json"
    run = subprocess.Popen(
        fleet_cmd(ch.registry, ch.broker.port, 5000, "--rate", "40", "--state", str(state)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        stored(ch, 20)
    finally:
        run.kill()  # no chance to write where the devices stopped
        run.wait(10)
    before = settled(ch)
    reserved = FleetState(state).load()
    assert all(seq == 5000 for seq, _ in reserved.values()), reserved

    out, _ = fleet_run(ch, 12, "--state", str(state))

    assert (out["acked"], out["pending"]) == (12, 0)
    stored(ch, before + 12)
    s = ch.collector_stats()
    assert (s["records"], s["quarantined"]) == (before + 12, 0)
    assert s["gaps"] > 0  # the numbers the killed run reserved and never used: visible
    assert all(seq == 5002 for seq, _ in FleetState(state).load().values())


def test_fleet_run_against_an_unreachable_broker_is_one_line(tmp_path: Path) -> None:
    from hostlib.registry import add_devices
    from traceedge.provision import new_device

    registry = tmp_path / "devices.json"
    add_devices(registry, [new_device("market-scale", "S1")], 0)
    res = subprocess.run(
        fleet_cmd(registry, free_port(), 5, "--connect-timeout", "3"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 1, res.stderr
    assert "Traceback" not in res.stderr
    last = res.stderr.strip().splitlines()[-1]
    assert last.startswith("Error: cannot reach the broker at 127.0.0.1:"), res.stderr
    assert "nothing was published" in last


def test_a_second_fleet_run_on_the_same_state_is_refused(tmp_path: Path) -> None:
    from hostlib.registry import add_devices
    from traceedge.provision import new_device

    registry = tmp_path / "devices.json"
    add_devices(registry, [new_device("market-scale", "S1")], 0)
    with FleetState(default_path(registry)).locked():  # a run holds it
        res = subprocess.run(
            fleet_cmd(registry, free_port(), 5, "--connect-timeout", "3"),
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert res.returncode == 1, res.stderr
    assert "Traceback" not in res.stderr
    assert f"another fleet run (pid {os.getpid()}) is using this state" in res.stderr


def test_fleet_run_chain_day_makes_hops_the_collector_links(
    chain_factory: Callable[..., Chain],
) -> None:
    """``--chain-day``: a wholesale market feeding two retail markets, on six of the market
    terminals; every retail entry is linked to the wholesale sale it names."""
    from tests.conftest import SITE
    from traceedge.provision import new_device

    ch = chain_factory(extra_devices=[new_device("market-scale", SITE) for _ in range(4)])
    out, _ = fleet_run(ch, 10, "--chain-day")
    assert out["chain_records"] > 0 and out["pending"] == 0
    stored(ch, 10 + out["chain_records"])
    import sqlite3

    db = sqlite3.connect(ch.store)
    try:
        wait_until(
            lambda: (
                db.execute("SELECT COUNT(DISTINCT entry_id) FROM market_links").fetchone()[0] == 4
            ),
            30,
            "the four retail entries linked",
        )
    finally:
        db.close()
