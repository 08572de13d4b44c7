"""``traceedge demo``: the whole chain on embedded defaults."""

from __future__ import annotations

import time
from pathlib import Path

import click

from traceedge.cli.common import (
    friendly_errors,
    setup_logging,
    stop_signals_interrupt,
    verbose_option,
)


@click.command("demo")
@click.option(
    "--records",
    type=click.IntRange(1),
    default=3000,
    show_default=True,
    help="Records the simulated terminals capture.",
)
@click.option(
    "--rate",
    type=float,
    default=0.0,
    show_default=True,
    help="Capture rate, records/s (0 = as fast as possible).",
)
@click.option(
    "--broker",
    "broker_kind",
    type=click.Choice(["auto", "mosquitto", "amqtt"]),
    default="auto",
    show_default=True,
    help="Broker to start (auto: Mosquitto if installed).",
)
@click.option(
    "--workdir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Keep configs, stores and logs here (default: a temporary folder, removed).",
)
@click.option(
    "--timeout",
    type=float,
    default=300.0,
    show_default=True,
    help="Give up after this many seconds.",
)
@click.option(
    "--epcis-out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Forward EPCIS 2.0 capture documents and keep a copy of each (.jsonld) here.",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print only the summary as one JSON object (last line of stdout).",
)
@click.option(
    "--serve",
    is_flag=True,
    help="Keep the chain running afterwards and print the console's and the shopper's page "
    "addresses with an admin token, until Ctrl-C.",
)
@verbose_option
def command(
    records: int,
    rate: float,
    broker_kind: str,
    workdir: Path | None,
    timeout: float,
    as_json: bool,
    epcis_out: Path | None,
    serve: bool,
    verbose: int,
) -> None:
    """Run terminals → edge agent → broker → collector → city platform and show what happened.

    Ctrl-C or SIGTERM stops the demo and every process it started; its child processes die
    with it even when it is killed with SIGKILL (Linux).

    \b
    Example:
      traceedge demo --records 5000
      traceedge demo --records 2000 --broker amqtt --json
      traceedge demo --records 1000 --epcis-out ./epcis --json
      traceedge demo --records 2000 --serve     # then open the console in a browser
    """
    setup_logging(verbose)
    from traceedge.demo import DemoResult, print_result, run_demo

    def say(msg: str) -> None:
        click.echo(msg, err=True)

    def keep_serving(res: DemoResult) -> None:
        print_result(res, as_json, click.echo)
        say("")
        say(f"console (regulator):  {res.console_url}")
        say(f"  sign in with this admin token: {res.admin_token}")
        if res.public_url:
            say(f"shopper's trace page: {res.public_url}")
        say("the chain keeps running; Ctrl-C stops it")
        while True:
            time.sleep(3600)

    with friendly_errors(), stop_signals_interrupt():
        res = run_demo(
            records, workdir, broker_kind, rate, say, timeout, epcis_out,
            keep_serving if serve else None,
        )  # fmt: skip
    if not serve:
        print_result(res, as_json, click.echo)
