"""``traceedge sim``: start a device simulator. Commands are contributed by the
``traceedge.cli.dev_*`` modules, each with ``register_sim(group)`` and
``register_diag(group)``."""

from __future__ import annotations

from types import ModuleType

import click

from traceedge.cli import dev_card, dev_elevator, dev_serial

DEVICE_MODULES: tuple[ModuleType, ...] = (dev_serial, dev_card, dev_elevator)


@click.group("sim")
def command() -> None:
    """Device simulators behind the same seams as real devices (pty, vpcd, Modbus).

    \b
    Example:
      traceedge sim scale --protocol sics --pty
    """


for _mod in DEVICE_MODULES:
    _mod.register_sim(command)
