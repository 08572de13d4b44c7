"""The collector's configuration, read once from its TOML file into frozen objects.

The platform's time zone is checked by :func:`collector.epcis.check_tz`, the same function
the EPCIS mapper applies to every event: a value this file accepts is one the mapper takes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from collector.epcis import EpcisError, check_tz
from hostlib.config import Section, load_toml, rel_path
from hostlib.mqttlink import BrokerSettings


@dataclass(frozen=True)
class PlatformSettings:
    url: str
    batch_records: int = 500
    timeout_s: float = 10.0
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0
    format: str = "records"  # or "epcis": EPCIS 2.0 capture documents to POST /capture
    epcis_archive: Path | None = None  # keep a copy of every EPCIS document delivered
    timezone: str = "+08:00"  # eventTimeZoneOffset of exported events


@dataclass(frozen=True)
class CollectorSettings:
    path: str
    data_dir: Path
    registry: Path
    command_key: Path  # the centre's Ed25519 private key: signs what is pushed to the sites
    broker: BrokerSettings
    platform: PlatformSettings | None
    group: str = "collectors"
    shared_subscription: bool = True
    max_batch_bytes: int = 4 * 1024 * 1024
    client_id: str = "collector"
    api_host: str = "127.0.0.1"
    api_port: int = 0

    @property
    def store_path(self) -> Path:
        return self.data_dir / "collector.sqlite"


def _platform(p: str, ps: Section) -> PlatformSettings:
    url = ps.get("url", str)
    if not url.startswith(("http://", "https://")):
        raise ps.error("url", "must start with http:// or https://")
    archive = ps.opt("epcis_archive", str)
    platform = PlatformSettings(
        url=url.rstrip("/"),
        batch_records=ps.positive("batch_records", int, 500),
        timeout_s=ps.positive("timeout_s", float, 10.0),
        backoff_initial_s=ps.positive("backoff_initial_s", float, 0.5),
        backoff_max_s=ps.positive("backoff_max_s", float, 30.0),
        format=ps.get("format", str, "records"),
        epcis_archive=rel_path(p, archive) if archive else None,
        timezone=ps.get("timezone", str, "+08:00"),
    )
    ps.finish()
    if platform.format not in ("records", "epcis"):
        raise ps.error("format", "must be records or epcis")
    try:
        check_tz(platform.timezone, "timezone")
    except EpcisError as exc:
        raise ps.error("timezone", exc.problem) from None
    return platform


def load_collector(path: str | Path) -> CollectorSettings:
    """Read a collector's config file."""
    p, root = load_toml(path)
    c = root.sub("collector")
    data_dir = rel_path(p, c.get("data_dir", str))
    registry = rel_path(p, c.get("registry", str))
    command_key = rel_path(p, c.get("command_key", str))
    group = c.get("group", str, "collectors")
    shared = c.get("shared_subscription", bool, True)
    max_batch = c.positive("max_batch_bytes", int, 4 * 1024 * 1024)
    client_id = c.get("client_id", str, "collector")
    c.finish()
    broker = BrokerSettings.parse(root.sub("broker"))
    platform = _platform(p, root.sub("platform")) if root.has("platform") else None
    api = root.sub("api")
    api_host = api.get("host", str, "127.0.0.1")
    api_port = api.get("port", int, 0)
    api.finish()
    root.finish()
    return CollectorSettings(
        path=p,
        data_dir=data_dir,
        registry=registry,
        command_key=command_key,
        broker=broker,
        platform=platform,
        group=group,
        shared_subscription=shared,
        max_batch_bytes=max_batch,
        client_id=client_id,
        api_host=api_host,
        api_port=api_port,
    )
