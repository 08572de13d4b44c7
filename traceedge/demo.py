"""``traceedge demo``: the whole chain on one machine, with live progress and a summary.

simulated terminals (fleet) → broker → edge agent (child process) → broker → collector
(child process) → fake city platform. Everything lives in a work folder (a temporary one
unless ``--workdir`` is given) and is stopped at the end, or when the demo is stopped
(Ctrl-C, SIGTERM); the child processes die with the demo even when it is killed with
SIGKILL (:mod:`traceedge.lifeline`).
"""

from __future__ import annotations

import contextlib
import json
import shutil
import sqlite3
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from collector.store import read_summary
from edge_agent.status import read_status
from hostlib.errors import TraceedgeError
from hostlib.mqttlink import BrokerSettings
from hostlib.registry import add_devices
from hostlib.sqlite import open_ro
from simulators.chain import chain_day
from simulators.fleet import Fleet
from simulators.platform import PlatformServer
from traceedge.brokers import free_port, start_broker
from traceedge.demo_gateway import wire_gateway
from traceedge.demo_warehouse import StoreScene, WarehouseDay, check_stocktake
from traceedge.launch import Role, agent_config, collector_config
from traceedge.provision import new_device, site_trust

SITE = "DEMO01"
FLEET_SHAPE = (("cylinder-reader", 3), ("elevator-box", 3), ("market-scale", 4))


@dataclass
class DemoResult:
    summary: dict[str, Any]
    sample: dict[str, Any]
    console_url: str = ""
    public_url: str = ""
    admin_token: str = ""


def run_demo(
    records: int,
    workdir: Path | None,
    broker_kind: str,
    rate: float,
    say: Callable[[str], None],
    timeout_s: float = 300.0,
    epcis_out: Path | None = None,
    serve: Callable[[DemoResult], None] | None = None,
) -> DemoResult:
    """Run the chain until the platform has every record (or ``timeout_s`` passes). Each
    part is stopped on the way out, in reverse order of starting, however the way out is
    taken (the summary, an error, Ctrl-C or SIGTERM turned into ``KeyboardInterrupt``)."""
    with contextlib.ExitStack() as running:
        if workdir is None:
            workdir = Path(tempfile.mkdtemp(prefix="traceedge-demo-"))
            running.callback(shutil.rmtree, workdir, ignore_errors=True)
        result = _run(records, workdir, broker_kind, rate, say, timeout_s, epcis_out, running)
        if serve is not None:
            serve(result)  # the chain keeps running until it returns (Ctrl-C)
    return result


def _run(
    records: int,
    workdir: Path,
    broker_kind: str,
    rate: float,
    say: Callable[[str], None],
    timeout_s: float,
    epcis_out: Path | None,
    running: contextlib.ExitStack,
) -> DemoResult:
    workdir.mkdir(parents=True, exist_ok=True)
    registry = workdir / "registry" / "devices.json"
    devices = [new_device(t, SITE) for t, n in FLEET_SHAPE for _ in range(n)]
    gateway = wire_gateway(workdir, SITE)  # devices on the gateway's own ports
    running.callback(gateway.stop)
    # a multi-hop day beside the fleet (卡单同行): a wholesale market feeding two retail
    # markets, a gate and a scale each, on the same site's agent (simulators/chain.py)
    day = chain_day(int(time.time() * 1000) - 3_600_000, step_ms=1000)
    chain_names = sorted({r.dev for r in day.records})
    chain_devices = [new_device("market-scale", SITE) for _ in chain_names]
    dev_of = {n: d.dev for n, d in zip(chain_names, chain_devices, strict=True)}
    script = [(dev_of[r.dev], r.kind, r.ts, r.body) for r in day.records]
    store_terminal = new_device("warehouse-terminal", SITE)  # a store at the site
    add_devices(
        registry, devices + chain_devices + [store_terminal] + gateway.devices, int(time.time())
    )
    say(
        f"provisioned {len(devices) + len(chain_devices)} MQTT terminals, a warehouse "
        f"terminal, "
        f"{len(gateway.bus_devices)} on an RS-485 serial bus and an elevator controller on "
        f"Modbus for site {SITE} in {registry}"
    )

    broker = start_broker(broker_kind, workdir / "broker")
    running.callback(broker.stop)
    say(f"broker: {broker.kind} on 127.0.0.1:{broker.port}")
    platform = PlatformServer(port=0).start()
    running.callback(platform.stop)
    say(f"city platform (simulated): {platform.url}")
    api_port, public_port = free_port(), free_port()
    trust = site_trust(workdir, registry, SITE)
    ccfg = collector_config(
        workdir / "collector.toml",
        workdir / "collector",
        registry,
        broker.port,
        platform.url,
        trust.command_key,
        shared=broker.kind == "mosquitto",
        api_port=api_port,
        public={"port": public_port},
        platform=(
            {"format": "epcis", "epcis_archive": str(epcis_out.resolve())} if epcis_out else None
        ),
    )
    if epcis_out:
        say(f"forwarding EPCIS 2.0 capture documents; copies in {epcis_out}")
    acfg = agent_config(
        workdir / "agent.toml",
        SITE,
        workdir / "agent",
        broker.port,
        broker.port,
        devices=trust.agent_devices,
        identity=trust.identity,
        command_key=trust.command_pub,
        sources=gateway.sources,
    )
    collector = Role("collector", ccfg, workdir / "collector.log").start()
    running.callback(collector.stop)
    agent = Role("agent", acfg, workdir / "agent.log").start()
    running.callback(agent.stop)
    say(f"collector and edge agent started (logs in {workdir})")
    _wait_agent_ready(workdir / "agent" / "outbox.sqlite", agent, say)
    per_bus_terminal = max(1, records // 20)
    lift_records, lift_off = 0, False  # counted once the controller is off, at the end
    outbox = workdir / "agent" / "outbox.sqlite"
    gateway.start(per_bus_terminal)
    say(
        f"serial bus on {gateway.bus.path} ({per_bus_terminal} records a terminal) and the "
        f"elevator controller on Modbus TCP port {gateway.controller_port}: plugged in"
    )
    fleet = Fleet(BrokerSettings(port=broker.port), devices, resend_after_s=5.0)
    chain_fleet = Fleet(
        BrokerSettings(port=broker.port), chain_devices, resend_after_s=5.0, client_id="chain"
    )
    running.callback(chain_fleet.stop)
    fleet_out: dict[str, int] = {}

    def produce() -> None:
        chain_fleet.run_script(script, drain_timeout_s=timeout_s)
        fleet_out.update(fleet.run(records, rate, drain_timeout_s=timeout_s))

    producer = threading.Thread(target=produce, name="fleet", daemon=True)
    producer.start()
    running.callback(fleet.stop)
    scene = StoreScene(ccfg, workdir / "warehouse", outbox, broker.port, store_terminal, SITE, say)
    scene.start()
    running.callback(scene.stop)  # before the agent and the collector stop
    store = workdir / "collector" / "collector.sqlite"
    deadline = time.monotonic() + timeout_s
    while True:
        time.sleep(1.0)
        p = _platform_counts(platform, epcis_out is not None)
        c = read_summary(store)
        # what the gateway made for the controller so far (final count once it is off)
        lift_now = lift_records
        try:
            a = read_status(workdir / "agent" / "outbox.sqlite")
            buffered, wired = a["depth"], _sources_line(a["sources"])
            lift_now = max(lift_now, _source_records(a["sources"], "lift-1"))
        except TraceedgeError:
            buffered, wired = 0, ""
        if scene.error is not None:
            raise TraceedgeError(f"warehouse: {scene.error}")
        wh_records = scene.day.records if scene.day else 0
        captured = (
            fleet.stats.generated
            + chain_fleet.stats.generated
            + gateway.bus_generated()
            + lift_now
            + wh_records
        )
        say(
            f"captured {captured:>7}  buffered at edge {buffered:>7}  "
            f"stored {c.get('stored', 0):>7}  forwarded {p['forwarded']:>7}  {wired}"
        )
        for role in (agent, collector):
            if not role.alive():
                raise TraceedgeError(f"{role.role} died:\n{role.log_tail()}")
        bus_done = gateway.bus_generated() >= per_bus_terminal * len(gateway.bus_devices)
        wanted = records + len(script) + gateway.bus_generated() + lift_records + wh_records
        terminals_done = not producer.is_alive() and not scene.is_alive()
        if not lift_off and p["forwarded"] >= wanted and bus_done and terminals_done:
            # the terminals are done: switch the elevator controller off and count what the
            # gateway made for it (its link shows down; nothing it made is lost)
            gateway.controller.power_off()
            lift_off = True
            time.sleep(2.0)  # polls past the cut fail; the agent's status is written anew
            lift_records = _source_records(read_status(outbox)["sources"], "lift-1")
            say(f"elevator controller switched off: the gateway made {lift_records} records for it")
            continue
        if lift_off and p["forwarded"] >= wanted:
            break
        if time.monotonic() > deadline:
            say("timed out waiting for the platform to receive everything")
            break
    producer.join(timeout=5)
    scene.join(timeout=5)
    day_done = scene.day or WarehouseDay()
    if scene.day:
        count, alarms = check_stocktake(store, SITE)
        say(
            f"warehouse: stocktake {count.count_id} at the collector: {len(count.counted)} "
            f"counted, {len(count.missing)} missing ({', '.join(count.missing) or 'none'}); "
            f"{alarms} stocktake_missing alarm(s) raised"
        )
    else:
        count, alarms = None, 0
    deadline_p = time.monotonic() + 30
    while read_summary(store).get("projection_backlog", 0) and time.monotonic() < deadline_p:
        time.sleep(0.2)  # market stock and flags are applied just behind ingest
    headers = demo_token(store)
    sample = _sample_query(api_port, devices[0].dev, headers)
    lookups_ok, lookups = check_trace_lookups(f"http://127.0.0.1:{api_port}", store, headers)
    say(f"trace lookups through the query API: {lookups_ok} of {lookups} correct")
    c = read_summary(store)
    p = _platform_counts(platform, epcis_out is not None)
    summary = {
        "generated": fleet.stats.generated
        + chain_fleet.stats.generated
        + gateway.bus_generated()
        + lift_records
        + day_done.records,
        "generated_serial_bus": gateway.bus_generated(),
        "generated_elevator_controller": lift_records,
        "chain_records": len(script),
        "chain_hops": _hops_linked(store),
        "warehouse_records": day_done.records,
        "warehouse_gate_records": day_done.gate_records,
        "dispatch_allowed": day_done.allowed,
        "dispatch_refused": len(day_done.refused),
        "dispatch_refused_reasons": sorted({r for rs in day_done.refused for r in rs}),
        "stocktake_missing": len(count.missing) if count else 0,
        "stocktake_alarms": alarms,
        "stored": int(c.get("stored", 0)),
        "forwarded": p["forwarded"],
        "duplicates": p["duplicates"],
        "gaps": int(c.get("gaps", 0)),
        "quarantined": int(c.get("quarantined", 0)),
        "terminal_resends": fleet.stats.resent + chain_fleet.stats.resent,
        "collector_duplicates_removed": int(c.get("duplicates", 0)),
        "trace_lookups": lookups,
        "trace_lookups_ok": lookups_ok,
    }
    admin = demo_token(store, "admin")["Authorization"].removeprefix("Bearer ")
    # a retail shopper's receipt: its page walks back through the wholesale market
    code = day.shopper_codes[0] if day.shopper_codes else _a_trace_code(store)
    say(f"multi-hop chain: wholesale batch {day.wholesale_batches[0]} reached retail batches "
        f"{', '.join(day.retail_batches[:2])}; try its recall reach in the console")  # fmt: skip
    return DemoResult(
        summary,
        sample,
        console_url=f"http://127.0.0.1:{api_port}/console/",
        public_url=f"http://127.0.0.1:{public_port}/t/{code}" if code else "",
        admin_token=admin,
    )


def _sources_line(sources: list[dict[str, Any]]) -> str:
    """The gateway's own device links, for the progress line."""
    return "  ".join(
        f"{s['name']} {s['state']} ({int(s['counters'].get('records', 0))} records)"
        for s in sources
    )


def _source_records(sources: list[dict[str, Any]], name: str) -> int:
    return next((int(s["counters"].get("records", 0)) for s in sources if s["name"] == name), 0)


def _hops_linked(store: Path) -> int:
    """Entries linked to the upstream sale they named (the chain across markets)."""
    db = sqlite3.connect(f"file:{store}?mode=ro", uri=True)
    try:
        return int(db.execute("SELECT COUNT(DISTINCT entry_id) FROM market_links").fetchone()[0])
    finally:
        db.close()


def _a_trace_code(store: Path) -> str | None:
    with open_ro(store) as db:
        row = db.execute(
            "SELECT json_extract(rec, '$.body.trace_id') FROM records "
            "WHERE kind = 'market.settlement' ORDER BY id DESC LIMIT 1"
        ).fetchone()
    return str(row[0]) if row and row[0] else None


def _platform_counts(platform: PlatformServer, epcis: bool) -> dict[str, int]:
    """Records (or EPCIS events) the platform holds once, and copies it saw again."""
    s = platform.platform.stats()
    if epcis:
        return {"forwarded": int(s["epcis_events"]), "duplicates": int(s["duplicate_events"])}
    return {"forwarded": int(s["records"]), "duplicates": int(s["duplicate_records"])}


def _wait_agent_ready(outbox: Path, agent: Role, say: Callable[[str], None]) -> None:
    """Terminals publish only once the agent listens (a real terminal would resend anyway)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if not agent.alive():
            raise TraceedgeError(f"agent died at start:\n{agent.log_tail()}")
        try:
            if read_status(outbox)["local_connected"]:
                say("edge agent is listening for terminals")
                return
        except (TraceedgeError, sqlite3.Error):
            pass
        time.sleep(0.2)
    say("edge agent not ready after 30 s; starting terminals anyway")


def demo_token(store: Path, role: str = "inspector") -> dict[str, str]:
    """A token for the demo's own queries (the API refuses anonymous ones)."""
    from collector.audit import Actor
    from collector.store import SqliteStore
    from collector.tokens import TokenStore

    st = SqliteStore(store)
    try:
        _, text = TokenStore(st.db).create(
            role, "all", f"demo {role}", Actor("cli:demo", "admin", "local")
        )
    finally:
        st.close()
    return {"Authorization": f"Bearer {text}"}


def check_trace_lookups(
    api_url: str, store: Path, headers: dict[str, str], samples: int = 25
) -> tuple[int, int]:
    """Look up sample receipts' trace codes through the query API and compare each chain
    with the store itself: the sale, its lines' batches, each batch's entry (certificate,
    origin). Returns (correct, looked up)."""
    with open_ro(store) as db:
        codes = [
            c
            for (c,) in db.execute(
                "SELECT DISTINCT json_extract(rec, '$.body.trace_id') FROM records "
                "WHERE kind = 'market.settlement' ORDER BY random() LIMIT ?",
                (samples,),
            )
        ]
        expected = {}
        for code in codes:
            sale = json.loads(
                db.execute(
                    "SELECT rec FROM records WHERE kind = 'market.settlement' "
                    "AND json_extract(rec, '$.body.trace_id') = ? ORDER BY id LIMIT 1",
                    (code,),
                ).fetchone()[0]
            )
            entries = {}
            for line in sale["body"]["lines"]:
                row = db.execute(
                    "SELECT rec FROM records WHERE kind = 'market.entry' "
                    "AND json_extract(rec, '$.body.batch_id') = ? ORDER BY id LIMIT 1",
                    (line["batch_id"],),
                ).fetchone()
                entries[line["batch_id"]] = json.loads(row[0])["body"] if row else None
            expected[code] = (sale, entries)
    ok = 0
    with httpx.Client(base_url=api_url, timeout=10, headers=headers) as client:
        for code, (sale, entries) in expected.items():
            r = client.get(f"/trace/{code}")
            if r.status_code != 200:
                continue
            chain = r.json()
            got = chain["sale"]
            lines = got["lines"]
            good = (
                got["record"]["dev"] == sale["dev"]
                and got["record"]["seq"] == sale["seq"]
                and [ln["batch_id"] for ln in lines]
                == [ln["batch_id"] for ln in sale["body"]["lines"]]
                and [ln["amount_fen"] for ln in lines]
                == [ln["amount_fen"] for ln in sale["body"]["lines"]]
            )
            for ln in lines:
                want = entries[ln["batch_id"]]
                have = ln["batch"]["entry"]
                if want is None:
                    good = good and have is None
                else:
                    good = (
                        good
                        and have is not None
                        and (have["cert_no"], have["origin"]) == (want["cert_no"], want["origin"])
                    )
            ok += good
    return ok, len(expected)


def _sample_query(port: int, dev: str, headers: dict[str, str]) -> dict[str, Any]:
    try:
        r = httpx.get(f"http://127.0.0.1:{port}/devices", headers=headers, timeout=5)
        r.raise_for_status()
        rows = [d for d in r.json() if d["dev"] == dev]
        return {"query": f"GET /devices ({dev})", "answer": rows[0] if rows else None}
    except (httpx.HTTPError, ValueError, KeyError) as exc:
        return {"query": "GET /devices", "error": str(exc)}


def print_result(res: DemoResult, as_json: bool, echo: Callable[[str], None]) -> None:
    s = res.summary
    if not as_json:
        echo("")
        echo("summary")
        for k, v in s.items():
            shown = ", ".join(map(str, v)) if isinstance(v, list) else v
            echo(f"  {k:30} {shown}")
        echo(f"sample query: {res.sample.get('query')}")
        echo(
            "  "
            + json.dumps(res.sample.get("answer") or res.sample.get("error"), ensure_ascii=False)
        )
    echo(json.dumps(s))
