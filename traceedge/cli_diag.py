"""``traceedge diag``: read a live device (real or simulated) and print decoded values.
Commands are contributed by the ``traceedge.devcli_*`` modules (``register_diag(group)``)."""

from __future__ import annotations

import click

from traceedge.cli_sim import load_plugins


@click.group("diag")
def command() -> None:
    """Read a live device and print what it says: what a technician runs on site.

    \b
    Example:
      traceedge diag scale --protocol sics --port /dev/ttyUSB0
    """


load_plugins(command, "register_diag")
