"""End to end: a firmware app under the real MicroPython interpreter (WebAssembly in
Node), its own MQTT client's bytes crossing a real TCP connection (Node ``net``) to a real
Mosquitto, a real edge agent (MAC-checked intake, outbox, uplink) and a real collector
(and the fake city platform). Every record the app made is stored once, unchanged.

The elevator run restarts the broker (persistence off) while records are in flight: the
terminal reconnects with its back-off and resends from its flash log. The cylinder run
asks the real agent's fill gate (its registry pushed down by ``collector
import-cylinders``).
"""

from __future__ import annotations

import json
import queue
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import SITE, Chain, make_chain, stop_chain, wait_until
from tests.firmware import mpy_fw
from traceedge.provision import device_config
from wire.envelope import verify_mac


def _lines(proc: subprocess.Popen[str]) -> queue.Queue[str | None]:
    q: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        try:
            for line in proc.stdout:
                q.put(line.rstrip("\n"))
        except (ValueError, OSError):  # closed under us after a kill
            pass
        q.put(None)

    threading.Thread(target=pump, daemon=True).start()
    return q


def run_app(
    ch: Chain, fn: str, dev_type: str, timeout: float = 50.0
) -> tuple[list[dict[str, Any]], list[str]]:
    device = next(d for d in ch.devices if d.type == dev_type)
    conf = device_config(device, "127.0.0.1", ch.broker.port)
    code = f"import e2e, json\nawait e2e.{fn}(json.loads({json.dumps(conf)!r}))\n"
    try:
        proc, job = mpy_fw.start(mpy_fw.job(code, is_async=True))
    except mpy_fw.MissingTool as exc:
        pytest.fail(str(exc), pytrace=False)
    made: list[dict[str, Any]] = []
    out: list[str] = []
    q = _lines(proc)
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                line = q.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError("firmware run timed out:\n" + "\n".join(out[-60:])) from None
            if line is None:
                break
            out.append(line)
            if line.startswith("MADE "):
                made.append(json.loads(line[5:]))
            elif line == "E2E restart-broker":
                ch.broker.restart()
        assert proc.wait(10) == 0, "\n".join(out[-60:])
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
        if proc.stdout is not None:
            proc.stdout.close()
        job.unlink(missing_ok=True)
    done = [x for x in out if x.startswith("E2E done")]
    assert done and " pending=0 " in done[0], "\n".join(out[-60:])
    for rec in made:
        assert verify_mac(rec, device.key)
    return made, out


def stored(ch: Chain, dev: str) -> list[dict[str, Any]]:
    db = sqlite3.connect(f"file:{ch.store}?mode=ro", uri=True)
    try:
        rows = db.execute("SELECT rec FROM records WHERE dev = ? ORDER BY seq", (dev,)).fetchall()
    finally:
        db.close()
    return [json.loads(r[0]) for r in rows]


@pytest.fixture
def chain(tmp_path: Path) -> Any:
    made: list[Chain] = []

    def make(**kw: Any) -> Chain:
        c = make_chain(tmp_path / f"chain{len(made)}", devices_per_type=1, **kw)
        made.append(c)
        return c

    yield make
    for c in made:
        stop_chain(c)


def test_elevator_box_through_mosquitto_agent_and_collector(chain: Any) -> None:
    ch = chain()
    made, out = run_app(ch, "elevator", "elevator-box")
    kinds = [r["kind"] for r in made]
    assert kinds.count("elevator.fault") == 6  # power, alarm, door open while moving
    assert kinds.count("elevator.maintenance") == 2 and kinds.count("elevator.status") >= 5
    done = next(x for x in out if x.startswith("E2E done"))
    assert " connects=1 " not in done, "the broker restart must have forced a reconnect"
    dev = str(made[0]["dev"])
    ch.wait_forwarded(len(made), timeout=30)
    assert stored(ch, dev) == made, "stored once each, byte for byte the records made"
    ch.assert_exactly_once(len(made))


def _push_registry(ch: Chain, tmp: Path, cylinders: list[dict[str, Any]]) -> None:
    """The central side's registry push-down (``collector import-cylinders``)."""
    entries = tmp / "cylinders.json"
    entries.write_text(json.dumps(cylinders))
    cli = subprocess.run(
        [
            sys.executable,
            "-m",
            "traceedge",
            "collector",
            "import-cylinders",
            "--config",
            str(ch.collectors[0].config),
            str(entries),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert cli.returncode == 0, cli.stderr
    wait_until(
        lambda: ch.agent_status()["cylinder_registry_version"] == 1,
        30,
        "the registry to reach the agent",
    )


def test_cylinder_reader_asks_the_real_fill_gate(chain: Any, tmp_path: Path) -> None:
    ch = chain()
    _push_registry(
        ch,
        tmp_path,
        [
            {
                "cyl": "3301061512310042",
                "tag": "E28011700000020A1B2C3D4E",
                "owner": SITE,
                "entrusted": [],
                "medium": "lpg",
                "manufactured": "2020-05-01",
                "design_life_years": 15,
                "next_inspection": "2029-05-01",
                "status": "in_service",
                "tare_g": 15200,
                "max_fill_g": 15000,
            }
        ],
    )
    made, _out = run_app(ch, "cylinder", "cylinder-reader")
    assert [(r["kind"], r["body"].get("stage")) for r in made] == [
        ("cylinder.check", "pre"),
        ("cylinder.fill", None),
        ("cylinder.check", "post"),
    ]
    assert [r["body"].get("decision") for r in made] == ["allow", None, "allow"]
    assert made[0]["body"]["reg_ver"] == 1 and made[1]["body"]["actual_net_g"] >= 14400
    dev = str(made[0]["dev"])
    # the agent recorded its own two decisions (gateway identity) before answering
    ch.wait_forwarded(len(made) + 2, timeout=30)
    assert stored(ch, dev) == made
    ch.assert_exactly_once(len(made) + 2)
