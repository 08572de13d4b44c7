"""The ``traceedge`` command line: one group per role, each in a module of this package.

Each command module exposes ``command`` (a click command or group); this module adds them
to :func:`main`. Device simulators and diagnostics come from the ``dev_*`` modules, which
register their commands on the ``sim`` and ``diag`` groups (see :mod:`traceedge.cli.sim`).
"""

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
    from traceedge.cli import (
        agent,
        broker,
        collector,
        config,
        demo,
        device,
        diag,
        fleet,
        pki,
        platform,
        sim,
        terminal,
    )

    for mod in (
        device,
        pki,
        broker,
        agent,
        terminal,
        collector,
        config,
        platform,
        sim,
        diag,
        fleet,
        demo,
    ):
        main.add_command(mod.command)


_register()
