"""``traceedge terminal``: the Linux terminals (no MCU): a market stall's settlement
terminal and a warehouse's in/out terminal."""

from __future__ import annotations

import json
from pathlib import Path

import click

from edge_agent.terminal.settings import load_terminal
from edge_agent.terminal.whsettings import is_warehouse, load_warehouse
from traceedge.cli.common import (
    NOT_RUNNING,
    config_option,
    friendly_errors,
    log_format_option,
    setup_logging,
    verbose_option,
)


@click.group("terminal")
def command() -> None:
    """Linux terminals: a market stall's settlement terminal (scale, card reader, receipt
    printer) and a warehouse's in/out terminal (UHF reader, barcode/QR scanner).

    \b
    Example:
      traceedge terminal run --config config/terminal.example.toml --app settlement
      traceedge terminal run --config config/warehouse-terminal.example.toml --app warehouse
    """


@command.command("run")
@config_option("Terminal")
@click.option(
    "--app",
    type=click.Choice(["settlement", "warehouse"]),
    default="settlement",
    show_default=True,
    help="What the terminal does (the MCU app of the same name).",
)
@verbose_option
@log_format_option
def run_cmd(config_path: Path, app: str, verbose: int, log_format: str) -> None:
    """Run the terminal: operator commands on stdin (type help), states on stdout.

    Logs to stderr. Stops on quit, the end of stdin, SIGTERM or Ctrl-C; records not yet
    acknowledged stay in its log and are sent at the next start.

    settlement: goods N, pay, settle ...; warehouse: receive / dispatch / stocktake / pack,
    product N, party N, record ... (a dispatch asks the gateway's dispatch gate first).

    \b
    Example:
      traceedge terminal run --config /etc/traceedge/terminal.toml --app settlement
      traceedge terminal run --config /etc/traceedge/warehouse.toml --app warehouse
    """
    setup_logging(verbose, log_format)
    if app == "warehouse":
        from edge_agent.terminal.whterminal import run_warehouse

        with friendly_errors():
            run_warehouse(load_warehouse(config_path))
        return
    from edge_agent.terminal.terminal import run_terminal

    with friendly_errors():
        settings = load_terminal(config_path)
        run_terminal(settings)


@command.command("status")
@config_option("Terminal")
@click.option("--json", "as_json", is_flag=True, help="One JSON object instead of text.")
def status_cmd(config_path: Path, as_json: bool) -> None:
    """Records waiting for the agent's ack, last ack, stop list, device states, counters
    (either terminal: a config with a [warehouse] table is a warehouse terminal's).

    Exit status: 0 when the terminal is running, 3 when it is not (its log is shown as it
    last left it), 1 on an error.

    \b
    Example:
      traceedge terminal status --config /etc/traceedge/terminal.toml --json
      traceedge terminal status --config /etc/traceedge/warehouse.toml
    """
    from edge_agent.terminal.log import read_status

    with friendly_errors():
        if is_warehouse(config_path):
            path = load_warehouse(config_path, files=False).log_path
        else:
            path = load_terminal(config_path, files=False).log_path
    if not path.exists():
        click.echo(f"{path}: no log here: the terminal has never run with this config", err=True)
        click.get_current_context().exit(NOT_RUNNING)
    with friendly_errors(str(path)):
        st = read_status(path)
    if as_json:
        click.echo(json.dumps(st, ensure_ascii=False))
    else:
        click.echo(f"running: {st['running']}  boot {st['boot']}  last seq {st['last_seq']}")
        click.echo(
            f"waiting for ack: {st['waiting']} (oldest {st['oldest_waiting_s']} s)  "
            f"last ack {st['last_ack_age_s']} s ago  rejected {st['rejected_by_agent']}"
        )
        stop = st["stop_list"]
        click.echo(f"stop list v{stop['version']}: {' '.join(stop['batches']) or '-'}")
        if st.get("app") == "warehouse":
            click.echo(f"now: {st.get('desk', '-')}")
        else:
            click.echo(f"receipts not printed: {st['unprinted_receipts']}")
        for name, d in st["devices"].items():
            click.echo(f"{name}: {d['state']}" + (f" ({d['detail']})" if d["detail"] else ""))
        if st["counters"]:
            click.echo(" ".join(f"{k}={v}" for k, v in sorted(st["counters"].items())))
    if not st["running"]:
        click.get_current_context().exit(NOT_RUNNING)
