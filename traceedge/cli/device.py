"""``traceedge device``: provisioning for technicians."""

from __future__ import annotations

import os
from pathlib import Path

import click

from hostlib.registry import DEVICE_TYPES, Registry
from traceedge.cli import dev_flash, device_keys
from traceedge.cli.common import friendly_errors
from traceedge.provision import SerialPlan, provision

DEFAULT_REGISTRY = os.environ.get("TRACEEDGE_REGISTRY", "registry/devices.json")


@click.group("device")
def command() -> None:
    """Provision and list terminals.

    \b
    Example:
      traceedge device provision --type cylinder-reader --site S1 --out ./devices
    """


@command.command("provision")
@click.option(
    "--type", "dev_type", type=click.Choice(DEVICE_TYPES), required=True, help="Kind of terminal."
)
@click.option("--site", required=True, help="Site (station, market, building) code.")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path, file_okay=False),
    required=True,
    help="Folder for the device config files (one <dev>.json each).",
)
@click.option(
    "--registry",
    type=click.Path(path_type=Path),
    default=DEFAULT_REGISTRY,
    show_default=True,
    help="Device registry the collector reads ($TRACEEDGE_REGISTRY).",
)
@click.option(
    "--count",
    type=click.IntRange(1, 10000),
    default=1,
    show_default=True,
    help="How many devices to create.",
)
@click.option(
    "--broker-host",
    default="127.0.0.1",
    show_default=True,
    help="Gateway broker the device will publish to.",
)
@click.option("--broker-port", type=click.IntRange(1, 65535), default=1883, show_default=True)
@click.option(
    "--serial-port",
    default=None,
    metavar="PORT",
    help="The terminals are wired to the gateway on PORT (e.g. /dev/ttyUSB0) instead of "
    "using its broker: no MQTT login is made and the agent's [[sources]] table is written.",
)
@click.option(
    "--bus-addr",
    type=click.IntRange(1, 254),
    default=None,
    help="With --serial-port: an RS-485 bus; the devices get addresses from this one up.",
)
def provision_cmd(
    dev_type: str,
    site: str,
    out_dir: Path,
    registry: Path,
    count: int,
    broker_host: str,
    broker_port: int,
    serial_port: str | None,
    bus_addr: int | None,
) -> None:
    """Create device ids and keys, write each device's config, register them.

    \b
    Example:
      traceedge device provision --type elevator-box --site BLDG7 --out ./devices \\
          --registry /var/lib/traceedge/devices.json --count 4
    \b
    Three elevator boxes on the gateway's RS-485 bus, addresses 1..3:
      traceedge device provision --type elevator-box --site BLDG7 --out ./devices \\
          --count 3 --serial-port /dev/ttyUSB0 --bus-addr 1
    """
    if bus_addr is not None and serial_port is None:
        raise click.UsageError("--bus-addr needs --serial-port (the bus's port on the gateway)")
    serial = SerialPlan(serial_port, bus_addr or 0) if serial_port is not None else None
    if serial is not None:
        try:
            serial.addresses(count)
        except ValueError as exc:
            raise click.UsageError(str(exc)) from None
    with friendly_errors():
        done = provision(dev_type, site, out_dir, registry, count, broker_host, broker_port, serial)
    for d, path in done:
        click.echo(f"{d.dev}\t{path}")
    click.echo(f"registered {len(done)} device(s) in {registry}", err=True)
    if serial is not None:
        table = out_dir / f"sources-{site}.toml"
        click.echo(
            f"wired to {serial_port}: add {table} to the site agent's config "
            "(its [[sources]] table), then restart the agent",
            err=True,
        )


@command.command("list")
@click.option(
    "--registry",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    default=DEFAULT_REGISTRY,
    show_default=True,
    help="Device registry file.",
)
@click.option("--site", default=None, help="Only this site.")
def list_cmd(registry: Path, site: str | None) -> None:
    """List registered devices (never prints keys).

    \b
    Example:
      traceedge device list --registry registry/devices.json --site S1
    """
    with friendly_errors():
        devices = Registry(registry).devices()
    for d in sorted(devices.values(), key=lambda d: d.dev):
        if site is None or d.site == site:
            click.echo(f"{d.dev}\t{d.type}\t{d.site}")


dev_flash.register(command)
device_keys.register(command)
