"""``traceedge sim``: start a device simulator. Commands are contributed by the
``traceedge.devcli_*`` modules, each with ``register_sim(group)`` and ``register_diag(group)``."""

from __future__ import annotations

from importlib import import_module

import click

PLUGINS = ("traceedge.devcli_serial", "traceedge.devcli_card", "traceedge.devcli_elevator")


@click.group("sim")
def command() -> None:
    """Device simulators behind the same seams as real devices (pty, vpcd, Modbus).

    \b
    Example:
      traceedge sim scale --protocol sics --pty
    """


def load_plugins(group: click.Group, hook: str) -> None:
    for name in PLUGINS:
        try:
            mod = import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        getattr(mod, hook)(group)


load_plugins(command, "register_sim")
