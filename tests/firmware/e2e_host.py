"""The host side of the end-to-end firmware runs: start an app under the real MicroPython
(``tests/firmware/mp/e2e.py``) against a chain of real processes, collect what it made
and its counters, read what the collector stored; push a cylinder registry down; an
attacker's own MQTT client on the terminals' broker."""

from __future__ import annotations

import json
import queue
import secrets
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from hostlib.registry import Device
from tests.conftest import SITE, Chain, wait_until
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


def device_of(ch: Chain, dev_type: str) -> Device:
    return next(d for d in ch.devices if d.type == dev_type)


def run_app(
    ch: Chain,
    fn: str,
    dev_type: str,
    timeout: float = 50.0,
    device: Device | None = None,
    on_mark: dict[str, Callable[[], None]] | None = None,
    **kwargs: Any,
) -> tuple[list[dict[str, Any]], list[str]]:
    """Run ``e2e.<fn>(config, **kwargs)`` for the chain's device of ``dev_type`` (or
    ``device``); the records it made (each checked against the device key) and every line
    it printed. The run must end with every record acknowledged (``pending=0``). The
    firmware's ``E2E <mark>`` lines act on the chain: ``restart-broker``, ``kill-agent``
    (``kill -9`` and start again), or what ``on_mark`` maps the mark to."""
    device = device or device_of(ch, dev_type)
    on_mark = on_mark or {}
    conf = device_config(device, "127.0.0.1", ch.broker.port)
    code = (
        "import e2e, json\n"
        f"await e2e.{fn}(json.loads({json.dumps(conf)!r}), **json.loads({json.dumps(kwargs)!r}))\n"
    )
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
            elif line == "E2E kill-agent":
                ch.agent.kill9()
                ch.agent.start()
            elif line.startswith("E2E ") and line[4:] in on_mark:
                on_mark[line[4:]]()
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


def counters(out: list[str], prefix: str = "E2E done") -> dict[str, int]:
    """The ``key=value`` counters of the firmware's line starting with ``prefix``."""
    line = next(x for x in out if x.startswith(prefix))
    return {k: int(v) for k, v in (p.split("=") for p in line.split() if "=" in p)}


def stored(ch: Chain, dev: str) -> list[dict[str, Any]]:
    db = sqlite3.connect(f"file:{ch.store}?mode=ro", uri=True)
    try:
        rows = db.execute("SELECT rec FROM records WHERE dev = ? ORDER BY seq", (dev,)).fetchall()
    finally:
        db.close()
    return [json.loads(r[0]) for r in rows]


def push_registry(ch: Chain, tmp: Path, cylinders: list[dict[str, Any]]) -> None:
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


LICENCE = "JD-330200-2025-0042"


def push_licence(ch: Chain, tmp: Path) -> None:
    """The central side's licence push-down (``collector import-licences``): one licence
    to buy cyanide (chemical_toxic, 100 kg) for the chain's site."""
    lic = tmp / "lic.csv"
    lic.write_text(
        "licence,kind,holder,classes,quantity,unit,valid_from,valid_until,sites\n"
        f"{LICENCE},toxic_purchase,宁波港华电镀厂,chemical_toxic,100000,g,"
        f"2020-01-01,2099-12-31,{SITE}\n",
        encoding="utf-8",
    )
    cli = [sys.executable, "-m", "traceedge", "collector", "import-licences"]
    res = subprocess.run(
        [*cli, "--config", str(ch.collectors[0].config), str(lic)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert res.returncode == 0, res.stderr
    wait_until(
        lambda: ch.agent_status()["licence_registry_version"] == 1, 30, "the licence push-down"
    )


def check_warehouse_run(ch: Chain, made: list[dict[str, Any]], out: list[str]) -> None:
    """What ``e2e._warehouse_run`` must have led to: a goods.in, one goods.out allowed by the
    agent's sealed answer (its gate_seq), the same item again refused with the reason, and
    the agent's two goods.dispatch records (allow, deny) stored with the handheld's own."""
    assert counters(out)["gate_forged"] == 0, "the agent's sealed answers verify"
    assert [r["kind"] for r in made] == ["goods.in", "goods.out"], out[-40:]
    body = made[1]["body"]
    assert body["licence"] == LICENCE and body["quantity"] == 50000
    assert isinstance(body.get("gate_seq"), int) and body["gate_seq"] >= 1
    assert any("REFUSED: already_dispatched" in line for line in out), out[-40:]
    dev = str(made[0]["dev"])
    ch.wait_forwarded(len(made) + 2, timeout=30)
    assert stored(ch, dev) == made
    ch.assert_exactly_once(len(made) + 2)


def agent_status_cli(ch: Chain) -> dict[str, Any]:
    """``traceedge agent status --json``, as an operator would ask."""
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "traceedge",
            "agent",
            "status",
            "--config",
            str(ch.agent.config),
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert res.returncode == 0, res.stderr
    st: dict[str, Any] = json.loads(res.stdout)
    return st


class Attacker:
    """Anyone on the terminals' broker (wide open: anonymous, no ACLs): its own paho
    client, publishing anything, retained or not, and hearing what it subscribes to."""

    def __init__(self, port: int) -> None:
        self.heard: list[tuple[str, bytes]] = []
        self.lock = threading.Lock()
        self.on_message: list[Callable[[str, bytes], None]] = []
        self.c = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"attacker-{secrets.token_hex(3)}"
        )
        self.c.on_message = self._on
        self.c.connect("127.0.0.1", port)
        self.c.loop_start()

    def _on(self, c: mqtt.Client, u: object, m: mqtt.MQTTMessage) -> None:
        with self.lock:
            self.heard.append((m.topic, bytes(m.payload)))
        for fn in self.on_message:
            fn(m.topic, bytes(m.payload))

    def listen(self, topic: str) -> None:
        self.c.subscribe(topic, qos=1)
        time.sleep(0.3)

    def heard_on(self, topic: str) -> list[bytes]:
        with self.lock:
            return [p for t, p in self.heard if t == topic]

    def send(self, topic: str, payload: bytes, retain: bool = False, wait: bool = True) -> None:
        """Publish (QoS 1); ``wait=False`` from inside a message callback."""
        info = self.c.publish(topic, payload, qos=1, retain=retain)
        if wait:
            info.wait_for_publish(5)

    def close(self) -> None:
        self.c.loop_stop()
        self.c.disconnect()
