"""``traceedge fleet``: simulated terminals publishing realistic records."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import click

from hostlib.mqttlink import BrokerSettings
from hostlib.registry import Registry
from traceedge.cli.common import (
    friendly_errors,
    setup_logging,
    stop_signals_interrupt,
    verbose_option,
)


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
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    required=True,
    help="Device registry holding the simulated devices and their keys.",
)
@click.option("--site", default=None, help="Only this site's devices.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Gateway broker host.")
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    default=1883,
    show_default=True,
    help="Gateway broker port.",
)
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
@click.option(
    "--state",
    "state_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Each device's sequence and boot between runs "
    "(default: beside the registry, devices.json → devices.fleet-state.json).",
)
@click.option(
    "--connect-timeout",
    type=click.FloatRange(0.1),
    default=30.0,
    show_default=True,
    help="Give up when the broker cannot be reached within this many seconds.",
)
@click.option(
    "--chain-day",
    is_flag=True,
    help="First publish a multi-hop market day (卡单同行): a wholesale market feeding two "
    "retail markets, on six of the market terminals (their gate and scale each).",
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
    state_path: Path | None,
    connect_timeout: float,
    chain_day: bool,
    verbose: int,
) -> None:
    """Publish records from every registered terminal, resend until acked; print a summary.

    Registry entries that are not terminals (the gateway's own identity) are skipped. Each
    device's sequence continues from the last run, as a real terminal's does across
    reboots: the state file (--state) keeps where each one stands, written atomically
    before the run (reserving the numbers it may use) and when it ends; one run at a time
    uses a state file. Ctrl-C or SIGTERM stops the run and keeps its state.

    With --chain-day, six market terminals first publish a wholesale market's day feeding
    two retail markets (entries naming the wholesale receipts, shoppers' sales), so the
    collector has hops to link, walk back and recall forward.

    \b
    Example:
      traceedge fleet run --registry registry/devices.json --port 1883 --records 5000 --rate 200
      traceedge fleet run --registry registry/devices.json --records 100 --chain-day
    """
    setup_logging(verbose)
    from simulators.fleet import Fleet, is_terminal
    from simulators.fleet_state import FleetState, default_path

    state_path = state_path or default_path(registry)
    with friendly_errors():
        listed = [
            d for d in Registry(registry).devices().values() if site is None or d.site == site
        ]
        devices = [d for d in listed if is_terminal(d)]
        others = sorted(f"{d.dev} ({d.type})" for d in listed if not is_terminal(d))
        if others:
            shown = ", ".join(others[:5]) + (", ..." if len(others) > 5 else "")
            click.echo(
                f"fleet: skipped {len(others)} registry entries that are not terminals: {shown}",
                err=True,
            )
        if not devices:
            raise click.ClickException(
                f"no terminals in {registry}" + (f" for site {site}" if site else "")
            )
        script = _chain_script(devices) if chain_day else []
        with FleetState(state_path).locked() as state:
            start = state.begin([d.dev for d in devices], records + len(script))
            fleet = Fleet(BrokerSettings(host=host, port=port), devices, seed=seed, start=start)
            click.echo(
                f"fleet: {len(devices)} terminals → {host}:{port}, {records} records; "
                f"sequences kept in {state_path}",
                err=True,
            )
            try:
                with stop_signals_interrupt():
                    if script:
                        fleet.run_script(script, drain_timeout, connect_timeout)
                    out = fleet.run(records, rate, drain_timeout, _progress, connect_timeout)
                    out["chain_records"] = len(script)
            except ConnectionError as exc:
                raise click.ClickException(
                    f"cannot reach the broker at {host}:{port} within {connect_timeout:g} s "
                    f"({fleet.link.last_error or 'no answer'}); nothing was published"
                ) from exc
            finally:
                fleet.stop()
                state.save(fleet.positions())
    click.echo(json.dumps(out))


def _chain_script(devices: list[Any]) -> list[tuple[str, str, int, dict[str, Any]]]:
    """A multi-hop day (:func:`simulators.chain.chain_day`) on six market terminals."""
    from simulators.chain import chain_day

    scales = sorted(d.dev for d in devices if d.type == "market-scale")
    day = chain_day(int(time.time() * 1000) - 3_600_000, step_ms=1000)
    names = sorted({r.dev for r in day.records})
    if len(scales) < len(names):
        raise click.ClickException(
            f"--chain-day needs {len(names)} market terminals, the registry has {len(scales)}"
        )
    dev_of = dict(zip(names, scales, strict=False))
    return [(dev_of[r.dev], r.kind, r.ts, r.body) for r in day.records]


def _progress(s: dict[str, int]) -> None:
    click.echo(
        f"  generated {s['generated']}  acked {s['acked']}  pending {s['pending']}", err=True
    )
