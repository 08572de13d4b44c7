"""``traceedge agent``: run the edge agent, inspect its outbox."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import click

from edge_agent.settings import load_agent
from traceedge.cli import bundle as bundle_cli
from traceedge.cli.common import (
    NOT_RUNNING,
    config_option,
    friendly_errors,
    log_format_option,
    setup_logging,
    verbose_option,
)

log = logging.getLogger(__name__)


@click.group("agent")
def command() -> None:
    """The edge agent on a site's gateway.

    \b
    Example:
      traceedge agent run --config config/agent.example.toml
    """


@command.command("run")
@config_option("Agent")
@verbose_option
@log_format_option
def run_cmd(config_path: Path, verbose: int, log_format: str) -> None:
    """Run the agent until stopped (SIGTERM / Ctrl-C).

    Logs at INFO (-v adds nothing, -vv debug) to stderr. Under systemd (Type=notify) it
    says READY once started, pings the watchdog while its threads live, and says STOPPING.

    \b
    Example:
      traceedge agent run --config /etc/traceedge/agent.toml --log-format json
    """
    setup_logging(max(verbose, 1), log_format)
    from edge_agent.agent import Agent

    with friendly_errors():
        settings = load_agent(config_path)
        log.info(
            "agent for site %s: terminals via %s:%d, uplink to %s:%d, outbox %s",
            settings.site,
            settings.local.host,
            settings.local.port,
            settings.uplink.broker.host,
            settings.uplink.broker.port,
            settings.outbox_path,
        )
        Agent(settings).run_forever()


@command.command("status")
@config_option("Agent")
@click.option("--json", "as_json", is_flag=True, help="One JSON object instead of text.")
def status_cmd(config_path: Path, as_json: bool) -> None:
    """Outbox depth, bytes, oldest record, last ack, rates, alarms.

    Exit status: 0 when the agent is running, 3 when it is not (the outbox is shown as it
    last left it), 1 on an error (a bad config, an outbox that cannot be read).

    \b
    Example:
      traceedge agent status --config /etc/traceedge/agent.toml --json
    """
    from edge_agent.status import format_status, read_status

    with friendly_errors():
        outbox = load_agent(config_path, files=False).outbox_path
    if not outbox.exists():
        click.echo(f"{outbox}: no outbox here: the agent has never run with this config", err=True)
        click.get_current_context().exit(NOT_RUNNING)
    with friendly_errors(str(outbox)):
        st = read_status(outbox)
    click.echo(json.dumps(st) if as_json else format_status(st))
    if not st["running"]:
        click.get_current_context().exit(NOT_RUNNING)


command.add_command(bundle_cli.export_cmd)
command.add_command(bundle_cli.import_receipt_cmd)
