"""An in-memory filesystem with the ``te.fs.FS`` interface and power cuts at any step.

Every mutating step counts: each byte written, each create / truncate, rename, remove and
mkdir. With ``cut_at = k`` the k-th step raises ``PowerCut`` *before* it happens and the
filesystem keeps exactly the steps before it (the worst case of any filesystem: every
prefix of a write can survive). ``steps`` counts the steps taken.
"""

from te.fs import FS

_TYPING = False
if _TYPING:
    from typing import Any


class PowerCut(Exception):
    pass


class MemFile:
    def __init__(self, fs: "MemFS", path: str, data: "bytearray | None") -> None:
        self.fs = fs
        self.path = path
        self.data = data  # None: opened for reading (snapshot in self.snap)
        self.snap = bytes(fs.files[path]) if data is None else b""
        self.pos = 0

    def write(self, b: bytes) -> int:
        assert self.data is not None, "file not open for writing"
        for x in bytes(b):
            self.fs.step()
            self.data.append(x)
        return len(b)

    def read(self, n: int = -1) -> bytes:
        src = self.snap
        end = len(src) if n < 0 else min(len(src), self.pos + n)
        out = src[self.pos : end]
        self.pos = end
        return out

    def seek(self, pos: int, whence: int = 0) -> int:
        self.pos = pos if whence == 0 else (len(self.snap) + pos if whence == 2 else self.pos + pos)
        return self.pos

    def tell(self) -> int:
        return self.pos

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self) -> "MemFile":
        return self

    def __exit__(self, *a: "Any") -> None:
        self.close()


class MemFS(FS):
    rename_replaces = True

    def __init__(self) -> None:
        self.files: "dict[str, bytearray]" = {}
        self.dirs = {""}
        self.steps = 0
        self.cut_at = 0

    def step(self) -> None:
        self.steps += 1
        if self.cut_at and self.steps >= self.cut_at:
            raise PowerCut("power cut at step %d" % self.steps)

    def listdir(self, path: str) -> "list[str]":
        p = path.rstrip("/") + "/"
        if path.rstrip("/") not in self.dirs:
            raise OSError(2)
        return [k[len(p):] for k in self.files if k.startswith(p) and "/" not in k[len(p):]]

    def mkdir(self, path: str) -> None:
        if path.rstrip("/") not in self.dirs:
            self.step()
            self.dirs.add(path.rstrip("/"))

    def open(self, path: str, mode: str) -> "Any":
        if "r" in mode:
            if path not in self.files:
                raise OSError(2)
            return MemFile(self, path, None)
        if "w" in mode or path not in self.files:
            self.step()
            self.files[path] = bytearray()
        return MemFile(self, path, self.files[path])

    def remove(self, path: str) -> None:
        if path not in self.files:
            raise OSError(2)
        self.step()
        del self.files[path]

    def rename(self, old: str, new: str) -> None:
        if old not in self.files:
            raise OSError(2)
        self.step()
        self.files[new] = self.files.pop(old)

    def size(self, path: str) -> int:
        return len(self.files[path])

    def exists(self, path: str) -> bool:
        return path in self.files or path in self.dirs

    def copy(self) -> "MemFS":
        fs = MemFS()
        fs.files = {k: bytearray(v) for k, v in self.files.items()}
        fs.dirs = set(self.dirs)
        return fs
