"""``traceedge collector``: run the central collector, inspect its store."""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import click

from collector.settings import load_collector
from collector.stores import describe
from hostlib.db import Db
from hostlib.errors import ConfigError, StoreError
from hostlib.sqlite import write_tx
from traceedge.cli import bundle as bundle_cli
from traceedge.cli.common import (
    NOT_RUNNING,
    config_option,
    friendly_errors,
    log_format_option,
    setup_logging,
    verbose_option,
)

if TYPE_CHECKING:
    from collector.held import HeldRecord
    from hostlib.db import Db
    from hostlib.registry import Device

log = logging.getLogger(__name__)

HELD_LISTED = 20  # held records `collector status` lists


@click.group("collector")
def command() -> None:
    """The central collector.

    \b
    Example:
      traceedge collector run --config config/collector.example.toml
    """


@command.command("run")
@config_option("Collector")
@verbose_option
@log_format_option
def run_cmd(config_path: Path, verbose: int, log_format: str) -> None:
    """Run a collector process until stopped; start several to share the load.

    Logs at INFO (-v adds nothing, -vv debug) to stderr. Under systemd (Type=notify) it
    says READY once started, pings the watchdog while its threads live, and says STOPPING.

    \b
    Example:
      traceedge collector run --config /etc/traceedge/collector.toml --log-format json
    """
    setup_logging(max(verbose, 1), log_format)
    from collector.service import Collector

    with friendly_errors():
        settings = load_collector(config_path)
        log.info(
            "collector %s: broker %s:%d, store %s, platform %s",
            settings.client_id,
            settings.broker.host,
            settings.broker.port,
            describe(settings),
            settings.platform.url if settings.platform else "none",
        )
        Collector(settings).run_forever()


@command.command("migrate")
@config_option("Collector")
@click.option("--check", is_flag=True, help="Only say whether migrations are due (exit 3 if so).")
def migrate_cmd(config_path: Path, check: bool) -> None:
    """Create or upgrade the PostgreSQL store's schema ([store] url), each migration once.

    Safe beside running collectors and other `migrate` runs (they wait on one lock). A
    SQLite store needs none: it is brought up to date when a collector opens it.

    \b
    Example:
      traceedge collector migrate --config /etc/traceedge/collector.toml
      traceedge collector migrate --config /etc/traceedge/collector.toml --check
    """
    from collector import pgschema
    from collector.pgstore import migrate, redact_url, schema_version

    with friendly_errors():
        settings = load_collector(config_path, files=False)
        url = settings.store.url
        if not url:
            click.echo(f"{settings.store_path}: a SQLite store; nothing to migrate")
            return
        have = schema_version(url)
        click.echo(f"{redact_url(url)}: schema version {have}, this build {pgschema.LATEST}")
        if check:
            if have < pgschema.LATEST:
                click.echo("migrations due: run without --check")
                click.get_current_context().exit(NOT_RUNNING)
            return
        for version, name, _ in pgschema.MIGRATIONS:
            if version > have:
                click.echo(f"applying {version}: {name} …")
        applied = migrate(url)
        click.echo(f"applied {len(applied)} migration(s); now at {pgschema.LATEST}")


@command.command("keygen")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path, file_okay=False),
    required=True,
    help="Folder for command.key (0600, for the collectors) and command.pub (for the agents).",
)
def keygen_cmd(out_dir: Path) -> None:
    """Make the centre's Ed25519 command key pair; an existing pair is kept.

    Collectors sign what they push to the sites (cylinder registry, stop list, device keys
    and revocations) with command.key; every agent holds command.pub and applies only what
    verifies under it.

    \b
    Example:
      traceedge collector keygen --out /etc/traceedge
    """
    from traceedge.provision import command_keypair

    with friendly_errors():
        key, pub = command_keypair(out_dir)
    click.echo(f"private: {key} (collectors' [collector] command_key)")
    click.echo(f"public:  {pub} (agents' [agent] command_key)")


@command.command("status")
@config_option("Collector")
@click.option("--json", "as_json", is_flag=True, help="One JSON object instead of text.")
@click.option("--devices", is_flag=True, help="Also list each device's watermark and gaps.")
def status_cmd(config_path: Path, as_json: bool, devices: bool) -> None:
    """Records stored, duplicates, quarantine, gaps, forwarding backlog, and the records
    held back from the platform with why.

    Exit status: 0 when a collector process on this store is running, 3 when none is (the
    store is shown as they left it), 1 on an error (a bad config, a store that cannot be
    read).

    \b
    Example:
      traceedge collector status --config /etc/traceedge/collector.toml --devices
    """
    from collector.status import format_status, running
    from hostlib.registry import Registry
    from hostlib.sqlite import open_ro

    with friendly_errors():
        settings = load_collector(config_path, files=False)
        path = settings.store_path
        # provisioned devices that never sent a record are listed too
        reg_file = settings.registry
        registry = Registry(reg_file).devices() if devices and reg_file.exists() else None
    if settings.store.url:
        out, held = _pg_status(settings.store.url, devices, registry)
    else:
        if not path.exists():
            click.echo(f"{path}: no store here: no collector has run with this config", err=True)
            click.get_current_context().exit(NOT_RUNNING)
        with friendly_errors(str(path)), open_ro(path) as db:
            out, held = _status(db, devices, registry)
    click.echo(json.dumps(out) if as_json else format_status(out, held, time.time()))
    if not running(out):
        click.get_current_context().exit(NOT_RUNNING)


def _status(
    db: Db, devices: bool, registry: Mapping[str, Device] | None
) -> tuple[dict[str, Any], list[HeldRecord]]:
    """The summary, the first held records and (``devices``) the device report."""
    from collector.held import held_records
    from collector.store import device_report, summarize

    out = summarize(db)
    held = held_records(db, HELD_LISTED)
    out["forward_held_records"] = [h.model_dump() for h in held]
    if devices:
        out["device_report"] = device_report(db, registry)
    return out, held


def _pg_status(
    url: str, devices: bool, registry: Mapping[str, Device] | None
) -> tuple[dict[str, Any], list[HeldRecord]]:
    """:func:`_status` of a PostgreSQL store, in one read-only transaction."""
    import psycopg

    from collector.pgstore import redact_url
    from hostlib.db import PgDb

    try:
        with psycopg.connect(url, connect_timeout=10) as conn:
            conn.read_only = True
            return _status(PgDb(conn), devices, registry)
    except psycopg.Error as exc:
        raise click.ClickException(f"{redact_url(url)}: {exc}") from exc


@command.command("forward-retry")
@config_option("Collector")
def forward_retry_cmd(config_path: Path) -> None:
    """Try the records held back from the platform again (after a fix to the collector or
    its settings). A running collector tries them within a second, a stopped one when it
    starts; `collector status` shows what is still held and why.

    \b
    Example:
      traceedge collector forward-retry --config /etc/traceedge/collector.toml
    """
    from collector.store import SqliteStore

    with friendly_errors():
        settings = load_collector(config_path, files=False)
        path = settings.store_path
        if settings.store.url:
            from collector.stores import open_store

            pg = open_store(settings)
            try:
                n = pg.retry_held()
            finally:
                pg.close()
            click.echo(f"{n} held records due for another attempt")
            return
        if not path.exists():
            raise ConfigError(str(path), "", "no store here: has the collector ever run?")
    with friendly_errors(str(path)):
        store = SqliteStore(path)
        try:
            n = store.retry_held()
        finally:
            store.close()
    click.echo(f"{n} held records due for another attempt")


def _json_list(path: Path, items: str) -> list[object]:
    """The JSON list in ``path``; a one-line error if it is not JSON or not a list."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise click.ClickException(f"{path}: not JSON: {exc}") from exc
    if not isinstance(data, list):
        raise click.ClickException(f"{path}: must be a JSON list of {items}")
    return data


@contextmanager
def _import_into_store(
    config_path: Path, source: Path, kind: str
) -> Iterator[tuple[Db, list[int]]]:
    """The configured collector's store, for one all-or-nothing import from ``source``, in
    one transaction with its audit entry (the caller appends the row count to the list).

    The SQLite file is created (with its schema) when no collector made it yet; a
    PostgreSQL store ([store] url) must have been migrated (``traceedge collector migrate``).
    The importers raise ``ValueError`` naming the bad row and field before writing anything;
    that, and a store that cannot be written (locked, not a store, a server that does not
    answer), become one-line errors.
    """
    from traceedge.cli.collector_access import record_import

    with friendly_errors():
        settings = load_collector(config_path, files=False)
        try:
            if settings.store.url:
                with _import_into_postgres(settings.store.url) as db:
                    counted: list[int] = []
                    yield db, counted
                    record_import(
                        cast(sqlite3.Connection, db), config_path, kind, source, sum(counted)
                    )
                return
            from collector.store import SqliteStore

            store = SqliteStore(settings.store_path)
            try:
                counted = []
                with write_tx(store.db):
                    yield store.db, counted
                    record_import(store.db, config_path, kind, source, sum(counted))
            finally:
                store.close()
        except ValueError as exc:
            raise click.ClickException(f"{source}: {exc}; nothing imported") from exc
        except sqlite3.Error as exc:
            raise click.ClickException(f"{settings.store_path}: {exc}; nothing imported") from exc
        except StoreError as exc:
            where = describe(settings)
            raise click.ClickException(f"{where}: {exc}; nothing imported") from exc


@contextmanager
def _import_into_postgres(url: str) -> Iterator[Db]:
    """One transaction on the PostgreSQL store (:class:`hostlib.errors.StoreError` when the
    server does not answer or refuses the change)."""
    from collector.storedb import StoreDb

    storedb = StoreDb(Path(), url, pool_size=1)
    try:
        with storedb.write() as db:
            yield db
    finally:
        storedb.close()


_JSON_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)


@command.command("import-cylinders")
@config_option("Collector")
@click.argument("source", metavar="ENTRIES", type=_JSON_FILE)
def import_cylinders_cmd(config_path: Path, source: Path) -> None:
    """Import cylinder registry entries (a JSON list); agents get the new version pushed.

    Each entry: cyl, owner, entrusted, medium, manufactured, design_life_years,
    next_inspection, status, tare_g, max_fill_g, and optionally tag (see docs/cylinders.md).
    All or nothing: a bad entry is named by its index and field, and nothing is imported.

    \b
    Example:
      traceedge collector import-cylinders --config /etc/traceedge/collector.toml cyl.json
    """
    from collector.cylinders import import_cylinders

    entries = _json_list(source, "entries")
    with _import_into_store(config_path, source, "cylinders") as (db, counted):
        version = import_cylinders(db, entries)
        counted.append(len(entries))
    click.echo(f"imported {len(entries)} cylinders; registry version {version}")


def _rows(path: Path, items: str) -> list[object]:
    """A JSON list, or a CSV with a header line when the file name ends in ``.csv``."""
    if path.suffix.lower() != ".csv":
        return _json_list(path, items)
    from collector.licences import LicenceRegistryError, parse_csv

    try:
        return parse_csv(path.read_text(encoding="utf-8-sig"))
    except (UnicodeDecodeError, LicenceRegistryError) as exc:
        raise click.ClickException(f"{path}: {exc}") from exc


@command.command("import-licences")
@config_option("Collector")
@click.argument("source", metavar="LICENCES", type=_JSON_FILE)
def import_licences_cmd(config_path: Path, source: Path) -> None:
    """Import licences for the warehouse dispatch gate (JSON list, or CSV with a header).

    Each licence: licence (number), kind (toxic_purchase, precursor_purchase, business,
    other), holder, classes (product classes it covers; in CSV separated by spaces or ;),
    quantity and unit (piece, g, ml), valid_from, valid_until (YYYY-MM-DD) and sites (the
    sites where it may be presented, or *). All or nothing: a bad row is named by its index
    and field, and nothing is imported. Each site's agent gets its slice pushed, signed
    (docs/warehouse.md).

    \b
    Example:
      traceedge collector import-licences --config /etc/traceedge/collector.toml lic.csv
    """
    from collector.licences import import_licences

    entries = _rows(source, "licences")
    with _import_into_store(config_path, source, "licences") as (db, counted):
        version = import_licences(db, entries)
        counted.append(len(entries))
    click.echo(f"imported {len(entries)} licence(s); registry version {version}")


@command.command("import-recalls")
@config_option("Collector")
@click.argument("source", metavar="LOTS", type=_JSON_FILE)
def import_recalls_cmd(config_path: Path, source: Path) -> None:
    """Import recalled lots (JSON list, or CSV with a header): no item of them may leave.

    Each lot: lot (number), reason, and optionally product and since (YYYY-MM-DD). All or
    nothing, like import-licences; every site's agent gets the list pushed, signed.

    \b
    Example:
      traceedge collector import-recalls --config /etc/traceedge/collector.toml recalls.json
    """
    from collector.licences import import_recalls

    entries = _rows(source, "lots")
    with _import_into_store(config_path, source, "recalls") as (db, counted):
        version = import_recalls(db, entries)
        counted.append(len(entries))
    click.echo(f"imported {len(entries)} recalled lot(s); recall list version {version}")


@command.command("import-traders")
@config_option("Collector")
@click.argument("source", metavar="TRADERS", type=_JSON_FILE)
def import_traders_cmd(config_path: Path, source: Path) -> None:
    """Import the markets' trader registry (a JSON list of objects).

    Each trader: trader (the id terminals record, at most 32 characters), name (real name,
    64) and market (market code, 32), all required; card_uid (IC card UID, 8-20 upper-case
    hex digits) and stall (32) optional. A trader is known by market and trader: importing
    one again replaces its name, card and stall. Trace chains then show whether a sale's
    seller is registered and the card read is theirs. All or nothing: a bad row is named by
    its index and field, and nothing is imported.

    \b
    Example:
      traceedge collector import-traders --config /etc/traceedge/collector.toml traders.json
    with traders.json:
      [{"trader": "T0001", "name": "Wang Jianguo", "market": "M330106001",
        "card_uid": "A1B2C301", "stall": "A-01"}]
    """
    from collector.markets import import_traders

    rows = _json_list(source, "traders")
    with _import_into_store(config_path, source, "traders") as (db, counted):
        n = import_traders(db, rows)
        counted.append(n)
    click.echo(f"imported {n} traders")


@command.command("import-elevators")
@config_option("Collector")
@click.argument("source", metavar="ELEVATORS", type=_JSON_FILE)
def import_elevators_cmd(config_path: Path, source: Path) -> None:
    """Import the elevator registry (a JSON list of objects).

    Each elevator: reg (registration code, 20 of 0-9 A-Z) and address (1-200 characters),
    required; company (the maintenance company) and site (at most 64 characters each)
    optional. Importing a reg again replaces its row. The query API then shows the
    registration with the elevator's status, faults and visits. All or nothing: a bad row
    is named by its index and field, and nothing is imported.

    \b
    Example:
      traceedge collector import-elevators --config /etc/traceedge/collector.toml elev.json
    with elev.json:
      [{"reg": "31103301002021000017", "address": "Hangzhou, Wensan Rd 90, unit 2",
        "company": "Xizi Elevator Service", "site": "S001"}]
    """
    from collector.elevators import import_elevators

    rows = _json_list(source, "elevators")
    with _import_into_store(config_path, source, "elevators") as (db, counted):
        n = import_elevators(db, rows)
        counted.append(n)
    click.echo(f"imported {n} elevators")


def _register_access_commands() -> None:
    from traceedge.cli import collector_access, collector_archive

    for c in [*collector_access.COMMANDS, *collector_archive.COMMANDS]:
        command.add_command(c)


_register_access_commands()


command.add_command(bundle_cli.import_cmd)
