"""Reconnect policy and config parsing."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from collector.settings import load_collector
from edge_agent.settings import load_agent
from hostlib.backoff import Backoff
from hostlib.errors import ConfigError


def test_backoff_doubles_up_to_its_cap_with_jitter() -> None:
    b = Backoff(initial=0.2, cap=5.0, rng=random.Random(1))
    ceilings = []
    for _ in range(10):
        ceilings.append(b.ceiling())
        d = b.next_delay()
        assert ceilings[-1] / 2 <= d <= ceilings[-1]
    assert ceilings[:6] == [0.2, 0.4, 0.8, 1.6, 3.2, 5.0]
    assert ceilings[6:] == [5.0] * 4


def test_backoff_resets_after_success() -> None:
    b = Backoff(initial=1.0, cap=8.0)
    for _ in range(5):
        b.next_delay()
    b.reset()
    assert b.ceiling() == 1.0


def test_backoff_jitter_spreads_delays() -> None:
    b = Backoff(initial=4.0, cap=4.0, rng=random.Random(3))
    delays = {round(b.next_delay(), 3) for _ in range(20)}
    assert len(delays) > 10


AGENT = """
[agent]
site = "S1"
data_dir = "data"
devices = "devices.json"
identity = "S1-gateway.json"
command_key = "command.pub"
[local]
port = 1883
[uplink]
batch_records = 500
[uplink.broker]
host = "central.example"
port = 8883
tls_ca = "/etc/ca.pem"
"""


def test_agent_config_parsed_into_frozen_objects(tmp_path: Path) -> None:
    p = tmp_path / "agent.toml"
    p.write_text(AGENT)
    s = load_agent(p, files=False)  # no /etc/ca.pem here
    assert s.site == "S1"
    assert s.data_dir == tmp_path / "data"
    assert s.devices == tmp_path / "devices.json"
    assert s.uplink.batch_records == 500
    assert s.uplink.broker.tls and s.uplink.broker.port == 8883
    with pytest.raises(AttributeError):
        s.site = "S2"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("text", "key", "msg"),
    [
        (AGENT.replace('site = "S1"', ""), "agent.site", "is required"),
        (AGENT.replace('devices = "devices.json"', ""), "agent.devices", "is required: the"),
        (AGENT.replace("port = 1883", 'port = "x"'), "local.port", "must be int"),
        (
            AGENT.replace("batch_records = 500", "batch_records = 0"),
            "uplink.batch_records",
            "must be 1..100000",
        ),
        (
            AGENT.replace("batch_records = 500", "batch_recs = 5"),
            "uplink.batch_recs",
            "unknown key",
        ),
        (AGENT.replace('site = "S1"', 'site = "a/b"'), "agent.site", "a site code is"),
        (AGENT + "\n[extra]\n", "extra", "unknown key"),
    ],
)
def test_bad_agent_config_names_file_and_key(tmp_path: Path, text: str, key: str, msg: str) -> None:
    p = tmp_path / "agent.toml"
    p.write_text(text)
    with pytest.raises(ConfigError) as ei:
        load_agent(p, files=False)
    assert str(p) in str(ei.value)
    assert key in str(ei.value)
    assert msg in str(ei.value)


def test_missing_and_broken_config_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_agent(tmp_path / "nope.toml")
    p = tmp_path / "c.toml"
    p.write_text("[collector\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_collector(p)


def test_collector_platform_url_checked(tmp_path: Path) -> None:
    p = tmp_path / "c.toml"
    p.write_text(
        '[collector]\ndata_dir = "d"\nregistry = "r.json"\ncommand_key = "k"\n[broker]\n'
        '[platform]\nurl = "ftp://x"\n'
    )
    with pytest.raises(ConfigError, match=r"platform\.url"):
        load_collector(p, files=False)
