"""Configuration files (TOML) read once into frozen, validated objects.

This module holds the reading machinery every role's settings use: :class:`Section` (typed
reads from one TOML table, each failure naming file and key), :func:`load_toml` and
:func:`rel_path`. A bad value stops start-up with :class:`~hostlib.errors.ConfigError`
naming the file and the key; nothing surfaces later as a ``KeyError``. Each role owns its
own settings (``edge_agent/settings.py``, ``collector/settings.py``).
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, TypeVar

from hostlib.errors import ConfigError
from wire.topics import check_site

T = TypeVar("T")


class Section:
    """Typed reads from one TOML table, each failure naming file and key."""

    def __init__(self, path: str, name: str, data: Any) -> None:
        if not isinstance(data, dict):
            raise ConfigError(path, name, "must be a table")
        self.path, self.name, self.data = path, name, data
        self.used: set[str] = set()

    def key(self, key: str) -> str:
        """The dotted name of ``key`` in this table, as error messages show it."""
        return f"{self.name}.{key}" if self.name else key

    def error(self, key: str, message: str) -> ConfigError:
        return ConfigError(self.path, self.key(key), message)

    def get(self, key: str, typ: type[T], default: T | None = None) -> T:
        self.used.add(key)
        if key not in self.data:
            if default is None:
                raise self.error(key, "is required")
            return default
        val = self.data[key]
        if typ is float and isinstance(val, int) and not isinstance(val, bool):
            val = float(val)
        if not isinstance(val, typ) or (typ is int and isinstance(val, bool)):
            raise self.error(key, f"must be {typ.__name__}, not {val!r}")
        return val

    def opt(self, key: str, typ: type[T]) -> T | None:
        if key not in self.data:
            self.used.add(key)
            return None
        return self.get(key, typ)

    def positive(self, key: str, typ: type[T], default: T) -> T:
        val = self.get(key, typ, default)
        if val <= 0:  # type: ignore[operator]
            raise self.error(key, f"must be > 0, not {val!r}")
        return val

    def sub(self, key: str) -> Section:
        self.used.add(key)
        return Section(self.path, self.key(key), self.data.get(key, {}))

    def has(self, key: str) -> bool:
        return key in self.data

    def finish(self) -> None:
        unknown = sorted(set(self.data) - self.used)
        if unknown:
            raise self.error(unknown[0], "unknown key")


def load_toml(path: str | Path) -> tuple[str, Section]:
    """The file's name and its root table; a missing or malformed file is a ConfigError."""
    p = str(path)
    try:
        with open(p, "rb") as fh:
            return p, Section(p, "", tomllib.load(fh))
    except FileNotFoundError:
        raise ConfigError(p, "", "file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(p, "", f"not valid TOML: {exc}") from exc


def rel_path(config_path: str, value: str) -> Path:
    """``value`` as a path, relative paths taken from the config file's folder."""
    p = Path(value)
    return p if p.is_absolute() else Path(config_path).resolve().parent / p


def site_id(s: Section, key: str) -> str:
    site = s.get(key, str)
    try:
        return check_site(site)
    except ValueError as exc:
        raise s.error(key, str(exc)) from None
