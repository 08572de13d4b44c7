"""The collector's configuration, read once from its TOML file into frozen objects.

The platform's time zone is checked by :func:`collector.epcis.check_tz`, the same function
the EPCIS mapper applies to every event: a value this file accepts is one the mapper takes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from collector.epcis import EpcisError, check_tz
from collector.store import DEFAULT_MAX_QUARANTINE_BYTES
from hostlib.config import MAX_WAIT_S, MiB, Section, load_toml, name_token, rel_path
from hostlib.errors import ConfigError
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
class PublicSettings:
    """The public listener: the shopper's pages and the GS1 Digital Link resolver, no token.

    ``rate_per_min`` requests a minute per client address, in bursts of up to ``burst``."""

    host: str = "127.0.0.1"
    port: int = 0  # 0: off
    rate_per_min: int = 60
    burst: int = 20


MAX_RATE_PER_MIN = 60_000
MAX_BURST = 10_000


@dataclass(frozen=True)
class ApiTls:
    """HTTPS for the regulator's listener; with ``client_ca`` every client must also present a
    certificate that CA signed (mutual TLS for machine clients; tokens are still required)."""

    cert: Path
    key: Path
    client_ca: Path | None = None


@dataclass(frozen=True)
class StoreSettings:
    """Where the records go: ``url`` ``postgresql://…`` (the store many collectors share,
    :mod:`collector.pgstore`), or none: the SQLite file in ``data_dir`` (the embedded default).

    ``pool_size`` connections per process; ``timeout_s`` how long a call waits for one (a
    server that is down fails each call after it: the batch is not acknowledged);
    ``migrate`` apply missing schema migrations at start (off: run
    ``traceedge collector migrate`` before starting, and a database behind is refused);
    ``query_timeout_s`` a transaction the server has not finished by then is cut off (a
    hung server fails the batch, unacknowledged, instead of stalling the collector)."""

    url: str | None = None
    pool_size: int = 4
    timeout_s: float = 5.0
    migrate: bool = True
    query_timeout_s: float = 30.0


@dataclass(frozen=True)
class RetentionSettings:
    """``[retention]``: records captured more than ``keep_days`` days ago (whole days, China
    time) move to Parquet files in ``dir`` on ``traceedge collector archive``
    (:mod:`collector.archive`)."""

    keep_days: int
    dir: Path


MAX_KEEP_DAYS = 36_500


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
    max_quarantine_bytes: int = DEFAULT_MAX_QUARANTINE_BYTES
    client_id: str = "collector"
    api_host: str = "127.0.0.1"
    api_port: int = 0
    api_tls: ApiTls | None = None
    green_s: float = 900.0  # the console: a device is green when heard from within this
    amber_s: float = 7200.0  # … amber within this, red after it (and when never heard from)
    public: PublicSettings = PublicSettings()
    store: StoreSettings = StoreSettings()
    retention: RetentionSettings | None = None  # None: no [retention] table, nothing archived

    @property
    def store_path(self) -> Path:
        return self.data_dir / "collector.sqlite"

    @property
    def archive_dir(self) -> Path:
        """``[retention] dir``, else ``<data_dir>/archive``."""
        return self.retention.dir if self.retention is not None else self.data_dir / "archive"


def _platform(p: str, ps: Section) -> PlatformSettings:
    url = ps.get("url", str)
    if not url.startswith(("http://", "https://")):
        ps.fail("url", "must start with http:// or https://")
    archive = ps.opt("epcis_archive", str)
    platform = PlatformSettings(
        url=url.rstrip("/"),
        batch_records=ps.bounded("batch_records", int, 500, 100_000, "records"),
        timeout_s=ps.bounded("timeout_s", float, 10.0, 600.0, "seconds"),
        backoff_initial_s=ps.bounded("backoff_initial_s", float, 0.5, MAX_WAIT_S, "seconds"),
        backoff_max_s=ps.bounded("backoff_max_s", float, 30.0, MAX_WAIT_S, "seconds"),
        format=ps.get("format", str, "records"),
        epcis_archive=rel_path(p, archive) if archive else None,
        timezone=ps.get("timezone", str, "+08:00"),
    )
    ps.finish()
    if platform.format not in ("records", "epcis"):
        ps.fail("format", "must be records or epcis")
    if platform.backoff_initial_s > platform.backoff_max_s:
        ps.fail("backoff_initial_s", "must not exceed backoff_max_s")
    try:
        check_tz(platform.timezone, "timezone")
    except EpcisError as exc:
        ps.fail("timezone", exc.problem)
    return platform


_ANY = frozenset({"0.0.0.0", "::", "[::]"})


def _public(ps: Section, api_host: str, api_port: int) -> PublicSettings:
    public = PublicSettings(
        host=ps.host("host", "127.0.0.1"),
        port=ps.port("port", 0, off=True),
        rate_per_min=ps.bounded(
            "rate_per_min", int, 60, MAX_RATE_PER_MIN, "requests a minute per client address"
        ),
        burst=ps.bounded("burst", int, 20, MAX_BURST, "requests"),
    )
    ps.finish()
    same_host = public.host == api_host or bool({public.host, api_host} & _ANY)
    if public.port and public.port == api_port and same_host:
        ps.fail("port", f"must differ from api.port ({api_port}): the two are separate listeners")
    return public


def _store(ss: Section) -> StoreSettings:
    url = ss.opt("url", str)
    if url is not None and not url.startswith(("postgresql://", "postgres://")):
        ss.fail("url", "must be a postgresql:// URL (leave it out for the SQLite store)")
    store = StoreSettings(
        url=url,
        pool_size=ss.bounded("pool_size", int, 4, 64, "connections"),
        timeout_s=ss.bounded("timeout_s", float, 5.0, 600.0, "seconds"),
        migrate=ss.get("migrate", bool, True),
        query_timeout_s=ss.bounded("query_timeout_s", float, 30.0, 3600.0, "seconds"),
    )
    ss.finish()
    return store


def _retention(p: str, rs: Section, data_dir: Path) -> RetentionSettings:
    if not rs.has("keep_days"):
        rs.fail("keep_days", "is required: days of records the store keeps")
    keep_days = rs.bounded("keep_days", int, 1, MAX_KEEP_DAYS, "days")
    folder = rs.opt("dir", str)
    rs.finish()
    return RetentionSettings(
        keep_days=keep_days, dir=rel_path(p, folder) if folder else data_dir / "archive"
    )


def load_collector(
    path: str | Path, problems: list[ConfigError] | None = None, files: bool = True
) -> CollectorSettings:
    """Read a collector's config file (``problems``, ``files``: see hostlib.config)."""
    p, root = load_toml(path, problems, files)
    c = root.sub("collector")
    data_dir = rel_path(p, c.get("data_dir", str))
    registry = c.file("registry")
    command_key = c.file("command_key")
    group = name_token(c, "group", "collectors")
    shared = c.get("shared_subscription", bool, True)
    max_batch = c.bounded("max_batch_bytes", int, 4 * MiB, 256 * MiB, "bytes (256 MiB)")
    max_quarantine = c.bounded(
        "max_quarantine_bytes", int, DEFAULT_MAX_QUARANTINE_BYTES, 1024**4, "bytes (1 TiB)"
    )
    client_id = name_token(c, "client_id", "collector")
    c.finish()
    broker = BrokerSettings.parse(root.sub("broker"))
    platform = _platform(p, root.sub("platform")) if root.has("platform") else None
    api = root.sub("api")
    api_host = api.host("host", "127.0.0.1")
    api_port = api.port("port", 0, off=True)
    tls_cert, tls_key = api.opt_file("tls_cert"), api.opt_file("tls_key")
    client_ca = api.opt_file("client_ca")
    green_s = api.bounded("green_s", float, 900.0, 30 * 86400.0, "seconds")
    amber_s = api.bounded("amber_s", float, 7200.0, 30 * 86400.0, "seconds")
    if amber_s < green_s:
        api.fail("amber_s", f"must not be below green_s ({green_s})")
    api.finish()
    if (tls_cert is None) != (tls_key is None):
        api.fail("tls_key" if tls_key is None else "tls_cert", "tls_cert and tls_key go together")
    if client_ca is not None and tls_cert is None:
        api.fail("client_ca", "mutual TLS needs tls_cert and tls_key as well")
    api_tls = ApiTls(tls_cert, tls_key, client_ca) if tls_cert and tls_key else None
    public = _public(root.sub("public"), api_host, api_port)
    store = _store(root.sub("store"))
    if store.url and (api_port or public.port):
        where = "api" if api_port else "public"
        root.sub(where).fail(
            "port",
            "the query API, console and public pages read the SQLite store; with [store] url "
            "(PostgreSQL) run them from a collector on the SQLite store for now, or leave "
            "the port out",
        )
    retention = _retention(p, root.sub("retention"), data_dir) if root.has("retention") else None
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
        max_quarantine_bytes=max_quarantine,
        client_id=client_id,
        api_host=api_host,
        api_port=api_port,
        api_tls=api_tls,
        green_s=green_s,
        amber_s=amber_s,
        public=public,
        store=store,
        retention=retention,
    )
