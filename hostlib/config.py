"""Configuration files (TOML) read once into frozen, validated objects.

This module holds the reading machinery every role's settings use: :class:`Section` (typed,
bounded reads from one TOML table, each failure naming file and key), :func:`load_toml` and
:func:`rel_path`. A bad value stops start-up with :class:`~hostlib.errors.ConfigError`
naming the file and the key; nothing surfaces later as a ``KeyError``. Each role owns its
own settings (``edge_agent/settings.py``, ``collector/settings.py``).

Two ways to read a file, chosen once for the file and shared by all its tables:

* **raising** (start-up): the first problem raises :class:`ConfigError`;
* **collecting** (``traceedge config check``): given a ``problems`` list, each problem is
  recorded there and reading goes on with a stand-in value (the default, or an empty one),
  so one pass finds every problem of the file. One problem is reported per key.

``files`` says whether paths that must exist (TLS files, registries) are checked; commands
that only read a role's data directory turn it off.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Collection
from pathlib import Path
from typing import Any, TypeVar

from hostlib.errors import ConfigError
from wire.topics import check_site

T = TypeVar("T")
N = TypeVar("N", int, float)

MAX_PORT = 65535
MiB = 1024**2
MAX_WAIT_S = 3600.0  # no timeout or back-off in our configs is longer than an hour


class Section:
    """Typed reads from one TOML table, each failure naming file and key."""

    def __init__(
        self,
        path: str,
        name: str,
        data: Any,
        problems: list[ConfigError] | None = None,
        files: bool = True,
    ) -> None:
        self.path, self.name = path, name
        self.problems = problems
        self.files = files
        self.used: set[str] = set()
        self._failed: set[str] = set()
        if not isinstance(data, dict):
            self.fail("", "must be a table")
            data = {}
        self.data: dict[str, Any] = data

    def key(self, key: str) -> str:
        """The dotted name of ``key`` in this table ("": the table), as messages show it."""
        if not key:
            return self.name
        return f"{self.name}.{key}" if self.name else key

    def error(self, key: str, message: str) -> ConfigError:
        return ConfigError(self.path, self.key(key), message)

    def fail(self, key: str, message: str) -> None:
        """A problem with ``key`` ("" for the whole table): raised, or recorded when
        collecting (the first problem of each key only, so stand-ins add no noise)."""
        if self.problems is None:
            raise self.error(key, message)
        if key not in self._failed:
            self._failed.add(key)
            self.problems.append(self.error(key, message))

    def _typed(self, key: str, typ: type[T]) -> T | None:
        """The value of a present ``key`` if it has type ``typ`` (ints count as floats)."""
        val = self.data[key]
        if typ is float and isinstance(val, int) and not isinstance(val, bool):
            val = float(val)
        if not isinstance(val, typ) or (typ is int and isinstance(val, bool)):
            self.fail(key, f"must be {typ.__name__}, not {val!r}")
            return None
        return val

    def get(self, key: str, typ: type[T], default: T | None = None) -> T:
        """``key`` as a ``typ``; required when there is no ``default``."""
        self.used.add(key)
        val = self._typed(key, typ) if key in self.data else None
        if val is not None:
            return val
        if key not in self.data and default is None:
            self.fail(key, "is required")
        return default if default is not None else typ()

    def choice(self, key: str, typ: type[T], allowed: Collection[T], default: T | None = None) -> T:
        """``key`` as :meth:`get` gives it, which must be one of ``allowed``."""
        val = self.get(key, typ, default)
        if val not in allowed:
            self.fail(key, f"must be one of {', '.join(map(str, allowed))}")
        return val

    def opt(self, key: str, typ: type[T]) -> T | None:
        """``key`` as a ``typ``, or None when absent."""
        self.used.add(key)
        return self._typed(key, typ) if key in self.data else None

    def bounded(
        self, key: str, typ: type[N], default: N, top: N, unit: str, zero: bool = False
    ) -> N:
        """A number above 0 (or 0 too, with ``zero``) and at most ``top`` ``unit``: a value
        out of range (or NaN, or infinite) is refused with the range in the message."""
        val = self.get(key, typ, default)
        low_ok = val >= 0 if zero else val > 0
        if not (low_ok and val <= top and math.isfinite(val)):
            if typ is int:
                rng = f"{0 if zero else 1}..{top}"
            else:
                rng = f"{'>= 0' if zero else '> 0'} and at most {top}"
            self.fail(key, f"must be {rng} {unit}, not {val!r}")
            return default
        return val

    def port(self, key: str, default: int, off: bool = False) -> int:
        """A TCP port 1..65535; with ``off``, 0 too (meaning: do not listen)."""
        val = self.get(key, int, default)
        if not (0 if off else 1) <= val <= MAX_PORT:
            zero = " (0: off)" if off else ""
            self.fail(key, f"must be a port 1..{MAX_PORT}{zero}, not {val!r}")
            return default
        return val

    def host(self, key: str, default: str) -> str:
        """A host name or address: not empty, no spaces, at most 253 characters."""
        val = self.get(key, str, default)
        if not val or len(val) > 253 or any(c.isspace() or c == "\0" for c in val):
            self.fail(key, f"must be a host name or address, not {val!r}")
            return default
        return val

    def must_exist(self, key: str, path: str | Path | None) -> None:
        """``path`` (the value of ``key``) exists, when this file's paths are checked."""
        if self.files and path is not None and not Path(path).exists():
            self.fail(key, f"file not found: {path}")

    def file(self, key: str) -> Path:
        """The path in required ``key`` (relative: to the config file), which must exist."""
        p = rel_path(self.path, self.get(key, str))
        self.must_exist(key, p)
        return p

    def opt_file(self, key: str) -> Path | None:
        """The path in ``key`` if given (relative: to the config file), which must exist."""
        if not self.has(key):
            self.used.add(key)
            return None
        return self.file(key)

    def sub(self, key: str) -> Section:
        self.used.add(key)
        return Section(self.path, self.key(key), self.data.get(key, {}), self.problems, self.files)

    def has(self, key: str) -> bool:
        return key in self.data

    def finish(self) -> None:
        """Every key of the table was read: anything else is an unknown key."""
        for key in sorted(set(self.data) - self.used):
            self.fail(key, "unknown key")


def load_toml(
    path: str | Path, problems: list[ConfigError] | None = None, files: bool = True
) -> tuple[str, Section]:
    """The file's name and its root table; a missing or malformed file is a ConfigError
    (raised in both modes: there is nothing more to read). ``problems`` and ``files``:
    see the module's docstring."""
    p = str(path)
    try:
        with open(p, "rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(p, "", "file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(p, "", f"not valid TOML: {exc}") from exc
    return p, Section(p, "", data, problems, files)


def rel_path(config_path: str, value: str) -> Path:
    """``value`` as a path, relative paths taken from the config file's folder."""
    p = Path(value)
    return p if p.is_absolute() else Path(config_path).resolve().parent / p


def site_id(s: Section, key: str) -> str:
    site = s.get(key, str)
    try:
        return check_site(site)
    except ValueError as exc:
        s.fail(key, str(exc))
    return site


def name_token(s: Section, key: str, default: str) -> str:
    """A name used in MQTT topics, client ids and file names (a collector's ``client_id``,
    its subscription ``group``): 1..64 letters, digits, ``.``, ``_`` or ``-``."""
    val = s.get(key, str, default)
    if not 1 <= len(val) <= 64 or not all(c.isascii() and (c.isalnum() or c in "._-") for c in val):
        s.fail(key, f"1..64 letters, digits, . _ or -, not {val!r}")
        return default
    return val
