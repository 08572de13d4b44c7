"""The filesystem seam: the flash log and state files call only these five operations.

``FS`` maps them onto the board's VFS (littlefs on ESP32). The simulator's ``MemFS``
implements the same methods with power cuts injected at any byte.
"""

import os

from te.hal import QUIRK

_TYPING = False
if _TYPING:
    from typing import IO


class FS:
    rename_replaces = bool(QUIRK["rename_replaces"])

    def listdir(self, path: str) -> "list[str]":
        return os.listdir(path)

    def mkdir(self, path: str) -> None:
        try:
            os.mkdir(path)
        except OSError:
            pass  # exists

    def open(self, path: str, mode: str) -> "IO[bytes]":
        return open(path, mode)

    def remove(self, path: str) -> None:
        os.remove(path)

    def rename(self, old: str, new: str) -> None:
        os.rename(old, new)

    def size(self, path: str) -> int:
        return int(os.stat(path)[6])

    def exists(self, path: str) -> bool:
        try:
            os.stat(path)
            return True
        except OSError:
            return False
