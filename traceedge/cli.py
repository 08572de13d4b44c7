"""The ``traceedge`` command line: one group per role."""

from __future__ import annotations

import click

from traceedge import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="traceedge")
def main() -> None:
    """traceedge: carry traceability records from terminals to the city platform.

    \b
    Example:
      traceedge demo --records 2000
    """


def _register() -> None:
    # Sub-groups live in their roles' modules; imported here so `traceedge --help` lists them.
    from importlib import import_module

    for modname in (
        "traceedge.cli_device",
        "traceedge.cli_agent",
        "traceedge.cli_collector",
        "traceedge.cli_platform",
        "traceedge.cli_sim",
        "traceedge.cli_diag",
        "traceedge.cli_fleet",
        "traceedge.cli_demo",
    ):
        try:
            mod = import_module(modname)
        except ModuleNotFoundError as exc:
            if exc.name != modname:
                raise
            continue
        main.add_command(mod.command)


_register()
