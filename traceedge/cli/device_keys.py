"""``traceedge device rotate-key|revoke``: change whom the system trusts, by sequence number.

A key rotates from a stated sequence number on, and a revocation refuses a device's records
from a stated sequence number on, so no clock has to be trusted. Both change the registry
file; the collectors read it at once, and their signed push-down carries it to the site's
agent within one push (a second or so while connected).
"""

from __future__ import annotations

import json
import secrets
import time
from pathlib import Path

import click

from collector.settings import load_collector
from hostlib.errors import ConfigError
from hostlib.registry import Registry, revoke, rotate_key
from traceedge.cli.common import friendly_errors
from traceedge.provision import device_config, write_secret

ROTATE_MARGIN = 10_000  # seqs past the highest stored: time to flash the terminal


def _highest_stored(config: Path, dev: str) -> int:
    from collector.storedb import of_settings

    settings = load_collector(config)
    storedb = of_settings(settings)
    if not storedb.exists():
        return 0
    try:
        with storedb.read() as db:
            row = db.execute("SELECT max_seq FROM device_state WHERE dev = ?", (dev,)).fetchone()
    finally:
        storedb.close()
    return int(row[0]) if row else 0


def _from_seq(from_seq: int | None, config: Path | None, dev: str, margin: int) -> int:
    if from_seq is not None:
        return from_seq
    if config is None:
        raise ConfigError("--from-seq", dev, "give --from-seq N, or --config so the store says")
    return _highest_stored(config, dev) + margin


def _audit(config: Path | None, action: str, dev: str, detail: dict[str, object]) -> None:
    """The audit entry in the collector's store, when --config names it."""
    if config is None:
        return
    from collector import audit
    from traceedge.cli.collector_access import audited_store, cli_actor, signing_key

    key = signing_key(config)
    with audited_store(config) as db:
        audit.record(db, cli_actor(), action, dev, detail, signing_key=key)


def _registry_option(f: click.decorators.FC) -> click.decorators.FC:
    return click.option(
        "--registry",
        type=click.Path(path_type=Path, dir_okay=False),
        required=True,
        help="The device registry file the collectors read.",
    )(f)


def _config_option(f: click.decorators.FC) -> click.decorators.FC:
    return click.option(
        "--config",
        "config_path",
        type=click.Path(path_type=Path, dir_okay=False),
        help="A collector config: its store tells the device's highest sequence number.",
    )(f)


def register(device_group: click.Group) -> None:
    device_group.add_command(rotate_key_cmd)
    device_group.add_command(revoke_cmd)


@click.command("rotate-key")
@click.argument("dev")
@_registry_option
@_config_option
@click.option("--from-seq", type=click.IntRange(1), help="First sequence number of the new key.")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path, file_okay=False),
    required=True,
    help="Folder for the device's new config file (to flash with `traceedge device flash`).",
)
def rotate_key_cmd(
    dev: str, registry: Path, config_path: Path | None, from_seq: int | None, out_dir: Path
) -> None:
    """Give DEV a new key, valid from a stated sequence number on.

    Records before it keep verifying with the old key. Without --from-seq the new key
    starts 10,000 past the highest sequence number the collector's store holds: flash the
    new config onto the terminal before it gets there.

    \b
    Example:
      traceedge device rotate-key MKT-S1-0A1B2C --registry /var/lib/traceedge/devices.json \\
          --config /etc/traceedge/collector.toml --out ./devices
    """
    with friendly_errors():
        device = Registry(registry).get(dev)
        if device is None:
            raise ConfigError(str(registry), dev, "no such device in the registry")
        start = _from_seq(from_seq, config_path, dev, ROTATE_MARGIN)
        new_key = secrets.token_bytes(32)
        rotate_key(registry, dev, new_key, start, int(time.time()))
        device = Registry(registry).get(dev)
        assert device is not None
        cfg = device_config(device, "127.0.0.1", 1883)
        cfg["keys"] = [[f, k.hex()] for f, k in device.keys]
        path = write_secret(out_dir / f"{dev}.json", json.dumps(cfg, indent=1).encode())
        _audit(config_path, "device.rotate-key", dev, {"from_seq": start})
    click.echo(f"{dev}: new key from seq {start}; config for the terminal in {path}")
    click.echo("set its link (host, port) as in its old config before flashing", err=True)


@click.command("revoke")
@click.argument("dev")
@_registry_option
@_config_option
@click.option(
    "--from-seq", type=click.IntRange(1), help="First sequence number refused (default: next)."
)
@click.option("--reason", required=True, help="Why (kept in the registry's history).")
def revoke_cmd(
    dev: str, registry: Path, config_path: Path | None, from_seq: int | None, reason: str
) -> None:
    """Refuse DEV's records from a sequence number on, everywhere.

    Without --from-seq, every record the collector's store does not hold yet is refused.
    The registry keeps the device and its keys: its earlier records still verify.

    \b
    Example:
      traceedge device revoke CYL-S1-3F9A2C --registry /var/lib/traceedge/devices.json \\
          --config /etc/traceedge/collector.toml --reason "reader stolen"
    """
    with friendly_errors():
        start = _from_seq(from_seq, config_path, dev, 1)
        revoke(registry, dev, start, int(time.time()), reason)
        _audit(config_path, "device.revoke", dev, {"from_seq": start, "reason": reason})
    click.echo(f"{dev}: revoked from seq {start}")
