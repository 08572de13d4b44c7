"""``traceedge diag``: read a live device (real or simulated) and print decoded values.
Commands are contributed by the ``traceedge.cli.dev_*`` modules (``register_diag(group)``)."""

from __future__ import annotations

import click

from traceedge.cli.sim import DEVICE_MODULES


@click.group("diag")
def command() -> None:
    """Read a live device and print what it says: what a technician runs on site.

    \b
    Example:
      traceedge diag scale --protocol sics --port /dev/ttyUSB0
    """


for _mod in DEVICE_MODULES:
    _mod.register_diag(command)
