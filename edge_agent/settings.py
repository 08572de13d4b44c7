"""The edge agent's configuration, read once from its TOML file into frozen objects."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from edge_agent.dispatchgate import CLASSES, LICENSED_CLASSES
from edge_agent.sources.kinds import SourceConfig, parse_sources
from hostlib.config import MAX_WAIT_S, MiB, load_toml, rel_path, site_id
from hostlib.errors import ConfigError
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
    intake_queue_bytes: int = 64 * MiB
    quarantine_max_bytes: int = 16 * MiB
    metrics_port: int = 0
    metrics_host: str = "127.0.0.1"
    utc_offset_minutes: int = CST_OFFSET_MIN
    sources: tuple[SourceConfig, ...] = ()
    # product classes the dispatch gate lets leave only against a licence on file
    licence_classes: tuple[str, ...] = LICENSED_CLASSES

    @property
    def outbox_path(self) -> Path:
        return self.data_dir / "outbox.sqlite"


def load_agent(
    path: str | Path, problems: list[ConfigError] | None = None, files: bool = True
) -> AgentSettings:
    """Read an edge agent's config file (``problems``, ``files``: see hostlib.config)."""
    p, root = load_toml(path, problems, files)
    a = root.sub("agent")
    site = site_id(a, "site")
    data_dir = rel_path(p, a.get("data_dir", str))
    if not a.has("devices"):
        a.fail(
            "devices",
            "is required: the device registry (devices.json) whose keys check every "
            "terminal's records and seal what the agent answers them",
        )
        a.used.add("devices")
        devices = Path("devices.json")
    else:
        devices = a.file("devices")
    outbox_max = a.bounded("outbox_max_bytes", int, 2 * 1024**3, 1024**4, "bytes (1 TiB)")
    intake_queue = a.bounded("intake_queue", int, 20000, 1_000_000, "messages")
    intake_bytes = a.bounded("intake_queue_bytes", int, 64 * MiB, 1024**3, "bytes (1 GiB)")
    quarantine_max = a.bounded("quarantine_max_bytes", int, 16 * MiB, 1024**4, "bytes (1 TiB)")
    metrics_port = a.port("metrics_port", 0, off=True)
    metrics_host = a.host("metrics_host", "127.0.0.1")
    identity = a.file("identity")
    command_key = a.file("command_key")
    utc_offset = a.get("utc_offset_minutes", int, CST_OFFSET_MIN)
    if not -720 <= utc_offset <= 840:
        a.fail("utc_offset_minutes", f"must be -720..840 (UTC-12..UTC+14), not {utc_offset}")
    licence_classes = a.get("licence_classes", list, list(LICENSED_CLASSES))
    if not all(c in CLASSES for c in licence_classes):
        a.fail("licence_classes", f"must list product classes of {', '.join(CLASSES)}")
        licence_classes = list(LICENSED_CLASSES)
    a.finish()
    local = BrokerSettings.parse(root.sub("local"))
    u = root.sub("uplink")
    ub = BrokerSettings.parse(u.sub("broker"))
    uplink = UplinkSettings(
        broker=ub,
        batch_records=u.bounded("batch_records", int, 1000, 100_000, "records"),
        batch_bytes=u.bounded("batch_bytes", int, 512 * 1024, 64 * MiB, "bytes (64 MiB)"),
        linger_s=u.bounded("linger_s", float, 0.05, 60.0, "seconds"),
        ack_timeout_s=u.bounded("ack_timeout_s", float, 10.0, MAX_WAIT_S, "seconds"),
        max_in_flight=u.bounded("max_in_flight", int, 8, 1000, "batches"),
        backoff_initial_s=u.bounded("backoff_initial_s", float, 0.2, MAX_WAIT_S, "seconds"),
        backoff_max_s=u.bounded("backoff_max_s", float, 5.0, MAX_WAIT_S, "seconds"),
    )
    u.finish()
    if uplink.backoff_initial_s > uplink.backoff_max_s:
        u.fail("backoff_initial_s", "must not exceed backoff_max_s")
    sources = parse_sources(root)
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
        intake_queue_bytes=intake_bytes,
        quarantine_max_bytes=quarantine_max,
        metrics_port=metrics_port,
        metrics_host=metrics_host,
        identity=identity,
        command_key=command_key,
        utc_offset_minutes=utc_offset,
        sources=sources,
        licence_classes=tuple(licence_classes),
    )
