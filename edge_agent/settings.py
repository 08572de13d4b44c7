"""The edge agent's configuration, read once from its TOML file into frozen objects."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hostlib.config import load_toml, rel_path, site_id
from hostlib.mqttlink import BrokerSettings
from wire.tracecode import CST_OFFSET_MIN


@dataclass(frozen=True)
class UplinkSettings:
    broker: BrokerSettings
    batch_records: int = 1000
    batch_bytes: int = 512 * 1024
    linger_s: float = 0.05
    ack_timeout_s: float = 10.0
    max_in_flight: int = 8
    backoff_initial_s: float = 0.2
    backoff_max_s: float = 5.0


@dataclass(frozen=True)
class AgentSettings:
    path: str
    site: str
    data_dir: Path
    local: BrokerSettings
    uplink: UplinkSettings
    devices: Path  # the site's device registry: keys to check records and seal acks
    identity: Path  # the gateway's own config file: its id and key (batch acks, status)
    command_key: Path  # the centre's Ed25519 public key: commands must verify under it
    outbox_max_bytes: int = 2 * 1024**3
    intake_queue: int = 20000
    metrics_port: int = 0
    utc_offset_minutes: int = CST_OFFSET_MIN

    @property
    def outbox_path(self) -> Path:
        return self.data_dir / "outbox.sqlite"


def load_agent(path: str | Path) -> AgentSettings:
    """Read an edge agent's config file."""
    p, root = load_toml(path)
    a = root.sub("agent")
    site = site_id(a, "site")
    data_dir = rel_path(p, a.get("data_dir", str))
    if not a.has("devices"):
        raise a.error(
            "devices",
            "is required: the device registry (devices.json) whose keys check every "
            "terminal's records and seal what the agent answers them",
        )
    devices = rel_path(p, a.get("devices", str))
    outbox_max = a.positive("outbox_max_bytes", int, 2 * 1024**3)
    intake_queue = a.positive("intake_queue", int, 20000)
    metrics_port = a.get("metrics_port", int, 0)
    identity = rel_path(p, a.get("identity", str))
    command_key = rel_path(p, a.get("command_key", str))
    utc_offset = a.get("utc_offset_minutes", int, CST_OFFSET_MIN)
    a.finish()
    local = BrokerSettings.parse(root.sub("local"))
    u = root.sub("uplink")
    ub = BrokerSettings.parse(u.sub("broker"))
    uplink = UplinkSettings(
        broker=ub,
        batch_records=u.positive("batch_records", int, 1000),
        batch_bytes=u.positive("batch_bytes", int, 512 * 1024),
        linger_s=u.positive("linger_s", float, 0.05),
        ack_timeout_s=u.positive("ack_timeout_s", float, 10.0),
        max_in_flight=u.positive("max_in_flight", int, 8),
        backoff_initial_s=u.positive("backoff_initial_s", float, 0.2),
        backoff_max_s=u.positive("backoff_max_s", float, 5.0),
    )
    u.finish()
    root.finish()
    return AgentSettings(
        path=p,
        site=site,
        data_dir=data_dir,
        local=local,
        uplink=uplink,
        outbox_max_bytes=outbox_max,
        devices=devices,
        intake_queue=intake_queue,
        metrics_port=metrics_port,
        identity=identity,
        command_key=command_key,
        utc_offset_minutes=utc_offset,
    )
