"""Build a whole terminal runtime inside the simulated world."""

from te.config import Identity, Section
from te.hal import Board
from te.runtime import Runtime

_TYPING = False
if _TYPING:
    from typing import Any

    from te.channel import Channel
    from te.fs import FS

    from tesim.world import World

KEY_HEX = "7f" * 32


def identity(dev: str, key_hex: str = KEY_HEX, kind: str = "cylinder-reader",
             site: str = "S1") -> Identity:
    return Identity(Section({"dev": dev, "key": key_hex, "type": kind, "site": site,
                             "link": {"host": "127.0.0.1", "port": 1883}}, "config.json:"))


def runtime(world: "World", app: "Any", cfg: "dict[str, Any]", ident: Identity, fs: "FS",
            channel: "Channel", root: str = "") -> Runtime:
    board = Board(cfg["hw"], world.clock)
    return Runtime(board, ident, Section(cfg, "app.json:"), fs, channel, app, root)
