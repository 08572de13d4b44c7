"""Values checked before anything starts: ports, bounds, topic prefixes, files that must
exist; the collecting mode that reports every problem of a file at once; the data
directory lock."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from collector.settings import load_collector
from edge_agent.settings import load_agent
from hostlib.config import load_toml
from hostlib.errors import ConfigError, StartupError
from hostlib.mqttlink import BrokerSettings
from hostlib.pidlock import PidLock
from hostlib.registry import Registry

AGENT = """
[agent]
site = "S1"
data_dir = "data"
devices = "devices.json"
identity = "gw.json"
command_key = "command.pub"
[local]
port = 1883
[uplink]
[uplink.broker]
port = 8883
"""

COLLECTOR = """
[collector]
data_dir = "data"
registry = "devices.json"
command_key = "command.key"
[broker]
"""


@pytest.fixture(autouse=True)
def _trust_files(tmp_path: Path) -> None:
    """The gateway identity and command keys the configs name (their content is read by
    the roles, not by the config checks)."""
    for name in ("gw.json", "command.pub", "command.key"):
        (tmp_path / name).write_text("")


def broker(tmp_path: Path, text: str, files: bool = True) -> BrokerSettings:
    p = tmp_path / "b.toml"
    p.write_text("[broker]\n" + text)
    _, root = load_toml(p, files=files)
    return BrokerSettings.parse(root.sub("broker"))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("port = 99999", "broker.port: must be a port 1..65535, not 99999"),
        ("port = 0", "broker.port: must be a port 1..65535, not 0"),
        ("port = -1", "broker.port: must be a port 1..65535, not -1"),
        ("keepalive = 1000000000000", "broker.keepalive: must be 1..3600 seconds"),
        ("keepalive = 0", "broker.keepalive: must be 1..3600 seconds, not 0"),
        ('host = ""', "broker.host: must be a host name or address, not ''"),
        ('host = "a b"', "broker.host: must be a host name or address"),
        ('prefix = "a/#"', "broker.prefix: must hold none of + # $ or NUL"),
        ('prefix = "a/+/b"', "broker.prefix: must hold none of + # $ or NUL"),
        ('prefix = "$SYS"', "broker.prefix: must hold none of + # $ or NUL"),
        ('prefix = "a\\u0000b"', "broker.prefix: must hold none of + # $ or NUL"),
        ('prefix = "/site7"', "broker.prefix: must not start or end with /"),
        ('prefix = "site7/"', "broker.prefix: must not start or end with /"),
        (f'prefix = "{"p" * 129}"', "broker.prefix: at most 128 characters"),
        ('password = "x"', "broker.password: given without username"),
        ('tls_ca = "/nowhere/ca.pem"', "broker.tls_ca: file not found: /nowhere/ca.pem"),
    ],
)
def test_bad_broker_values_are_refused(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as ei:
        broker(tmp_path, text)
    assert message in str(ei.value)
    assert str(tmp_path / "b.toml") in str(ei.value)


def test_good_broker_values_pass(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("")
    b = broker(tmp_path, f'port = 65535\nkeepalive = 3600\nprefix = "city/a1"\ntls_ca = "{ca}"')
    assert (b.port, b.keepalive, b.prefix, b.tls_ca) == (65535, 3600, "city/a1", str(ca))


def test_files_are_checked_only_when_asked(tmp_path: Path) -> None:
    b = broker(tmp_path, 'tls_ca = "/nowhere/ca.pem"', files=False)
    assert b.tls_ca == "/nowhere/ca.pem"


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("port = 1883", "port = 99999", "local.port: must be a port 1..65535, not 99999"),
        ("[uplink]", "[uplink]\nlinger_s = nan", "uplink.linger_s: must be > 0 and at most 60.0"),
        ("[uplink]", "[uplink]\nack_timeout_s = inf", "uplink.ack_timeout_s: must be > 0 and"),
        (
            "[uplink]",
            "[uplink]\nbackoff_initial_s = 10.0\nbackoff_max_s = 5.0",
            "uplink.backoff_initial_s: must not exceed backoff_max_s",
        ),
        ("[uplink]", "[uplink]\nbatch_bytes = 1073741824", "must be 1..67108864 bytes (64 MiB)"),
        ('site = "S1"', 'site = "S1"\nmetrics_port = 70000', "agent.metrics_port: must be a port"),
        ('site = "S1"', 'site = "S1"\nmetrics_port = -1', "agent.metrics_port: must be a port"),
        ('site = "S1"', 'site = "S1"\nmetrics_host = ""', "agent.metrics_host: must be a host"),
        ('site = "S1"', 'site = "S1"\noutbox_max_bytes = 0', "agent.outbox_max_bytes: must be 1.."),
        ('site = "S1"', 'site = "S1"\nintake_queue = 10000000', "agent.intake_queue: must be 1.."),
        ('site = "S1"', 'site = "S1"\nutc_offset_minutes = 900', "agent.utc_offset_minutes"),
        ('devices = "devices.json"', 'devices = "nope.json"', "agent.devices: file not found"),
        ('identity = "gw.json"', 'identity = "no-gw.json"', "agent.identity: file not found"),
    ],
)
def test_bad_agent_values_are_refused(tmp_path: Path, old: str, new: str, message: str) -> None:
    (tmp_path / "devices.json").write_text('{"devices": {}}')
    p = tmp_path / "agent.toml"
    p.write_text(AGENT.replace(old, new, 1))
    with pytest.raises(ConfigError, match="^" + str(p)) as ei:
        load_agent(p)
    assert message in str(ei.value)


def test_metrics_port_zero_means_off(tmp_path: Path) -> None:
    (tmp_path / "devices.json").write_text('{"devices": {}}')
    p = tmp_path / "agent.toml"
    p.write_text(AGENT.replace('site = "S1"', 'site = "S1"\nmetrics_port = 0'))
    assert load_agent(p).metrics_port == 0


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("[api]\nport = -1", "api.port: must be a port 1..65535 (0: off), not -1"),
        ("[api]\nport = 65536", "api.port: must be a port 1..65535 (0: off), not 65536"),
        ('[api]\nhost = ""\nport = 8080', "api.host: must be a host name or address"),
        ("[platform]\nurl = 'http://x'\ntimeout_s = 3601.0", "platform.timeout_s: must be > 0"),
        ("[api]\ngreen_s = 0.0", "api.green_s: must be > 0"),
        ("[api]\ngreen_s = 600.0\namber_s = 60.0", "api.amber_s: must not be below green_s"),
    ],
)
def test_bad_collector_values_are_refused(tmp_path: Path, extra: str, message: str) -> None:
    (tmp_path / "devices.json").write_text('{"devices": {}}')
    p = tmp_path / "collector.toml"
    p.write_text(COLLECTOR + extra)
    with pytest.raises(ConfigError) as ei:
        load_collector(p)
    assert message in str(ei.value)


@pytest.mark.parametrize("name", ["a/b", "", "x" * 65, "c 1", "c+", "c#", "$c", "ü"])
def test_collector_names_are_tokens(tmp_path: Path, name: str) -> None:
    """client_id names a lock file and an MQTT session; group a shared subscription."""
    (tmp_path / "devices.json").write_text('{"devices": {}}')
    for key in ("client_id", "group"):
        p = tmp_path / "collector.toml"
        p.write_text(COLLECTOR.replace("[broker]", f'{key} = "{name}"\n[broker]'))
        with pytest.raises(ConfigError, match=rf"collector\.{key}: 1\.\.64 letters"):
            load_collector(p)


def test_a_missing_registry_is_an_error_not_an_empty_registry(tmp_path: Path) -> None:
    p = tmp_path / "collector.toml"
    p.write_text(COLLECTOR)
    missing = tmp_path / "devices.json"
    with pytest.raises(ConfigError, match=f"collector.registry: file not found: {missing}"):
        load_collector(p)
    assert load_collector(p, files=False).registry == missing  # status commands need no file
    with pytest.raises(ConfigError, match="registry file not found"):
        Registry(missing)


def test_collecting_reports_every_problem_once_per_key(tmp_path: Path) -> None:
    p = tmp_path / "agent.toml"
    p.write_text(
        """
[agent]
data_dir = 5
metrics_port = 70000
typo = 1
[local]
port = 99999
keepalive = 1000000000000
prefix = "a/#"
[uplink]
linger_s = -1.0
[uplink.broker]
host = ""
tls_ca = "/nowhere/ca.pem"
tls_cert = "/nowhere/c.pem"
[extra]
"""
    )
    problems: list[ConfigError] = []
    load_agent(p, problems)
    keys = [e.key for e in problems]
    assert keys == [
        "agent.site",
        "agent.data_dir",
        "agent.devices",
        "agent.metrics_port",
        "agent.identity",
        "agent.command_key",
        "agent.typo",
        "local.port",
        "local.keepalive",
        "local.prefix",
        "uplink.broker.host",
        "uplink.broker",
        "uplink.broker.tls_ca",
        "uplink.broker.tls_cert",
        "uplink.linger_s",
        "extra",
    ]
    assert all(e.path == str(p) for e in problems)
    assert "agent.site: is required" in str(problems[0])  # not also "1..32 characters"
    with pytest.raises(ConfigError, match=r"agent\.site: is required"):
        load_agent(p)  # start-up stops at the first


def test_a_table_that_is_not_a_table(tmp_path: Path) -> None:
    p = tmp_path / "agent.toml"
    (tmp_path / "devices.json").write_text('{"devices": {}}')
    p.write_text(
        'local = 5\n[agent]\nsite = "S1"\ndata_dir = "d"\ndevices = "devices.json"\n'
        'identity = "gw.json"\ncommand_key = "command.pub"\n'
    )
    problems: list[ConfigError] = []
    load_agent(p, problems)
    assert [str(e) for e in problems] == [f"{p}: local: must be a table"]


def test_a_data_dir_lock_names_its_holder_and_goes_with_it(tmp_path: Path) -> None:
    path = tmp_path / "data" / "lock"
    first = PidLock(path).acquire("one at a time")
    assert path.read_text().strip() == str(os.getpid())
    with pytest.raises(StartupError) as ei:
        PidLock(path).acquire("one at a time")
    assert str(ei.value) == f"{path} is held by process {os.getpid()}: one at a time"
    first.release()
    assert path.read_text() == ""
    PidLock(path).acquire("one at a time").release()


def test_a_choice_names_what_is_allowed() -> None:
    from hostlib.config import Section

    problems: list[ConfigError] = []
    s = Section("t.toml", "scanner", {"baudrate": 9601, "kind": "file"}, problems)
    assert s.choice("kind", str, ("file", "device")) == "file"
    assert s.choice("protocol", str, ("chafon", "r2000"), "chafon") == "chafon"
    s.choice("baudrate", int, (9600, 19200), 9600)
    assert [str(p) for p in problems] == [
        str(ConfigError("t.toml", "scanner.baudrate", "must be one of 9600, 19200"))
    ]
