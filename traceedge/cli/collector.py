"""``traceedge collector``: run the central collector, inspect its store."""

from __future__ import annotations

import json
from pathlib import Path

import click

from collector.settings import load_collector
from hostlib.errors import ConfigError
from traceedge.cli.common import config_option, friendly_errors, setup_logging, verbose_option

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
def run_cmd(config_path: Path, verbose: int) -> None:
    """Run a collector process until stopped; start several to share the load.

    \b
    Example:
      traceedge collector run --config /etc/traceedge/collector.toml -v
    """
    setup_logging(max(verbose, 1))
    from collector.service import Collector

    with friendly_errors():
        settings = load_collector(config_path)
        click.echo(
            f"collector {settings.client_id}: broker {settings.broker.host}:"
            f"{settings.broker.port}, store {settings.store_path}, platform "
            f"{settings.platform.url if settings.platform else 'none'}",
            err=True,
        )
        Collector(settings).run_forever()


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

    \b
    Example:
      traceedge collector status --config /etc/traceedge/collector.toml --devices
    """
    from collector.held import held_records
    from collector.store import device_report, summarize
    from hostlib.sqlite import open_ro

    with friendly_errors():
        path = load_collector(config_path).store_path
        if not path.exists():
            raise ConfigError(str(path), "", "no store here: has the collector ever run?")
        with open_ro(path) as db:
            out = summarize(db)
            held = held_records(db, HELD_LISTED)
            out["forward_held_records"] = [h.model_dump() for h in held]
            if devices:
                out["device_report"] = device_report(db)
    if as_json:
        click.echo(json.dumps(out))
        return
    for k, v in out.items():
        if k not in ("device_report", "forward_held_records"):
            click.echo(f"{k:20} {v}")
    if held:
        click.echo("held back from the platform, not forwarded (tried again when a collector")
        click.echo("starts and on `traceedge collector forward-retry`):")
    for h in held:
        click.echo(f"  {h.dev}/{h.seq} {h.kind}: {h.reason} (attempts {h.attempts})")
    if out["forward_held"] > len(held):
        click.echo(f"  ... and {out['forward_held'] - len(held)} more (GET /forwarding lists them)")
    for d in out.get("device_report", []):
        click.echo(
            f"  {d['dev']:24} records {d['records']:7} watermark {d['watermark']:7} "
            f"missing {d['missing']}"
        )


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
        path = load_collector(config_path).store_path
        if not path.exists():
            raise ConfigError(str(path), "", "no store here: has the collector ever run?")
        store = SqliteStore(path)
        try:
            n = store.retry_held()
        finally:
            store.close()
    click.echo(f"{n} held records due for another attempt")


@command.command("import-cylinders")
@config_option("Collector")
@click.argument("entries", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def import_cylinders_cmd(config_path: Path, entries: Path) -> None:
    """Import cylinder registry entries (a JSON list); agents get the new version pushed.

    Each entry: cyl, owner, entrusted, medium, manufactured, design_life_years,
    next_inspection, status, tare_g, max_fill_g, and optionally tag (see docs/cylinders.md).

    \b
    Example:
      traceedge collector import-cylinders --config /etc/traceedge/collector.toml cyl.json
    """
    from collector.cylinders import CylinderRegistryError, import_cylinders
    from collector.store import SqliteStore

    with friendly_errors():
        settings = load_collector(config_path)
        try:
            data = json.loads(entries.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise click.ClickException(f"{entries}: not JSON: {exc}") from exc
        if not isinstance(data, list):
            raise click.ClickException(f"{entries}: must be a JSON list of entries")
        store = SqliteStore(settings.store_path)
        try:
            version = import_cylinders(store.db, data)
        except CylinderRegistryError as exc:
            raise click.ClickException(f"{entries}: {exc}; nothing imported") from exc
        finally:
            store.close()
    click.echo(f"imported {len(data)} cylinders; registry version {version}")
