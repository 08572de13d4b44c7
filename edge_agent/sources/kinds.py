"""The kinds of source an agent config may declare (``[[sources]]``, ``kind = ...``).

A kind is a module with ``parse(section)`` (its config table into a frozen settings
object; the caller checks for unknown keys) and ``build(name, settings, host, data_dir)`` (the
:class:`~edge_agent.sources.base.Source`; ``data_dir`` is the agent's, for the source's
own files under ``data_dir / "sources"``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge_agent.sources import modbus_elevator, serial_link
from edge_agent.sources.base import Source, SourceHost
from hostlib.config import Section, name_token
from hostlib.errors import ConfigError


@dataclass(frozen=True)
class Kind:
    parse: Callable[[Section], Any]
    build: Callable[[str, Any, SourceHost, Path], Source]
    help: str


KINDS: dict[str, Kind] = {}
"""Filled below, one line per kind."""
KINDS[modbus_elevator.KIND] = Kind(
    modbus_elevator.parse, modbus_elevator.build, modbus_elevator.HELP
)
KINDS[serial_link.KIND] = Kind(serial_link.parse, serial_link.build, serial_link.HELP)


@dataclass(frozen=True)
class SourceConfig:
    """One ``[[sources]]`` table, parsed."""

    kind: str
    name: str
    settings: Any

    def build(self, host: SourceHost, data_dir: Path) -> Source:
        return KINDS[self.kind].build(self.name, self.settings, host, data_dir)


def parse_sources(root: Section) -> tuple[SourceConfig, ...]:
    """The ``[[sources]]`` array of the agent's config (absent: none)."""
    raw = root.get("sources", list, [])
    out: list[SourceConfig] = []
    for i, item in enumerate(raw):
        s = Section(root.path, f"sources[{i}]", item, root.problems, root.files)
        kind = s.get("kind", str)
        name = name_token(s, "name", f"{kind or 'source'}-{i + 1}")
        if kind not in KINDS:
            known = ", ".join(sorted(KINDS)) or "none in this build"
            s.fail("kind", f"unknown source kind {kind!r} (known: {known})")
            continue
        try:
            settings = KINDS[kind].parse(s)
        except ConfigError:
            if root.problems is None:
                raise
            continue
        s.finish()
        if any(c.name == name for c in out):
            s.fail("name", f"another source is named {name!r}: names must differ")
            continue
        out.append(SourceConfig(kind, name, settings))
    return tuple(out)
