"""``traceedge config check``: every problem of role config files at once, before a start."""

from __future__ import annotations

from pathlib import Path

import click

from collector.settings import load_collector
from edge_agent.settings import load_agent
from edge_agent.terminal.settings import load_terminal
from edge_agent.terminal.whsettings import load_warehouse
from hostlib.config import load_toml
from hostlib.errors import ConfigError

ROLE_TABLES = ("agent", "collector", "terminal")


@click.group("config")
def command() -> None:
    """Role configuration files.

    \b
    Example:
      traceedge config check /etc/traceedge/agent.toml
    """


def check_file(path: Path) -> tuple[str, list[ConfigError]]:
    """What ``path`` configures (a line for when it is clean) and every problem in it.

    The role is the file's ``[agent]``, ``[collector]`` or ``[terminal]`` table; the file
    is read the way start-up reads it, collecting problems instead of stopping at the
    first."""
    problems: list[ConfigError] = []
    try:
        _, root = load_toml(path)
        roles = [t for t in ROLE_TABLES if root.has(t)]
        if len(roles) != 1:
            raise ConfigError(
                str(path),
                "",
                "cannot tell the role: want one [agent], [collector] or [terminal] table",
            )
        if roles[0] == "agent":
            what = f"agent config for site {load_agent(path, problems).site}"
        elif roles[0] == "terminal" and root.has("warehouse"):
            what = f"warehouse terminal config for {load_warehouse(path, problems).dev}"
        elif roles[0] == "terminal":
            what = f"stall terminal config for {load_terminal(path, problems).dev}"
        else:
            what = f"collector config for client_id {load_collector(path, problems).client_id}"
    except ConfigError as exc:  # the file cannot be read, or a check that still raises
        return "", [*problems, exc]
    return what, problems


@command.command("check")
@click.argument(
    "files", metavar="FILE...", nargs=-1, required=True, type=click.Path(path_type=Path)
)
def check_cmd(files: tuple[Path, ...]) -> None:
    """Check agent, collector and terminal (stall, warehouse) config files as start-up would: keys
    known, values in range, ports valid, files that must exist present. Every problem is
    printed, one a line with file and key; exit status 0 when every file is clean, 1
    otherwise.

    \b
    Example:
      traceedge config check /etc/traceedge/agent.toml /etc/traceedge/collector.toml
    """
    bad = 0
    for path in files:
        what, problems = check_file(path)
        for p in problems:
            click.echo(str(p))
        if problems:
            bad += 1
            click.echo(f"{path}: {len(problems)} problem(s)", err=True)
        else:
            click.echo(f"ok: {what} ({path})")
    if bad:
        raise SystemExit(1)
