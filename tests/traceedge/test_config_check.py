"""``traceedge config check``: the role told from the file, every problem printed with its
file and key, exit status 0 only when every file is clean."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner, Result

from traceedge.cli import main
from traceedge.launch import agent_config, collector_config


def check(*files: Path) -> Result:
    return CliRunner().invoke(main, ["config", "check", *map(str, files)])


def trust_files(tmp_path: Path) -> tuple[Path, Path, Path]:
    """The gateway identity and the command key pair a config names (checked to exist)."""
    out = tmp_path / "gw.json", tmp_path / "command.pub", tmp_path / "command.key"
    for p in out:
        p.write_text("")
    return out


def good_agent(tmp_path: Path) -> Path:
    registry = tmp_path / "devices.json"
    registry.write_text('{"devices": {}}')
    gw, pub, _ = trust_files(tmp_path)
    return agent_config(
        tmp_path / "agent.toml", "S1", tmp_path / "a", 1883, 1883, registry, gw, pub
    )


def test_clean_files_are_ok_and_say_what_they_configure(tmp_path: Path) -> None:
    agent = good_agent(tmp_path)
    coll = collector_config(
        tmp_path / "collector.toml",
        tmp_path / "c",
        tmp_path / "devices.json",
        1883,
        None,
        tmp_path / "command.key",
    )
    res = check(agent, coll)
    assert res.exit_code == 0, res.output
    assert res.stdout.splitlines() == [
        f"ok: agent config for site S1 ({agent})",
        f"ok: collector config for client_id collector-1 ({coll})",
    ]


def test_every_problem_is_printed_with_file_and_key(tmp_path: Path) -> None:
    cfg = tmp_path / "agent.toml"
    cfg.write_text(
        """
[agent]
site = "S1"
data_dir = "d"
metrics_port = 70000
devices = "missing.json"
identity = "gw.json"
command_key = "command.pub"
[local]
port = 99999
keepalive = 1000000000000
prefix = "a/#"
[uplink.broker]
port = -1
"""
    )
    trust_files(tmp_path)
    res = check(cfg)
    assert res.exit_code == 1
    assert res.stdout.splitlines() == [
        f"{cfg}: agent.devices: file not found: {tmp_path / 'missing.json'}",
        f"{cfg}: agent.metrics_port: must be a port 1..65535 (0: off), not 70000",
        f"{cfg}: local.port: must be a port 1..65535, not 99999",
        f"{cfg}: local.keepalive: must be 1..3600 seconds, not 1000000000000",
        f"{cfg}: local.prefix: must hold none of + # $ or NUL (wildcards, reserved), not 'a/#'",
        f"{cfg}: uplink.broker.port: must be a port 1..65535, not -1",
    ]
    assert f"{cfg}: 6 problem(s)" in res.stderr


def test_a_collector_with_a_missing_registry_and_a_bad_api_port(tmp_path: Path) -> None:
    _, _, key = trust_files(tmp_path)
    cfg = collector_config(
        tmp_path / "collector.toml",
        tmp_path / "c",
        tmp_path / "nope.json",
        1883,
        None,
        key,
        api_port=-1,
    )
    res = check(cfg)
    assert res.exit_code == 1
    assert res.stdout.splitlines() == [
        f"{cfg}: collector.registry: file not found: {tmp_path / 'nope.json'}",
        f"{cfg}: api.port: must be a port 1..65535 (0: off), not -1",
    ]


def test_one_bad_file_among_good_ones_fails_the_check(tmp_path: Path) -> None:
    agent = good_agent(tmp_path)
    neither = tmp_path / "x.toml"
    neither.write_text("[broker]\nport = 1883\n")
    broken = tmp_path / "broken.toml"
    broken.write_text("[agent\n")
    res = check(agent, neither, broken, tmp_path / "absent.toml")
    assert res.exit_code == 1
    lines = res.stdout.splitlines()
    assert lines[0] == f"ok: agent config for site S1 ({agent})"
    assert (
        lines[1]
        == f"{neither}: cannot tell the role: want one [agent], [collector] or [terminal] table"
    )
    assert lines[2].startswith(f"{broken}: not valid TOML")
    assert lines[3] == f"{tmp_path / 'absent.toml'}: file not found"
    assert "Traceback" not in res.output


def test_a_stall_terminal_config_is_checked_whole(tmp_path: Path) -> None:
    from hostlib.registry import Device
    from tests.e2e.stall import write_config

    dev = Device("MKT-S1-0001", b"\1" * 32, "market-scale", "S1")
    cfg = write_config(tmp_path, dev, 1883, "/dev/ttyUSB0", "sics", "", tmp_path / "lp0")
    res = check(cfg)
    assert res.exit_code == 0, res.output
    assert res.stdout.strip() == f"ok: stall terminal config for MKT-S1-0001 ({cfg})"
    text = cfg.read_text()
    text = text.replace('protocol = "sics"', 'protocol = "scalex"')
    text = text.replace("price_fen_per_kg = 2980\n", "").replace('market_no = "330142"', "")
    cfg.write_text(text.replace("[cards]", 'colour = "red"\n[cards]'))
    res = check(cfg)
    assert res.exit_code == 1
    out = res.stdout
    assert "scale.protocol: must be one of sics" in out and "scale.colour: unknown key" in out
    assert "settlement.market_no: is required" in out


def test_weighed_goods_need_a_price_when_the_scale_computes_none(tmp_path: Path) -> None:
    from hostlib.registry import Device
    from tests.e2e.stall import write_config

    dev = Device("MKT-S1-0001", b"\1" * 32, "market-scale", "S1")
    for protocol, ok in (("cas_ecr", True), ("toledo8217", False)):
        cfg = write_config(tmp_path, dev, 1883, "/dev/ttyUSB0", protocol, "", tmp_path / "lp0")
        cfg.write_text(cfg.read_text().replace("price_fen_per_kg = 2980\n", ""))
        res = check(cfg)
        assert (res.exit_code == 0) is ok, res.output
        assert ok or "goods 1: price_fen_per_kg is required with a toledo8217 scale" in res.stdout


def test_a_warehouse_terminal_config_is_checked_whole(tmp_path: Path) -> None:
    from hostlib.registry import Device
    from tests.e2e.test_warehouse_terminal import write_config

    dev = Device("WHS-S1-0001", b"\1" * 32, "warehouse-terminal", "S1")
    cfg = write_config(tmp_path, dev, 1883, "/dev/ttyUSB0", "/dev/ttyACM0")
    res = check(cfg)
    assert res.exit_code == 0, res.output
    assert res.stdout.strip() == f"ok: warehouse terminal config for WHS-S1-0001 ({cfg})"
    text = cfg.read_text().replace('protocol = "chafon"', 'protocol = "impinj"')
    cfg.write_text(text.replace('class = "seed"', 'class = "gold"'))
    res = check(cfg)
    assert res.exit_code == 1
    out = res.stdout
    assert "reader.protocol: must be one of chafon, r2000" in out, out
    assert "warehouse.products[2].class: must be one of" in out, out


def test_wired_terminals_provisioned_with_the_agents_sources_table(tmp_path: Path) -> None:
    """`device provision --serial-port --bus-addr`: three boxes on an RS-485 bus, each
    config wired with its address, no MQTT login made; the table written for the agent is
    what `config check` accepts."""
    import json

    from hostlib.registry import Registry

    agent = good_agent(tmp_path)
    reg = tmp_path / "devices.json"
    out = tmp_path / "boxes"
    args = ["device", "provision", "--type", "elevator-box", "--site", "S1", "--out", str(out)]
    res = CliRunner().invoke(
        main,
        [*args, "--registry", str(reg), "--count", "3", "--serial-port", "/dev/ttyUSB0",
         "--bus-addr", "4"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    devs = [ln.split("\t")[0] for ln in res.stdout.splitlines()]
    links = [json.loads((out / f"{d}.json").read_text())["link"] for d in devs]
    assert links == [{"kind": "serial", "uart": "gateway", "bus_addr": a} for a in (4, 5, 6)]
    assert all(not Registry(reg).devices()[d].mqtt_hash for d in devs)
    table = (out / "sources-S1.toml").read_text()
    assert "sources-S1.toml" in res.stderr and "[[sources]]" in table
    agent.write_text(agent.read_text() + "\n" + table)
    ok = check(agent)
    assert ok.exit_code == 0, ok.output

    # a point-to-point line carries one terminal; an address alone is a usage error
    bad = CliRunner().invoke(
        main, [*args, "--registry", str(reg), "--count", "2", "--serial-port", "/dev/ttyS1"]
    )
    assert bad.exit_code != 0 and "point-to-point" in bad.output
    bad = CliRunner().invoke(main, [*args, "--registry", str(reg), "--bus-addr", "3"])
    assert bad.exit_code == 2 and "--serial-port" in bad.output
    one = CliRunner().invoke(
        main, [*args, "--registry", str(reg), "--serial-port", "/dev/ttyS1", "--out", str(out)]
    )
    assert one.exit_code == 0, one.output
    assert 'devices = ["' in (out / "sources-S1.toml").read_text()
