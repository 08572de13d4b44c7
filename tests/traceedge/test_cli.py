"""The command line: every command documented with an example; provisioning; the demo's
JSON summary (an interface other checks rely on)."""

from __future__ import annotations

import base64
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from hostlib.mqttpasswd import hash_password
from hostlib.registry import Registry
from traceedge.cli import main


def all_commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out = [prefix]
    for name, cmd in group.commands.items():
        if isinstance(cmd, click.Group):
            out += all_commands(cmd, (*prefix, name))
        else:
            out.append((*prefix, name))
    return out


@pytest.mark.parametrize("path", all_commands(main), ids=lambda p: " ".join(p) or "traceedge")
def test_every_command_has_help_with_an_example(path: tuple[str, ...]) -> None:
    res = CliRunner().invoke(main, [*path, "--help"])
    assert res.exit_code == 0, res.output
    assert "Example:" in res.output, f"traceedge {' '.join(path)} --help has no example"
    example = res.output.split("Example:", 1)[1]
    assert "traceedge" in example


def test_the_expected_roles_are_there() -> None:
    names = set(main.commands)
    assert {"agent", "collector", "device", "demo", "fleet", "platform", "sim", "diag"} <= names
    assert {"pki", "broker"} <= names


def test_provision_writes_config_and_registers(tmp_path: Path) -> None:
    reg = tmp_path / "reg" / "devices.json"
    res = CliRunner().invoke(
        main,
        [
            "device",
            "provision",
            "--type",
            "cylinder-reader",
            "--site",
            "S9",
            "--out",
            str(tmp_path / "out"),
            "--registry",
            str(reg),
            "--count",
            "3",
        ],
    )
    assert res.exit_code == 0, res.output
    lines = [ln for ln in res.stdout.splitlines() if ln.strip()]
    assert len(lines) == 3
    devices = Registry(reg).devices()
    assert len(devices) == 3
    for line in lines:
        dev, path = line.split("\t")
        cfg = json.loads(Path(path).read_text())
        assert cfg["dev"] == dev and cfg["site"] == "S9" and cfg["type"] == "cylinder-reader"
        assert bytes.fromhex(cfg["key"]) == devices[dev].key and len(devices[dev].key) == 32
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600  # the key is a secret
        # MQTT login: the device id and a password only the device's config holds; the
        # registry keeps the Mosquitto hash of it.
        assert cfg["link"]["user"] == dev
        password = cfg["link"]["password"]
        _, _, rounds, salt, _ = devices[dev].mqtt_hash.split("$")
        assert (
            hash_password(password, base64.b64decode(salt), int(rounds)) == devices[dev].mqtt_hash
        )
        assert password not in reg.read_text() and password not in res.output
    listed = CliRunner().invoke(main, ["device", "list", "--registry", str(reg)])
    assert listed.exit_code == 0 and len(listed.stdout.splitlines()) == 3
    assert all(d.key.hex() not in listed.stdout for d in devices.values())


def test_bad_config_is_a_clear_error_not_a_traceback(tmp_path: Path) -> None:
    cfg = tmp_path / "agent.toml"
    cfg.write_text('[agent]\nsite = "S1"\n')
    res = CliRunner().invoke(main, ["agent", "status", "--config", str(cfg)])
    assert res.exit_code == 1
    assert "agent.data_dir: is required" in res.output
    assert "Traceback" not in res.output


def test_demo_json_summary_last_line() -> None:
    res = subprocess.run(
        [sys.executable, "-m", "traceedge", "demo", "--records", "500", "--json"],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    summary = json.loads(res.stdout.strip().splitlines()[-1])
    for key in ("generated", "stored", "forwarded", "duplicates", "gaps", "quarantined"):
        assert isinstance(summary[key], int), (key, summary)
    # the MQTT fleet's 500, the multi-hop day beside it (a wholesale market, two retail),
    # the serial bus's terminals and the Modbus elevator's records
    assert summary["generated"] == summary["stored"] == summary["forwarded"]
    assert (
        summary["generated_serial_bus"] == 2 * 25 and summary["generated_elevator_controller"] > 0
    )
    assert summary["chain_records"] and summary["chain_hops"] == 4  # every retail entry linked
    # the warehouse: 3 receipts, a goods.out after the one allowed dispatch, a one-part
    # stocktake, and the agent's own goods.dispatch record for each of its 3 decisions
    assert summary["warehouse_records"] == 3 + 1 + 1 + 3
    assert summary["warehouse_gate_records"] == 3
    assert summary["dispatch_allowed"] == 1 and summary["dispatch_refused"] == 2
    assert summary["dispatch_refused_reasons"] == ["no_licence", "recalled_lot"]
    assert summary["stocktake_missing"] == 1 and summary["stocktake_alarms"] == 1
    assert summary["generated"] == (
        500
        + summary["chain_records"]
        + 50
        + summary["generated_elevator_controller"]
        + summary["warehouse_records"]
    )
    assert summary["duplicates"] == summary["gaps"] == summary["quarantined"] == 0
    assert summary["trace_lookups"] > 0
    assert summary["trace_lookups_ok"] == summary["trace_lookups"]
    assert "captured" in res.stderr  # progress was shown
    assert "the agent holds licence registry version 1" in res.stderr
    assert "refused: no_licence, recalled_lot" in res.stderr


def test_demo_epcis_out_documents_validate_against_the_official_schema(tmp_path: Path) -> None:
    from simulators.epcis_schema import schema_errors

    out = tmp_path / "epcis"
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "traceedge",
            "demo",
            "--records",
            "400",
            "--epcis-out",
            str(out),
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    summary = json.loads(res.stdout.strip().splitlines()[-1])
    assert summary["forwarded"] == summary["generated"] and summary["duplicates"] == 0
    docs = sorted(out.glob("*.jsonld"))
    assert docs
    events = []
    for path in docs:
        doc = json.loads(path.read_text())
        assert schema_errors(doc) == [], path.name  # official EPCIS 2.0 schema, formats on
        events += doc["epcisBody"]["eventList"]
    assert len(events) == summary["generated"]  # the gateway's own devices' records too
    assert len({e["eventID"] for e in events}) == summary["generated"]
    # the warehouse's records too: receiving, shipping, counting and the gate's decisions
    steps = {e.get("bizStep") for e in events}
    assert {"receiving", "shipping", "cycle_counting", "inspecting"} <= steps
