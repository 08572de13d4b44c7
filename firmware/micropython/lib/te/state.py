"""Small state that must survive power loss: written whole, checked whole.

A state file holds ``<json>\\n<crc32 hex>``; ``save`` writes ``<path>.tmp`` then renames
it over ``<path>`` (where rename cannot replace, the old file is removed first, and
``load`` falls back to the ``.tmp``). Each save carries a generation ``_g``; ``load``
takes the valid copy with the highest one, so a cut at any byte leaves either the old or
the new content, never a mix.
"""

import json
from binascii import crc32

_TYPING = False
if _TYPING:
    from typing import Any

    from te.fs import FS


class StateFile:
    def __init__(self, fs: "FS", path: str) -> None:
        self.fs = fs
        self.path = path
        self.gen = 0

    def _read(self, path: str) -> "dict[str, Any] | None":
        try:
            with self.fs.open(path, "rb") as f:
                raw = f.read()
        except OSError:
            return None
        nl = raw.rfind(b"\n")
        if nl < 0:
            return None
        body = raw[:nl]
        try:
            if int(raw[nl + 1 :], 16) != crc32(body):
                return None
            obj = json.loads(body)
        except ValueError:
            return None
        return obj if isinstance(obj, dict) else None

    def load(self) -> "dict[str, Any] | None":
        best: "dict[str, Any] | None" = None
        for p in (self.path, self.path + ".tmp"):
            d = self._read(p)
            if d is not None and (best is None or int(d.get("_g", 0)) > int(best.get("_g", 0))):
                best = d
        if best is not None:
            self.gen = int(best.get("_g", 0))
            best.pop("_g", None)
        return best

    def save(self, d: "dict[str, Any]") -> None:
        self.gen += 1
        d["_g"] = self.gen
        body = json.dumps(d).encode()
        del d["_g"]
        tmp = self.path + ".tmp"
        with self.fs.open(tmp, "wb") as f:
            f.write(body + b"\n" + ("%08x" % crc32(body)).encode())
            f.flush()
        if not self.fs.rename_replaces and self.fs.exists(self.path):
            self.fs.remove(self.path)
        self.fs.rename(tmp, self.path)
