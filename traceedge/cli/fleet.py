"""``traceedge fleet``: simulated terminals publishing realistic records."""

from __future__ import annotations

import json
from pathlib import Path

import click

from hostlib.mqttlink import BrokerSettings
from hostlib.registry import Registry
from traceedge.cli.common import friendly_errors, setup_logging, verbose_option


@click.group("fleet")
def command() -> None:
    """Simulated terminals of all three families.

    \b
    Example:
      traceedge fleet run --registry registry/devices.json --site S1 --records 1000
    """


@command.command("run")
@click.option(
    "--registry",
    type=click.Path(path_type=Path),
    required=True,
    help="Device registry holding the simulated devices and their keys.",
)
@click.option("--site", default=None, help="Only this site's devices.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Gateway broker host.")
@click.option("--port", type=int, default=1883, show_default=True, help="Gateway broker port.")
@click.option(
    "--records",
    type=click.IntRange(1),
    default=1000,
    show_default=True,
    help="How many records to publish in all.",
)
@click.option(
    "--rate",
    type=float,
    default=0.0,
    show_default=True,
    help="Records per second for the whole fleet (0 = as fast as possible).",
)
@click.option("--seed", type=int, default=1, show_default=True)
@click.option(
    "--drain-timeout",
    type=float,
    default=120.0,
    show_default=True,
    help="Seconds to wait for every record's ack after the last one is sent.",
)
@verbose_option
def run_cmd(
    registry: Path,
    site: str | None,
    host: str,
    port: int,
    records: int,
    rate: float,
    seed: int,
    drain_timeout: float,
    verbose: int,
) -> None:
    """Publish records from every registered device, resend until acked; print a summary.

    \b
    Example:
      traceedge fleet run --registry registry/devices.json --port 1883 --records 5000 --rate 200
    """
    setup_logging(verbose)
    from simulators.fleet import Fleet

    with friendly_errors():
        devices = [
            d for d in Registry(registry).devices().values() if site is None or d.site == site
        ]
    if not devices:
        raise click.ClickException(
            f"no devices in {registry}" + (f" for site {site}" if site else "")
        )
    fleet = Fleet(BrokerSettings(host=host, port=port), devices, seed=seed)
    click.echo(f"fleet: {len(devices)} terminals → {host}:{port}, {records} records", err=True)

    def progress(s: dict[str, int]) -> None:
        click.echo(
            f"  generated {s['generated']}  acked {s['acked']}  pending {s['pending']}", err=True
        )

    try:
        out = fleet.run(records, rate, drain_timeout, progress)
    finally:
        fleet.stop()
    click.echo(json.dumps(out))
