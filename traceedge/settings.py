"""Configuration files (TOML) parsed once into frozen, validated objects.

A bad value stops start-up with :class:`~traceedge.errors.ConfigError` naming the file and
the key; nothing surfaces later as a ``KeyError``.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from traceedge.errors import ConfigError

T = TypeVar("T")


class _Section:
    """Typed reads from one TOML table, each failure naming file and key."""

    def __init__(self, path: str, name: str, data: Any) -> None:
        if not isinstance(data, dict):
            raise ConfigError(path, name, "must be a table")
        self.path, self.name, self.data = path, name, data
        self.used: set[str] = set()

    def _key(self, key: str) -> str:
        return f"{self.name}.{key}" if self.name else key

    def get(self, key: str, typ: type[T], default: T | None = None) -> T:
        self.used.add(key)
        if key not in self.data:
            if default is None:
                raise ConfigError(self.path, self._key(key), "is required")
            return default
        val = self.data[key]
        if typ is float and isinstance(val, int) and not isinstance(val, bool):
            val = float(val)
        if not isinstance(val, typ) or (typ is int and isinstance(val, bool)):
            raise ConfigError(self.path, self._key(key), f"must be {typ.__name__}, not {val!r}")
        return val

    def opt(self, key: str, typ: type[T]) -> T | None:
        if key not in self.data:
            self.used.add(key)
            return None
        return self.get(key, typ)

    def positive(self, key: str, typ: type[T], default: T) -> T:
        val = self.get(key, typ, default)
        if val <= 0:  # type: ignore[operator]
            raise ConfigError(self.path, self._key(key), f"must be > 0, not {val!r}")
        return val

    def sub(self, key: str) -> _Section:
        self.used.add(key)
        return _Section(self.path, self._key(key), self.data.get(key, {}))

    def finish(self) -> None:
        unknown = sorted(set(self.data) - self.used)
        if unknown:
            raise ConfigError(self.path, self._key(unknown[0]), "unknown key")


@dataclass(frozen=True)
class BrokerSettings:
    host: str = "127.0.0.1"
    port: int = 1883
    username: str | None = None
    password: str | None = None
    tls_ca: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    keepalive: int = 30
    prefix: str = ""

    @property
    def tls(self) -> bool:
        return self.tls_ca is not None

    @classmethod
    def parse(cls, s: _Section) -> BrokerSettings:
        b = cls(
            host=s.get("host", str, "127.0.0.1"),
            port=s.positive("port", int, 1883),
            username=s.opt("username", str),
            password=s.opt("password", str),
            tls_ca=s.opt("tls_ca", str),
            tls_cert=s.opt("tls_cert", str),
            tls_key=s.opt("tls_key", str),
            keepalive=s.positive("keepalive", int, 30),
            prefix=s.get("prefix", str, ""),
        )
        s.finish()
        if (b.tls_cert is None) != (b.tls_key is None):
            raise ConfigError(s.path, s.name, "tls_cert and tls_key go together")
        if b.tls_cert and not b.tls_ca:
            raise ConfigError(s.path, s._key("tls_ca"), "is required with tls_cert")
        return b


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
    outbox_max_bytes: int = 2 * 1024**3
    devices: Path | None = None
    intake_queue: int = 20000
    metrics_port: int = 0
    identity: Path | None = None
    utc_offset_minutes: int = 480

    @property
    def outbox_path(self) -> Path:
        return self.data_dir / "outbox.sqlite"


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


def _load(path: str | Path) -> tuple[str, dict[str, Any]]:
    p = str(path)
    try:
        with open(p, "rb") as fh:
            return p, tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(p, "", "file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(p, "", f"not valid TOML: {exc}") from exc


def _rel(base: str, value: str) -> Path:
    p = Path(value)
    return p if p.is_absolute() else Path(base).resolve().parent / p


def _site_id(s: _Section, key: str) -> str:
    site = s.get(key, str)
    if not site or any(c in site for c in "/+#$ ") or len(site) > 32:
        raise ConfigError(s.path, s._key(key), "1..32 characters, none of / + # $ or space")
    return site


def load_agent(path: str | Path) -> AgentSettings:
    """Read an edge agent's config file."""
    p, data = _load(path)
    root = _Section(p, "", data)
    a = root.sub("agent")
    site = _site_id(a, "site")
    data_dir = _rel(p, a.get("data_dir", str))
    devices = a.opt("devices", str)
    outbox_max = a.positive("outbox_max_bytes", int, 2 * 1024**3)
    intake_queue = a.positive("intake_queue", int, 20000)
    metrics_port = a.get("metrics_port", int, 0)
    identity = a.opt("identity", str)
    utc_offset = a.get("utc_offset_minutes", int, 480)
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
        devices=_rel(p, devices) if devices else None,
        intake_queue=intake_queue,
        metrics_port=metrics_port,
        identity=_rel(p, identity) if identity else None,
        utc_offset_minutes=utc_offset,
    )


def load_collector(path: str | Path) -> CollectorSettings:
    """Read a collector's config file."""
    p, data = _load(path)
    root = _Section(p, "", data)
    c = root.sub("collector")
    data_dir = _rel(p, c.get("data_dir", str))
    registry = _rel(p, c.get("registry", str))
    group = c.get("group", str, "collectors")
    shared = c.get("shared_subscription", bool, True)
    max_batch = c.positive("max_batch_bytes", int, 4 * 1024 * 1024)
    client_id = c.get("client_id", str, "collector")
    c.finish()
    broker = BrokerSettings.parse(root.sub("broker"))
    platform: PlatformSettings | None = None
    if "platform" in data:
        ps = root.sub("platform")
        url = ps.get("url", str)
        if not url.startswith(("http://", "https://")):
            raise ConfigError(p, "platform.url", "must start with http:// or https://")
        platform = PlatformSettings(
            url=url.rstrip("/"),
            batch_records=ps.positive("batch_records", int, 500),
            timeout_s=ps.positive("timeout_s", float, 10.0),
            backoff_initial_s=ps.positive("backoff_initial_s", float, 0.5),
            backoff_max_s=ps.positive("backoff_max_s", float, 30.0),
            format=ps.get("format", str, "records"),
            epcis_archive=_rel(p, a) if (a := ps.opt("epcis_archive", str)) else None,
            timezone=ps.get("timezone", str, "+08:00"),
        )
        ps.finish()
        if platform.format not in ("records", "epcis"):
            raise ConfigError(p, "platform.format", "must be records or epcis")
        if not re.fullmatch(r"[+-](0\d|1[0-4]):[0-5]\d", platform.timezone):
            raise ConfigError(p, "platform.timezone", "must look like +08:00")
    api = root.sub("api")
    api_host = api.get("host", str, "127.0.0.1")
    api_port = api.get("port", int, 0)
    api.finish()
    root.finish()
    return CollectorSettings(
        path=p,
        data_dir=data_dir,
        registry=registry,
        broker=broker,
        platform=platform,
        group=group,
        shared_subscription=shared,
        max_batch_bytes=max_batch,
        client_id=client_id,
        api_host=api_host,
        api_port=api_port,
    )
