"""The sneakernet commands: ``agent export``, ``agent import-receipt`` (registered on the
agent group) and ``collector import`` (on the collector group)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import click

from hostlib.errors import ConfigError
from traceedge.cli.common import config_option, friendly_errors

_RELATIVE = re.compile(r"^(\d+)([dhm])$")
_UNIT_S = {"d": 86400, "h": 3600, "m": 60}


def parse_since(text: str | None, now: float) -> float:
    """``--since``: empty for every record, ``30d`` / ``12h`` / ``90m`` back from now, or
    an ISO 8601 date or time (UTC unless it names its offset)."""
    if not text:
        return 0.0
    m = _RELATIVE.match(text)
    if m:
        return now - int(m.group(1)) * _UNIT_S[m.group(2)]
    try:
        t = datetime.fromisoformat(text)
    except ValueError:
        raise click.BadParameter(
            f"{text!r}: give 30d, 12h, 90m or an ISO date such as 2026-10-01", param_hint="--since"
        ) from None
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return t.timestamp()


@contextmanager
def _bar(label: str, quiet: bool, unit: str = "records") -> Iterator[Callable[[int, int], None]]:
    """Progress on stderr (nothing with ``--quiet``): one line every two seconds and one at
    the end, driven by ``(done, total)``; lines, not a redrawn bar, so a log keeps them."""
    state = {"last": time.monotonic(), "done": 0, "total": 0}

    def update(done: int, total: int) -> None:
        state["done"], state["total"] = done, total
        now = time.monotonic()
        if not quiet and now - state["last"] >= 2.0:
            state["last"] = now
            pct = 100 * done // max(total, 1)
            click.echo(f"{label}: {done}/{total} {unit} ({pct} %)", err=True)

    yield update
    if not quiet and state["total"]:
        click.echo(f"{label}: {state['done']}/{state['total']} {unit} (done)", err=True)


quiet_option = click.option("-q", "--quiet", is_flag=True, help="No progress bar.")


@click.command("export")
@config_option("Agent")
@click.option(
    "--to",
    "to_dir",
    type=click.Path(path_type=Path, file_okay=False),
    required=True,
    help="Folder to write the bundle into (the removable medium).",
)
@click.option(
    "--since",
    default="",
    help="Only records received since: 30d, 12h, 90m or an ISO date/time (default: all).",
)
@quiet_option
def export_cmd(config_path: Path, to_dir: Path, since: str, quiet: bool) -> None:
    """Write the outbox's records to a bundle for carrying to the centre by hand.

    The bundle (one file, SITE-GATEWAY-UTCTIME.bundle) holds each record as its terminal
    signed it and a manifest sealed with the gateway's key (counts, per-device ranges,
    SHA-256). Nothing leaves the outbox: records are freed only by the centre's receipt
    (agent import-receipt) or by uplink acks. Safe while the agent runs.

    \b
    Example:
      traceedge agent export --config /etc/traceedge/agent.toml --to /media/usb --since 30d
    """
    from edge_agent.bundle import export
    from edge_agent.outbox import Outbox
    from edge_agent.settings import load_agent
    from hostlib.registry import load_identity

    with friendly_errors():
        settings = load_agent(config_path)
        start = parse_since(since, time.time())
        gateway = load_identity(settings.identity)
        if not settings.outbox_path.exists():
            raise ConfigError(str(settings.outbox_path), "", "no outbox: the agent never ran")
        outbox = Outbox(settings.outbox_path, settings.outbox_max_bytes)
        try:
            t0 = time.monotonic()
            with _bar("exporting", quiet) as progress:
                res = export(outbox, settings.site, gateway, to_dir, start, progress)
            took = time.monotonic() - t0
        finally:
            outbox.close()
    click.echo(
        f"{res.path}: {res.records} records of {res.devices} devices, {res.bytes} bytes, "
        f"sha256 {res.sha256[:16]}… in {took:.1f} s"
    )


@click.command("import-receipt")
@config_option("Agent")
@click.argument("receipt", type=click.Path(path_type=Path, dir_okay=False))
def import_receipt_cmd(config_path: Path, receipt: Path) -> None:
    """Free the outbox records the centre's receipt confirms, and only those.

    The receipt must verify under the centre's command key ([agent] command_key) and name
    this site and gateway; anything else frees nothing. Records it does not confirm stay
    and go up when the link returns. Safe while the agent runs; applying it twice frees
    nothing more.

    \b
    Example:
      traceedge agent import-receipt --config /etc/traceedge/agent.toml \\
          /media/usb/S1-GW-S1-20261126T103000Z.bundle.receipt
    """
    from edge_agent.bundle import apply_receipt
    from edge_agent.outbox import Outbox
    from edge_agent.settings import load_agent
    from hostlib.registry import load_identity

    with friendly_errors():
        settings = load_agent(config_path)
        gateway = load_identity(settings.identity)
        if not settings.outbox_path.exists():
            raise ConfigError(str(settings.outbox_path), "", "no outbox: the agent never ran")
        outbox = Outbox(settings.outbox_path, settings.outbox_max_bytes)
        try:
            res = apply_receipt(outbox, receipt, settings.site, gateway, settings.command_key)
        finally:
            outbox.close()
    click.echo(
        f"receipt for bundle {res.bundle[:16]}…: {res.confirmed} records of {res.devices} "
        f"devices confirmed, {res.freed} freed from the outbox"
    )


@click.command("import")
@config_option("Collector")
@click.argument("bundle", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--receipt",
    "receipt_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Where to write the receipt (default: BUNDLE.receipt beside the bundle).",
)
@quiet_option
def import_cmd(config_path: Path, bundle: Path, receipt_path: Path | None, quiet: bool) -> None:
    """Check a gateway's bundle, store its records once, and write the receipt.

    A torn or tampered bundle (cut short, a byte changed, a manifest not sealed by the
    gateway's key) is refused with the reason before anything is stored. Each record goes
    through the same checks as an uplink batch: a record stored before is a duplicate,
    one with other content a conflict. The receipt, signed with the centre's command key,
    confirms exactly what the store holds; carry it back to the site (agent
    import-receipt). Importing the same bundle again is harmless.

    \b
    Example:
      traceedge collector import --config /etc/traceedge/collector.toml \\
          /media/usb/S1-GW-S1-20261126T103000Z.bundle
    """
    from collector.bundle_import import check_bundle, import_bundle, write_receipt
    from collector.settings import load_collector
    from collector.stores import open_store
    from hostlib.registry import Registry
    from wire.command import load_private_key
    from wire.envelope import WireError
    from wire.schemas import default_validator

    with friendly_errors():
        settings = load_collector(config_path)
        try:
            key = load_private_key(settings.command_key)
        except WireError as exc:
            raise ConfigError(settings.path, "collector.command_key", exc.detail) from exc
        registry = Registry(settings.registry)
        t0 = time.monotonic()
        with _bar("checking", quiet, "bytes") as progress:
            checked = check_bundle(bundle, registry, progress)
        store = open_store(settings)
        try:
            with _bar("importing", quiet) as progress:
                res = import_bundle(checked, store, registry, default_validator(), key, progress)
        finally:
            store.close()
        out = receipt_path or bundle.with_name(bundle.name + ".receipt")
        write_receipt(out, res.receipt)
        took = time.monotonic() - t0
    click.echo(
        f"{bundle}: {res.records} records from {checked.gateway.dev} (site {checked.site}): "
        f"{res.stored} stored, {res.duplicates} duplicates, {res.bad} quarantined; "
        f"{res.confirmed} confirmed in {out} ({took:.1f} s)"
    )
