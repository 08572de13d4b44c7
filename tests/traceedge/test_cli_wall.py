"""``traceedge pki`` and ``traceedge broker config`` from the command line: what they print
and write, and bad input ending in one clear line, never a traceback. (The configs at work
in a real Mosquitto: ``test_site_broker.py``, ``test_central_broker.py``.)"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from hostlib.registry import add_devices
from tests.traceedge.wall import cli
from traceedge.cli import main
from traceedge.provision import new_device, provision


def fails(*args: str | Path) -> Result:
    res = CliRunner().invoke(main, [str(a) for a in args])
    assert res.exit_code == 1, res.output
    assert isinstance(res.exception, SystemExit), res.exception  # a message, not a crash
    return res


def test_pki_commands_end_to_end(tmp_path: Path) -> None:
    ca = tmp_path / "ca"
    assert "ca.pem" in cli("pki", "init", "--dir", ca)
    serial, cert, key = cli(
        "pki", "issue", "--dir", ca, "--kind", "gateway", "--name", "GW-S1-1"
    ).split()
    assert Path(cert).is_file() and Path(key).is_file()
    cli("pki", "issue", "--dir", ca, "--kind", "server", "--name", "central", "--host", "::1")
    listed = cli("pki", "list", "--dir", ca).splitlines()
    assert listed[0].split("\t")[:3] == [serial, "gateway", "GW-S1-1"]
    assert listed[1].split("\t")[1:3] == ["server", "central"]
    assert "revoked gateway GW-S1-1" in cli("pki", "revoke", "--dir", ca, "--serial", serial)
    assert "valid until" in cli("pki", "crl", "--dir", ca, "--days", "30")
    assert "BEGIN PRIVATE KEY" not in cli("pki", "list", "--dir", ca)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("init",), "a CA already exists here"),
        (("issue", "--kind", "gateway", "--name", "bad name"), "A-Z a-z 0-9"),
        (("issue", "--kind", "server", "--name", "central"), "at least one host"),
        (("revoke", "--name", "nobody"), "no unrevoked certificate matches"),
        (("revoke", "--serial", "xyz"), "not a hexadecimal serial"),
    ],
)
def test_pki_bad_input_is_one_clear_line(
    tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    ca = tmp_path / "ca"
    cli("pki", "init", "--dir", ca)
    res = fails("pki", args[0], "--dir", ca, *args[1:])
    assert message in res.output


def test_pki_on_a_folder_without_a_ca(tmp_path: Path) -> None:
    res = fails("pki", "issue", "--dir", tmp_path, "--kind", "collector", "--name", "c1")
    assert "traceedge pki init" in res.output


@pytest.fixture
def registry(tmp_path: Path) -> Path:
    reg = tmp_path / "devices.json"
    provision("gateway", "S1", tmp_path / "devices", reg)
    provision("cylinder-reader", "S1", tmp_path / "devices", reg)
    provision("cylinder-reader", "LONELY", tmp_path / "devices", reg)  # a site without gateway
    return reg


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--role", "site", "--site", "NOWHERE"), "no device of this site in the registry"),
        (("--role", "site", "--site", "LONELY"), "has no gateway in the registry"),
        (("--role", "site"), "--site: is required with --role site"),
        (("--role", "site", "--site", "S1", "--prefix", "a/+"), "may hold no + # $"),
        (("--role", "site", "--site", "S1", "--collector", "c1"), "takes no --pki"),
        (("--role", "central"), "no collector identity"),
        (("--role", "central", "--site", "S1"), "the central broker serves every site"),
        (("--role", "central", "--server", "central"), "give --pki"),
        (("--role", "site", "--site", "S1", "--bind", "0.0.0.0\nuser x"), "not an address"),
    ],
)
def test_broker_config_bad_input_is_one_clear_line(
    tmp_path: Path, registry: Path, args: tuple[str, ...], message: str
) -> None:
    out = tmp_path / "out"
    res = fails("broker", "config", "--registry", registry, "--out", out, *args)
    assert message in res.output
    assert not out.exists()  # nothing half-written


def test_broker_config_without_a_registry(tmp_path: Path) -> None:
    res = fails(
        "broker", "config", "--role", "site", "--site", "S1", "--registry",
        tmp_path / "missing.json", "--out", tmp_path / "out",
    )  # fmt: skip
    assert "missing.json: registry not found" in res.output


def test_central_needs_one_live_server_certificate(tmp_path: Path, registry: Path) -> None:
    ca = tmp_path / "ca"
    cli("pki", "init", "--dir", ca)
    args = ("broker", "config", "--role", "central", "--registry", registry, "--pki", ca)
    res = fails(*args, "--out", tmp_path / "out")
    assert "need exactly one live server certificate" in res.output
    for name in ("a", "b"):
        cli("pki", "issue", "--dir", ca, "--kind", "server", "--name", name, "--host", name)
    assert "found: a, b" in fails(*args, "--out", tmp_path / "out").output
    cli("pki", "issue", "--dir", ca, "--kind", "collector", "--name", "collector-1")
    out = cli(*args, "--server", "b", "--out", tmp_path / "out")
    assert "central broker: 2 users" in out  # the gateway and the collector
    assert (tmp_path / "out" / "server.pem").read_text() == (ca / "issued/b.pem").read_text()


def test_central_without_pki_says_which_tls_files_to_supply(tmp_path: Path, registry: Path) -> None:
    res = CliRunner().invoke(
        main,
        ["broker", "config", "--role", "central", "--registry", str(registry),
         "--out", str(tmp_path / "out"), "--collector", "collector-1"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "ca.pem, crl.pem, server.pem, server.key" in res.stderr
    acl = (tmp_path / "out" / "acl").read_text()
    assert "user collector-1\ntopic read edge/+/up\n" in acl


def test_devices_without_an_mqtt_password_are_left_out_and_named(
    tmp_path: Path, registry: Path
) -> None:
    old = new_device("elevator-box", "S1")  # as provisioned before brokers had passwords
    add_devices(registry, [old], int(time.time()))
    res = CliRunner().invoke(
        main,
        ["broker", "config", "--role", "site", "--site", "S1", "--registry", str(registry),
         "--out", str(tmp_path / "out")],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert f"left out (no MQTT password in the registry; provision again): {old.dev}" in res.stderr
    assert old.dev not in (tmp_path / "out" / "passwd").read_text()
    assert f"user {old.dev}" not in (tmp_path / "out" / "acl").read_text()
    assert "site broker: 2 users" in res.stdout
